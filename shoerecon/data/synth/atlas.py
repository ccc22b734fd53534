"""The per-part UV atlas and its texel G-buffer (what the material painter reads, ``parts.TexelGBuffer``).

Every part's local UV (``mesher``: u around, v along) is mapped into its own rectangle of one
texture, packed in shelves with a gutter of a few texels. ``texel_gbuffer`` rasterises the UV
triangles into texture space and interpolates per-vertex 3D position, normal and part-local
coordinates with barycentric weights, so each texel knows the surface point it colours.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from shoerecon.data.synth.parts import TexelGBuffer


def part_rects(areas: np.ndarray, aspects: np.ndarray, size: int, gutter: int = 3) -> np.ndarray:
    """Pack rectangles of relative ``areas`` (P,) and width/height ``aspects`` (P,) into the unit square.

    Shelf packing (tallest first), scaled as large as fits with ``gutter`` texels around each.
    Returns (P, 4) float64 rectangles (x, y, w, h) in UV units (y up).
    """
    w0, h0 = np.sqrt(areas * aspects), np.sqrt(areas / aspects)
    pad = gutter / size
    order = np.argsort(-h0, kind="stable")

    def place(scale: float):
        rects = np.zeros((len(areas), 4))
        x = y = row_h = 0.0
        for i in order:
            w, h = w0[i] * scale, h0[i] * scale
            if x + w + pad > 1.0 and x > 0:
                x, y, row_h = 0.0, y + row_h + pad, 0.0
            if x + w + pad > 1.0:
                return None
            rects[i] = (x + pad, y + pad, w, h)
            x += w + pad
            row_h = max(row_h, h)
        return rects if y + row_h + 2 * pad <= 1.0 else None

    lo, hi = 0.0, 1.0 / max(np.sqrt(areas.sum()), 1e-9)
    while place(hi) is not None:
        lo, hi = hi, hi * 1.5
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if place(mid) is not None else (lo, mid)
    rects = place(lo)
    # Snap to texel-aligned rectangles so neighbouring parts never share a texel.
    rects[:, :2] = np.floor(rects[:, :2] * size) / size
    rects[:, 2:] = np.floor(rects[:, 2:] * size - 1) / size
    return rects


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals (N, 3) of a mesh with outward faces."""
    fn = np.cross(verts[faces[:, 1]] - verts[faces[:, 0]], verts[faces[:, 2]] - verts[faces[:, 0]])
    n = np.zeros_like(verts)
    for k in range(3):
        np.add.at(n, faces[:, k], fn)
    return n / (np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12)


def rasterize_uv(uv_tri: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Which texel centres each UV triangle covers.

    Args:
        uv_tri: (F, 3, 2) UV corners (v up); texel (row r, col c) has centre ((c + .5) / T, 1 - (r + .5) / T).
    Returns:
        face (K,), texel flat index (K,), barycentric weights (K, 3) of every covered (face, texel) pair.
    """
    px = uv_tri[..., 0] * size - 0.5
    py = (1.0 - uv_tri[..., 1]) * size - 0.5
    x0, x1 = np.ceil(px.min(1) - 1e-9).astype(int), np.floor(px.max(1) + 1e-9).astype(int)
    y0, y1 = np.ceil(py.min(1) - 1e-9).astype(int), np.floor(py.max(1) + 1e-9).astype(int)
    bw, bh = np.maximum(x1 - x0 + 1, 0), np.maximum(y1 - y0 + 1, 0)
    faces_out, texels_out, bary_out = [], [], []
    # Bucket triangles by bounding box size so each bucket is one dense vectorised test.
    key = np.maximum(np.ceil(np.log2(np.maximum(bw, 1))), 0) * 16 + np.maximum(np.ceil(np.log2(np.maximum(bh, 1))), 0)
    for k in np.unique(key[(bw > 0) & (bh > 0)]):
        idx = np.nonzero((key == k) & (bw > 0) & (bh > 0))[0]
        mw, mh = int(bw[idx].max()), int(bh[idx].max())
        gx = x0[idx, None, None] + np.arange(mw)[None, None, :]
        gy = y0[idx, None, None] + np.arange(mh)[None, :, None]
        ax, ay = px[idx, 0, None, None], py[idx, 0, None, None]
        bx, by = px[idx, 1, None, None], py[idx, 1, None, None]
        cx, cy = px[idx, 2, None, None], py[idx, 2, None, None]
        den = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
        den = np.where(np.abs(den) < 1e-12, np.nan, den)
        w0 = ((by - cy) * (gx - cx) + (cx - bx) * (gy - cy)) / den
        w1 = ((cy - ay) * (gx - cx) + (ax - cx) * (gy - cy)) / den
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -1e-9) & (w1 >= -1e-9) & (w2 >= -1e-9) & (gx >= 0) & (gx < size) & (gy >= 0) & (gy < size)
        f, r, c = np.nonzero(inside)
        faces_out.append(idx[f])
        texels_out.append(gy[f, r, 0] * size + gx[f, 0, c])
        bary_out.append(np.stack([w0[f, r, c], w1[f, r, c], w2[f, r, c]], -1))
    if not faces_out:
        return np.zeros(0, int), np.zeros(0, int), np.zeros((0, 3))
    return np.concatenate(faces_out), np.concatenate(texels_out), np.concatenate(bary_out)


def texel_gbuffer(verts: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
                  face_part: np.ndarray, vert_local: np.ndarray, size: int) -> TexelGBuffer:
    """Rasterise a mesh's UV layout into a (size, size) ``TexelGBuffer``.

    Args:
        verts (N, 3) positions (normalised frame), faces (F, 3), uvs (T, 2), uv_faces (F, 3),
        face_part (F,) part ids, vert_local (N, 2) part-local coordinates per vertex.
    """
    normals = vertex_normals(verts, faces)
    face, texel, bary = rasterize_uv(uvs[uv_faces], size)
    # A texel on a shared edge belongs to one face: keep the last one (any is consistent).
    _, keep = np.unique(texel[::-1], return_index=True)
    keep = len(texel) - 1 - keep
    face, texel, bary = face[keep], texel[keep], bary[keep]
    corners = faces[face]                                            # (K, 3)

    def interp(attr):
        return np.einsum("kc,kcd->kd", bary, attr[corners])

    t2 = size * size
    position = np.zeros((t2, 3), np.float32)
    normal = np.zeros((t2, 3), np.float32)
    local = np.zeros((t2, 2), np.float32)
    part = np.full(t2, -1, np.int16)
    position[texel] = interp(verts)
    n = interp(normals)
    normal[texel] = n / (np.linalg.norm(n, axis=-1, keepdims=True) + 1e-12)
    local[texel] = np.clip(interp(vert_local), 0, 1)
    part[texel] = face_part[face]
    return TexelGBuffer(position.reshape(size, size, 3), normal.reshape(size, size, 3),
                        part.reshape(size, size), local.reshape(size, size, 2))


def dilate(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Fill texels outside ``covered`` (T, T) with the nearest covered texel's value, so bilinear
    sampling at an island's border never mixes in the background. image (T, T, C) -> (T, T, C)."""
    if covered.all() or not covered.any():
        return image
    idx = ndimage.distance_transform_edt(~covered, return_distances=False, return_indices=True)
    return image[idx[0], idx[1]]
