"""Seam error: the mean colour jump across UV chart boundaries in renders (issue 6, v2 UV ablation).

A UV seam is a mesh edge whose two faces give its endpoints different texture coordinates, so the
texture is sampled from two unrelated places on either side of it; bilinear filtering near chart
borders and an imperfectly learned texture show up as a visible colour jump there.

Measure: render the textured mesh with hard K=1 rasterisation; for every pair of 4-neighbouring
pixels whose nearest faces differ and share a mesh edge, take the mean absolute RGB difference.
``seam_error`` is its mean over pairs straddling seam edges, ``seam_baseline`` its mean over pairs
straddling ordinary (non-seam) edges, i.e. the texture's natural variation between neighbouring
pixels at the same resolution, and ``seam_excess = seam_error - seam_baseline``. Pixel pairs whose
faces only touch at a vertex, or not at all (occlusion boundaries), are ignored.

Only manifold interior edges (exactly two faces) count; boundary and non-manifold edges are left out.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional

import torch
from torch import Tensor

from shoerecon.export.turntable import preview_renderer
from shoerecon.geometry.mesh import Mesh, Meshes
from shoerecon.render import Cameras, Renderer


class SeamEdges(NamedTuple):
    """Interior mesh edges, E of them.

    verts: (E, 2) long, the edge's vertex indices, smaller first.
    faces: (E, 2) long, the two faces sharing it, smaller index first.
    is_seam: (E,) bool, True where the two faces disagree on the UV of an endpoint.
    """
    verts: Tensor
    faces: Tensor
    is_seam: Tensor


def seam_edges(faces: Tensor, uv_faces: Tensor, uvs: Optional[Tensor] = None, atol: float = 1e-6) -> SeamEdges:
    """Find the interior edges of a mesh and which of them are UV seams.

    Args:
        faces: (F, 3) long vertex indices. uv_faces: (F, 3) long indices into uvs.
        uvs: (T, 2) optional; given, an edge is a seam only if the UV *coordinates* of an endpoint differ
            by more than ``atol`` (duplicated UV entries at the same place are no seam); without it, any
            difference of UV *indices* is a seam.
    Returns:
        SeamEdges with E = number of edges shared by exactly two faces.

    >>> faces = torch.tensor([[0, 1, 2], [0, 2, 3]])           # a quad split along edge 0-2
    >>> seam_edges(faces, faces).is_seam.tolist()               # shared UV vertices: continuous
    [False]
    >>> seam_edges(faces, torch.tensor([[0, 1, 2], [4, 5, 3]])).is_seam.tolist()  # 0 and 2 split
    [True]
    """
    if faces.ndim != 2 or faces.shape[1] != 3 or uv_faces.shape != faces.shape:
        raise ValueError(
            f"seam_edges: faces and uv_faces must both be (F, 3), got {tuple(faces.shape)} and {tuple(uv_faces.shape)}"
        )
    device = faces.device
    n_faces = faces.shape[0]
    uv_faces = uv_faces.to(device)
    nxt = torch.tensor([1, 2, 0], device=device)
    a, b = faces.reshape(-1), faces[:, nxt].reshape(-1)  # half-edges (3F,): corner k -> k + 1
    ua, ub = uv_faces.reshape(-1), uv_faces[:, nxt].reshape(-1)
    face_of = torch.arange(n_faces, device=device).repeat_interleave(3)
    swap = a > b  # orient every half-edge smaller vertex first, carrying its UV indices along
    lo, hi = torch.where(swap, b, a), torch.where(swap, a, b)
    ulo, uhi = torch.where(swap, ub, ua), torch.where(swap, ua, ub)
    key = lo * (int(faces.max()) + 1 if faces.numel() else 1) + hi
    key, order = torch.sort(key, stable=True)
    counts = torch.unique_consecutive(key, return_counts=True)[1]
    start = (torch.cumsum(counts, 0) - counts)[counts == 2]  # first sorted half-edge of every two-face edge
    i0, i1 = order[start], order[start + 1]
    if uvs is None:
        seam = (ulo[i0] != ulo[i1]) | (uhi[i0] != uhi[i1])
    else:
        uvs = uvs.to(device)
        far = lambda x, y: (uvs[x] - uvs[y]).abs().amax(-1) > atol  # noqa: E731
        seam = far(ulo[i0], ulo[i1]) | far(uhi[i0], uhi[i1])
    f0, f1 = face_of[i0], face_of[i1]
    return SeamEdges(
        torch.stack([lo[i0], hi[i0]], -1), torch.stack([torch.minimum(f0, f1), torch.maximum(f0, f1)], -1), seam
    )


def neighbour_pairs(pix_to_face: Tensor, rgb: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """All 4-neighbour pixel pairs (horizontal and vertical) of a batch of hard renders.

    Args:
        pix_to_face: (V, H, W) long nearest face per pixel (-1: background). rgb: (V, 3, H, W).
    Returns:
        face_a, face_b: (P,) long; diff: (P,) mean absolute RGB difference of the two pixels,
        P = V * (H * (W - 1) + (H - 1) * W).
    """
    diff_x = (rgb[..., :, 1:] - rgb[..., :, :-1]).abs().mean(1)  # (V, H, W-1)
    diff_y = (rgb[..., 1:, :] - rgb[..., :-1, :]).abs().mean(1)  # (V, H-1, W)
    fa = torch.cat([pix_to_face[..., :, :-1].reshape(-1), pix_to_face[..., :-1, :].reshape(-1)])
    fb = torch.cat([pix_to_face[..., :, 1:].reshape(-1), pix_to_face[..., 1:, :].reshape(-1)])
    return fa, fb, torch.cat([diff_x.reshape(-1), diff_y.reshape(-1)])


def seam_pair_sums(pix_to_face: Tensor, rgb: Tensor, edges: SeamEdges, num_faces: int) -> dict[str, Tensor]:
    """Sums and counts of colour jumps over neighbouring pixels on either side of seam / non-seam edges.

    Args:
        pix_to_face: (V, H, W) long face index in [0, F) or -1. rgb: (V, 3, H, W).
        edges: from :func:`seam_edges`. num_faces: F.
    Returns:
        {"seam_sum", "seam_count", "plain_sum", "plain_count"}: () float64 tensors (sums of the
        per-pair mean absolute RGB differences, and pair counts).
    """
    fa, fb, diff = neighbour_pairs(pix_to_face.to(edges.faces.device), rgb.to(edges.faces.device))
    keep = (fa >= 0) & (fb >= 0) & (fa != fb)
    fa, fb, diff = fa[keep], fb[keep], diff[keep].double()
    pair_key = torch.minimum(fa, fb) * num_faces + torch.maximum(fa, fb)
    edge_key = edges.faces[:, 0] * num_faces + edges.faces[:, 1]
    edge_key, order = torch.sort(edge_key)
    seam = edges.is_seam[order]
    pos = torch.searchsorted(edge_key, pair_key).clamp_max(max(edge_key.numel() - 1, 0))
    shares_edge = edge_key[pos] == pair_key if edge_key.numel() else torch.zeros_like(pair_key, dtype=torch.bool)
    on_seam = shares_edge & seam[pos] if edge_key.numel() else shares_edge
    on_plain = shares_edge & ~on_seam
    return {
        "seam_sum": diff[on_seam].sum(), "seam_count": on_seam.sum().double(),
        "plain_sum": diff[on_plain].sum(), "plain_count": on_plain.sum().double(),
    }


def seam_summary(sums: dict[str, Tensor]) -> dict[str, float]:
    """seam_error, seam_baseline, seam_excess (NaN where no pair of that kind), seam_pairs and seam_fraction
    (seam pairs / all pairs across a shared edge: how much of the rendered surface seams cut) from sums."""
    mean = lambda s, c: float(s / c) if float(c) > 0 else math.nan  # noqa: E731
    err = mean(sums["seam_sum"], sums["seam_count"])
    base = mean(sums["plain_sum"], sums["plain_count"])
    return {"seam_error": err, "seam_baseline": base, "seam_excess": err - base, "seam_pairs": int(sums["seam_count"]),
            "seam_fraction": mean(sums["seam_count"], sums["seam_count"] + sums["plain_count"])}


# ------------------------------------------------------------------------------------------ rendering
def render_with_faces(mesh: Mesh, cameras: Cameras, renderer: Renderer) -> tuple[Tensor, Tensor]:
    """Hard-render one mesh and keep the nearest face of every pixel, from a single rasterisation.

    The RGBA equals ``export.turntable.render_mesh`` with the same hard renderer (K=1, blend="hard").

    Args:
        mesh: textured (uvs + texture) or not (white). cameras: (V,). renderer: blend="hard".
    Returns:
        rgba (V, 4, H, W) and pix_to_face (V, H, W) long face index in [0, F), -1 for background.
    """
    if renderer.cfg.blend != "hard":
        raise ValueError(f"render_with_faces needs a hard renderer (blend='hard'), got blend={renderer.cfg.blend!r}")
    device = mesh.verts.device
    meshes = Meshes.from_mesh(mesh).apply(Tensor.float)
    with torch.no_grad():
        frags = renderer.rasterize_packed(meshes.verts, meshes.faces, cameras.to(device=device).reshape(1, -1))
        rgba = renderer.shade(frags, meshes)
    n, h, w, _ = frags.shape
    first = frags.rank == 0
    p2f = torch.full((n * h * w,), -1, dtype=torch.long, device=device)
    p2f[frags.pix[first]] = frags.face[first] % mesh.faces.shape[0]
    return rgba.permute(0, 3, 1, 2), p2f.view(n, h, w)


def seam_error(
    mesh: Mesh,
    cameras: Cameras | None = None,
    renderer: Renderer | None = None,
    rgb: Tensor | None = None,
    pix_to_face: Tensor | None = None,
    edges: SeamEdges | None = None,
) -> dict[str, float]:
    """Seam error of a textured mesh seen from ``cameras`` (module docstring).

    Either pass cameras (V,) and a hard renderer (K=1), or renders you already have: rgb (V, 3, H, W)
    with their pix_to_face (V, H, W) from :func:`render_with_faces`.
    Returns:
        {"seam_error", "seam_baseline", "seam_excess", "seam_pairs", "seam_fraction"}; the first three are
        NaN when no pixel pair straddles an edge of that kind (e.g. a layout without seams).

    >>> from shoerecon.geometry.primitives import quad
    >>> m = quad(); m.texture = torch.rand(3, 8, 8)
    >>> seam_error(m, Cameras.turntable(1, elevation=0.0), _hard_renderer(16))["seam_pairs"]  # no seams
    0
    """
    if mesh.uvs is None or mesh.uv_faces is None:
        raise ValueError("seam_error needs a mesh with a UV layout (uvs, uv_faces)")
    if rgb is None or pix_to_face is None:
        if cameras is None or renderer is None:
            raise ValueError("seam_error needs cameras and a renderer, or rgb with pix_to_face")
        rgba, pix_to_face = render_with_faces(mesh, cameras, renderer)
        rgb = rgba[:, :3]
    edges = edges if edges is not None else seam_edges(mesh.faces, mesh.uv_faces, mesh.uvs)
    return seam_summary(seam_pair_sums(pix_to_face, rgb, edges, mesh.faces.shape[0]))


def _hard_renderer(image_size: int) -> Renderer:
    return preview_renderer(image_size)


__all__ = [
    "SeamEdges", "seam_edges", "neighbour_pairs", "seam_pair_sums", "seam_summary", "render_with_faces", "seam_error",
]
