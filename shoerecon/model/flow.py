"""Texture flow: for every texel of the UV texture, where to sample the input photo.

Also the UV-space rasteriser that says which texels the UV layout uses (for the flow loss).
Texel (row i, col j) of an (Ht, Wt) texture has grid_sample coordinates
``x = (2j + 1) / Wt - 1``, ``y = (2i + 1) / Ht - 1`` (y down) and UV ``u = (j + 0.5) / Wt``,
``v = 1 - (i + 0.5) / Ht`` (v up, row 0 is v = 1).
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def texel_grid(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """grid_sample (x, y) coordinates of texel centres, align_corners=False.

    Returns:
        (H, W, 2). With H, W equal to an image's size, sampling at this grid reproduces the image.

    >>> texel_grid(1, 2).tolist()
    [[[-0.5, 0.0], [0.5, 0.0]]]
    """
    x = (2 * torch.arange(width, device=device, dtype=dtype) + 1) / width - 1
    y = (2 * torch.arange(height, device=device, dtype=dtype) + 1) / height - 1
    return torch.stack(torch.meshgrid(x, y, indexing="xy"), dim=-1)


def texel_uv(height: int, width: int, device=None, dtype=torch.float32) -> Tensor:
    """UV coordinates (v up) of texel centres. Returns (H, W, 2).

    >>> texel_uv(2, 1).tolist()
    [[[0.5, 0.75]], [[0.5, 0.25]]]
    """
    grid = texel_grid(height, width, device, dtype)
    return torch.stack([(grid[..., 0] + 1) / 2, (1 - grid[..., 1]) / 2], dim=-1)


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


def _cross2(a: Tensor, b: Tensor) -> Tensor:
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def rasterize_uv(uvs: Tensor, uv_faces: Tensor, size: int | tuple[int, int], chunk: int = 128) -> tuple[Tensor, Tensor]:
    """Which face covers each texel centre in UV space, and where.

    Args:
        uvs: (T, 2) in [0, 1], v up. uv_faces: (F, 3) long. size: Ht = Wt or (Ht, Wt).
        chunk: faces tested at once (memory ~ Ht Wt chunk floats).
    Returns:
        face_index (Ht, Wt) long, -1 where no face covers the texel centre (the lowest index wins
        on overlaps); bary (Ht, Wt, 3) barycentric coordinates in that face (zeros where -1).
    """
    height, width = (size, size) if isinstance(size, int) else size
    p = texel_uv(height, width, uvs.device, uvs.dtype).reshape(-1, 1, 2)  # (P, 1, 2)
    tri = uvs[uv_faces]  # (F, 3, 2)
    face_index = torch.full((p.shape[0],), -1, dtype=torch.long, device=uvs.device)
    bary = torch.zeros(p.shape[0], 3, dtype=uvs.dtype, device=uvs.device)
    for start in range(0, tri.shape[0], chunk):
        a, b, c = tri[start:start + chunk].unbind(1)  # (C, 2) each
        area = _cross2(b - a, c - a)  # (C,)
        safe = torch.where(area.abs() > 1e-12, area, torch.ones_like(area))
        w = torch.stack([_cross2(b - p, c - p), _cross2(c - p, a - p), _cross2(a - p, b - p)], -1) / safe[:, None]
        inside = (w >= -1e-7).all(-1) & (area.abs() > 1e-12)  # (P, C)
        hit = inside.any(-1) & (face_index < 0)
        first = inside.to(torch.uint8).argmax(-1)  # first covering face of this chunk
        face_index = torch.where(hit, start + first, face_index)
        bary = torch.where(hit[:, None], w[torch.arange(p.shape[0], device=p.device), first], bary)
    return face_index.reshape(height, width), bary.reshape(height, width, 3)


def uv_coverage_mask(uvs: Tensor, uv_faces: Tensor, size: int | tuple[int, int], dilate: int = 1) -> Tensor:
    """Texels used by the UV layout, grown by ``dilate`` texels (bilinear lookups at chart borders read neighbours).

    Args:
        uvs: (T, 2). uv_faces: (F, 3) long. size: Ht = Wt or (Ht, Wt). dilate: texels, >= 0.
    Returns:
        (Ht, Wt) float {0, 1}.
    """
    face_index, _ = rasterize_uv(uvs, uv_faces, size)
    mask = (face_index >= 0).to(uvs.dtype)[None, None]
    if dilate > 0:
        mask = F.max_pool2d(mask, 2 * dilate + 1, stride=1, padding=dilate)
    return mask[0, 0]
