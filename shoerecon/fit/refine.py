"""Fit one prediction to its photo: ``refine(mesh, photo, mask, cfg) -> RefineResult``.

The network's mesh and texture are a start; N Adam steps then fit, to the one photo,

- the shape: a residual ``delta`` (N, 3) on the predicted vertices, regularised by the Laplacian of the
  residual, normal consistency and edge lengths (``losses.regularizers``) and the bilateral symmetry prior
  (``fit.symmetry``);
- the photo's camera (``fit.camera.PhotoCamera``): elevation and an image-plane similarity;

against ``silhouette * (1 - soft IoU(render alpha, mask)) + colour * L1 inside the mask [+ lpips * LPIPS]``,
rendering with the network's texture held fixed. The texture is then baked from the photo
(``fit.texture.bake_texture``: seen texels take the photo's colour, unseen ones their mirror's or the
network's). The first ``camera_only_steps`` move the camera alone (framing first, then shape).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from shoerecon.fit.camera import PhotoCamera
from shoerecon.fit.render import render_projected
from shoerecon.fit.smooth import UniformAdam, smoothing_operator
from shoerecon.fit.symmetry import mirror_partners, symmetry_loss
from shoerecon.fit.texture import BakeConfig, BakeResult, TexelPoints, bake_texture
from shoerecon.geometry.mesh import Mesh
from shoerecon.losses.regularizers import edge_length_loss, laplacian_loss, normal_consistency_loss
from shoerecon.losses.silhouette import soft_iou
from shoerecon.render.renderer import RendererConfig

LOSS_NAMES = ("silhouette", "colour", "lpips", "laplacian", "normal_consistency", "edge_length", "symmetry")


@dataclass
class RefineConfig:
    """The ``refine:`` config section (predict / eval ``--refine N`` set ``steps``).

    steps: Adam steps (0: no refinement, the network's output as is). image_size: side of the photo the
    fit sees (the input framing, re-prepared at this size). lr: shape residual; camera_lr: camera
    parameters (elevation in units of 10 degrees, log scale, angle in radians, NDC shift). smoothness: the residual is
    (I + smoothness L)^-1 u with u optimised (``fit.smooth``; 0: per-vertex). depth_residual: let the
    residual move vertices along world z too (the input view barely sees depth: off by default). camera_only_steps: the
    first steps move only the camera. faces_per_pixel / sigma / gamma: the soft renderer of the fit.
    Loss weights: silhouette, colour (L1 inside the mask), lpips (0: off; needs the AlexNet weights,
    ``lpips_weights`` or the torch hub cache), laplacian (of the residual), normal_consistency,
    edge_length (vs the predicted mesh's), symmetry (residual mirror prior). elevation / distance / fov:
    the look-at camera before fitting (the training rig's input view). texture_size / depth_tol /
    facing / dilate: the baked texture (``fit.texture.BakeConfig``). orientation_steps: steps of each
    brief fit of ``--orientation auto``. backend: rasteriser backend. pin_placement: project the image-plane
    translation, isotropic scale and in-plane rotation out of the residual (``pin_similarity``): the camera's
    similarity carries the photo's framing and the mesh stays where the network placed it in the world (one
    view cannot tell a moved shoe from a moved camera; novel views can). trust_depth: the silhouette target
    is the mask plus the starting silhouette eroded by this many pixels (``silhouette_target``): a mask
    cut out of a JPEG on white can lose white shoe parts, and only a band this wide may be carved
    (0: the mask alone).
    """

    steps: int = 0
    image_size: int = 128
    lr: float = 1e-2
    smoothness: float = 10.0
    depth_residual: bool = False
    camera_lr: float = 3e-3
    camera_only_steps: int = 10
    faces_per_pixel: int = 8
    sigma: float = 3e-6
    gamma: float = 1e-4
    silhouette: float = 1.0
    colour: float = 0.5
    lpips: float = 0.0
    lpips_weights: Optional[str] = None
    laplacian: float = 100.0
    normal_consistency: float = 0.01
    edge_length: float = 10.0
    symmetry: float = 10.0
    elevation: float = 10.0
    distance: float = 2.2
    fov: float = 30.0
    texture_size: int = 512
    depth_tol: float = 0.02
    facing: tuple[float, float] = (0.1, 0.3)
    dilate: int = 4
    orientation_steps: int = 15
    backend: str = "torch"
    pin_placement: bool = True
    trust_depth: int = 1

    def __post_init__(self) -> None:
        for name in ("steps", "camera_only_steps", "orientation_steps", "dilate", "trust_depth"):
            if getattr(self, name) < 0:
                raise ValueError(f"RefineConfig.{name} must be >= 0, got {getattr(self, name)}")
        for name in ("image_size", "faces_per_pixel", "texture_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"RefineConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in LOSS_NAMES + ("smoothness", "lr", "camera_lr", "sigma", "gamma", "depth_tol"):
            if getattr(self, name) < 0:
                raise ValueError(f"RefineConfig.{name} must be >= 0, got {getattr(self, name)}")

    def bake(self) -> BakeConfig:
        return BakeConfig(self.texture_size, self.depth_tol, tuple(self.facing), self.dilate)

    def renderer(self, height: int, width: int, blend: str = "soft") -> RendererConfig:
        return RendererConfig(image_size=(height, width), faces_per_pixel=self.faces_per_pixel if blend == "soft" else 1,
                              sigma=self.sigma, gamma=self.gamma, blend=blend, backend=self.backend)


@dataclass
class RefineResult:
    """What ``refine`` returns.

    mesh: refined vertices, the template's faces/UV, the baked texture (3, S, S) (the network's texture
    when ``bake=False``). camera: the fitted PhotoCamera. render: (4, H, W) hard render of ``mesh`` in the
    fitted camera. history: per step {loss name: value, "total"}. bake: weights of the texture bake (or
    None). seconds: wall time of the optimisation loop; steps: steps taken.
    """

    mesh: Mesh
    camera: PhotoCamera
    render: Tensor
    history: list[dict] = field(default_factory=list)
    bake: Optional[BakeResult] = None
    seconds: float = 0.0
    steps: int = 0


def masked_l1(rgb: Tensor, photo: Tensor, mask: Tensor) -> Tensor:
    """Mean |rgb - photo| over the mask's pixels (weighted by the mask). (3, H, W), (3, H, W), (1, H, W) -> ()."""
    return ((rgb - photo).abs() * mask).sum() / (3 * mask.sum()).clamp_min(1e-6)


def hard_iou(alpha: Tensor, mask: Tensor) -> float:
    """Binary IoU of alpha > 0.5 and mask > 0.5 (1 for two empty masks). (1, H, W) each -> float."""
    a, m = alpha > 0.5, mask > 0.5
    union = (a | m).sum()
    return 1.0 if int(union) == 0 else float((a & m).sum() / union)


def fit_texture(mesh: Mesh, photo: Tensor, flow: Optional[Tensor]) -> Tensor:
    """The network's texture: its flow re-sampled from the (larger) photo when the flow is given, else mesh.texture.

    flow: (Ht, Wt, 2) grid coordinates into the network input, which has the photo's framing. -> (3, Ht, Wt).
    """
    if flow is None:
        if mesh.texture is None:
            raise ValueError("refine: the mesh has no texture and no flow was given")
        return mesh.texture.to(photo)
    return F.grid_sample(photo[None], flow[None].to(photo), mode="bilinear", padding_mode="border",
                         align_corners=False)[0]


_CACHE: dict = {}


def _cached(kind: str, tensors: tuple[Tensor, ...], extra, make):
    """Per-topology results (smoothing operator, texel points) memoised by content: the template is fixed."""
    key = (kind, extra, tuple(hash(t.detach().cpu().numpy().tobytes()) for t in tensors),
           tuple(str(t.device) for t in tensors))
    if key not in _CACHE:
        if len(_CACHE) >= 8:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = make()
    return _CACHE[key]


def _lpips_module(cfg: RefineConfig):
    if cfg.lpips <= 0:
        return None
    from shoerecon.losses.perceptual import build_lpips

    return build_lpips(pretrained=cfg.lpips_weights or True)  # a missing file raises, naming it


def refine(
    mesh: Mesh, photo: Tensor, mask: Tensor, cfg: RefineConfig, flow: Optional[Tensor] = None,
    steps: Optional[int] = None, partners: Optional[Tensor] = None, bake: bool = True, progress: bool = True,
) -> RefineResult:
    """Fit ``mesh`` (and the photo's camera) to the photo, then bake the texture from it.

    Args:
        mesh: the prediction (N verts, template faces + UV layout, texture (3, Ht, Wt) unless ``flow``).
        photo: (3, H, W) in [0, 1] on white, framed like the network input (``prepare_input``). mask: (1, H, W).
        cfg: RefineConfig. flow: (Ht, Wt, 2) the network's texture flow (optional, sharper fallback texture).
        steps: overrides cfg.steps. partners: (N,) mirror partner of each vertex (default: from mesh.verts;
            pass the template's, ``fit.symmetry.mirror_partners(template_verts)``).
        bake: bake the texture from the photo (False: keep the network's, e.g. for brief orientation fits).
    Returns:
        RefineResult (float tensors on the mesh's device and dtype).
    """
    steps = cfg.steps if steps is None else steps
    if photo.ndim != 3 or photo.shape[0] != 3 or mask.shape != (1, *photo.shape[1:]):
        raise ValueError(f"refine: photo must be (3, H, W) and mask (1, H, W), got {tuple(photo.shape)}, "
                         f"{tuple(mask.shape)}")
    verts0 = mesh.verts.detach()
    photo, mask = photo.detach().to(verts0), mask.detach().to(verts0)
    h, w = photo.shape[-2:]
    faces, uvs, uv_faces = mesh.faces, mesh.uvs.to(verts0), mesh.uv_faces
    texture = fit_texture(mesh, photo, flow)
    soft, hard = cfg.renderer(h, w, "soft"), cfg.renderer(h, w, "hard")
    cam = PhotoCamera(cfg.elevation, cfg.distance, cfg.fov).to(verts0)
    with torch.no_grad():
        cam.init_from_silhouettes(render_projected(cam.project(verts0), faces, hard)[3:], mask)
    partners = mirror_partners(verts0) if partners is None else partners.to(verts0.device)
    smooth = _cached("smooth", (faces,), (verts0.shape[0], cfg.smoothness),
                     lambda: smoothing_operator(faces, verts0.shape[0], cfg.smoothness)).to(verts0)
    u = torch.zeros_like(verts0[:, :3 if cfg.depth_residual else 2], requires_grad=True)
    shape_opt = UniformAdam(u, cfg.lr)
    cam_opt = torch.optim.Adam(cam.parameters(), lr=cfg.camera_lr)
    lpips_net = _lpips_module(cfg)
    pin = verts0 if cfg.pin_placement else None
    history: list[dict] = []
    start = time.perf_counter()
    target = mask
    for step in tqdm(range(steps), desc="refine", unit="step", disable=not progress, leave=False):
        if step in (0, cfg.camera_only_steps) and cfg.trust_depth > 0:  # the start, and once the camera settled
            with torch.no_grad():
                start_alpha = render_projected(cam.project(verts0), faces, hard)[3:]
            target = silhouette_target(start_alpha, mask, cfg.trust_depth)
        delta = residual(smooth, u, pin)
        terms = fit_losses(verts0, delta, faces, cam, soft, texture, uvs, uv_faces, photo, mask, partners, cfg,
                           lpips_net, target)
        total = sum(getattr(cfg, k) * v for k, v in terms.items())
        cam_opt.zero_grad(set_to_none=True)
        u.grad = None
        total.backward()
        cam_opt.step()
        if step >= cfg.camera_only_steps:
            shape_opt.step()
        history.append({**{k: float(v.detach()) for k, v in terms.items()}, "total": float(total.detach())})
    seconds = time.perf_counter() - start
    with torch.no_grad():
        verts = verts0 + residual(smooth, u.detach(), pin)
        baked = None
        out_texture = mesh.texture
        if bake:
            texels = _cached("texels", (uvs, uv_faces), cfg.texture_size,
                             lambda: TexelPoints.from_layout(uvs, uv_faces, cfg.texture_size))
            fallback = F.interpolate(texture[None], size=(cfg.texture_size,) * 2, mode="bilinear",
                                     align_corners=False)[0]
            baked = bake_texture(verts, faces, texels, cam.project, cam.position(), photo, mask, fallback,
                                 cfg.bake(), cfg.backend)
            out_texture = baked.texture
        refined = Mesh(verts, faces, mesh.uvs, uv_faces, out_texture)
        tex = out_texture if out_texture is not None else texture
        render = render_projected(cam.project(verts), faces, hard, tex.to(verts), uvs, uv_faces)
    return RefineResult(refined, cam, render, history, baked, seconds, steps)


def residual(smooth: Tensor, u: Tensor, pin: Optional[Tensor] = None) -> Tensor:
    """delta (N, 3) = smooth (N, N) @ u (N, 3), or (N, 2) padded with a zero z (no depth residual); with
    ``pin`` (the start vertices (N, 3)) its image-plane similarity part is removed (``pin_similarity``)."""
    delta = smooth @ u
    if pin is not None:
        delta = torch.cat([pin_similarity(delta[:, :2], pin[:, :2]), delta[:, 2:]], dim=1)
    return delta if delta.shape[1] == 3 else F.pad(delta, (0, 1))


def pin_similarity(d: Tensor, p: Tensor) -> Tensor:
    """Remove from a 2D displacement field d (N, 2) at points p (N, 2) its least-squares similarity part.

    The infinitesimal similarities about the centroid c are spanned by translation (1, 0), (0, 1), scale
    q = p - c and rotation q^perp = (-q_y, q_x); these four fields are mutually orthogonal (q sums to 0,
    q . q^perp = 0 per point, |q| = |q^perp|), so the projection is one subtraction per field:

        d' = d - mean(d) - (sum d.q / sum |q|^2) q - (sum d.q^perp / sum |q|^2) q^perp

    >>> p = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    >>> d = 0.1 * p + torch.tensor([0.3, -0.2])          # a pure scale + shift
    >>> bool(pin_similarity(d, p).abs().max() < 1e-6)
    True
    """
    q = p - p.mean(0)
    qp = torch.stack([-q[:, 1], q[:, 0]], dim=1)
    norm = (q * q).sum().clamp_min(1e-12)
    d = d - d.mean(0)
    return d - (d * q).sum() / norm * q - (d * qp).sum() / norm * qp


def silhouette_target(alpha: Tensor, mask: Tensor, depth: int) -> Tensor:
    """The silhouette the fit aims at (1, H, W): the photo's mask, plus the starting silhouette (``alpha`` > 0.5)
    eroded by a (2 depth + 1) square.

    A JPEG on white can lose white shoe parts (an upper, a midsole) to the background in its cut-out mask. Where the mask and the
    network disagree by more than ``depth`` pixels inside the network's outline, the network's silhouette is
    kept; a band of ``depth`` pixels along the outline stays free to shrink to the mask, and the shape may grow
    into the mask anywhere.
    """
    inside = 1 - F.max_pool2d((alpha < 0.5).to(alpha)[None], 2 * depth + 1, stride=1, padding=depth)[0]
    return torch.maximum(mask, inside)


def fit_losses(verts0: Tensor, delta: Tensor, faces: Tensor, cam: PhotoCamera, soft: RendererConfig,
               texture: Tensor, uvs: Tensor, uv_faces: Tensor, photo: Tensor, mask: Tensor, partners: Tensor,
               cfg: RefineConfig, lpips_net=None, target: Optional[Tensor] = None) -> dict[str, Tensor]:
    """Every unweighted term of the fit (weights: cfg.<name>; 0-weight terms are skipped). target: (1, H, W)
    the silhouette to fit (``silhouette_target``; None: the mask)."""
    verts = verts0 + delta
    rgba = render_projected(cam.project(verts), faces, soft, texture, uvs, uv_faces)
    rgb, alpha = rgba[:3], rgba[3:]
    terms: dict[str, Tensor] = {"silhouette": 1 - soft_iou(alpha, mask if target is None else target)}
    if cfg.colour > 0:
        terms["colour"] = masked_l1(rgb, photo, mask)
    if lpips_net is not None:
        terms["lpips"] = lpips_net(rgb[None].float(), photo[None].float(), normalize=True).mean().to(rgb)
    if cfg.laplacian > 0:
        terms["laplacian"] = laplacian_loss(delta[None], faces, reduction="mean")
    if cfg.normal_consistency > 0:
        terms["normal_consistency"] = normal_consistency_loss(verts[None], faces)
    if cfg.edge_length > 0:
        terms["edge_length"] = edge_length_loss(verts[None], faces, template=verts0[None])
    if cfg.symmetry > 0:
        terms["symmetry"] = symmetry_loss(delta, partners)
    return terms


def mirror_mesh(mesh: Mesh) -> Mesh:
    """The mirror image across the length plane (z -> -z): a right shoe becomes a left one. Face winding is
    reversed so normals stay outward; UVs and texture are unchanged."""
    flip = mesh.verts.new_tensor([1.0, 1.0, -1.0])
    uv_faces = None if mesh.uv_faces is None else mesh.uv_faces[:, [0, 2, 1]]
    return Mesh(mesh.verts * flip, mesh.faces[:, [0, 2, 1]], mesh.uvs, uv_faces, mesh.texture)
