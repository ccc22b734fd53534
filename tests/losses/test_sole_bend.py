"""The sole-bend prior: the ground face is found on a known mesh, its bend matches a least-squares oracle, and the
gradient flattens a bump."""
import numpy as np
import pytest
import torch
import trimesh

from shoerecon.geometry.sole import plate_basis, project_onto_plate, sole_bend_projector, sole_vertices
from shoerecon.geometry.topology import Template
from shoerecon.losses import LossConfig, enabled_terms
from shoerecon.losses.sole_bend import sole_bend_loss


def _box(dtype=torch.float32):
    box = trimesh.creation.box(extents=(1.0, 0.4, 0.4)).subdivide().subdivide()
    return torch.tensor(box.vertices, dtype=dtype), torch.tensor(box.faces)


def test_ground_face_is_the_bottom_face_with_its_rim_and_only_it():
    verts, faces = _box()
    index = sole_vertices(verts, faces)
    # every vertex of the bottom face, its edges and corners included (their normals lean 45 and 55 degrees),
    # and nothing of the vertical sides above it or of the top
    bottom = torch.nonzero(verts[:, 1] == -0.2).flatten()
    assert sorted(index.tolist()) == sorted(bottom.tolist())
    # a stricter tilt keeps the edges out
    strict = sole_vertices(verts, faces, max_tilt_deg=30.0)
    assert 0 < len(strict) < len(index)


def _smoothstep_np(a, b, t):
    u = np.clip((t - a) / (b - a), 0.0, 1.0)
    return u * u * (3 - 2 * u)


def _plate_np(points):
    """The plate family written out: lift, tilt in x and z, toe spring under the front 40%, heel bevel under the
    back 15% of the points' x extent."""
    x, z = points[:, 0], points[:, 2]
    t = (x - x.min()) / (x.max() - x.min())
    return np.stack([np.ones_like(x), x, z, _smoothstep_np(0.6, 1.0, t) ** 2, (1 - _smoothstep_np(0.0, 0.15, t)) ** 2], -1)


def test_plate_basis_is_flat_between_heel_and_ball():
    x = torch.linspace(-0.5, 0.5, 101, dtype=torch.float64)
    points = torch.stack([x, torch.zeros_like(x), torch.zeros_like(x)], -1)
    basis = plate_basis(points)
    flat = (x > -0.5 + 0.15 + 1e-9) & (x < 0.1 - 1e-9)        # t in (0.15, 0.6)
    assert float(basis[flat, 3:].abs().max()) == 0.0
    assert float(basis[-1, 3]) == 1.0 and float(basis[0, 4]) == 1.0   # full toe spring at the tip, bevel at the heel
    np.testing.assert_allclose(basis.numpy(), _plate_np(points.numpy()), atol=1e-12)


def test_bend_is_the_least_squares_residual_oracle():
    rng = np.random.default_rng(0)
    points = torch.tensor(rng.uniform(-0.5, 0.5, size=(40, 3)), dtype=torch.float64)
    heights = rng.normal(size=40)
    design = _plate_np(points.numpy())
    coef, *_ = np.linalg.lstsq(design, heights, rcond=None)
    expected = heights - design @ coef
    got = sole_bend_projector(points) @ torch.tensor(heights)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-10)


def test_tilt_height_and_toe_spring_are_free_a_bump_is_not():
    verts, faces = _box()
    template = Template(verts, faces)
    x = verts[:, 0]
    toe = torch.tensor(_smoothstep_np(0.6, 1.0, x.numpy() + 0.5) ** 2, dtype=x.dtype)
    posed = verts + torch.stack([0 * x, 0.3 + 0.2 * x + 0.15 * toe - 0.1 * verts[:, 2], 0 * x], -1)
    assert float(sole_bend_loss(posed[None], template)) < 1e-10
    arched = verts + torch.stack([0 * x, 0.2 * (0.25 - x ** 2), 0 * x], -1)   # the middle up: no shoe's sole
    assert float(sole_bend_loss(arched[None], template)) > 1e-5
    bump = (verts[:, 1] == -0.2) & (verts[:, 0].abs() < 0.01) & (verts[:, 2].abs() < 0.01)
    assert bump.sum() == 1
    bumped = verts.clone()
    bumped[bump, 1] += 0.05
    bumped.requires_grad_(True)
    loss = sole_bend_loss(bumped[None], template)
    assert float(loss.detach()) > 5e-5
    loss.backward()
    assert float(bumped.grad[bump, 1]) > 0            # gradient descent moves the bump back down
    assert float(bumped.grad[:, [0, 2]].abs().max()) == 0  # only heights are judged


def test_a_sole_lifted_off_its_rim_is_not_free():
    verts, faces = _box()
    template = Template(verts, faces)
    interior = (verts[:, 1] == -0.2) & (verts[:, 0].abs() < 0.49) & (verts[:, 2].abs() < 0.19)
    lifted = verts.clone()
    lifted[interior, 1] += 0.03
    assert float(sole_bend_loss(lifted[None], template)) > 1e-5
    assert float(sole_bend_loss((verts + torch.tensor([0.0, 0.03, 0.0]))[None], template)) < 1e-10


def test_gradcheck_float64():
    verts, faces = _box(torch.float64)
    template = Template(verts, faces)
    wobble = verts.clone() + 0.01 * torch.randn(verts.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    wobble.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda v: sole_bend_loss(v[None], template), (wobble,))


def test_operands_are_cached_once_and_a_new_template_recomputes():
    verts, faces = _box()
    template = Template(verts, faces)
    assert not template.is_cached("sole_operands")
    first = template.sole_operands
    assert template.is_cached("sole_operands") and template.sole_operands is first
    from shoerecon.geometry.mesh import Mesh
    replaced = template.replace(Mesh(verts * torch.tensor([1.0, 1.0, 1.0]), faces))
    assert not replaced.is_cached("sole_operands")


def test_mesh_without_ground_face_costs_nothing():
    # a tetrahedron standing on a vertex: the lowest vertex's normal is ~70 deg from straight down
    verts = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.5, 0.0], [-0.5, 0.5, 0.87], [-0.5, 0.5, -0.87]], requires_grad=True)
    faces = torch.tensor([[0, 2, 1], [0, 3, 2], [0, 1, 3], [1, 2, 3]])
    template = Template(verts.detach(), faces)
    assert len(template.sole_operands[0]) == 0
    loss = sole_bend_loss(verts[None], template)
    loss.backward()
    assert float(loss) == 0.0 and float(verts.grad.abs().sum()) == 0.0


def test_off_by_default_and_a_yaml_section():
    cfg = LossConfig()
    assert cfg.sole_bend.weight == 0.0
    assert "sole_bend" not in [term.name for term in enabled_terms(cfg)]
    on = LossConfig(sole_bend=5.0)
    assert on.sole_bend.weight == 5.0
    with pytest.raises(ValueError, match="weight"):
        LossConfig(sole_bend=-1.0)


def test_project_onto_plate_keeps_plates_and_drops_bends():
    verts, faces = _box(torch.float64)
    index, projector = Template(verts, faces).sole_operands
    rng = torch.Generator().manual_seed(3)
    offsets = 0.02 * torch.randn((2, len(verts), 3), dtype=torch.float64, generator=rng)
    out = project_onto_plate(offsets, index, projector)
    # x, z and every height off the ground face are untouched
    assert torch.equal(out[..., [0, 2]], offsets[..., [0, 2]])
    off_sole = torch.ones(len(verts), dtype=torch.bool)
    off_sole[index] = False
    assert torch.equal(out[:, off_sole, 1], offsets[:, off_sole, 1])
    # the ground face's heights are now their least-squares plate fit (numpy oracle), and projecting twice is once
    design = _plate_np(verts[index].numpy())
    for b in range(2):
        coef, *_ = np.linalg.lstsq(design, offsets[b, index, 1].numpy(), rcond=None)
        np.testing.assert_allclose(out[b, index, 1].numpy(), design @ coef, atol=1e-10)
    assert torch.allclose(project_onto_plate(out, index, projector), out, atol=1e-12)
    # a plate motion passes unchanged, and gradients flow to the raw offsets
    plate = torch.zeros_like(offsets)
    plate[..., 1] = 0.05 + 0.1 * verts[:, 0] - 0.2 * verts[:, 2]
    assert torch.allclose(project_onto_plate(plate, index, projector), plate, atol=1e-12)
    raw = offsets.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda o: project_onto_plate(o, index, projector), (raw,))
