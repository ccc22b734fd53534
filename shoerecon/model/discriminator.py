"""A small convolutional critic for WGAN-GP on renders (v2).

Renders from random azimuths are judged against real turntable views. A Wasserstein critic outputs an
unbounded score per image. No batch norm: the gradient penalty constrains the critic's gradient per sample,
which batch statistics would couple across the batch (Gulrajani et al. 2017 use layer norm or none).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch  # noqa: F401 - used by the doctest
from torch import Tensor, nn


@dataclass
class DiscriminatorConfig:
    """Critic architecture.

    Attributes:
        in_channels: 4 for RGBA renders (alpha = silhouette), 3 for RGB.
        base_channels: width of the first conv; doubled at every stride-2 layer, capped at max_channels.
        num_layers: stride-2 convs (the input side must be at least 2 ** num_layers).
        max_channels: width cap.
        norm: "none" or "layer" (GroupNorm with one group: per-sample, safe with the gradient penalty).
        spectral_norm: wrap every conv/linear in spectral normalisation.
        leaky_slope: LeakyReLU slope.
    """

    in_channels: int = 4
    base_channels: int = 32
    num_layers: int = 4
    max_channels: int = 256
    norm: str = "none"
    spectral_norm: bool = False
    leaky_slope: float = 0.2


class Critic(nn.Module):
    """(B, C, H, W) images in [0, 1] -> (B,) scores (higher = more real).

    >>> critic = Critic(DiscriminatorConfig(in_channels=3, num_layers=3))
    >>> critic(torch.rand(2, 3, 32, 32)).shape
    torch.Size([2])
    """

    def __init__(self, cfg: DiscriminatorConfig | None = None):
        super().__init__()
        self.cfg = cfg = cfg or DiscriminatorConfig()
        if cfg.norm not in ("none", "layer"):
            raise ValueError(
                f"critic norm must be 'none' or 'layer' (no batch norm with a gradient penalty), got {cfg.norm!r}"
            )
        wrap = nn.utils.parametrizations.spectral_norm if cfg.spectral_norm else (lambda m: m)
        layers: list[nn.Module] = [wrap(nn.Conv2d(cfg.in_channels, cfg.base_channels, 3, padding=1)),
                                   nn.LeakyReLU(cfg.leaky_slope)]
        ch = cfg.base_channels
        for _ in range(cfg.num_layers):
            out = min(ch * 2, cfg.max_channels)
            layers.append(wrap(nn.Conv2d(ch, out, 4, stride=2, padding=1)))
            if cfg.norm == "layer":
                layers.append(nn.GroupNorm(1, out))
            layers.append(nn.LeakyReLU(cfg.leaky_slope))
            ch = out
        self.features = nn.Sequential(*layers)
        self.head = wrap(nn.Linear(ch, 1))

    def forward(self, images: Tensor) -> Tensor:
        side = min(images.shape[-2:])
        if images.ndim != 4 or images.shape[1] != self.cfg.in_channels or side < 2**self.cfg.num_layers:
            raise ValueError(
                f"Critic expects (B, {self.cfg.in_channels}, H, W) with H, W >= {2 ** self.cfg.num_layers}, "
                f"got {tuple(images.shape)}"
            )
        x = images * 2 - 1  # centre the [0, 1] images
        return self.head(self.features(x).mean(dim=(-2, -1))).squeeze(-1)


__all__ = ["DiscriminatorConfig", "Critic"]
