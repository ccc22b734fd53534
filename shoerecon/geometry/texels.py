"""Texels of a UV texture: their coordinates and which face of a UV layout covers each (UV-space rasterising).

Texel (row i, col j) of an (Ht, Wt) texture has grid_sample coordinates ``x = (2j + 1) / Wt - 1``,
``y = (2i + 1) / Ht - 1`` (y down) and UV ``u = (j + 0.5) / Wt``, ``v = 1 - (i + 0.5) / Ht`` (v up, row 0 is
v = 1). ``uv_coverage_mask`` (texels the layout uses) and ``texel_chart_labels`` (the UV chart of each texel)
are what ``geometry.Template`` caches for the texture-flow loss terms.
"""
from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F

from shoerecon.geometry.uv import connected_components


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


def texel_chart_labels(uvs: Tensor, uv_faces: Tensor, size: int | tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Chart id and coverage of every texel of a UV layout.

    Args:
        uvs: (T, 2). uv_faces: (F, 3). size: Ht = Wt or (Ht, Wt).
    Returns:
        labels (Ht, Wt) long (-1 where unused), mask (Ht, Wt) float {0, 1}.
    """
    face_index, _ = rasterize_uv(uvs, uv_faces, size)
    charts = connected_components(uv_faces)
    charts = charts.to(face_index.device)[face_index.clamp_min(0)]
    labels = torch.where(face_index >= 0, charts, torch.full_like(face_index, -1))
    return labels, (labels >= 0).to(uvs.dtype)


__all__ = ["texel_grid", "texel_uv", "rasterize_uv", "uv_coverage_mask", "texel_chart_labels"]
