"""Mesh connectivity and the differential quantities the shape regularizers need.

Uniform Laplacian, vertex degrees, face adjacency across interior edges, dihedral cosines in
SoftRas's form and adjacent-face normal cosines. Connectivity helpers take ``faces`` (F, 3) long
and work on any device; geometric ones take vertices with any leading batch shape (..., N, 3).
"""
from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from shoerecon.geometry.mesh import face_areas_normals, unique_edges


def vertex_degrees(edges: Tensor, num_verts: int) -> Tensor:
    """Number of distinct neighbours of every vertex.

    Args:
        edges: (E, 2) long unique undirected edges. num_verts: N.
    Returns:
        (N,) long degrees (0 for isolated vertices).

    >>> vertex_degrees(torch.tensor([[0, 1], [1, 2]]), 4).tolist()
    [1, 2, 1, 0]
    """
    deg = torch.zeros(num_verts, dtype=torch.long, device=edges.device)
    return deg.index_add(0, edges.reshape(-1), torch.ones_like(edges.reshape(-1)))


def uniform_laplacian(verts: Tensor, faces: Tensor) -> Tensor:
    """Uniform (umbrella) Laplacian: the mean of the neighbours minus the vertex.

    ``L(x)_i = (1 / |N(i)|) * sum_{j in N(i)} x_j - x_i``; zero at isolated vertices. It vanishes at
    every vertex whose neighbours are placed symmetrically around it (e.g. the interior of a flat
    regular grid), and it is invariant to translation and linear in ``verts``.

    Args:
        verts: (..., N, 3) positions (or any per-vertex vectors, e.g. offsets).
        faces: (F, 3) long.
    Returns:
        (..., N, 3).

    >>> v = torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0]])
    >>> uniform_laplacian(v, torch.tensor([[0, 1, 2]]))[0].tolist()
    [0.5, 0.5, 0.0]
    """
    num_verts = verts.shape[-2]
    edges = unique_edges(faces)
    src = torch.cat([edges[:, 0], edges[:, 1]])
    dst = torch.cat([edges[:, 1], edges[:, 0]])
    neighbour_sum = torch.zeros_like(verts).index_add(-2, src, verts.index_select(-2, dst))
    deg = vertex_degrees(edges, num_verts).to(verts.dtype)
    mean = neighbour_sum / deg.clamp_min(1).unsqueeze(-1)
    return torch.where((deg > 0).unsqueeze(-1), mean - verts, torch.zeros_like(verts))


class EdgeQuads(NamedTuple):
    """The two faces on each interior (manifold) edge.

    Attributes:
        verts: (E, 4) long ``(v0, v1, a, b)``: the edge ``v0 < v1``, ``a`` the third vertex of face
            ``faces[0]``, ``b`` the third vertex of face ``faces[1]``.
        faces: (E, 2) long indices of the two faces.
    """

    verts: Tensor
    faces: Tensor


def edge_quads(faces: Tensor) -> EdgeQuads:
    """Interior edges with their two adjacent faces and opposite vertices.

    Only edges shared by exactly two faces are kept (boundary and non-manifold edges are dropped).
    Unlike SoftRas's ``FlattenLoss`` (which builds its edge list from ``faces[:, 0:2]`` and
    ``faces[:, 1:3]`` only, so it misses the ``(v2, v0)`` edges), every edge of every face counts.

    Args:
        faces: (F, 3) long.
    Returns:
        EdgeQuads with (E, 4) vertices and (E, 2) faces, sorted by edge.

    >>> q = edge_quads(torch.tensor([[0, 1, 2], [2, 1, 3]]))
    >>> q.verts.tolist(), q.faces.tolist()
    ([[1, 2, 0, 3]], [[0, 1]])
    """
    num_faces = faces.shape[0]
    corners = torch.arange(3, device=faces.device)
    # Half-edge k of face f joins corners k and k+1; corner k+2 is opposite.
    ends = torch.stack([faces[:, corners], faces[:, (corners + 1) % 3]], dim=-1).reshape(-1, 2)  # (3F, 2)
    opposite = faces[:, (corners + 2) % 3].reshape(-1)
    face_id = torch.arange(num_faces, device=faces.device).repeat_interleave(3)
    ends = torch.sort(ends, dim=1).values
    _, inverse, counts = torch.unique(ends, dim=0, return_inverse=True, return_counts=True)
    order = torch.sort(inverse, stable=True).indices
    first = torch.cumsum(counts, 0) - counts  # first position of each edge group in `order`
    interior = counts == 2
    i0, i1 = order[first[interior]], order[first[interior] + 1]
    quads = torch.stack([ends[i0, 0], ends[i0, 1], opposite[i0], opposite[i1]], dim=-1)
    return EdgeQuads(quads, torch.stack([face_id[i0], face_id[i1]], dim=-1))


def dihedral_cosines(verts: Tensor, quads: Tensor, eps: float = 1e-6) -> Tensor:
    """Cosine of the interior dihedral angle at each interior edge, in SoftRas's ``FlattenLoss`` form.

    With ``e = v1 - v0`` and the opposite vertices ``a``, ``b``, the components of ``a - v0`` and
    ``b - v0`` perpendicular to ``e`` are ``p = (a - v0) - e (e.(a - v0)) / |e|^2`` (same for ``q``),
    and ``cos = p.q / (|p| |q| + eps)`` where SoftRas computes ``|p| = |a - v0| sin(angle)``. A flat
    pair of faces gives ``cos = -1`` (angle pi), a pair folded shut gives ``+1``.

    Args:
        verts: (..., N, 3). quads: (E, 4) long ``(v0, v1, a, b)`` from :func:`edge_quads`.
    Returns:
        (..., E).
    """
    v0, v1, a, b = (verts[..., quads[:, k], :] for k in range(4))
    edge = v1 - v0
    edge_sq = edge.pow(2).sum(-1)
    edge_len = (edge_sq + eps).sqrt()

    def perpendicular(w: Tensor) -> tuple[Tensor, Tensor]:
        w_sq = w.pow(2).sum(-1)
        w_len = (w_sq + eps).sqrt()
        dot = (edge * w).sum(-1)
        cos = dot / (edge_len * w_len + eps)
        sin = (1 - cos.pow(2) + eps).sqrt()
        return w - edge * (dot / (edge_sq + eps)).unsqueeze(-1), w_len * sin

    p, p_len = perpendicular(a - v0)
    q, q_len = perpendicular(b - v0)
    return (p * q).sum(-1) / (p_len * q_len + eps)


def adjacent_normal_cosines(verts: Tensor, faces: Tensor, face_pairs: Tensor, eps: float = 1e-12) -> Tensor:
    """Cosine between the unit normals of each pair of adjacent faces.

    Args:
        verts: (..., N, 3). faces: (F, 3) long. face_pairs: (E, 2) long (e.g. ``edge_quads(faces).faces``).
    Returns:
        (..., E): 1 where the two faces are coplanar and consistently oriented.
    """
    normals = torch.nn.functional.normalize(face_areas_normals(verts, faces), dim=-1, eps=eps)
    return (normals[..., face_pairs[:, 0], :] * normals[..., face_pairs[:, 1], :]).sum(-1)


def edge_lengths(verts: Tensor, edges: Tensor) -> Tensor:
    """Euclidean lengths of edges. verts (..., N, 3), edges (E, 2) long -> (..., E)."""
    return (verts[..., edges[:, 1], :] - verts[..., edges[:, 0], :]).norm(dim=-1)
