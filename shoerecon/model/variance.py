"""Adaptive variance D_var (v2): texture sampling whose flow gradient does not vanish on flat colours.

The texture is sampled from the input photo: ``texture = grid_sample(image, flow)``. The gradient of that
w.r.t. the flow is the image's spatial gradient at the sampled point, so wherever the photo is one flat
colour (most of a sneaker's upper) a texel's flow receives no signal at all, however wrong its colour is.
The adaptive-gradient paper predicts a positive map I_var (about 1 at initialisation) and samples
``image * I_var`` instead: inside a flat region the gradient becomes ``image * grad(I_var)``, which is not zero.

Modes of ``sample_texture_with_variance``:
    ``none``:          grid_sample(image, flow).
    ``multiply``:      grid_sample(image * I_var, flow), as in the paper (I_var changes the colours too).
    ``gradient_only``: the colours of ``none``; the flow's (and I_var's) gradient is that of ``multiply``
                       (a straight-through construction), so I_var shapes the gradient only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VARIANCE_MODES = ("none", "multiply", "gradient_only")


@dataclass
class VarianceConfig:
    """The variance head and how its map is used.

    Attributes:
        mode: one of VARIANCE_MODES.
        hidden_channels: width of the head's hidden 3x3 conv (0: a single 1x1 conv).
        max_log: I_var = exp(max_log * tanh(raw / max_log)), so I_var stays in [e^-max_log, e^max_log].
        align_corners, padding_mode: grid_sample options (contract: align_corners=False).
    """

    mode: str = "none"
    hidden_channels: int = 32
    max_log: float = 3.0
    align_corners: bool = False
    padding_mode: str = "border"


def positive_from_log(raw: Tensor, max_log: float) -> Tensor:
    """Bounded positive map from an unconstrained one: exp(max_log * tanh(raw / max_log)); raw = 0 gives 1."""
    return torch.exp(max_log * torch.tanh(raw / max_log))


class VarianceHead(nn.Module):
    """I_var from decoder features: (B, C, h, w) -> (B, 1, H, W), positive, exactly 1 at initialisation.

    The last conv is zero-initialised, so training starts from the v1 sampling and I_var departs from 1 only
    where that helps.

    >>> head = VarianceHead(16)
    >>> var = head(torch.randn(2, 16, 8, 8), size=(32, 32))
    >>> var.shape, bool((var == 1).all())
    (torch.Size([2, 1, 32, 32]), True)
    """

    def __init__(self, in_channels: int, cfg: VarianceConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VarianceConfig()
        if cfg.hidden_channels > 0:
            self.body = nn.Sequential(nn.Conv2d(in_channels, cfg.hidden_channels, 3, padding=1), nn.SiLU())
            last_in = cfg.hidden_channels
        else:
            self.body = nn.Identity()
            last_in = in_channels
        self.out = nn.Conv2d(last_in, 1, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, features: Tensor, size: Optional[tuple[int, int]] = None) -> Tensor:
        raw = self.out(self.body(features))
        if size is not None and tuple(raw.shape[-2:]) != tuple(size):
            raw = F.interpolate(raw, size=size, mode="bilinear", align_corners=False)
        return positive_from_log(raw, self.cfg.max_log)


def sample_texture_with_variance(
    image: Tensor,
    flow: Tensor,
    variance: Optional[Tensor] = None,
    mode: str = "multiply",
    align_corners: bool = False,
    padding_mode: str = "border",
) -> Tensor:
    """Sample a UV texture from the input image through the flow, with the adaptive variance.

    Args:
        image: (B, C, H, W) input view.
        flow: (B, Ht, Wt, 2) grid_sample coordinates in [-1, 1] into the image (x right, y down).
        variance: (B, 1, H, W) positive I_var; None only with mode "none".
        mode: "none" | "multiply" | "gradient_only" (module docstring).
    Returns:
        (B, C, Ht, Wt) texture.

    >>> img = torch.rand(1, 3, 8, 8); flow = torch.rand(1, 4, 4, 2) * 2 - 1
    >>> var = torch.ones(1, 1, 8, 8)
    >>> a = sample_texture_with_variance(img, flow, var, "multiply")
    >>> bool(torch.allclose(a, sample_texture_with_variance(img, flow, None, "none")))
    True
    """
    if mode not in VARIANCE_MODES:
        raise ValueError(f"unknown variance mode {mode!r}; valid modes: {', '.join(VARIANCE_MODES)}")
    if flow.ndim != 4 or flow.shape[-1] != 2 or flow.shape[0] != image.shape[0]:
        raise ValueError(f"flow must be (B, Ht, Wt, 2) with B = {image.shape[0]}, got {tuple(flow.shape)}")

    def sample(img: Tensor, grid: Tensor) -> Tensor:
        return F.grid_sample(img, grid, mode="bilinear", padding_mode=padding_mode, align_corners=align_corners)

    if mode == "none":
        return sample(image, flow)
    if variance is None:
        raise ValueError(f"variance mode {mode!r} needs a variance map (B, 1, H, W)")
    if variance.shape[0] != image.shape[0] or variance.shape[1] != 1 or variance.shape[2:] != image.shape[2:]:
        raise ValueError(f"variance {tuple(variance.shape)} must be (B, 1, H, W) like image {tuple(image.shape)}")
    if mode == "multiply":
        return sample(image * variance, flow)
    # gradient_only: value from the plain image (flow detached there), flow/variance gradients from image * I_var,
    # image gradient from the plain path only.
    plain = sample(image, flow.detach())
    with_var = sample(image.detach() * variance, flow)
    return plain + (with_var - with_var.detach())


class VarianceSampler(nn.Module):
    """Head + sampling in one module: forward(features, image, flow) -> (texture (B,C,Ht,Wt), I_var or None)."""

    def __init__(self, in_channels: int, cfg: VarianceConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or VarianceConfig()
        if cfg.mode not in VARIANCE_MODES:
            raise ValueError(f"unknown variance mode {cfg.mode!r}; valid modes: {', '.join(VARIANCE_MODES)}")
        self.head = VarianceHead(in_channels, cfg) if cfg.mode != "none" else None

    def forward(self, features: Tensor, image: Tensor, flow: Tensor) -> tuple[Tensor, Optional[Tensor]]:
        variance = None if self.head is None else self.head(features, size=tuple(image.shape[-2:]))
        texture = sample_texture_with_variance(
            image, flow, variance, self.cfg.mode, self.cfg.align_corners, self.cfg.padding_mode
        )
        return texture, variance


__all__ = [
    "VARIANCE_MODES",
    "VarianceConfig",
    "VarianceHead",
    "VarianceSampler",
    "positive_from_log",
    "sample_texture_with_variance",
]
