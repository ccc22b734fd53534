"""Texture flow: for every texel of the UV texture, where to sample the input photo.

The texel conventions and the UV-space rasteriser live in ``geometry/texels.py``:
texel (row i, col j) of an (Ht, Wt) texture has grid_sample coordinates
``x = (2j + 1) / Wt - 1``, ``y = (2i + 1) / Ht - 1`` (y down) and UV ``u = (j + 0.5) / Wt``,
``v = 1 - (i + 0.5) / Ht`` (v up, row 0 is v = 1).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from shoerecon.geometry.texels import rasterize_uv, texel_grid, texel_uv, uv_coverage_mask  # noqa: F401 (re-exported)


def sample_texture(image: Tensor, flow: Tensor) -> Tensor:
    """UV texture sampled from the image by the flow: ``T[:, :, i, j] = image(flow[:, i, j])``.

    Bilinear, align_corners=False, border padding (texels that point just outside repeat the edge).

    Args:
        image: (B, C, H, W). flow: (B, Ht, Wt, 2) (x, y) in [-1, 1].
    Returns:
        (B, C, Ht, Wt).
    """
    return F.grid_sample(image, flow.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False)


class TextureFlowHead(nn.Module):
    """Decoder features -> flow map at UV resolution, ``flow = tanh(atanh(s * grid) + conv(...))``.

    The features are resized to the texture size and concatenated with the texel's grid coordinates
    (the UV layout is unrelated to image position, so every texel must know where it is); the
    image latent is added after the first convolution for global context. The last convolution
    starts at zero, so the initial flow is the texel grid scaled by ``init_scale`` (0: every texel
    samples the image centre, 1: the texture is the image resized).

    Args:
        in_channels: decoder feature channels. texture_size: Ht = Wt. hidden: conv width.
        latent_dim: width of the optional latent input (0: none). init_scale: s in [0, 1].

    >>> head = TextureFlowHead(8, texture_size=16, hidden=4)
    >>> head(torch.zeros(2, 8, 32, 32)).shape
    torch.Size([2, 16, 16, 2])
    """

    def __init__(self, in_channels: int, texture_size: int = 128, hidden: int = 32, latent_dim: int = 0,
                 init_scale: float = 0.5):
        super().__init__()
        if not 0.0 <= init_scale <= 1.0:
            raise ValueError(f"flow init_scale must be in [0, 1], got {init_scale}")
        self.texture_size = texture_size
        self.conv1 = nn.Conv2d(in_channels + 2, hidden, 3, padding=1)
        self.latent = nn.Linear(latent_dim, hidden) if latent_dim > 0 else None
        self.conv2 = nn.Conv2d(hidden, 2, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        grid = texel_grid(texture_size, texture_size)
        self.register_buffer("coords", grid.permute(2, 0, 1).unsqueeze(0), persistent=False)  # (1, 2, Ht, Wt)
        self.register_buffer("base", torch.atanh((init_scale * grid).clamp(-1 + 1e-6, 1 - 1e-6)), persistent=False)

    def forward(self, features: Tensor, latent: Optional[Tensor] = None) -> Tensor:
        """features (B, C, H, W), latent (B, latent_dim) or None -> flow (B, Ht, Wt, 2) in (-1, 1)."""
        size = (self.texture_size, self.texture_size)
        f = F.interpolate(features, size=size, mode="bilinear", align_corners=False)
        coords = self.coords.to(f.dtype).expand(f.shape[0], -1, -1, -1)
        h = self.conv1(torch.cat([f, coords], dim=1))
        if self.latent is not None and latent is not None:
            h = h + self.latent(latent)[:, :, None, None]
        delta = self.conv2(F.silu(h)).permute(0, 2, 3, 1)
        return torch.tanh(self.base.to(delta.dtype) + delta)
