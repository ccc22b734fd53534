"""Reference rasteriser: plain Python loops over images, pixels and faces, in Python floats.

Slow and obviously correct; the oracle for the fast rasteriser in tests. Same semantics as
``rasterize.rasterize_meshes`` (see its module docstring), written independently: pixel centres,
barycentrics from sub-triangle areas, point-segment distances, then a plain sort by depth.
Only for tiny images (a 16 x 16 image with 80 faces takes about a second).
"""
from __future__ import annotations

import torch
from torch import Tensor

from shoerecon.render.rasterize import Fragments, RasterSettings


def _cross(ax: float, ay: float, bx: float, by: float) -> float:
    return ax * by - ay * bx


def _segment_dist2(p, a, b) -> float:
    ex, ey = b[0] - a[0], b[1] - a[1]
    l2 = ex * ex + ey * ey
    t = 0.0 if l2 <= 1e-8 else min(max(((p[0] - a[0]) * ex + (p[1] - a[1]) * ey) / l2, 0.0), 1.0)
    dx, dy = p[0] - (a[0] + t * ex), p[1] - (a[1] + t * ey)
    return dx * dx + dy * dy


def _hit(p, tri, perspective_correct: bool, clip: bool, blur2: float):
    """(z, bary, signed dist2) if the face counts at pixel centre p, else None."""
    (x0, y0, z0), (x1, y1, z1), (x2, y2, z2) = tri
    area = _cross(x1 - x0, y1 - y0, x2 - x0, y2 - y0)
    # Barycentric i = area of the sub-triangle opposite vertex i over the whole area.
    b = [
        _cross(x1 - p[0], y1 - p[1], x2 - p[0], y2 - p[1]) / area,
        _cross(x2 - p[0], y2 - p[1], x0 - p[0], y0 - p[1]) / area,
        _cross(x0 - p[0], y0 - p[1], x1 - p[0], y1 - p[1]) / area,
    ]
    if perspective_correct:  # weights b_i / z_i, renormalised
        t = [z1 * z2 * b[0], z0 * z2 * b[1], z0 * z1 * b[2]]
        s = max(sum(t), 1e-8)
        b = [ti / s for ti in t]
    inside = all(bi > 0 for bi in b)
    if clip:
        c = [max(bi, 0.0) for bi in b]
        s = max(sum(c), 1e-5)
        b = [ci / s for ci in c]
    z = b[0] * z0 + b[1] * z1 + b[2] * z2
    d2 = min(_segment_dist2(p, tri[0], tri[1]), _segment_dist2(p, tri[1], tri[2]), _segment_dist2(p, tri[2], tri[0]))
    if z < 0 or not (inside or d2 < blur2):
        return None
    return z, b, -d2 if inside else d2


def _valid(tri, cull_backfaces: bool) -> bool:
    area = _cross(tri[1][0] - tri[0][0], tri[1][1] - tri[0][1], tri[2][0] - tri[0][0], tri[2][1] - tri[0][1])
    return abs(area) > 1e-8 and not (cull_backfaces and area < 0)


def _clip_pieces(tri, znear: float, perspective_correct: bool):
    """A face crossing z = znear cut to its part in front: [(piece, conv)], conv[k] the barycentrics of the
    piece's corner k in the face. One vertex in front: (p1, p4, p5); one behind: (p4, p2, p5), (p5, p2, p3),
    with p1 the odd vertex out, p2, p3 the next ones in order, p4 / p5 on edges p1-p2 / p1-p3."""
    front = [v[2] > znear for v in tri]
    i1 = next(i for i in range(3) if front.count(front[i]) == 1)
    i2, i3 = (i1 + 1) % 3, (i1 + 2) % 3
    p1, p2, p3 = tri[i1], tri[i2], tri[i3]
    unit = lambda i: [1.0 if r == i else 0.0 for r in range(3)]  # noqa: E731

    def on_plane(a, b):
        w = (a[2] - znear) / (a[2] - b[2])
        if perspective_correct:  # interpolate the view-space point (x_ndc * z), project at z = znear
            x = (a[0] * a[2] * (1 - w) + b[0] * b[2] * w) / znear
            y = (a[1] * a[2] * (1 - w) + b[1] * b[2] * w) / znear
        else:
            x, y = a[0] * (1 - w) + b[0] * w, a[1] * (1 - w) + b[1] * w
        return (x, y, znear), w

    p4, w2 = on_plane(p1, p2)
    p5, w3 = on_plane(p1, p3)
    b1, b2, b3 = unit(i1), unit(i2), unit(i3)
    b4 = [b1[r] * (1 - w2) + b2[r] * w2 for r in range(3)]
    b5 = [b1[r] * (1 - w3) + b3[r] * w3 for r in range(3)]
    if front[i1]:
        return [((p1, p4, p5), (b1, b4, b5))]
    return [((p4, p2, p5), (b4, b2, b5)), ((p5, p2, p3), (b5, b2, b3))]


def rasterize_naive(verts_ndc: Tensor, faces: Tensor, settings: RasterSettings, differentiable: bool = False) -> Fragments:
    """Same arguments (a ``RasterSettings``) and outputs as ``rasterize_meshes``; returns float64 tensors on the CPU.

    With ``differentiable``, zbuf, bary_coords and dists of the selected slots are recomputed by the same
    per-pixel code on 0-d tensors of ``verts_ndc`` (float64 expected), so autograd differentiates the
    plain formulas slot by slot: an independent gradient reference for tiny scenes (~1000 slots).
    """
    height, width = settings.hw
    K, blur_radius, cull_backfaces = settings.faces_per_pixel, settings.blur_radius, settings.cull_backfaces
    perspective_correct, clip_barycentrics = settings.perspective_correct, settings.clip_barycentrics
    znear, clip_near = settings.znear, settings.clip_near
    s = min(height, width)
    n_img, n_faces = verts_ndc.shape[0], faces.shape[0]
    verts, face_list = verts_ndc.detach().double().cpu().tolist(), faces.cpu().tolist()
    p2f = torch.full((n_img, height, width, K), -1, dtype=torch.long)
    zbuf = torch.full((n_img, height, width, K), -1.0, dtype=torch.float64)
    bary = torch.full((n_img, height, width, K, 3), -1.0, dtype=torch.float64)
    dists = torch.full((n_img, height, width, K), -1.0, dtype=torch.float64)
    if differentiable and clip_near:
        raise ValueError("rasterize_naive: differentiable=True does not support clip_near")
    for n in range(n_img):
        tris = []  # (face, [(piece, barycentrics of its corners in the face) ...])
        for f, (a, b, c) in enumerate(face_list):
            tri = (verts[n][a], verts[n][b], verts[n][c])
            if min(v[2] for v in tri) > znear:
                pieces = [(tri, None)]
            elif clip_near and max(v[2] for v in tri) > znear:
                pieces = _clip_pieces(tri, znear, perspective_correct)
            else:
                continue
            pieces = [(t, conv) for t, conv in pieces if _valid(t, cull_backfaces)]
            if pieces:
                tris.append((f, pieces))
        for i in range(height):
            for j in range(width):
                p = ((2 * j + 1 - width) / s, (height - 2 * i - 1) / s)
                hits = []
                for f, pieces in tris:
                    best = None  # of a face's pieces, the one with the smallest signed distance
                    for tri, conv in pieces:
                        h = _hit(p, tri, perspective_correct, clip_barycentrics, blur_radius**2)
                        if h is not None and (best is None or h[2] < best[2]):
                            best = h if conv is None else (h[0], [sum(conv[k][r] * h[1][k] for k in range(3)) for r in range(3)], h[2])
                    if best is not None:
                        hits.append((best[0], f, best[1], best[2]))
                hits.sort(key=lambda h: (h[0], h[1]))
                for k, (z, f, bc, d) in enumerate(hits[:K]):
                    p2f[n, i, j, k] = n * n_faces + f
                    zbuf[n, i, j, k] = z
                    bary[n, i, j, k] = torch.tensor(bc, dtype=torch.float64)
                    dists[n, i, j, k] = d
    if differentiable:
        return _differentiable_slots(verts_ndc, faces, p2f, perspective_correct, clip_barycentrics, blur_radius)
    return Fragments(p2f, zbuf, bary, dists)


def _differentiable_slots(
    verts_ndc: Tensor, faces: Tensor, p2f: Tensor, perspective_correct: bool, clip: bool, blur_radius: float
) -> Fragments:
    """Recompute the slots of p2f (N, H, W, K) with ``_hit`` on 0-d tensors of verts_ndc (N, Nv, 3): dense
    fragments whose zbuf, bary_coords and dists carry autograd graphs back to verts_ndc."""
    n_img, height, width, _ = p2f.shape
    s = min(height, width)
    n_faces = faces.shape[0]
    face_list = faces.cpu().tolist()
    slots = (p2f >= 0).nonzero().tolist()
    zs, bs, ds = [], [], []
    for n, i, j, k in slots:
        f = int(p2f[n, i, j, k]) - n * n_faces
        tri = tuple(tuple(verts_ndc[n, v].unbind()) for v in face_list[f])
        z, b, d = _hit(((2 * j + 1 - width) / s, (height - 2 * i - 1) / s), tri, perspective_correct, clip, blur_radius**2)
        zs.append(z)
        bs.append(torch.stack([torch.as_tensor(bi, dtype=verts_ndc.dtype) for bi in b]))
        ds.append(d)
    index = (p2f >= 0).nonzero(as_tuple=True)
    dense = lambda vals, *tail: verts_ndc.new_full((*p2f.shape, *tail), -1.0).index_put(index, torch.stack(vals))  # noqa: E731
    if not slots:
        raise ValueError("rasterize_naive(differentiable=True): no face covers any pixel")
    return Fragments(p2f, dense(zs), dense(bs, 3), dense(ds))
