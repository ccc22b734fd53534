"""Photometric losses between renders and target photos."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from torch import Tensor

from shoerecon.losses.registry import LossContext, TermConfig, register_loss


def image_l2_loss(rgb: Tensor, target: Tensor, mask: Optional[Tensor] = None, eps: float = 1e-8) -> Tensor:
    """Mean squared colour error, over all pixels or over the mask only.

    Full: ``mean((rgb - target)^2)``. Masked: ``sum(m (rgb - target)^2) / (C sum(m) + eps)``, so a
    partly covered image is not diluted by background pixels.

    Args:
        rgb, target: (..., C, H, W) in [0, 1]. mask: (..., 1, H, W) in [0, 1] or None.
    Returns:
        () scalar.

    >>> import torch
    >>> image_l2_loss(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).item()
    1.0
    """
    sq = (rgb - target).pow(2)
    if mask is None:
        return sq.mean()
    mask = mask.expand_as(sq[..., :1, :, :])
    return (sq * mask).sum() / (sq.shape[-3] * mask.sum() + eps)


@dataclass
class ImageConfig(TermConfig):
    """L2 colour loss of renders vs targets. ``masked``: only inside the target mask."""

    weight: float = 0.1
    masked: bool = False


@register_loss("image", ImageConfig)
def image_term(ctx: LossContext, cfg: ImageConfig) -> Tensor:
    """``image_l2_loss`` of the renders' RGB (B, V, 3, H, W) vs the targets."""
    targets, masks = ctx.targets
    return image_l2_loss(ctx.renders[:, :, :3], targets, masks if cfg.masked else None)
