"""Mesh rasterisation in pure PyTorch with pytorch3d's fragment semantics, at a cost that grows with
covered pixels rather than pixels x faces.

Two stages:
1. *Select* (no grad): every face covers the pixels of its bounding box (grown by the blur radius).
   Faces are grouped by box size and each group is tested as one dense block of affine edge
   functions (inside test, distance, depth). Hits that cannot be among a pixel's K nearest are
   dropped with a per-pixel depth bound (``DepthBound``); the rest get their output depth (the
   same float operations as stage 2's zbuf, so bit-identical) and the K nearest are kept with one
   radix sort on (pixel, depth bits, face). Work ~ sum of face bounding-box areas, not pixels x faces.
2. *Differentiate*: barycentrics, distances and depth of the kept (pixel, face) slots are recomputed
   from the vertices with autograd, so memory is O(slots) <= O(N H W K) and gradients reach the
   vertices. Every pixel's slots are in (zbuf, face index) order with zbuf exactly as output: faces at
   equal depth (coplanar copies, clipped barycentrics at a shared vertex) come in face-index order, as
   in the naive oracle, and K = 1 keeps slot 0 of any larger K (pytorch3d leaves tie order unspecified).

Semantics (pytorch3d's ``rasterize_meshes``, with cameras.py's conventions):
- input vertices are (x_ndc, y_ndc, z_view) from ``Cameras.transform_points_ndc``;
  pixel (i, j) has its centre at x = (2j + 1 - W) / S, y = (H - 2i - 1) / S, S = min(H, W);
- a face hits a pixel if the pixel centre is strictly inside it (all perspective-correct barycentrics
  > 0) or, with a blur radius r, if its squared 2D distance to the face is < r**2. Note: our
  ``blur_radius`` is a distance in NDC; pytorch3d's argument of the same name is compared with the
  *squared* distance, so ours equals sqrt(pytorch3d's);
- faces with any vertex at z <= znear (with ``clip_near``: cut to their part in front of z = znear,
  see clip.py), degenerate faces (|2 * area| <= 1e-8 in NDC) and, with
  ``cull_backfaces``, clockwise faces (in NDC, x right, y up) are skipped; slots whose interpolated
  depth is negative are skipped (pytorch3d);
- outputs: pix_to_face (N, H, W, K) long into packed faces n * F + f, -1 padding, sorted by depth
  ascending; zbuf (N, H, W, K) interpolated view depth; bary_coords (N, H, W, K, 3) perspective
  correct (and clipped to the face when ``clip_barycentrics``); dists (N, H, W, K) signed squared
  distance in NDC**2, negative inside. Padding is -1 everywhere.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import NamedTuple, Sequence, Union

import torch
from torch import Tensor

from shoerecon.render.clip import NearClip, clip_near_plane

AREA_EPS = 1e-8  # faces with |2 * signed area| below this (NDC**2) are degenerate and skipped
DENOM_EPS = 1e-8  # perspective correction denominator clamp (pytorch3d's kEpsilon)
CLIP_EPS = 1e-5  # clipped barycentrics' sum clamp (pytorch3d)
DEPTH_RTOL = 5e-4  # stage 1's affine depth vs the output depth: relative difference the depth bound tolerates
BBOX_TOL = 1e-4  # pixels; bounding boxes are grown by this so float rounding never drops a hit

ImageSize = Union[int, Sequence[int]]


@dataclass(frozen=True)
class RasterSettings:
    """How meshes are rasterised (pytorch3d's ``RasterizationSettings``): one object for every rasteriser
    (``rasterize_packed``, ``rasterize_meshes``, the backends, the naive oracle). ``RendererConfig.raster_settings``
    derives it from a renderer config.

    Attributes:
        image_size: int (square) or (H, W).
        faces_per_pixel: K, the nearest faces kept per pixel.
        blur_radius: NDC distance within which a face outside a pixel centre still hits it (0: hard edges).
            Ours is a distance; pytorch3d's argument of that name is compared with the squared distance.
        cull_backfaces: skip faces clockwise in NDC (x right, y up).
        perspective_correct: perspective-correct barycentrics.
        clip_barycentrics: clip barycentrics to the face (pixels hit through the blur radius).
        znear: faces with a vertex at view depth <= znear are skipped (or clipped, ``clip_near``).
        clip_near: cut faces crossing z = znear to their part in front (``clip.py``, pytorch3d's z_clip_value)
            instead of skipping them.

    >>> RasterSettings(16, faces_per_pixel=1).hw
    (16, 16)
    """
    image_size: ImageSize = 64
    faces_per_pixel: int = 8
    blur_radius: float = 0.0
    cull_backfaces: bool = False
    perspective_correct: bool = True
    clip_barycentrics: bool = False
    znear: float = 0.01
    clip_near: bool = False

    def __post_init__(self) -> None:
        if self.faces_per_pixel < 1:
            raise ValueError(f"RasterSettings.faces_per_pixel must be >= 1, got {self.faces_per_pixel}")
        if self.blur_radius < 0:
            raise ValueError(f"blur_radius must be >= 0, got {self.blur_radius}")
        if not isinstance(self.image_size, int):  # a list from YAML: hashable and comparable
            object.__setattr__(self, "image_size", tuple(int(x) for x in self.image_size))

    @property
    def hw(self) -> tuple[int, int]:
        """(H, W)."""
        return image_hw(self.image_size)

    def replace(self, **changes) -> "RasterSettings":
        """A copy with ``changes`` (field names)."""
        return dataclasses.replace(self, **changes)


class Fragments(NamedTuple):
    """pytorch3d-style fragments. N images, K faces per pixel.

    pix_to_face (N, H, W, K) long, zbuf (N, H, W, K), bary_coords (N, H, W, K, 3), dists (N, H, W, K).
    """

    pix_to_face: Tensor
    zbuf: Tensor
    bary_coords: Tensor
    dists: Tensor


@dataclass
class PackedFragments:
    """The occupied slots of (N, H, W, K) fragments only, M slots sorted by pixel then depth.

    Attributes:
        pix: (M,) flat pixel index n * H * W + i * W + j.
        rank: (M,) slot k in [0, K): 0 is the nearest face of the pixel.
        face: (M,) packed face index n * F + f.
        bary: (M, 3) barycentrics, zbuf: (M,) depth, dists: (M,) signed squared distance.
        shape: (N, H, W, K).
    """

    pix: Tensor
    rank: Tensor
    face: Tensor
    bary: Tensor
    zbuf: Tensor
    dists: Tensor
    shape: tuple[int, int, int, int]

    @property
    def slot(self) -> Tensor:
        """(M,) flat index into (N, H, W, K)."""
        return self.pix * self.shape[3] + self.rank

    def to_dense(self) -> Fragments:
        """Dense pytorch3d fragments (N, H, W, K[, 3]) with -1 padding."""
        n, h, w, k = self.shape
        slot = self.slot
        pix_to_face = self.face.new_full((n * h * w * k,), -1).index_put((slot,), self.face)
        fill = lambda vals, *tail: vals.new_full((n * h * w * k, *tail), -1.0).index_put((slot,), vals)  # noqa: E731
        return Fragments(
            pix_to_face.view(n, h, w, k),
            fill(self.zbuf).view(n, h, w, k),
            fill(self.bary, 3).view(n, h, w, k, 3),
            fill(self.dists).view(n, h, w, k),
        )


def image_hw(image_size: ImageSize) -> tuple[int, int]:
    """int or (H, W) -> (H, W)."""
    if isinstance(image_size, int):
        return image_size, image_size
    h, w = image_size
    return int(h), int(w)


def signed_area2(fv: Tensor) -> Tensor:
    """Twice the signed NDC area of faces (..., 3, 3+) (x right, y up): positive counter-clockwise."""
    x, y = fv[..., 0], fv[..., 1]
    return (x[..., 1] - x[..., 0]) * (y[..., 2] - y[..., 0]) - (y[..., 1] - y[..., 0]) * (x[..., 2] - x[..., 0])


def _slot_barycentrics(x: Tensor, y: Tensor, z: Tensor, px: Tensor, py: Tensor, perspective_correct: bool) -> dict:
    """Edge functions and (perspective-corrected) barycentrics of M slots; pytorch3d's CPU formulas.

    x, y, z: (3, M) vertex coordinates (row j = vertex j), px, py (M,). Returns a dict of (M,) rows:
    e0..e2 (twice the sub-triangle areas), area, w0..w2 (= e / area), and with perspective correction
    t0..t2 (z_j z_k w_i), total, denom; b0..b2 the corrected barycentrics (all > 0 inside).
    """
    x0, x1, x2 = x
    y0, y1, y2 = y
    r = {"area": (x1 - x0) * (y2 - y0) - (y1 - y0) * (x2 - x0)}
    r["e0"] = (x1 - px) * (y2 - py) - (y1 - py) * (x2 - px)
    r["e1"] = (x2 - px) * (y0 - py) - (y2 - py) * (x0 - px)
    r["e2"] = (x0 - px) * (y1 - py) - (y0 - py) * (x1 - px)
    for i in range(3):
        r[f"w{i}"] = r[f"e{i}"] / r["area"]
    if perspective_correct:
        z0, z1, z2 = z
        r["t0"], r["t1"], r["t2"] = z1 * z2 * r["w0"], z0 * z2 * r["w1"], z0 * z1 * r["w2"]
        r["total"] = r["t0"] + r["t1"] + r["t2"]
        r["denom"] = r["total"].clamp_min(DENOM_EPS)
        for i in range(3):
            r[f"b{i}"] = r[f"t{i}"] / r["denom"]
    else:
        for i in range(3):
            r[f"b{i}"] = r[f"w{i}"]
    return r


def _bary_depth(
    x: Tensor, y: Tensor, z: Tensor, px: Tensor, py: Tensor, perspective_correct: bool, clip: bool
) -> tuple[list[Tensor], Tensor, Tensor]:
    """The output barycentrics (3 x (M,)), inside (M,) bool and depth (M,) of M slots (x, y, z (3, M)).

    The one definition of an output depth: stage 1 ranks with it and stage 2 outputs it, with the same
    elementwise float operations on the same operands, so both are bit-identical and ties rank exactly.
    """
    r = _slot_barycentrics(x, y, z, px, py, perspective_correct)
    b = [r["b0"], r["b1"], r["b2"]]
    inside = (b[0] > 0) & (b[1] > 0) & (b[2] > 0)
    if clip:
        c = [bi.clamp_min(0.0) for bi in b]
        s = (c[0] + c[1] + c[2]).clamp_min(CLIP_EPS)
        b = [ci / s for ci in c]
    return b, inside, b[0] * z[0] + b[1] * z[1] + b[2] * z[2]


def _nearest_edge(x: Tensor, y: Tensor, px: Tensor, py: Tensor) -> list[Tensor]:
    """Squared distance from points (px, py) (M,) to the boundary of triangles x, y (3, M).

    Per edge a -> b (vertex i -> i + 1): t = clamp((p - a).e / |e|^2, 0, 1) (t = 0 for edges with
    |e|^2 <= 1e-8, as pytorch3d), d = p - (a + t e). Returns [dist2 = min over edges of |d|^2, and of
    the nearest edge (the first on ties): its index (uint8), t, dx, dy], all (M,).
    """
    best = []
    for i in range(3):
        ax, ay, bx, by = x[i], y[i], x[(i + 1) % 3], y[(i + 1) % 3]
        ex, ey = bx - ax, by - ay
        l2 = ex * ex + ey * ey
        t = (((px - ax) * ex + (py - ay) * ey) / l2.clamp_min(1e-30)).clamp_(0.0, 1.0)
        t = t.masked_fill_(l2 <= 1e-8, 0.0)
        dx, dy = px - (ax + t * ex), py - (ay + t * ey)
        d2 = dx * dx + dy * dy
        if not best:
            best = [d2, torch.zeros_like(px, dtype=torch.uint8), t, dx, dy]
            continue
        closer = d2 < best[0]
        best[1] = best[1].masked_fill_(closer, i)
        best = [best[0].where(~closer, d2), best[1]] + [old.where(~closer, new) for old, new in zip(best[2:], (t, dx, dy))]
    return best


SLOT_CHUNK = 1 << 17  # slots per pass of stage 2: temporaries stay small, ops still split over threads


class _SlotGeometry(torch.autograd.Function):
    """Barycentrics, depth and signed distance of M (pixel, face) slots, with a closed-form backward.

    Autograd through the ~60 elementwise ops of the forward would keep ~40 (M,) intermediates and run
    ~100 backward kernels; backward here recomputes the cheap edge functions from the saved vertex
    coordinates and applies the chain rule by hand (tests/render checks it against autograd and gradcheck).
    Distance: by the envelope theorem the gradient w.r.t. the nearest edge's endpoints is -2 d (1 - t)
    and -2 d t.
    """

    @staticmethod
    def forward(ctx, verts: Tensor, vert_idx: Tensor, px: Tensor, py: Tensor, perspective_correct: bool, clip: bool):
        # verts (V, 3), vert_idx (M, 3). -> bary (M, 3), zbuf (M,), dists (M,)
        # Saved for backward: verts, int32 vertex ids, px, py (~20 bytes a slot); backward gathers the
        # coordinates and finds the nearest edge again (same ops: same bits) instead of keeping ~80 bytes a slot.
        ids = torch.int32 if verts.shape[0] < 2**31 else torch.long
        vert_idx = vert_idx.t().to(ids).contiguous()
        chunks = [slice(a, a + SLOT_CHUNK) for a in range(0, max(px.shape[0], 1), SLOT_CHUNK)]
        outs = [_SlotGeometry._forward_chunk(verts, vert_idx[:, c], px[c], py[c], perspective_correct, clip) for c in chunks]
        bary, zbuf, dists = (torch.cat(parts) for parts in zip(*outs))
        ctx.save_for_backward(verts, px, py, vert_idx)
        ctx.flags = (perspective_correct, clip)
        return bary, zbuf, dists

    @staticmethod
    def _forward_chunk(verts, vert_idx, px, py, perspective_correct, clip):
        x, y, z = verts.t()[:, vert_idx.long()]  # (3, 3, m): [x|y|z, vertex, slot], every row contiguous
        b, inside, zbuf = _bary_depth(x, y, z, px, py, perspective_correct, clip)
        dist2 = _nearest_edge(x, y, px, py)[0]
        return torch.stack(b, dim=-1), zbuf, torch.where(inside, -dist2, dist2)

    @staticmethod
    def backward(ctx, g_bary: Tensor, g_zbuf: Tensor, g_dists: Tensor):
        verts, px, py, vert_idx = ctx.saved_tensors
        perspective_correct, clip = ctx.flags
        n_verts = verts.shape[0]
        grad = verts.new_empty(3, 3, px.shape[0])
        for a in range(0, px.shape[0], SLOT_CHUNK):
            c = slice(a, a + SLOT_CHUNK)
            coords = verts.t()[:, vert_idx[:, c].long()]
            grad[..., c] = _SlotGeometry._backward_chunk(
                coords, px[c], py[c], g_bary[c], g_zbuf[c], g_dists[c], perspective_correct, clip
            )
        # Scatter to the vertices: one index_add_ per face corner (4x faster than autograd's index_put_).
        grad_verts = grad.new_zeros(3, n_verts)
        for j in range(3):  # (int64 ids: index_add_ is ~15x slower with int32 ones on CPU)
            grad_verts.index_add_(1, vert_idx[j].long(), grad[:, j])
        return grad_verts.t(), None, None, None, None, None

    @staticmethod
    def _backward_chunk(coords, px, py, g_bary, g_zbuf, g_dists, perspective_correct, clip):
        x, y, z = coords
        r = _slot_barycentrics(x, y, z, px, py, perspective_correct)
        b = [r["b0"], r["b1"], r["b2"]]
        inside = (b[0] > 0) & (b[1] > 0) & (b[2] > 0)
        _, edge, t, dx, dy = _nearest_edge(x, y, px, py)
        if clip:
            c = [bi.clamp_min(0.0) for bi in b]
            total = c[0] + c[1] + c[2]
            s = total.clamp_min(CLIP_EPS)
            bary = [ci / s for ci in c]
        else:
            bary = b
        g_bary = g_bary.t()
        gb = [g_bary[i] + g_zbuf * z[i] for i in range(3)]  # zbuf = sum_i bary_i z_i
        gz = [g_zbuf * bary[i] for i in range(3)]
        if clip:  # bary = c / s, s = max(sum c, eps), c = max(b, 0)
            dot = (gb[0] * bary[0] + gb[1] * bary[1] + gb[2] * bary[2]) * (total >= CLIP_EPS)
            gb = [((gb[i] - dot) / s) * (b[i] >= 0) for i in range(3)]
        if perspective_correct:  # b = t / max(sum t, eps), t_i = z_j z_k w_i
            dot = (gb[0] * b[0] + gb[1] * b[1] + gb[2] * b[2]) * (r["total"] >= DENOM_EPS)
            gt = [(gb[i] - dot) / r["denom"] for i in range(3)]
            w = [r["w0"], r["w1"], r["w2"]]
            gw = [gt[0] * (z[1] * z[2]), gt[1] * (z[0] * z[2]), gt[2] * (z[0] * z[1])]
            gz[0] = gz[0] + gt[1] * z[2] * w[1] + gt[2] * z[1] * w[2]
            gz[1] = gz[1] + gt[0] * z[2] * w[0] + gt[2] * z[0] * w[2]
            gz[2] = gz[2] + gt[0] * z[1] * w[0] + gt[1] * z[0] * w[1]
        else:
            gw = gb
        area = r["area"]  # w_i = e_i / area
        ge = [gwi / area for gwi in gw]
        g_area = -(gw[0] * r["w0"] + gw[1] * r["w1"] + gw[2] * r["w2"]) / area
        (x0, x1, x2), (y0, y1, y2) = x, y
        qx0, qx1, qx2, qy0, qy1, qy2 = x0 - px, x1 - px, x2 - px, y0 - py, y1 - py, y2 - py
        gx = [
            ge[2] * qy1 - ge[1] * qy2 + g_area * (y1 - y2),
            ge[0] * qy2 - ge[2] * qy0 + g_area * (y2 - y0),
            ge[1] * qy0 - ge[0] * qy1 + g_area * (y0 - y1),
        ]
        gy = [
            ge[1] * qx2 - ge[2] * qx1 + g_area * (x2 - x1),
            ge[2] * qx0 - ge[0] * qx2 + g_area * (x0 - x2),
            ge[0] * qx1 - ge[1] * qx0 + g_area * (x1 - x0),
        ]
        # dists = +-|d|^2 for the nearest edge k (vertex k -> k + 1)
        g_d2 = torch.where(inside, g_dists, -g_dists).mul_(2.0)  # -2 * (d dists / d dist2) * grad
        gdx, gdy = g_d2 * dx, g_d2 * dy
        zero = torch.zeros((), dtype=t.dtype, device=t.device)
        for j in range(3):
            w_j = torch.where(edge == j, 1 - t, torch.where(edge == (j - 1) % 3, t, zero))
            gx[j] = gx[j] + gdx * w_j
            gy[j] = gy[j] + gdy * w_j
        return torch.stack([torch.stack(gx), torch.stack(gy), torch.stack(gz)])


def slot_geometry(
    verts: Tensor, vert_idx: Tensor, px: Tensor, py: Tensor, perspective_correct: bool, clip_barycentrics: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """Barycentrics, depth and signed distance of pixel centres (px, py) (M,) w.r.t. the faces with vertex
    indices vert_idx (M, 3) into verts (V, 3). Differentiable w.r.t. ``verts``; pytorch3d's CPU formulas.

    Returns bary (M, 3) (perspective corrected, then clipped if asked), zbuf (M,), dists (M,) signed
    squared 2D distance to the face boundary, negative inside (all corrected barycentrics > 0).
    """
    return _SlotGeometry.apply(verts, vert_idx, px, py, perspective_correct, clip_barycentrics)


def pixel_centres(flat_pix: Tensor, height: int, width: int, dtype: torch.dtype) -> tuple[Tensor, Tensor]:
    """NDC centres (x, y) (M,) of flat pixel indices n * H * W + i * W + j (M,)."""
    s = min(height, width)
    col = flat_pix % width
    row = (flat_pix // width) % height
    return (2 * col + 1 - width).to(dtype) / s, (height - 2 * row - 1).to(dtype) / s


def _face_pixel_boxes(
    fv: Tensor, height: int, width: int, blur_radius: float, valid: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Inclusive pixel bounding boxes of faces fv (..., 3, 3), grown by the blur radius.

    Returns col0, row0, ncols, nrows (...) long; empty boxes (invalid or off-image faces) have 0 size.
    """
    s = min(height, width)
    x, y = fv[..., 0], fv[..., 1]
    zero = torch.zeros((), dtype=fv.dtype, device=fv.device)
    safe = lambda t: torch.where(valid, t, zero).clamp(-4.0 * max(height, width), 4.0 * max(height, width))  # noqa: E731
    # col = (x * S + W - 1) / 2, row = (H - 1 - y * S) / 2
    c_lo = safe(((x.amin(-1) - blur_radius) * s + width - 1) / 2 - BBOX_TOL).ceil().long().clamp_min(0)
    c_hi = safe(((x.amax(-1) + blur_radius) * s + width - 1) / 2 + BBOX_TOL).floor().long().clamp_max(width - 1)
    r_lo = safe((height - 1 - (y.amax(-1) + blur_radius) * s) / 2 - BBOX_TOL).ceil().long().clamp_min(0)
    r_hi = safe((height - 1 - (y.amin(-1) - blur_radius) * s) / 2 + BBOX_TOL).floor().long().clamp_max(height - 1)
    ncols = (c_hi - c_lo + 1).clamp_min(0) * valid
    nrows = (r_hi - r_lo + 1).clamp_min(0) * valid
    return c_lo, r_lo, ncols, nrows


def valid_faces(fv: Tensor, znear: float, cull_backfaces: bool) -> Tensor:
    """Which faces (..., 3, 3) may be rasterised: in front of znear, not degenerate, not culled. -> (...) bool."""
    area = signed_area2(fv)
    ok = (fv[..., 2] > znear).all(-1) & (area.abs() > AREA_EPS) & torch.isfinite(fv).all(-1).all(-1)
    if cull_backfaces:
        ok = ok & (area > 0)
    return ok


def _k_nearest(
    pix: Tensor, face: Tensor, depth: Tensor, k: int, n_pix: int, pixels_per_image: int, n_faces: int,
    near: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """The K nearest candidates of every pixel, ordered by (pixel, depth, face) like the naive oracle, so
    faces at exactly equal depth (clipped barycentrics at a shared vertex) come in a fixed order whatever
    order the blocks produced them in.

    Args:
        pix (M,) flat pixel n * H * W + i * W + j < n_pix (H * W = pixels_per_image), face (M,) f in [0, F)
        (the image n is pix's),
        depth (M,) >= 0; (pixel, face) pairs are distinct. near (M,) bool: the candidates that may be
        among the K nearest (see ``DepthBound``), None: all.
    Returns:
        pix (M',) long sorted, rank (M',) in [0, K), face (M',) packed n * F + f.
    """
    fbits = max((n_faces - 1).bit_length(), 1)
    key = None
    if depth.dtype == torch.float32 and pix.numel() > 0 and bool((depth >= 0).all()):
        # Non-negative float32 bit patterns sort like the floats, so one int64 (radix) sort on
        # (pixel, depth bits - smallest, face) does all three keys; the keys are distinct (one candidate
        # per pixel and face), so the sort need not be stable, and pixel and face decode from the key.
        bits = depth.view(torch.int32)
        lo = int(bits.min())
        shift = max((int(bits.max()) - lo).bit_length(), 1) + fbits
        if n_pix <= 1 << (62 - shift):
            if near is not None:  # drop first: the int64 keys of all candidates would be the largest temporary
                kept = near.nonzero().view(-1)  # one index for the three gathers (masked_select would scan 3 times)
                pix, face, bits = pix.index_select(0, kept), face.index_select(0, kept), bits.index_select(0, kept)
            key = pix.to(torch.long, copy=True).bitwise_left_shift_(shift)  # never shift the caller's ids in place
            key += bits.long().sub_(lo).bitwise_left_shift_(fbits)
            key += face
            key = torch.sort(key).values
            if key.numel() > k:  # key is sorted by pixel: see below
                key = key.masked_select(torch.cat([key.new_ones(k, dtype=torch.bool), (key[k:] >> shift) != (key[:-k] >> shift)]))
            pix, face = key >> shift, key & ((1 << fbits) - 1)
            del key
            key = True  # done (the fallback below is skipped)
    if key is None:  # float64 or too many bits: three stable sorts
        if near is not None:
            pix, face, depth = pix.masked_select(near), face.masked_select(near), depth.masked_select(near)
        order = torch.sort(face, stable=True).indices
        order = order[torch.sort(depth[order], stable=True).indices]
        pix, second = torch.sort(pix[order], stable=True)
        pix, face = pix.long(), face[order[second]].long()
        # pix is sorted, so candidate i ranks >= K in its pixel iff candidate i - K has the same pixel.
        if pix.numel() > k:
            keep = torch.ones_like(pix, dtype=torch.bool)
            torch.ne(pix[k:], pix[:-k], out=keep[k:])
            pix, face = pix[keep], face[keep]
    # rank = index - index of the pixel's first candidate; int32 temporaries (this is stage 1's memory peak)
    ids = torch.int32 if pix.numel() < 2**31 else torch.long
    is_start = torch.ones_like(pix, dtype=torch.bool)
    torch.ne(pix[1:], pix[:-1], out=is_start[1:])
    starts = is_start.nonzero().view(-1)
    counts = torch.diff(starts, append=starts.new_tensor([pix.numel()]))
    del is_start
    rank = torch.arange(pix.numel(), device=pix.device, dtype=ids)
    rank -= torch.repeat_interleave(starts.to(ids), counts)
    return pix, rank.long(), face + pix // pixels_per_image * n_faces


class DepthBound:
    """Per-pixel bound on the K-th nearest hit depth from a histogram of hit depths, filled as hits come.

    Depths are binned into ``bins`` buckets over [lo, hi] (clamped at both ends; the bucket of a depth
    never decreases with the depth, also in floats). Once a pixel holds K hits up to some bucket, no hit
    in a later bucket can be among its K nearest: ``near`` drops those before the sort. Comparisons are
    on bucket indices (ties are kept), with a margin for the difference between the counted depths (stage
    1's affine ones) and the output depths: exact while that difference is below DEPTH_RTOL * |depth|. Counts are int32 (bins, n_pix): bucket-major,
    so the running sum over buckets is a contiguous, vectorised pass.
    """

    def __init__(self, n_pix: int, k: int, lo: float, hi: float, device: torch.device, bins: int = 16) -> None:
        self.k, self.bins, self.lo = k, bins, lo
        self.scale = bins / max(hi - lo, 1e-12)
        self.margin = DEPTH_RTOL * 2 * max(abs(hi), abs(lo))
        self.n_pix = n_pix
        self.counts = torch.zeros(bins * n_pix, dtype=torch.int32, device=device)

    def bucket(self, depth: Tensor) -> Tensor:
        """(M,) depth -> (M,) int32 bucket in [0, bins)."""
        return ((depth - self.lo) * self.scale).clamp_(0, self.bins - 1).to(torch.int32)

    def add(self, pix: Tensor, depth: Tensor) -> None:
        """Count hits at pixels pix (M,) with depths (M,)."""
        slot = self.bucket(depth).long().mul_(self.n_pix).add_(pix)
        self.counts.index_add_(0, slot, torch.ones_like(slot, dtype=torch.int32))

    def last_bucket(self) -> Tensor:
        """(n_pix,) int32: the bucket of each pixel's K-th nearest hit, ``bins`` where it has fewer than K."""
        # A running sum over buckets, one (n_pix,) row at a time: no (bins, n_pix) temporaries.
        counts = self.counts.view(self.bins, self.n_pix)
        running = torch.zeros_like(counts[0])
        last = torch.full_like(counts[0], self.bins)
        for b in range(self.bins):
            running += counts[b]
            last -= (running >= self.k).to(torch.int32)
        return last

    def near(self, pix: Tensor, depth: Tensor) -> Tensor:
        """(M,) bool: the hits that may be among the K nearest of their pixel. The depths counted here are
        stage 1's affine ones, which differ from the output depth by rounding: a hit is kept if its depth
        minus ``margin`` (2x the largest such difference tolerated) is in the K-th hit's bucket or before."""
        return self.bucket(depth - self.margin) <= self.last_bucket().index_select(0, pix)


def _bucket(size: Tensor) -> Tensor:
    """Round box sides up to a few sizes (exact up to 8, then ~4 per octave) so faces group into few blocks."""
    size = size.clamp_min(1)
    step = torch.where(size <= 8, torch.ones_like(size), 2 ** (torch.log2(size.double()).floor().long() - 2))
    return (size + step - 1) // step * step


def _face_coefficients(fv: Tensor, px0: Tensor, py0: Tensor, step: float) -> dict[str, Tensor]:
    """Per-face affine forms over a face's pixel box, pixel (r, c) of the box at p0 + step * (c, -r).

    fv (G, 3, 3), px0, py0 (G,). Returns (G, 3) tensors: barycentric W = W0 + Wc c + Wr r (edge i is
    opposite vertex i), along-edge coordinate from the edge midpoint U = U0 + Uc c + Ur r, half edge
    length h, line-distance scale g (|distance| = |W| g), and z, zz (z_j z_k).
    """
    xy = fv[..., :2]
    start, end = xy.roll(-1, dims=1), xy.roll(-2, dims=1)  # edge i runs from vertex i+1 to i+2 (roll: no gather)
    e = end - start
    ex, ey = e[..., 0], e[..., 1]
    length = e.norm(dim=-1).clamp_min(1e-30)
    area = signed_area2(fv)[:, None]
    dx, dy = px0[:, None] - start[..., 0], py0[:, None] - start[..., 1]
    z = fv[..., 2]
    return {
        "W0": (ex * dy - ey * dx) / area, "Wc": -ey * step / area, "Wr": -ex * step / area,
        "U0": (ex * dx + ey * dy) / length - length / 2, "Uc": ex * step / length, "Ur": -ey * step / length,
        "h": length / 2, "g": area.abs() / length, "z": z, "zz": z.roll(-1, dims=1) * z.roll(-2, dims=1),
    }


def _block_hits(
    co: dict[str, Tensor], nrows: Tensor, ncols: Tensor, box: tuple[int, int], blur2: float,
    perspective_correct: bool, clip_barycentrics: bool,
) -> tuple[Tensor, Tensor]:
    """Hit test and depth of G faces over a padded (rows, cols) pixel box, dense and gather-free.

    Returns hit (G, rows, cols) bool and z (G, rows, cols): pytorch3d's depth (from clipped
    barycentrics when clipping), so the ordering matches stage 2.
    """
    nr, nc = box
    dev, dt = co["W0"].device, co["W0"].dtype
    r = torch.arange(nr, device=dev, dtype=dt)[None, :, None]
    c = torch.arange(nc, device=dev, dtype=dt)[None, None, :]
    e = lambda name, i: co[name][:, i, None, None]  # noqa: E731  (G, 1, 1)
    # One contiguous (G, rows, cols) tensor per edge: no strided reductions over the edge axis.
    ws, inside, d2 = [], None, None
    for i in range(3):
        W = (e("W0", i) + e("Wc", i) * c) + e("Wr", i) * r  # (G, nr, nc)
        inside = W > 0 if inside is None else inside.logical_and_(W > 0)
        if blur2 > 0:
            U = (e("U0", i) + e("Uc", i) * c) + e("Ur", i) * r
            de = (W * e("g", i)).square_().add_((U.abs_() - e("h", i)).clamp_min_(0).square_())
            d2 = de if d2 is None else torch.minimum(d2, de, out=d2)
        ws.append(W.clamp_min_(0) if clip_barycentrics else W)
    hit = inside.logical_or_(d2 < blur2) if blur2 > 0 else inside
    hit &= (torch.arange(nr, device=dev)[None, :, None] < nrows[:, None, None]) & (
        torch.arange(nc, device=dev)[None, None, :] < ncols[:, None, None]
    )
    w0, w1, w2 = ws
    if perspective_correct:  # z = z0 z1 z2 sum(w) / sum(w_i z_j z_k)
        zz = co["zz"]
        den = (w0 * zz[:, 0, None, None]).add_(w1 * zz[:, 1, None, None]).add_(w2 * zz[:, 2, None, None])
        den = den.clamp_min_(1e-30) if clip_barycentrics else den.clamp_min_(DENOM_EPS)
        z = ((w0 + w1).add_(w2)).mul_(co["z"].prod(-1)[:, None, None]).div_(den)
    else:
        zv = co["z"]
        z = (w0 * zv[:, 0, None, None]).add_(w1 * zv[:, 1, None, None]).add_(w2 * zv[:, 2, None, None])
        if clip_barycentrics:
            z = z / ((w0 + w1).add_(w2)).clamp_min_(1e-30)
    return hit & (z >= 0), z


MERGE_EVALS = 1 << 15  # padded pixel evaluations worth one block's fixed cost of ~100 small tensor ops


def _merge_small_groups(sizes: list[tuple[int, int]], counts: list[int]) -> list[int]:
    """Fold box-size groups with few faces into a larger group when the extra padding is cheaper than a
    block of their own (fewer, larger blocks: fewer tensor ops and thread barriers).

    sizes: (rows, cols) per group, counts: faces per group. Returns the group each group is merged into.
    """
    target = list(range(len(sizes)))
    counts = list(counts)
    for g in sorted(range(len(sizes)), key=lambda i: counts[i]):
        nr, nc = sizes[g]
        best, best_cost = None, MERGE_EVALS + 1
        for h, (hr, hc) in enumerate(sizes):
            if h != g and target[h] == h and hr >= nr and hc >= nc:
                cost = counts[g] * (hr * hc - nr * nc)
                if cost < best_cost:
                    best, best_cost = h, cost
        if best is not None:
            target[g] = best
            counts[best] += counts[g]
    for g in range(len(target)):  # follow chains g -> h -> ...
        while target[target[g]] != target[g]:
            target[g] = target[target[g]]
    return target


def _block_pass(
    live: Tensor, fv: Tensor, boxes: tuple[Tensor, Tensor, Tensor, Tensor], n_faces: int, image: tuple[int, int],
    blur_radius: float, perspective_correct: bool, clip_barycentrics: bool, chunk_size: int,
    bound: DepthBound | None, hits: tuple[list, list, list],
) -> None:
    """Hits of the faces ``live`` (G,) (indices into packed fv (N F, 3, 3)), appended to hits = (pix, face, z)
    lists and counted in ``bound`` when given.

    Faces are grouped by (bucketed) pixel-box size; each group is tested as one dense
    (faces, rows, cols) block of affine evaluations, so work ~ sum of box areas and no per-pixel
    gathers are needed. boxes = (col0, row0, ncols, nrows) of all packed faces.
    """
    height, width = image
    s, dev = min(height, width), fv.device
    col0, row0, ncols, nrows = (b[live] for b in boxes)
    bnr, bnc = _bucket(nrows), _bucket(ncols)
    span = 2 * max(height, width) + 1  # > any bucketed side
    sizes, group, counts = torch.unique(bnr * span + bnc, return_inverse=True, return_counts=True)
    sizes = [divmod(key, span) for key in sizes.tolist()]
    group = torch.tensor(_merge_small_groups(sizes, counts.tolist()), device=dev)[group]
    group, order = torch.sort(group, stable=True)
    live, col0, row0, ncols, nrows = live[order], col0[order], row0[order], ncols[order], nrows[order]
    _, counts = torch.unique_consecutive(group, return_counts=True)
    # Everything per face once, in block order; the blocks below take slices (views) of it.
    px0 = (2 * col0 + 1 - width).to(fv.dtype) / s
    py0 = (height - 2 * row0 - 1).to(fv.dtype) / s
    coef = _face_coefficients(fv[live], px0, py0, 2.0 / s)
    # Candidates are many times the kept slots: int32 pixel and face ids when they fit halve their traffic.
    ids = torch.int32 if max(fv.shape[0] // n_faces * height * width, fv.shape[0]) < 2**31 else torch.long
    corner = ((live // n_faces * height + row0) * width + col0).to(ids)
    face_ids = (live % n_faces).to(ids)
    start = 0
    for count, g in zip(counts.tolist(), group[counts.cumsum(0) - 1].tolist()):
        nr, nc = sizes[g]
        offset = (torch.arange(nr, device=dev)[:, None] * width + torch.arange(nc, device=dev)).to(ids)
        per_chunk = max(1, chunk_size // (3 * nr * nc))
        for a in range(start, start + count, per_chunk):
            b = min(a + per_chunk, start + count)
            hit, z = _block_hits(
                {name: c[a:b] for name, c in coef.items()}, nrows[a:b], ncols[a:b], (nr, nc), blur_radius**2,
                perspective_correct, clip_barycentrics,
            )
            hits[0].append((corner[a:b, None, None] + offset).masked_select(hit))
            hits[1].append(face_ids[a:b, None, None].expand_as(hit).masked_select(hit))
            hits[2].append(z.masked_select(hit))
            if bound is not None:
                bound.add(hits[0][-1], hits[2][-1])
        start += count


@torch.no_grad()
def select_faces(
    verts_ndc: Tensor,
    faces: Tensor,
    settings: RasterSettings,
    chunk_size: int = 1 << 22,
    split: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor]:
    """Stage 1 (no grad): the K nearest faces of every pixel.

    Hits come from dense blocks of faces of similar box size (``_block_pass``). While they come, a
    per-pixel depth histogram bounds every pixel's K-th nearest depth (``DepthBound``); candidates
    beyond the bound are dropped before the (pixel, depth, face) sort that keeps the first K per pixel
    (``_k_nearest``). The sort ranks with the output depth itself (``exact_depth``, bit-identical to
    stage 2's zbuf), so the result is the first K by (output depth, face index), exact ties included.

    Args:
        verts_ndc: (N, Nv, 3) (x_ndc, y_ndc, z_view). faces: (F, 3) long, shared by the N meshes.
        settings: image size, K, blur radius, culling, barycentrics, znear (``clip_near`` is not read here).
        chunk_size: (face, edge, pixel) evaluations per block; bounds the temporary memory.
        split: (N, F / 2) bool for a near-clipped virtual mesh (``clip.NearClip``): faces 2f and 2f + 1
            of image n are the halves of one face where split[n, f]; a pixel keeps the nearer half only.
    Returns:
        pix (M,) flat pixel n * H * W + i * W + j, rank (M,) in [0, K), face (M,) packed n * F + f;
        sorted by pixel then rank.
    """
    height, width = settings.hw
    blur_radius, perspective_correct, clip_barycentrics = (settings.blur_radius, settings.perspective_correct,
                                                           settings.clip_barycentrics)
    n_faces = faces.shape[0]
    n_img = verts_ndc.shape[0]
    n_pix = n_img * height * width
    fv = verts_ndc[:, faces].reshape(-1, 3, 3)  # packed faces
    valid = valid_faces(fv, settings.znear, settings.cull_backfaces)
    boxes = _face_pixel_boxes(fv, height, width, blur_radius, valid)
    col0, row0, ncols, nrows = boxes
    live = ((ncols * nrows) > 0).nonzero()[:, 0]
    if live.numel() == 0:
        empty = torch.zeros(0, dtype=torch.long, device=verts_ndc.device)
        return empty, empty, empty
    k = settings.faces_per_pixel
    # The depth bound pays where pixels average > K / 2 candidates (box areas over-count them by ~1.4).
    bound = None
    if split is None and k * n_pix <= 2 * int((nrows * ncols)[live].sum()):  # (halves would count twice)
        z_live = fv[live][:, :, 2]
        bound = DepthBound(n_pix, k, float(z_live.min()), float(z_live.max()), fv.device)
    hits: tuple[list, list, list] = ([], [], [])
    _block_pass(
        live, fv, boxes, n_faces, (height, width), blur_radius, perspective_correct, clip_barycentrics,
        chunk_size, bound, hits,
    )
    pix, face, z = torch.cat(hits[0]), torch.cat(hits[1]), torch.cat(hits[2])
    del hits
    if bound is not None:
        kept = bound.near(pix, z).nonzero().view(-1)  # one index for both gathers
        pix, face = pix.index_select(0, kept), face.index_select(0, kept)
        del bound, kept  # the histogram is (bins, pixels) int32: free it before the sort
    del z
    if split is not None:
        pix, face = _keep_nearer_half(verts_ndc, faces, pix, face, split, (height, width), perspective_correct)
    # Rank with the depth stage 2 outputs (bit-identical), not the block's affine one: faces at equal
    # output depth then come in face-index order, and K = 1 keeps what K = 8 has in slot 0.
    z = exact_depth(verts_ndc, faces, pix, face, (height, width), perspective_correct, clip_barycentrics)
    if not bool((z >= 0).all()):  # the block's depth was >= 0; the exact one may round below
        kept = (z >= 0).nonzero().view(-1)
        pix, face, z = pix.index_select(0, kept), face.index_select(0, kept), z.index_select(0, kept)
    return _k_nearest(pix, face, z, k, n_pix, height * width, n_faces)


def _keep_nearer_half(
    verts_ndc: Tensor, faces: Tensor, pix: Tensor, face: Tensor, split: Tensor, image: tuple[int, int],
    perspective_correct: bool,
) -> tuple[Tensor, Tensor]:
    """Drop the farther half of split faces hitting the same pixel (pytorch3d's rule: keep the smaller signed
    distance; the first half on ties). pix, face (M,) candidates of the virtual mesh (2F faces)."""
    height, width = image
    n_half = faces.shape[0] // 2
    img = pix.long() // (height * width)
    idx = split.reshape(-1)[img * n_half + face.long() // 2].nonzero().view(-1)
    if idx.numel() == 0:
        return pix, face
    p, f = pix[idx].long(), face[idx].long()
    vert_idx = (faces.index_select(0, f) + (p // (height * width) * verts_ndc.shape[1])[:, None]).t()
    x, y, z = verts_ndc.reshape(-1, 3).t()[:, vert_idx]
    px, py = pixel_centres(p, height, width, verts_ndc.dtype)
    inside = _bary_depth(x, y, z, px, py, perspective_correct, False)[1]
    dist2 = _nearest_edge(x, y, px, py)[0]
    signed = torch.where(inside, -dist2, dist2)
    key = p * n_half + f // 2
    order = torch.sort(f % 2, stable=True).indices
    order = order[torch.sort(signed[order], stable=True).indices]
    order = order[torch.sort(key[order], stable=True).indices]
    later = order[1:][key[order][1:] == key[order][:-1]]  # the second of a pair at a pixel
    keep = torch.ones_like(pix, dtype=torch.bool)
    keep[idx[later]] = False
    return pix[keep], face[keep]


def exact_depth(
    verts_ndc: Tensor, faces: Tensor, pix: Tensor, face: Tensor, image: tuple[int, int],
    perspective_correct: bool, clip_barycentrics: bool,
) -> Tensor:
    """Output depth (M,) of candidates pix (M,) flat n * H * W + i * W + j, face (M,) f in [0, F) (the image
    is pix's): the same float operations as stage 2's zbuf (``_bary_depth``), so bit-identical to it.
    verts_ndc (N, Nv, 3), faces (F, 3). Chunked: temporaries ~ SLOT_CHUNK."""
    height, width = image
    n_faces = faces.shape[0]
    table = verts_ndc[:, faces].reshape(-1, 9)  # packed face -> its 3 vertices: one 36-byte row per gather
    out = []
    for a in range(0, pix.numel(), SLOT_CHUNK):
        p, f = pix[a : a + SLOT_CHUNK].long(), face[a : a + SLOT_CHUNK].long()
        rows = table.index_select(0, p // (height * width) * n_faces + f).t().contiguous()
        x, y, z = rows.view(3, 3, -1).transpose(0, 1)  # (3, M) each: [vertex, slot]
        px, py = pixel_centres(p, height, width, verts_ndc.dtype)
        out.append(_bary_depth(x, y, z, px, py, perspective_correct, clip_barycentrics)[2])
    return torch.cat(out) if out else verts_ndc.new_zeros(0)


def rasterize_packed(verts_ndc: Tensor, faces: Tensor, settings: RasterSettings) -> PackedFragments:
    """Rasterise N meshes sharing ``faces`` into packed fragments (occupied slots only).

    Args:
        verts_ndc: (N, Nv, 3) (x_ndc, y_ndc, z_view), may require grad. faces: (F, 3) long.
        settings: image size, K, blur radius, ... (``RasterSettings``).
    Returns:
        PackedFragments with M slots; bary (M, 3), zbuf (M,), dists (M,) carry gradients to verts_ndc.
    """
    if verts_ndc.ndim != 3 or verts_ndc.shape[-1] != 3:
        raise ValueError(f"verts_ndc must be (N, Nv, 3), got {tuple(verts_ndc.shape)}")
    if faces.ndim != 2 or faces.shape[-1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(faces.shape)}")
    if not isinstance(settings, RasterSettings):
        raise TypeError(f"rasterize_packed: settings must be a RasterSettings, got {type(settings).__name__}")
    height, width = settings.hw
    perspective_correct, clip_barycentrics = settings.perspective_correct, settings.clip_barycentrics
    faces = faces.to(verts_ndc.device)
    if settings.clip_near:
        clipped = clip_near_plane(verts_ndc, faces, settings.znear, perspective_correct)
        if clipped is not None:
            return _rasterize_clipped(clipped, faces.shape[0], settings)
    pix, rank, face = select_faces(verts_ndc.detach(), faces, settings)
    n_img, n_verts = verts_ndc.shape[:2]
    n_faces = faces.shape[0]
    vert_idx = faces[face % n_faces] + (face // n_faces * n_verts)[:, None]  # (M, 3) into packed verts
    px, py = pixel_centres(pix, height, width, verts_ndc.dtype)
    bary, zbuf, dists = slot_geometry(
        verts_ndc.reshape(n_img * n_verts, 3), vert_idx, px, py, perspective_correct, clip_barycentrics
    )
    return PackedFragments(pix, rank, face, bary, zbuf, dists, (n_img, height, width, settings.faces_per_pixel))


def _rasterize_clipped(clipped: NearClip, n_faces: int, settings: RasterSettings) -> PackedFragments:
    """``rasterize_packed`` on the virtual mesh of near-clipped faces, mapped back to the F original faces."""
    height, width = settings.hw
    perspective_correct, clip_barycentrics = settings.perspective_correct, settings.clip_barycentrics
    verts, faces = clipped.verts, clipped.faces
    pix, rank, vface = select_faces(verts.detach(), faces, settings.replace(znear=clipped.znear), split=clipped.split)
    n_img, n_verts = verts.shape[:2]
    n_virtual = faces.shape[0]
    vert_idx = faces[vface % n_virtual] + (vface // n_virtual * n_verts)[:, None]
    px, py = pixel_centres(pix, height, width, verts.dtype)
    bary, zbuf, dists = slot_geometry(verts.reshape(-1, 3), vert_idx, px, py, perspective_correct, clip_barycentrics)
    piece = clipped.is_piece.reshape(-1)[vface].nonzero().view(-1)
    conv = clipped.conv.reshape(-1, 3, 3)[vface[piece]]
    bary = bary.index_put((piece,), torch.bmm(conv, bary[piece, :, None])[..., 0])
    face = vface // n_virtual * n_faces + vface % n_virtual // 2
    return PackedFragments(pix, rank, face, bary, zbuf, dists, (n_img, height, width, settings.faces_per_pixel))


def rasterize_meshes(verts_ndc: Tensor, faces: Tensor, settings: RasterSettings) -> Fragments:
    """Rasterise N meshes sharing ``faces`` with pytorch3d's semantics (module docstring).

    Args:
        verts_ndc: (N, Nv, 3) (x_ndc, y_ndc, z_view) from ``Cameras.transform_points_ndc``.
        faces: (F, 3) long, counter-clockwise in NDC when front-facing.
        settings: ``RasterSettings`` (image size, K, blur radius as an NDC distance, ...).
    Returns:
        Fragments: pix_to_face (N, H, W, K) long, zbuf (N, H, W, K), bary_coords (N, H, W, K, 3),
        dists (N, H, W, K); -1 padding.

    >>> v = torch.tensor([[[-0.5, -0.5, 2.0], [0.5, -0.5, 2.0], [0.0, 0.5, 2.0]]])
    >>> frags = rasterize_meshes(v, torch.tensor([[0, 1, 2]]), RasterSettings(image_size=4, faces_per_pixel=2))
    >>> frags.pix_to_face[0, :, :, 0].tolist()
    [[-1, -1, -1, -1], [-1, -1, -1, -1], [-1, 0, 0, -1], [-1, -1, -1, -1]]
    """
    return rasterize_packed(verts_ndc, faces, settings).to_dense()


def blur_radius_from_sigma(sigma: float, min_prob: float = 1e-4) -> float:
    """NDC distance beyond which sigmoid(-d**2 / sigma) < min_prob (pytorch3d's recipe, as a distance)."""
    return math.sqrt(math.log(1.0 / min_prob - 1.0) * sigma)
