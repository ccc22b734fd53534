"""Shape regularizers: properties on planes, fans and folds, hand-computed values, gradcheck."""
import math

import pytest
import torch

from shoerecon.geometry.laplacian import vertex_degrees
from shoerecon.geometry.mesh import unique_edges
from shoerecon.losses import edge_length_loss, flatten_loss, laplacian_loss, normal_consistency_loss

D = torch.float64


def grid_mesh(n: int):
    """Flat regular n x n grid in z = 0, CCW from +z."""
    ys, xs = torch.meshgrid(torch.arange(n, dtype=D), torch.arange(n, dtype=D), indexing="ij")
    verts = torch.stack([xs, ys, torch.zeros_like(xs)], -1).reshape(-1, 3)
    faces = [[i * n + j, i * n + j + 1, (i + 1) * n + j + 1] for i in range(n - 1) for j in range(n - 1)]
    faces += [[i * n + j, (i + 1) * n + j + 1, (i + 1) * n + j] for i in range(n - 1) for j in range(n - 1)]
    return verts, torch.tensor(faces)


def fan(k: int = 6):
    """Planar fan: centre vertex 0 and a ring of k vertices in z = 0, CCW from +z."""
    ring = [[math.cos(2 * math.pi * i / k), math.sin(2 * math.pi * i / k), 0.0] for i in range(k)]
    verts = torch.tensor([[0.0, 0.0, 0.0]] + ring, dtype=D)
    faces = torch.tensor([[0, 1 + i, 1 + (i + 1) % k] for i in range(k)])
    return verts, faces


def tetrahedron():
    verts = torch.tensor([[1, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=D)
    return verts, torch.tensor([[0, 1, 2], [0, 3, 1], [0, 2, 3], [1, 3, 2]])


def test_laplacian_loss_zero_for_translation_offsets_and_hand_value_for_a_bump():
    verts, faces = grid_mesh(5)
    offsets = torch.tensor([[[0.2, -0.1, 0.7]]], dtype=D).expand(1, len(verts), 3)
    assert laplacian_loss(offsets, faces).item() == pytest.approx(0.0, abs=1e-12)
    bumped = torch.zeros(1, len(verts), 3, dtype=D)
    bumped[0, 12, 2] = 1.0  # lift the centre vertex of the 5x5 grid (6 neighbours)
    # centre: |0 - 1|^2 = 1; each of its 6 neighbours i sees 1/deg_i.
    deg = vertex_degrees(unique_edges(faces), len(verts))
    neighbours = [6, 7, 11, 13, 17, 18]
    expected = 1.0 + sum(1.0 / deg[i].item() ** 2 for i in neighbours)
    assert laplacian_loss(bumped, faces, "sum").item() == pytest.approx(expected)
    assert laplacian_loss(bumped, faces, "mean").item() == pytest.approx(expected / 25)


def test_flatten_loss_zero_for_planar_fan_positive_when_folded():
    verts, faces = fan()
    assert flatten_loss(verts[None], faces, eps=1e-12).item() == pytest.approx(0.0, abs=1e-9)
    folded = verts.clone()
    folded[1, 2] = 0.8  # lift one ring vertex
    assert flatten_loss(folded[None], faces).item() > 0.05
    shut = verts.clone()
    shut[1:, 2] = 2.0  # a steep cone folds every spoke edge
    assert flatten_loss(shut[None], faces).item() > flatten_loss(folded[None], faces).item()


def test_flatten_loss_values_on_tetrahedron():
    verts, faces = tetrahedron()
    # every interior dihedral angle is acos(1/3): (1 + 1/3)^2 per edge, 6 edges
    assert flatten_loss(verts[None], faces, "sum", eps=1e-12).item() == pytest.approx(6 * (4 / 3) ** 2)
    assert flatten_loss(verts[None], faces, "mean", eps=1e-12).item() == pytest.approx((4 / 3) ** 2)


def test_normal_consistency_zero_on_plane_positive_on_tetrahedron():
    verts, faces = grid_mesh(4)
    rot = torch.linalg.qr(torch.randn(3, 3, dtype=D)).Q
    assert normal_consistency_loss((verts @ rot.T)[None], faces).item() == pytest.approx(0.0, abs=1e-9)
    tv, tf = tetrahedron()
    assert normal_consistency_loss(tv[None], tf).item() == pytest.approx(1 + 1 / 3)


def test_edge_length_loss_modes():
    verts, faces = tetrahedron()  # all edges sqrt(8)
    assert edge_length_loss(verts[None], faces).item() == pytest.approx(0.0, abs=1e-12)  # variance
    assert edge_length_loss(verts[None], faces, template=verts[None]).item() == pytest.approx(0.0)
    scaled = 2 * verts[None]
    assert edge_length_loss(scaled, faces, template=verts[None]).item() == pytest.approx(8.0)  # (2s - s)^2 = 8
    assert edge_length_loss(scaled, faces).item() == pytest.approx(0.0, abs=1e-12)
    gv, gf = grid_mesh(3)  # edges 1 (12 of them) and sqrt(2) (4): variance
    lengths = torch.tensor([1.0] * 12 + [math.sqrt(2)] * 4, dtype=D)
    assert edge_length_loss(gv[None], gf).item() == pytest.approx(lengths.var(unbiased=False).item())


def test_bad_reduction_is_an_error():
    verts, faces = tetrahedron()
    with pytest.raises(ValueError, match="reduction"):
        laplacian_loss(verts[None], faces, "max")


@pytest.mark.parametrize("name", ["laplacian", "flatten", "normal", "edge_template", "edge_variance"])
def test_regularizers_gradcheck(name):
    verts, faces = tetrahedron()
    x = (verts + 0.1 * torch.randn(2, 4, 3, dtype=D)).requires_grad_(True)
    template = verts[None]
    fn = {
        "laplacian": lambda v: laplacian_loss(v, faces),
        "flatten": lambda v: flatten_loss(v, faces),
        "normal": lambda v: normal_consistency_loss(v, faces),
        "edge_template": lambda v: edge_length_loss(v, faces, template),
        "edge_variance": lambda v: edge_length_loss(v, faces),
    }[name]
    assert torch.autograd.gradcheck(fn, (x,))
