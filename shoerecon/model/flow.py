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


def _barycentric(p: Tensor, a: Tensor, b: Tensor, c: Tensor) -> Tensor:
    """Barycentric coordinates of points p in triangles (a, b, c): (..., 2) each -> (..., 3); -1 for degenerate ones."""
    area = _cross2(b - a, c - a)
    ok = area.abs() > 1e-12
    safe = torch.where(ok, area, torch.ones_like(area)).unsqueeze(-1)
    w = torch.stack([_cross2(b - p, c - p), _cross2(c - p, a - p), _cross2(a - p, b - p)], -1) / safe
    return torch.where(ok.unsqueeze(-1), w, torch.full_like(w, -1.0))


def rasterize_uv(uvs: Tensor, uv_faces: Tensor, size: int | tuple[int, int],
                 budget: int = 1 << 21) -> tuple[Tensor, Tensor]:
    """Which face covers each texel centre in UV space, and where.

    Each face is tested only against the texels of its bounding box; faces are sorted by box size
    and processed in chunks of at most ``budget`` (face, texel) candidates.

    Args:
        uvs: (T, 2) in [0, 1], v up. uv_faces: (F, 3) long. size: Ht = Wt or (Ht, Wt).
        budget: candidate pairs per chunk (memory ~ 40 bytes each).
    Returns:
        face_index (Ht, Wt) long, -1 where no face covers the texel centre (the lowest face index
        wins on overlaps); bary (Ht, Wt, 3) barycentric coordinates in that face (zeros where -1).
    """
    height, width = (size, size) if isinstance(size, int) else size
    device, num_faces = uvs.device, uv_faces.shape[0]
    tri = uvs[uv_faces].to(torch.float64)  # (F, 3, 2)
    # continuous texel coordinates: texel centres at integers (col = u W - 1/2, row = (1 - v) H - 1/2)
    col, row = tri[..., 0] * width - 0.5, (1 - tri[..., 1]) * height - 0.5
    c0 = torch.ceil(col.min(-1).values - 1e-6).clamp(0, width - 1).long()
    c1 = torch.floor(col.max(-1).values + 1e-6).clamp(-1, width - 1).long()
    r0 = torch.ceil(row.min(-1).values - 1e-6).clamp(0, height - 1).long()
    r1 = torch.floor(row.max(-1).values + 1e-6).clamp(-1, height - 1).long()
    bw, bh = (c1 - c0 + 1).clamp_min(0), (r1 - r0 + 1).clamp_min(0)
    area = bw * bh
    order = torch.argsort(area)
    area_sorted = area[order].tolist()
    best = torch.full((height * width,), num_faces, dtype=torch.long, device=device)
    start = next((i for i, a in enumerate(area_sorted) if a > 0), num_faces)
    while start < num_faces:
        end = min(num_faces, start + max(1, budget // area_sorted[start]))
        while end - start > 1 and (end - start) * area_sorted[end - 1] > budget:
            end = start + (end - start) // 2
        f = order[start:end]
        w_max, h_max = int(bw[f].max()), int(bh[f].max())
        dx = torch.arange(w_max, device=device)
        dy = torch.arange(h_max, device=device)
        cols = c0[f, None, None] + dx[None, None, :]  # (C, 1, w)
        rows = r0[f, None, None] + dy[None, :, None]  # (C, h, 1)
        valid = (dx[None, None, :] < bw[f, None, None]) & (dy[None, :, None] < bh[f, None, None])
        p = torch.stack(torch.broadcast_tensors((cols + 0.5) / width, 1 - (rows + 0.5) / height), -1).to(tri.dtype)
        a, b, c = (tri[f, k, None, None, :] for k in range(3))
        inside = valid & (_barycentric(p, a, b, c) >= -1e-9).all(-1)  # (C, h, w)
        flat = (rows * width + cols).expand_as(inside)[inside]
        best.scatter_reduce_(0, flat, f[:, None, None].expand_as(inside)[inside], reduce="amin")
        start = end
    face_index = torch.where(best < num_faces, best, torch.full_like(best, -1))
    bary = torch.zeros(height * width, 3, dtype=uvs.dtype, device=device)
    hit = face_index >= 0
    if hit.any():
        p = texel_uv(height, width, device, torch.float64).reshape(-1, 2)[hit]
        a, b, c = tri[face_index[hit]].unbind(1)
        bary[hit] = _barycentric(p, a, b, c).to(uvs.dtype)
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
