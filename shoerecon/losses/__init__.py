"""Training losses. Each is a plain function (formula in its docstring); :func:`compute_losses` weighs them.

A weight of 0 in :class:`LossConfig` means the term is not computed at all.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from torch import Tensor, nn

from shoerecon.losses.align import AlignConfig, align_loss, visible_faces
from shoerecon.losses.flow import flow_mask_loss
from shoerecon.losses.flow_smooth import FlowSmoothConfig, flow_smoothness_loss
from shoerecon.losses.image import image_l2_loss
from shoerecon.losses.perceptual import build_lpips, default_alexnet_path, perceptual_loss
from shoerecon.losses.regularizers import edge_length_loss, flatten_loss, laplacian_loss, normal_consistency_loss
from shoerecon.losses.silhouette import silhouette_iou_loss, soft_iou

LOSS_NAMES = ("silhouette", "image", "perceptual", "flow", "laplacian", "flatten", "normal_consistency", "edge_length",
              "align", "flow_smooth")
# v2 terms on renders from random azimuths; the trainer computes them (they need a critic / Inception).
NOVEL_VIEW_LOSSES = ("adversarial", "fid")


@dataclass
class LossConfig:
    """One weight per loss (0: off, not computed) and their options. Defaults: the v1 report's weights."""

    silhouette: float = 0.9
    image: float = 0.1
    image_masked: bool = False           # L2 only inside the target mask
    perceptual: float = 0.01             # LPIPS (AlexNet)
    lpips_weights: Optional[str] = None  # AlexNet weights file; None: <torch hub dir>/checkpoints/alexnet-owt-7be5be79.pth
    lpips_pretrained: bool = True        # False: random LPIPS backbone (tests, smoke runs)
    flow: float = 0.1
    laplacian: float = 0.1
    laplacian_on: str = "offsets"        # offsets (smooth the deformation) | verts (smooth the surface, SoftRas)
    laplacian_reduction: str = "sum"     # sum over vertices (SoftRas) | mean
    flatten: float = 0.001
    flatten_reduction: str = "sum"       # sum over interior edges (SoftRas) | mean
    normal_consistency: float = 0.0
    edge_length: float = 0.0
    edge_length_mode: str = "template"   # template (keep template lengths) | variance (even lengths)
    # v2 (options in the align: / flow_smooth: / gan: / fid: config sections)
    align: float = 0.0                   # pseudo-label: visible faces' flow -> their projection in the input
    flow_smooth: float = 0.0             # neighbouring texels' flows close (within a UV chart)
    adversarial: float = 0.0             # WGAN-GP generator term on renders from random azimuths
    fid: float = 0.0                     # differentiable FID of those renders against the batch's real views
    novel_views: int = 2                 # random-azimuth renders per shoe for adversarial/fid

    def __post_init__(self) -> None:
        choices = {"laplacian_on": ("offsets", "verts"), "laplacian_reduction": ("sum", "mean"),
                   "flatten_reduction": ("sum", "mean"), "edge_length_mode": ("template", "variance")}
        for name, valid in choices.items():
            if getattr(self, name) not in valid:
                raise ValueError(f"LossConfig.{name}={getattr(self, name)!r}; valid: {', '.join(valid)}")
        if self.novel_views < 1:
            raise ValueError(f"LossConfig.novel_views must be >= 1, got {self.novel_views}")
        for name in LOSS_NAMES + NOVEL_VIEW_LOSSES:
            if getattr(self, name) < 0:
                raise ValueError(f"LossConfig.{name} weight must be >= 0, got {getattr(self, name)}")


def make_lpips(cfg: LossConfig) -> Optional[nn.Module]:
    """The LPIPS module ``compute_losses`` needs, or None when the perceptual weight is 0."""
    if cfg.perceptual == 0:
        return None
    return build_lpips(cfg.lpips_weights or cfg.lpips_pretrained)


@dataclass
class LossContext:
    """What the v2 flow terms need besides the network output.

    Attributes:
        uvs: (T, 2), uv_faces: (F, 3): the network's current UV layout.
        input_cameras: cameras of the input views, batch shape (B,) (align).
        input_transform: (B, 2, 3) map from the input camera's image grid to the network input's (align).
        chart_labels: (Ht, Wt) long UV chart per texel, -1 unused (flow_smooth; None: one chart).
        align, flow_smooth: the terms' options.
    """

    uvs: Tensor
    uv_faces: Tensor
    input_cameras: Optional[object] = None
    input_transform: Optional[Tensor] = None
    chart_labels: Optional[Tensor] = None
    align: AlignConfig = field(default_factory=AlignConfig)
    flow_smooth: FlowSmoothConfig = field(default_factory=FlowSmoothConfig)


def _at_least_fp32(x: Tensor) -> Tensor:
    return x.float() if x.is_floating_point() and x.element_size() < 4 else x


def compute_losses(out, renders: Tensor, batch: dict, faces: Tensor, cfg: LossConfig,
                   lpips: Optional[nn.Module] = None, context: Optional[LossContext] = None) -> dict[str, Tensor]:
    """All active loss terms (unweighted, for logging) and their weighted sum ``"total"``.

    Args:
        out: ReconOutput (verts, offsets (B, N, 3), flow (B, Ht, Wt, 2), uv_mask (Ht, Wt) or None).
        renders: (B, V, 4, H, W) RGBA renders of ``out.verts`` from the target cameras.
        batch: "targets" (B, V, 3, H, W), "target_masks" (B, V, 1, H, W), "input_mask" (B, 1, H', W'),
            "input" (B, 3, H', W') (align: its size is the input camera's image size).
        faces: (F, 3) long. cfg: weights and options. lpips: from :func:`make_lpips`, needed if cfg.perceptual > 0.
        context: needed if cfg.align or cfg.flow_smooth > 0 (see :class:`LossContext`).
    Returns:
        {name: () tensor} for every term with a non-zero weight, plus "total".
    """
    terms: dict[str, Tensor] = {}
    renders = _at_least_fp32(renders)  # mixed precision: losses (sums over images) in float32
    rgb, alpha = renders[:, :, :3], renders[:, :, 3:4]
    if cfg.silhouette or cfg.image or cfg.perceptual:
        targets, masks = _at_least_fp32(batch["targets"]), _at_least_fp32(batch["target_masks"])
        if targets.shape != rgb.shape or masks.shape != alpha.shape:
            raise ValueError(f"renders {tuple(renders.shape)} do not match targets {tuple(targets.shape)} / "
                             f"target_masks {tuple(masks.shape)}")
    if cfg.silhouette:
        terms["silhouette"] = silhouette_iou_loss(alpha, masks)
    if cfg.image:
        terms["image"] = image_l2_loss(rgb, targets, masks if cfg.image_masked else None)
    if cfg.perceptual:
        if lpips is None:
            raise ValueError("LossConfig.perceptual > 0 needs an LPIPS module: pass lpips=make_lpips(cfg)")
        terms["perceptual"] = perceptual_loss(lpips, rgb, targets)
    if cfg.flow:
        terms["flow"] = flow_mask_loss(_at_least_fp32(out.flow), batch["input_mask"], getattr(out, "uv_mask", None))
    verts, offsets = _at_least_fp32(out.verts), _at_least_fp32(out.offsets)
    if cfg.laplacian:
        x = offsets if cfg.laplacian_on == "offsets" else verts
        terms["laplacian"] = laplacian_loss(x, faces, cfg.laplacian_reduction)
    if cfg.flatten:
        terms["flatten"] = flatten_loss(verts, faces, cfg.flatten_reduction)
    if cfg.normal_consistency:
        terms["normal_consistency"] = normal_consistency_loss(verts, faces)
    if cfg.edge_length:
        template = verts - offsets if cfg.edge_length_mode == "template" else None
        terms["edge_length"] = edge_length_loss(verts, faces, template)
    if (cfg.align or cfg.flow_smooth) and context is None:
        raise ValueError("LossConfig.align / flow_smooth > 0 need a LossContext (UV layout, input cameras)")
    if cfg.align:
        if context.input_cameras is None:
            raise ValueError("LossConfig.align > 0 needs LossContext.input_cameras")
        size = tuple(batch["input"].shape[-2:])
        visible = visible_faces(out.verts.detach(), faces, context.input_cameras, *size)
        terms["align"] = align_loss(_at_least_fp32(out.flow), verts, faces, context.uvs, context.uv_faces,
                                    context.input_cameras, visible, size, context.align, context.input_transform)
    if cfg.flow_smooth:
        terms["flow_smooth"] = flow_smoothness_loss(_at_least_fp32(out.flow), getattr(out, "uv_mask", None),
                                                    context.chart_labels, context.flow_smooth)
    total = sum((getattr(cfg, name) * value for name, value in terms.items()), renders.new_zeros(()))
    terms["total"] = total
    return terms


__all__ = [
    "LossConfig", "LossContext", "NOVEL_VIEW_LOSSES", "compute_losses", "make_lpips", "build_lpips",
    "default_alexnet_path", "perceptual_loss",
    "image_l2_loss", "silhouette_iou_loss", "soft_iou", "flow_mask_loss", "laplacian_loss", "flatten_loss",
    "normal_consistency_loss", "edge_length_loss", "LOSS_NAMES",
]
