"""Texture-flow loss: texels must sample the input photo inside the shoe's mask."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from shoerecon.losses.registry import LossContext, TermConfig, at_least_fp32, register_loss


def flow_mask_loss(flow: Tensor, input_mask: Tensor, uv_mask: Optional[Tensor] = None, eps: float = 1e-8) -> Tensor:
    """``sum_t w_t (1 - M(flow_t)) / sum_t w_t``, averaged over the batch.

    ``M(flow_t)`` is the input mask bilinearly sampled at texel t's flow (``grid_sample``,
    ``align_corners=False``, zeros outside the image), ``w_t`` the UV-layout coverage of texel t
    (1 for every texel when ``uv_mask`` is None).

    Args:
        flow: (B, Ht, Wt, 2) grid_sample (x, y) coordinates in [-1, 1].
        input_mask: (B, 1, H, W) in [0, 1].
        uv_mask: (Ht, Wt) or (B, Ht, Wt) in [0, 1], texels used by the UV layout; None: all.
    Returns:
        () scalar in [0, 1].
    """
    sampled = torch.nn.functional.grid_sample(input_mask.to(flow.dtype), flow, mode="bilinear",
                                              padding_mode="zeros", align_corners=False)[:, 0]  # (B, Ht, Wt)
    miss = 1 - sampled
    if uv_mask is None:
        return miss.mean()
    w = uv_mask.to(miss).expand_as(miss)
    return ((w * miss).flatten(1).sum(-1) / (w.flatten(1).sum(-1) + eps)).mean()


@dataclass
class FlowConfig(TermConfig):
    """Texture-flow mask loss: texels sample the input photo inside the shoe."""

    weight: float = 0.1


@register_loss("flow", FlowConfig)
def flow_term(ctx: LossContext, cfg: FlowConfig) -> Tensor:
    """``flow_mask_loss`` of the network's flow (B, Ht, Wt, 2) against the input mask (B, 1, H, W)."""
    return flow_mask_loss(at_least_fp32(ctx.out.flow), ctx.batch["input_mask"], getattr(ctx.out, "uv_mask", None))
