"""UNet encoder-decoder over the input view: a bottleneck for the shape and full-resolution features for the flow."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

NORMS = ("group", "batch", "instance", "none")


def make_norm(kind: str, channels: int) -> nn.Module:
    """A 2D normalisation layer by name: group (8 groups or fewer, batch-size independent), batch, instance, none."""
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, channels), channels)
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; valid: {', '.join(NORMS)}")


class ConvBlock(nn.Sequential):
    """Two 3x3 convolutions, each followed by a norm and SiLU. (B, Cin, H, W) -> (B, Cout, H/stride, W/stride)."""

    def __init__(self, in_channels: int, out_channels: int, norm: str = "group", stride: int = 1):
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=norm == "none"),
            make_norm(norm, out_channels),
            nn.SiLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=norm == "none"),
            make_norm(norm, out_channels),
            nn.SiLU(inplace=True),
        )


def level_widths(base_width: int, depth: int, max_width: int) -> list[int]:
    """Channels per level, doubling from ``base_width`` and capped at ``max_width``: depth + 1 entries.

    >>> level_widths(16, 4, 128)
    [16, 32, 64, 128, 128]
    """
    return [min(base_width * 2**i, max_width) for i in range(depth + 1)]


class UNet(nn.Module):
    """Encoder (strided ConvBlocks) and decoder (bilinear upsampling, skip concatenation, ConvBlocks).

    Works for any input size: the decoder upsamples to each skip's exact size.

    Args:
        in_channels: input channels. base_width: channels at full resolution. depth: number of
            downsamplings. max_width: channel cap. norm: see :func:`make_norm`.

    >>> net = UNet(3, base_width=8, depth=3)
    >>> bottleneck, features = net(torch.zeros(2, 3, 32, 32))
    >>> tuple(bottleneck.shape), tuple(features.shape)
    ((2, 64, 4, 4), (2, 8, 32, 32))
    """

    def __init__(self, in_channels: int = 3, base_width: int = 16, depth: int = 4, max_width: int = 256,
                 norm: str = "group"):
        super().__init__()
        if depth < 1:
            raise ValueError(f"UNet depth must be >= 1, got {depth}")
        widths = level_widths(base_width, depth, max_width)
        self.widths = widths
        self.stem = ConvBlock(in_channels, widths[0], norm)
        self.down = nn.ModuleList(ConvBlock(widths[i], widths[i + 1], norm, stride=2) for i in range(depth))
        self.up = nn.ModuleList(ConvBlock(widths[i + 1] + widths[i], widths[i], norm) for i in range(depth))

    @property
    def bottleneck_channels(self) -> int:
        return self.widths[-1]

    @property
    def feature_channels(self) -> int:
        return self.widths[0]

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, Cin, H, W) -> (bottleneck (B, C_last, ~H/2^depth, ~W/2^depth), features (B, base_width, H, W))."""
        skips = [self.stem(x)]
        for block in self.down:
            skips.append(block(skips[-1]))
        h = skips[-1]
        for i in reversed(range(len(self.up))):
            h = F.interpolate(h, size=skips[i].shape[-2:], mode="bilinear", align_corners=False)
            h = self.up[i](torch.cat([h, skips[i]], dim=1))
        return skips[-1], h
