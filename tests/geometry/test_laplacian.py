"""Connectivity and differential helpers: naive oracles and geometric properties."""
import math

import pytest
import torch

from shoerecon.geometry.laplacian import (
    adjacent_normal_cosines,
    dihedral_cosines,
    edge_lengths,
    edge_quads,
    uniform_laplacian,
    vertex_degrees,
)
from shoerecon.geometry.mesh import unique_edges


def grid_mesh(n: int, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat regular n x n grid in the z = 0 plane, CCW seen from +z, same diagonal everywhere."""
    ys, xs = torch.meshgrid(torch.arange(n, dtype=dtype), torch.arange(n, dtype=dtype), indexing="ij")
    verts = torch.stack([xs, ys, torch.zeros_like(xs)], -1).reshape(-1, 3)
    faces = []
    for i in range(n - 1):
        for j in range(n - 1):
            a, b, c, d = i * n + j, i * n + j + 1, (i + 1) * n + j, (i + 1) * n + j + 1
            faces += [[a, b, d], [a, d, c]]
    return verts, torch.tensor(faces)


def tetrahedron(dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Regular tetrahedron, outward CCW faces."""
    verts = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=dtype)
    faces = torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])
    return verts, faces


def random_closed_mesh(n_lat=5, n_lon=7, seed=0):
    """A noisy closed genus-0 mesh (cylinder capped by two pole vertices): every edge interior."""
    g = torch.Generator().manual_seed(seed)
    verts = [[0.0, 1.0, 0.0]]
    for i in range(1, n_lat):
        th = math.pi * i / n_lat
        for j in range(n_lon):
            ph = 2 * math.pi * j / n_lon
            verts.append([math.sin(th) * math.cos(ph), math.cos(th), math.sin(th) * math.sin(ph)])
    verts.append([0.0, -1.0, 0.0])
    ring = lambda i, j: 1 + (i - 1) * n_lon + (j % n_lon)  # noqa: E731
    faces = []
    for j in range(n_lon):
        faces.append([0, ring(1, j + 1), ring(1, j)])
        faces.append([len(verts) - 1, ring(n_lat - 1, j), ring(n_lat - 1, j + 1)])
    for i in range(1, n_lat - 1):
        for j in range(n_lon):
            a, b, c, d = ring(i, j), ring(i, j + 1), ring(i + 1, j), ring(i + 1, j + 1)
            faces += [[a, b, d], [a, d, c]]
    v = torch.tensor(verts, dtype=torch.float64)
    return v + 0.05 * torch.randn(v.shape, generator=g, dtype=torch.float64), torch.tensor(faces)


def naive_neighbours(faces, n):
    nb = [set() for _ in range(n)]
    for f in faces.tolist():
        for a in f:
            for b in f:
                if a != b:
                    nb[a].add(b)
    return nb


def test_uniform_laplacian_matches_naive_loop():
    verts, faces = random_closed_mesh()
    nb = naive_neighbours(faces, len(verts))
    expected = torch.stack([verts[sorted(s)].mean(0) - verts[i] for i, s in enumerate(nb)])
    torch.testing.assert_close(uniform_laplacian(verts, faces), expected)
    batch = torch.stack([verts, 2 * verts])
    torch.testing.assert_close(uniform_laplacian(batch, faces)[1], 2 * expected)


def test_uniform_laplacian_zero_on_flat_grid_interior_and_translation_invariant():
    verts, faces = grid_mesh(5)
    lap = uniform_laplacian(verts, faces).reshape(5, 5, 3)
    assert lap[1:-1, 1:-1].abs().max() < 1e-12
    assert lap[0, 0].abs().max() > 0.1  # boundary vertices are not symmetric
    shifted = uniform_laplacian(verts + torch.tensor([0.3, -2.0, 5.0], dtype=verts.dtype), faces)
    torch.testing.assert_close(shifted, lap.reshape(-1, 3))


def test_uniform_laplacian_isolated_vertex_is_zero():
    verts = torch.rand(4, 3, dtype=torch.float64)
    lap = uniform_laplacian(verts, torch.tensor([[0, 1, 2]]))
    assert lap[3].abs().max() == 0
    assert vertex_degrees(unique_edges(torch.tensor([[0, 1, 2]])), 4).tolist() == [2, 2, 2, 0]


def test_edge_quads_match_naive_dictionary():
    _, faces = random_closed_mesh()
    table = {}
    for fi, f in enumerate(faces.tolist()):
        for k in range(3):
            a, b, opp = f[k], f[(k + 1) % 3], f[(k + 2) % 3]
            table.setdefault((min(a, b), max(a, b)), []).append((fi, opp))
    expected = {e: sorted(v) for e, v in table.items() if len(v) == 2}
    quads = edge_quads(faces)
    got = {(q[0], q[1]): sorted([(fp[0], q[2]), (fp[1], q[3])])
           for q, fp in zip(quads.verts.tolist(), quads.faces.tolist())}
    assert got == expected
    assert len(expected) == len(unique_edges(faces))  # closed mesh: every edge interior


def test_edge_quads_drop_boundary_edges():
    _, faces = grid_mesh(3)
    quads = edge_quads(faces)
    assert len(quads.verts) == 8  # 16 unique edges, 8 on the boundary
    for (v0, v1, a, b), (f0, f1) in zip(quads.verts.tolist(), quads.faces.tolist()):
        assert {v0, v1, a} == set(faces[f0].tolist()) and {v0, v1, b} == set(faces[f1].tolist())


def naive_dihedral_cos(verts, quads):
    out = []
    for v0, v1, a, b in quads.tolist():
        e = verts[v1] - verts[v0]
        e = e / e.norm()
        p = verts[a] - verts[v0]
        q = verts[b] - verts[v0]
        p = p - e * (p @ e)
        q = q - e * (q @ e)
        out.append((p @ q) / (p.norm() * q.norm()))
    return torch.stack(out)


def test_dihedral_cosines_match_naive_projection():
    verts, faces = random_closed_mesh()
    quads = edge_quads(faces).verts
    torch.testing.assert_close(dihedral_cosines(verts, quads, eps=1e-12), naive_dihedral_cos(verts, quads),
                               atol=1e-6, rtol=1e-6)


def test_dihedral_cosines_known_angles():
    verts, faces = tetrahedron()
    cos = dihedral_cosines(verts, edge_quads(faces).verts, eps=1e-12)
    torch.testing.assert_close(cos, torch.full((6,), 1 / 3, dtype=torch.float64))  # regular tetrahedron: acos(1/3)
    grid, gfaces = grid_mesh(4)
    torch.testing.assert_close(dihedral_cosines(grid, edge_quads(gfaces).verts, eps=1e-12),
                               torch.full((len(edge_quads(gfaces).verts),), -1.0, dtype=torch.float64))


def test_adjacent_normal_cosines_plane_and_tetrahedron():
    grid, gfaces = grid_mesh(4)
    cos = adjacent_normal_cosines(grid, gfaces, edge_quads(gfaces).faces)
    torch.testing.assert_close(cos, torch.ones_like(cos))
    verts, faces = tetrahedron()
    cos = adjacent_normal_cosines(verts, faces, edge_quads(faces).faces)
    torch.testing.assert_close(cos, torch.full((6,), -1 / 3, dtype=torch.float64))  # normals at pi - acos(1/3)


def test_edge_lengths_batch():
    verts, faces = tetrahedron()
    edges = unique_edges(faces)
    lengths = edge_lengths(torch.stack([verts, 3 * verts]), edges)
    torch.testing.assert_close(lengths[0], torch.full((6,), math.sqrt(8), dtype=torch.float64))
    torch.testing.assert_close(lengths[1], 3 * lengths[0])


@pytest.mark.parametrize("seed", [0, 1])
def test_dihedral_cosines_gradcheck(seed):
    verts, faces = random_closed_mesh(3, 4, seed)
    verts.requires_grad_(True)
    quads = edge_quads(faces).verts
    assert torch.autograd.gradcheck(lambda v: dihedral_cosines(v, quads), (verts,))


def test_mesh_edges_match_unique_edges_and_cache_sees_inplace_changes():
    from shoerecon.geometry.laplacian import mesh_edges

    _, faces = random_closed_mesh()
    faces = faces.clone()
    assert torch.equal(mesh_edges(faces), unique_edges(faces))
    assert mesh_edges(faces) is mesh_edges(faces)  # cached
    faces[0] = faces[0].flip(0).roll(1)  # same triangle, other orientation: same edges
    faces[1, 0] = faces[2, 2]  # a real topology change
    assert torch.equal(mesh_edges(faces), unique_edges(faces))
    quads = edge_quads(faces)
    assert torch.equal(quads.verts, edge_quads.uncached(faces).verts)


def test_uniform_laplacian_commutes_with_affine_maps():
    verts, faces = random_closed_mesh()
    a = torch.randn(3, 3, dtype=torch.float64)
    b = torch.randn(3, dtype=torch.float64)
    torch.testing.assert_close(uniform_laplacian(verts @ a.T + b, faces), uniform_laplacian(verts, faces) @ a.T)
    grid, gfaces = grid_mesh(5)  # so a sheared, scaled, moved flat grid keeps a zero interior Laplacian
    lap = uniform_laplacian(grid @ a.T + b, gfaces).reshape(5, 5, 3)
    assert lap[1:-1, 1:-1].abs().max() < 1e-12
