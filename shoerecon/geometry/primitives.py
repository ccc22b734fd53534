"""Simple meshes for tests, benchmarks and initialisation: ico-spheres, boxes, quads.

Every mesh follows mesh.py's convention: faces counter-clockwise seen from outside (outward normals).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor

from shoerecon.geometry.mesh import Mesh, face_areas_normals


def _icosahedron(dtype=torch.float32) -> tuple[Tensor, Tensor]:
    """Unit icosahedron: verts (12, 3), faces (20, 3), counter-clockwise from outside."""
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = torch.tensor(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0],
         [0, -1, t], [0, 1, t], [0, -1, -t], [0, 1, -t],
         [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
        dtype=dtype,
    )
    faces = torch.tensor(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11],
         [1, 5, 9], [5, 11, 4], [11, 10, 2], [10, 7, 6], [7, 1, 8],
         [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9],
         [4, 9, 5], [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]],
        dtype=torch.long,
    )
    return torch.nn.functional.normalize(verts, dim=-1), faces


def subdivide(verts: Tensor, faces: Tensor) -> tuple[Tensor, Tensor]:
    """Loop-free 1-to-4 midpoint subdivision. verts (N, 3), faces (F, 3) -> (N + E, 3), (4F, 3).

    Orientation is kept: each child face lists its corners in the parent's order.
    """
    edges = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]], dim=0)
    unique, inverse = torch.unique(torch.sort(edges, dim=1).values, dim=0, return_inverse=True)
    mid = verts.shape[0] + inverse.view(3, -1)  # (3, F): midpoint of edge (0,1), (1,2), (2,0)
    new_verts = torch.cat([verts, (verts[unique[:, 0]] + verts[unique[:, 1]]) / 2], dim=0)
    a, b, c = faces.unbind(1)
    ab, bc, ca = mid
    new_faces = torch.cat(
        [torch.stack(f, dim=1) for f in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))], dim=0
    )
    return new_verts, new_faces


def ico_sphere(level: int = 2, radius: float = 1.0, dtype=torch.float32) -> Mesh:
    """Unit ico-sphere with 20 * 4**level faces and 10 * 4**level + 2 vertices.

    >>> m = ico_sphere(1)
    >>> m.num_verts, m.num_faces
    (42, 80)
    """
    if level < 0:
        raise ValueError(f"ico_sphere level must be >= 0, got {level}")
    verts, faces = _icosahedron(dtype)
    for _ in range(level):
        verts, faces = subdivide(verts, faces)
        verts = torch.nn.functional.normalize(verts, dim=-1)
    return Mesh(verts * radius, faces)


def box(size: tuple[float, float, float] = (1.0, 1.0, 1.0), dtype=torch.float32) -> Mesh:
    """Axis-aligned box centred at the origin, 8 vertices and 12 outward-facing triangles.

    >>> box().num_faces
    12
    """
    sx, sy, sz = (s / 2 for s in size)
    corners = torch.tensor([[x, y, z] for x in (-sx, sx) for y in (-sy, sy) for z in (-sz, sz)], dtype=dtype)
    # Corner index = 4 * (x>0) + 2 * (y>0) + (z>0). Quads listed counter-clockwise from outside.
    quads = [(0, 1, 3, 2), (4, 6, 7, 5), (0, 4, 5, 1), (2, 3, 7, 6), (0, 2, 6, 4), (1, 5, 7, 3)]
    faces = torch.tensor([t for a, b, c, d in quads for t in ((a, b, c), (a, c, d))], dtype=torch.long)
    return Mesh(corners, _orient_outward(corners, faces))


def _orient_outward(verts: Tensor, faces: Tensor) -> Tensor:
    """Flip faces of a convex, origin-centred mesh whose normal points inward. faces (F, 3) -> (F, 3)."""
    centroid = verts[faces].mean(dim=1)
    inward = (face_areas_normals(verts, faces) * centroid).sum(-1) < 0
    return torch.where(inward[:, None], faces[:, [0, 2, 1]], faces)


def quad(size: float = 1.0, dtype=torch.float32) -> Mesh:
    """Square in the z = 0 plane facing +Z, UV-mapped so u runs along +X and v along +Y.

    >>> m = quad()
    >>> m.uvs.tolist()
    [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
    """
    h = size / 2
    verts = torch.tensor([[-h, -h, 0.0], [h, -h, 0.0], [h, h, 0.0], [-h, h, 0.0]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2], [0, 2, 3]], dtype=torch.long)
    uvs = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=dtype)
    return Mesh(verts, faces, uvs, faces.clone())


def sphere_uv(verts: Tensor) -> Tensor:
    """Per-vertex equirectangular UV of points on a sphere (N, 3) -> (N, 2); a simple layout for
    benchmarks and tests (faces crossing the seam stretch over the whole texture)."""
    d = torch.nn.functional.normalize(verts, dim=-1)
    u = 0.5 + torch.atan2(d[:, 0], d[:, 2]) / (2 * math.pi)
    v = 0.5 + torch.asin(d[:, 1].clamp(-1, 1)) / math.pi
    return torch.stack([u, v], dim=-1)
