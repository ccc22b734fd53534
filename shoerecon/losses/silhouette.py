"""Silhouette loss: soft intersection over union (SoftRas)."""
from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from shoerecon.losses.registry import LossContext, TermConfig, register_loss


def soft_iou(alpha: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """Soft IoU per image: ``(sum(a m) + eps) / (sum(a + m - a m) + eps)`` over (1, H, W).

    The eps in both terms makes two empty masks agree (IoU 1) and identical masks give exactly 1.

    Args:
        alpha, mask: (..., 1, H, W) in [0, 1].
    Returns:
        (...) IoU per image.
    """
    inter = (alpha * mask).flatten(-3).sum(-1)
    union = (alpha + mask - alpha * mask).flatten(-3).sum(-1)
    return (inter + eps) / (union + eps)


def silhouette_iou_loss(alpha: Tensor, mask: Tensor, eps: float = 1e-6) -> Tensor:
    """``1 - soft IoU``, per image, averaged over the images.

    Args:
        alpha: (..., 1, H, W) rendered soft silhouettes. mask: (..., 1, H, W) target masks.
    Returns:
        () scalar in [0, 1]: 0 for identical binary masks, 1 for disjoint ones.

    >>> import torch
    >>> m = torch.zeros(1, 1, 4, 4); m[..., :2, :] = 1
    >>> round(silhouette_iou_loss(m, m).item(), 6), round(silhouette_iou_loss(m, 1 - m).item(), 6)
    (0.0, 1.0)
    """
    return (1 - soft_iou(alpha, mask, eps)).mean()


@dataclass
class SilhouetteConfig(TermConfig):
    """Soft-IoU silhouette loss of the renders' alpha against the target masks."""

    weight: float = 0.9


@register_loss("silhouette", SilhouetteConfig)
def silhouette_term(ctx: LossContext, cfg: SilhouetteConfig) -> Tensor:
    """``silhouette_iou_loss`` of renders (B, V, 4, H, W) alpha vs target masks (B, V, 1, H, W)."""
    return silhouette_iou_loss(ctx.renders[:, :, 3:4], ctx.targets[1])
