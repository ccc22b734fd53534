"""ShoeReconNet: input view -> template + offsets (shape) and a UV texture sampled by a flow map.

The encoder is chosen by name (``model.encoder``: unet | resnet18 | resnet34, ``model/encoders.py``); every
encoder gives a bottleneck (-> latent code -> shape decoder) and full-resolution features (-> texture flow,
variance), so the heads work with each.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor, nn

from shoerecon.geometry.mesh import Mesh
from shoerecon.geometry.sole import project_onto_plate
from shoerecon.geometry.topology import Template
from shoerecon.model.encoders import ENCODERS, build_encoder
from shoerecon.model.flow import TextureFlowHead, sample_texture
from shoerecon.model.shape import LatentHead, ShapeDecoder
from shoerecon.model.unet import NORMS
from shoerecon.model.variance import VarianceConfig, VarianceSampler

TEMPLATE_BUFFERS = ("template_verts", "faces", "uvs", "uv_faces")  # state-dict keys of the template's mesh
TEMPLATE_TENSORS = TEMPLATE_BUFFERS + ("uv_mask",)                  # ... and of its UV coverage mask


@dataclass
class ModelConfig:
    """Network sizes and options. The defaults run one 64x64 image in well under 50 ms on 2 CPU cores."""

    encoder: str = "unet"            # unet | resnet18 | resnet34 (torchvision architectures)
    encoder_pretrained: bool = True  # resnets: ImageNet weights from encoder_weights (never downloaded); false: random
    encoder_weights: Optional[str] = None  # resnets: weight file; None: <torch hub dir>/checkpoints/<torchvision name>
    unet_depth: int = 4              # downsamplings; bottleneck at H / 2^depth
    unet_width: int = 16             # channels of the full-resolution features (UNet: doubling per level)
    unet_max_width: int = 256
    norm: str = "group"              # group | batch | instance | none
    latent_dim: int = 256
    latent_pool: int = 4             # bottleneck pooled to pool x pool before the latent FC
    shape_hidden: int = 128
    shape_layers: int = 3
    pe_freqs: int = 4                # positional-encoding frequencies of template positions
    offset_scale: float = 0.25       # max |offset| per axis with tanh; multiplier with linear
    offset_activation: str = "tanh"  # tanh | linear
    offset_init_std: float = 1e-4    # last shape layer init: initial prediction ~ template
    sole_plate: bool = False         # the sole's ground face moves only as a plate (geometry.sole): no camera sees it
    texture_size: int = 128          # UV texture Ht = Wt
    flow_hidden: int = 16
    flow_init_scale: float = 0.5     # initial flow = this * texel grid (0: all texels at the image centre)
    uv_mask_dilate: int = 1          # texels the UV coverage mask grows by (flow loss)

    def __post_init__(self) -> None:
        if self.encoder not in ENCODERS:
            raise ValueError(f"ModelConfig.encoder={self.encoder!r}; valid: {', '.join(ENCODERS)}")
        if self.norm not in NORMS:
            raise ValueError(f"ModelConfig.norm={self.norm!r}; valid: {', '.join(NORMS)}")
        if self.offset_activation not in ("tanh", "linear"):
            raise ValueError(f"ModelConfig.offset_activation={self.offset_activation!r}; valid: tanh, linear")
        for name in ("unet_depth", "unet_width", "latent_dim", "shape_hidden", "shape_layers", "texture_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")


@dataclass
class ReconOutput:
    """What the network predicts for a batch.

    Attributes:
        verts: (B, N, 3) template + offsets, world space. offsets: (B, N, 3).
        texture: (B, 3, Ht, Wt) in [0, 1], row 0 is v = 1.
        flow: (B, Ht, Wt, 2) grid_sample (x, y) coordinates in [-1, 1] into the input image.
        variance: (B, 1, H, W) v2 adaptive variance; None in v1.
        uv_mask: (Ht, Wt) texels used by the UV layout (for the flow loss); None: all.
    """
    verts: Tensor
    offsets: Tensor
    texture: Tensor
    flow: Tensor
    variance: Optional[Tensor] = None
    uv_mask: Optional[Tensor] = None


class ShoeReconNet(nn.Module):
    """Encoder over the input view (``model.encoder``); shape decoder on the bottleneck latent; texture-flow head
    on the encoder's full-resolution features; with ``variance.mode`` != "none" (v2) a variance head on the same
    features (the adaptive-variance sampling). The encoder's parameters are ``encoder.*`` (checkpoints of the
    UNet-only network, ``unet.*``, load unchanged).

    The template is one ``geometry.Template`` (``self.template``: positions, faces, UV layout and their lazily
    cached derived data, e.g. the UV coverage mask). It moves with ``.to()`` and is saved in the state dict under
    the keys of earlier versions, where it was five buffers: template_verts (N, 3), faces (F, 3), uvs (T, 2),
    uv_faces (F, 3), uv_mask (Ht, Wt) (the properties of the same names read it). Loading a state dict whose
    template has other sizes (saved after a remesh) adopts that template.
    """
    def __init__(self, cfg: ModelConfig, template: Mesh | Template, variance: VarianceConfig | None = None):
        super().__init__()
        self.cfg = cfg
        self.encoder = build_encoder(cfg.encoder, cfg.unet_width, cfg.unet_depth, cfg.unet_max_width, cfg.norm,
                                     cfg.encoder_pretrained, cfg.encoder_weights)
        self.latent_head = LatentHead(self.encoder.bottleneck_channels, cfg.latent_dim, cfg.latent_pool)
        self.shape_decoder = ShapeDecoder(cfg.latent_dim, cfg.shape_hidden, cfg.shape_layers, cfg.pe_freqs,
                                          cfg.offset_scale, cfg.offset_activation, cfg.offset_init_std)
        self.flow_head = TextureFlowHead(self.encoder.feature_channels, cfg.texture_size, cfg.flow_hidden,
                                         cfg.latent_dim, cfg.flow_init_scale)
        # mode "none" holds no parameters: v1 state dicts load unchanged
        self.sampler = VarianceSampler(self.encoder.feature_channels, variance or VarianceConfig())
        mesh = template.mesh() if isinstance(template, Template) else template
        self.template = self._as_template(mesh)
        _ = self.template.uv_mask  # computed now, on the CPU, as when it was a buffer (bit-identical masks)

    def _as_template(self, mesh: Mesh) -> Template:
        if mesh.uvs is None or mesh.uv_faces is None:
            raise ValueError("ShoeReconNet needs a template with a UV layout (mesh.uvs / mesh.uv_faces are None)")
        return Template.from_mesh(mesh, self.cfg.texture_size, self.cfg.uv_mask_dilate)

    # ------------------------------------------------------------------ the template
    def set_template(self, mesh: Mesh | Template) -> None:
        """Replace the template (any vertex count / UV layout; remeshing): a new ``Template`` on this network's
        device, so every derived cache goes with the old one. The learned weights stay and apply to the new
        vertices."""
        mesh = mesh.mesh() if isinstance(mesh, Template) else mesh
        self._as_template(mesh)  # checks
        self.template = self.template.replace(mesh)

    def template_mesh(self) -> Mesh:
        """A copy of the current template as a Mesh (no texture); later set_template calls do not change it."""
        return self.template.mesh()

    @property
    def template_verts(self) -> Tensor:
        """(N, 3) template positions."""
        return self.template.verts

    @property
    def faces(self) -> Tensor:
        """(F, 3) long template faces."""
        return self.template.faces

    @property
    def uvs(self) -> Tensor:
        """(T, 2) UV vertices of the template's layout."""
        return self.template.uvs

    @property
    def uv_faces(self) -> Tensor:
        """(F, 3) long UV faces."""
        return self.template.uv_faces

    @property
    def uv_mask(self) -> Tensor:
        """(Ht, Wt) float {0, 1}: texels the UV layout uses (dilated by ``model.uv_mask_dilate``)."""
        return self.template.uv_mask

    def _template_state(self) -> dict[str, Tensor]:
        t = self.template
        return {"template_verts": t.verts, "faces": t.faces, "uvs": t.uvs, "uv_faces": t.uv_faces,
                "uv_mask": t.uv_mask}

    def _apply(self, fn, *args, **kwargs):
        # .to() / .half() / .cuda(): the template's tensors (and its computed caches) follow, as buffers did
        module = super()._apply(fn, *args, **kwargs)
        self.template = self.template.apply(fn)
        return module

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        # the keys and order of the buffer version: own tensors first, then the submodules'
        for name, value in self._template_state().items():
            destination[prefix + name] = value if keep_vars else value.detach()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Checkpoints of the UNet-only network named the encoder "unet".
        for key in [k for k in state_dict if k.startswith(prefix + "unet.")]:
            state_dict[prefix + "encoder." + key[len(prefix) + 5:]] = state_dict.pop(key)
        # The template: adopt the saved one (other sizes after a remesh), in this network's dtypes and device.
        current = self._template_state()
        saved = {}
        for name in TEMPLATE_TENSORS:
            if prefix + name not in state_dict:
                if strict:
                    missing_keys.append(prefix + name)
                continue
            value = state_dict.pop(prefix + name)
            if not isinstance(value, Tensor):
                error_msgs.append(f"{prefix + name}: expected a tensor, got {type(value).__name__}")
                continue
            saved[name] = value.to(device=current[name].device, dtype=current[name].dtype)
        if all(name in saved for name in TEMPLATE_BUFFERS):
            size = (self.cfg.texture_size, self.cfg.texture_size)
            mask = saved.get("uv_mask")
            if mask is not None and tuple(mask.shape) != size:
                error_msgs.append(f"size mismatch for {prefix}uv_mask: the file's texture is {tuple(mask.shape)}, "
                                  f"this network's (model.texture_size) {size}")
                return
            cache = {"uv_mask": mask} if mask is not None else {}
            self.template = Template(saved["template_verts"], saved["faces"], saved["uvs"], saved["uv_faces"],
                                     self.cfg.texture_size, self.cfg.uv_mask_dilate, cache)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    def encode(self, image: Tensor) -> tuple[Tensor, Tensor]:
        """image (B, 3, H, W) in [0, 1] -> (latent (B, latent_dim), features (B, unet_width, H, W)); the encoder
        normalises its input itself."""
        bottleneck, features = self.encoder(image)
        return self.latent_head(bottleneck), features

    def forward(self, image: Tensor) -> ReconOutput:
        """image (B, 3, H, W) in [0, 1] -> ReconOutput (see its fields for shapes)."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"ShoeReconNet expects images (B, 3, H, W), got {tuple(image.shape)}")
        latent, features = self.encode(image)
        # Positional encoding in at least float32 (under fp16 autocast sin(2^k pi x) would lose precision).
        points = self.template_verts.to(torch.promote_types(self.template_verts.dtype, latent.dtype))
        offsets = self.shape_decoder(latent, points)
        if self.cfg.sole_plate:
            offsets = project_onto_plate(offsets, *self.template.sole_operands)
        flow = self.flow_head(features, latent)
        if self.sampler.head is None:
            texture, variance = sample_texture(image, flow), None
        else:
            texture, variance = self.sampler(features, image, flow)
        return ReconOutput(self.template_verts + offsets, offsets, texture, flow, variance, self.uv_mask)
