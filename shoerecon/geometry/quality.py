"""Mesh quality in one place: triangle angles, topology checks (closed, oriented, genus 0), self-intersections,
and the summary the remesher and the evaluation report print. Functional: torch tensors in, tensors/floats out.
"""
from __future__ import annotations

import torch
from torch import Tensor

from shoerecon.geometry.mesh import unique_edges
from shoerecon.geometry.uv import connected_components


def triangle_angles(verts: Tensor, faces: Tensor) -> Tensor:
    """Interior angles in radians, angle i at corner i. verts (N, 3), faces (F, 3) -> (F, 3).

    >>> v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0]])
    >>> torch.rad2deg(triangle_angles(v, torch.tensor([[0, 1, 2]]))).round().tolist()
    [[90.0, 45.0, 45.0]]
    """
    p = verts[faces]  # (F, 3, 3)
    out = []
    for i in range(3):
        a = p[:, (i + 1) % 3] - p[:, i]
        b = p[:, (i + 2) % 3] - p[:, i]
        cos = (a * b).sum(-1) / (a.norm(dim=-1) * b.norm(dim=-1)).clamp_min(1e-30)
        out.append(torch.acos(cos.clamp(-1, 1)))
    return torch.stack(out, dim=-1)


def edge_face_counts(faces: Tensor) -> tuple[Tensor, Tensor]:
    """Unique undirected edges and how many faces use each. (F, 3) -> (E, 2) long, (E,) long."""
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)
    e = torch.sort(e, dim=1).values
    edges, counts = torch.unique(e, dim=0, return_counts=True)
    return edges, counts


def is_closed_manifold(faces: Tensor) -> bool:
    """Every edge is shared by exactly two faces (closed, edge-manifold) and no directed edge repeats (oriented)."""
    _, counts = edge_face_counts(faces)
    directed = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)
    oriented = torch.unique(directed, dim=0).shape[0] == directed.shape[0]
    return bool((counts == 2).all()) and oriented


def euler_characteristic(verts: Tensor, faces: Tensor) -> int:
    """V - E + F over the referenced vertices (2 for a closed genus-0 surface)."""
    v = torch.unique(faces).numel()
    return v - unique_edges(faces).shape[0] + faces.shape[0]


def num_components(faces: Tensor) -> int:
    """Number of vertex-connected components of a face list (F, 3)."""
    return int(connected_components(faces).max()) + 1 if faces.numel() else 0


def signed_volume(verts: Tensor, faces: Tensor) -> Tensor:
    """Enclosed volume, positive for outward (counter-clockwise from outside) faces. -> () tensor."""
    p = verts[faces]
    return (torch.linalg.cross(p[:, 0], p[:, 1], dim=-1) * p[:, 2]).sum() / 6


def is_closed_genus0(verts: Tensor, faces: Tensor) -> bool:
    """Closed oriented manifold, one component, Euler characteristic 2, outward orientation."""
    return (
        is_closed_manifold(faces)
        and num_components(faces) == 1
        and euler_characteristic(verts, faces) == 2
        and bool(signed_volume(verts, faces) > 0)
    )


def mesh_quality(verts: Tensor, faces: Tensor) -> dict[str, float]:
    """Scalar quality summary for reports: angles in degrees, edge-length spread, topology flags."""
    angles = torch.rad2deg(triangle_angles(verts.double(), faces))
    min_per_face = angles.min(dim=1).values
    edges = unique_edges(faces)
    lengths = (verts[edges[:, 0]] - verts[edges[:, 1]]).double().norm(dim=-1)
    return {
        "num_verts": float(torch.unique(faces).numel()),
        "num_faces": float(faces.shape[0]),
        "min_angle_deg": float(min_per_face.min()),
        "mean_min_angle_deg": float(min_per_face.mean()),
        "frac_angles_below_20deg": float((angles < 20).double().mean()),
        "max_angle_deg": float(angles.max()),
        "edge_length_cv": float(lengths.std() / lengths.mean().clamp_min(1e-30)),
        "closed_manifold": float(is_closed_manifold(faces)),
        "euler_characteristic": float(euler_characteristic(verts, faces)),
    }


def _orient(a: Tensor, b: Tensor, c: Tensor, d: Tensor) -> Tensor:
    """Signed volume (x6) of tetrahedron abcd; > 0 when d is on the side a->b->c's normal points to. (..., 3)."""
    return ((b - a) * torch.linalg.cross(c - a, d - a, dim=-1)).sum(-1)


def segments_cross_triangles(p: Tensor, q: Tensor, tri: Tensor) -> Tensor:
    """Does segment pq cross triangle tri strictly (not just touch)? p, q (..., 3), tri (..., 3, 3) -> (...) bool."""
    a, b, c = tri.unbind(-2)
    sp, sq = _orient(a, b, c, p), _orient(a, b, c, q)
    opposite = sp * sq < 0
    s1, s2, s3 = _orient(p, q, a, b), _orient(p, q, b, c), _orient(p, q, c, a)
    inside = ((s1 > 0) & (s2 > 0) & (s3 > 0)) | ((s1 < 0) & (s2 < 0) & (s3 < 0))
    return opposite & inside


def triangles_intersect(t1: Tensor, t2: Tensor) -> Tensor:
    """Non-coplanar triangle-triangle intersection: some edge of one crosses the other. (..., 3, 3) x2 -> (...)."""
    hit = torch.zeros(t1.shape[:-2], dtype=torch.bool, device=t1.device)
    for s, t in ((t1, t2), (t2, t1)):
        for i in range(3):
            hit |= segments_cross_triangles(s[..., i, :], s[..., (i + 1) % 3, :], t)
    return hit


def candidate_pairs(lo: Tensor, hi: Tensor, max_pairs: int = 2**22):
    """Yield chunks of face pairs (i, j), i < j, whose bounding boxes overlap (sort and sweep along x).

    lo, hi: (F, 3) per-face box corners. Yields (K, 2) long tensors.
    """
    order = torch.argsort(lo[:, 0])
    lo_s, hi_s = lo[order], hi[order]
    # faces after i in sorted order whose box starts before face i's box ends
    ends = torch.searchsorted(lo_s[:, 0].contiguous(), hi_s[:, 0].contiguous(), right=True)
    counts = (ends - torch.arange(len(order), device=lo.device) - 1).clamp_min(0)
    start = 0
    while start < len(order):
        csum = torch.cumsum(counts[start:], 0)
        stop = start + max(1, int(torch.searchsorted(csum, torch.tensor(max_pairs, device=csum.device))))
        i = torch.repeat_interleave(torch.arange(start, stop, device=lo.device), counts[start:stop])
        if len(i):
            first = torch.cumsum(counts[start:stop], 0) - counts[start:stop]
            j = i + 1 + torch.arange(len(i), device=lo.device) - torch.repeat_interleave(first, counts[start:stop])
            keep = ((lo_s[j] <= hi_s[i]) & (lo_s[i] <= hi_s[j])).all(-1)
            yield torch.stack([order[i[keep]], order[j[keep]]], dim=-1)
        start = stop


def self_intersecting_faces(verts: Tensor, faces: Tensor) -> Tensor:
    """Which faces cross another face that shares no vertex with them. verts (N, 3), faces (F, 3) -> (F,) bool."""
    tri = verts.double()[faces]
    lo, hi = tri.min(dim=1).values, tri.max(dim=1).values
    flagged = torch.zeros(faces.shape[0], dtype=torch.bool, device=verts.device)
    for pairs in candidate_pairs(lo, hi):
        fa, fb = faces[pairs[:, 0]], faces[pairs[:, 1]]
        share = (fa[:, :, None] == fb[:, None, :]).flatten(1).any(-1)
        pairs = pairs[~share]
        hit = triangles_intersect(tri[pairs[:, 0]], tri[pairs[:, 1]])
        flagged[pairs[hit].reshape(-1)] = True
    return flagged


__all__ = [
    "triangle_angles", "edge_face_counts", "is_closed_manifold", "is_closed_genus0", "euler_characteristic",
    "num_components", "signed_volume", "mesh_quality", "segments_cross_triangles", "triangles_intersect",
    "candidate_pairs", "self_intersecting_faces",
]
