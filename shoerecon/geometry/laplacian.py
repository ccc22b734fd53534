"""Mesh connectivity and the differential quantities the shape regularizers need.

Uniform Laplacian, vertex degrees, face adjacency across interior edges, dihedral cosines in
SoftRas's form and adjacent-face normal cosines. Connectivity helpers take ``faces`` (F, 3) long
and work on any device; geometric ones take vertices with any leading batch shape (..., N, 3).
"""
from __future__ import annotations

import weakref
from typing import Callable, NamedTuple, Optional, TypeVar

import torch
from torch import Tensor

from shoerecon.geometry.mesh import unique_edges

T = TypeVar("T")
_CACHE: dict[tuple, tuple] = {}
_CACHE_SIZE = 8


def cached_on_faces(fn: Callable[[Tensor], T]) -> Callable[[Tensor], T]:
    """Memoise a connectivity function of ``faces`` (the topology is fixed while training).

    The entry is keyed by the tensor object (weak reference), its storage pointer, shape, device
    and in-place version counter, so a new or modified faces tensor is never served a stale result.
    """
    def wrapper(faces: Tensor) -> T:
        key = (fn.__name__, id(faces))
        sig = (faces.data_ptr(), tuple(faces.shape), str(faces.device), faces._version)
        hit = _CACHE.get(key)
        if hit is not None and hit[0]() is faces and hit[1] == sig:
            return hit[2]
        result = fn(faces)
        if len(_CACHE) >= _CACHE_SIZE:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = (weakref.ref(faces), sig, result)
        return result

    wrapper.__name__, wrapper.__doc__, wrapper.uncached = fn.__name__, fn.__doc__, fn
    return wrapper


def gather_verts(verts: Tensor, index: Tensor) -> Tensor:
    """``verts[..., index, :]`` via index_select (backward: a fast index_add). (..., N, C), (*I) -> (..., *I, C)."""
    out = verts.index_select(-2, index.reshape(-1))
    return out.reshape(*verts.shape[:-2], *index.shape, verts.shape[-1])


@cached_on_faces
def mesh_edges(faces: Tensor) -> Tensor:
    """``geometry.mesh.unique_edges`` cached per faces tensor: (E, 2) unique undirected edges, sorted.

    >>> mesh_edges(torch.tensor([[0, 1, 2], [2, 1, 3]])).tolist()
    [[0, 1], [0, 2], [1, 2], [1, 3], [2, 3]]
    """
    return unique_edges(faces)


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


def uniform_laplacian(verts: Tensor, faces: Tensor, operands: Optional[tuple] = None) -> Tensor:
    """Uniform (umbrella) Laplacian: the mean of the neighbours minus the vertex.

    ``L(x)_i = (1 / |N(i)|) * sum_{j in N(i)} x_j - x_i``; zero at isolated vertices. It vanishes at
    every vertex whose neighbours are placed symmetrically around it (e.g. the interior of a flat
    regular grid), and it is invariant to translation and linear in ``verts``.

    Args:
        verts: (..., N, 3) positions (or any per-vertex vectors, e.g. offsets).
        faces: (F, 3) long.
        operands: ``_laplacian_operands(faces)`` when the caller caches them (``geometry.Template``); None:
            from the per-faces-tensor cache.
    Returns:
        (..., N, 3).

    >>> v = torch.tensor([[0., 0, 0], [1, 0, 0], [0, 1, 0]])
    >>> uniform_laplacian(v, torch.tensor([[0, 1, 2]]))[0].tolist()
    [0.5, 0.5, 0.0]
    """
    src, dst, inv_deg, has_nb = operands if operands is not None else _laplacian_operands(faces)
    if has_nb.shape[0] < verts.shape[-2]:  # vertices after the last one any face uses are isolated
        pad = verts.shape[-2] - has_nb.shape[0]
        inv_deg, has_nb = torch.nn.functional.pad(inv_deg, (0, pad)), torch.nn.functional.pad(has_nb, (0, pad))
    neighbour_sum = torch.zeros_like(verts).index_add(-2, src, verts.index_select(-2, dst))
    lap = neighbour_sum * inv_deg.to(verts.dtype).unsqueeze(-1) - verts
    return lap * has_nb.to(verts.dtype).unsqueeze(-1)


@cached_on_faces
def _laplacian_operands(faces: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(src, dst) directed edge lists (2E,), 1/degree (M,) and has-neighbour (M,) for M = max index + 1."""
    edges = mesh_edges(faces)
    num = int(faces.max()) + 1 if faces.numel() else 0
    deg = vertex_degrees(edges, num)
    src = torch.cat([edges[:, 0], edges[:, 1]])
    dst = torch.cat([edges[:, 1], edges[:, 0]])
    return src, dst, 1.0 / deg.clamp_min(1).double(), deg > 0


class EdgeQuads(NamedTuple):
    """The two faces on each interior (manifold) edge.

    Attributes:
        verts: (E, 4) long ``(v0, v1, a, b)``: the edge ``v0 < v1``, ``a`` the third vertex of face
            ``faces[0]``, ``b`` the third vertex of face ``faces[1]``.
        faces: (E, 2) long indices of the two faces.
    """
    verts: Tensor
    faces: Tensor


@cached_on_faces
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
    n = int(faces.max()) + 1 if faces.numel() else 1
    _, inverse, counts = torch.unique(ends[:, 0] * n + ends[:, 1], return_inverse=True, return_counts=True)
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
    v0, v1, a, b = gather_verts(verts, quads).unbind(-2)
    edge = v1 - v0
    edge_sq = edge.pow(2).sum(-1)
    edge_len = (edge_sq + eps).sqrt()

    def perpendicular(w: Tensor) -> tuple[Tensor, Tensor]:
        w_len = (w.pow(2).sum(-1) + eps).sqrt()
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
    v0, v1, v2 = gather_verts(verts, faces).unbind(-2)
    normals = torch.nn.functional.normalize(torch.linalg.cross(v1 - v0, v2 - v0, dim=-1), dim=-1, eps=eps)
    pair = gather_verts(normals, face_pairs)  # (..., E, 2, 3)
    return (pair[..., 0, :] * pair[..., 1, :]).sum(-1)


def edge_lengths(verts: Tensor, edges: Tensor) -> Tensor:
    """Euclidean lengths of edges. verts (..., N, 3), edges (E, 2) long -> (..., E)."""
    ends = gather_verts(verts, edges)
    return (ends[..., 1, :] - ends[..., 0, :]).norm(dim=-1)
