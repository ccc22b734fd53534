"""Shape decoder: per-vertex offsets as a function of (latent, template vertex position).

Because the offset is a function of the vertex *position* and not of its index, the same weights
apply to any template: after remeshing (new vertex count), vertices at the same position get the
same offset.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn


def positional_encoding(x: Tensor, num_freqs: int) -> Tensor:
    """NeRF-style Fourier features ``[x, sin(2^k pi x), cos(2^k pi x)]`` for k < num_freqs.

    Args:
        x: (..., D). num_freqs: L >= 0.
    Returns:
        (..., D (1 + 2L)).

    >>> positional_encoding(torch.zeros(5, 3), 2).shape
    torch.Size([5, 15])
    """
    if num_freqs == 0:
        return x
    freqs = math.pi * 2.0 ** torch.arange(num_freqs, device=x.device, dtype=x.dtype)
    angles = (x.unsqueeze(-1) * freqs).flatten(-2)  # (..., D * L)
    return torch.cat([x, torch.sin(angles), torch.cos(angles)], dim=-1)


def encoding_dim(num_freqs: int, dim: int = 3) -> int:
    """Width of :func:`positional_encoding` for D-dimensional input."""
    return dim * (1 + 2 * num_freqs)


class ShapeDecoder(nn.Module):
    """MLP ``offset = scale * act(MLP([latent, PE(p)]))`` evaluated at every template vertex p.

    The first layer is split into a latent part (once per image) and a position part (once per
    vertex) and added by broadcasting, so the cost is O(B H + N H) before the hidden layers.
    The last layer starts near zero, so the initial prediction is the template.

    Args:
        latent_dim: width of the image latent. hidden: MLP width. layers: hidden layers (>= 1).
        num_freqs: positional-encoding frequencies. offset_scale: maximum offset (tanh) or a plain
            multiplier (linear). activation: "tanh" | "linear". init_std: std of the last layer's init.

    >>> dec = ShapeDecoder(latent_dim=8, hidden=16)
    >>> dec(torch.zeros(2, 8), torch.rand(10, 3)).shape
    torch.Size([2, 10, 3])
    """

    def __init__(self, latent_dim: int, hidden: int = 128, layers: int = 3, num_freqs: int = 4,
                 offset_scale: float = 0.25, activation: str = "tanh", init_std: float = 1e-4):
        super().__init__()
        if activation not in ("tanh", "linear"):
            raise ValueError(f"offset activation must be 'tanh' or 'linear', got {activation!r}")
        if layers < 1:
            raise ValueError(f"shape decoder needs >= 1 hidden layer, got {layers}")
        self.num_freqs, self.offset_scale, self.activation = num_freqs, offset_scale, activation
        self.from_latent = nn.Linear(latent_dim, hidden)
        self.from_position = nn.Linear(encoding_dim(num_freqs), hidden, bias=False)
        self.hidden = nn.ModuleList(nn.Linear(hidden, hidden) for _ in range(layers - 1))
        self.out = nn.Linear(hidden, 3)
        nn.init.normal_(self.out.weight, std=init_std)
        nn.init.zeros_(self.out.bias)

    def forward(self, latent: Tensor, points: Tensor) -> Tensor:
        """latent (B, L), points (N, 3) template positions -> offsets (B, N, 3)."""
        h = self.from_latent(latent).unsqueeze(1) + self.from_position(positional_encoding(points, self.num_freqs))
        h = nn.functional.silu(h)
        for layer in self.hidden:
            h = nn.functional.silu(layer(h))
        raw = self.out(h)
        return self.offset_scale * (torch.tanh(raw) if self.activation == "tanh" else raw)


class LatentHead(nn.Module):
    """Bottleneck feature map -> latent vector: adaptive average pool to ``pool x pool``, flatten, linear, SiLU.

    Pooling to a small grid (not to 1x1) keeps where things are in the image (toe vs heel).
    (B, C, h, w) -> (B, latent_dim).
    """

    def __init__(self, channels: int, latent_dim: int = 256, pool: int = 4):
        super().__init__()
        self.pool = pool
        self.fc = nn.Linear(channels * pool * pool, latent_dim)

    def forward(self, bottleneck: Tensor) -> Tensor:
        pooled = nn.functional.adaptive_avg_pool2d(bottleneck, self.pool).flatten(1)
        return nn.functional.silu(self.fc(pooled))
