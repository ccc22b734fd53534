"""The gradient-descent stage of `shoerecon calibrate` (calib.refine): hull mesh, and a perturbed rig recovered."""
import pytest
import torch

from shoerecon.calib.refine import RefineConfig, TurntableParams, hull_mesh, refine
from shoerecon.calib.turntable import carve_occupancy, framing_distance, turntable_cameras
from shoerecon.geometry.mesh import unique_edges

from calib_shoe import shoe  # noqa: F401 (the shared pytest fixture)


def test_hull_mesh_is_closed_and_spans_the_occupied_box():
    occ = torch.zeros(10, 8, 8, dtype=torch.bool)
    occ[2:8, 3:6, 1:7] = True  # voxels 2..7 along x: centres 2..7, faces at 1.5 and 7.5
    verts, faces = hull_mesh(occ, torch.tensor([0.0, 0.0, 0.0]), 0.1)
    lo, hi = verts.amin(0), verts.amax(0)
    # the surface lies between the outermost voxel centres and their outer faces (smoothing rounds corners)
    for axis, (a, b) in enumerate([(2, 7), (3, 5), (1, 6)]):
        assert a * 0.1 - 0.05 - 1e-4 <= lo[axis] <= a * 0.1 + 1e-4
        assert b * 0.1 - 1e-4 <= hi[axis] <= b * 0.1 + 0.05 + 1e-4
    # closed: every edge is shared by exactly two faces
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]).sort(1).values
    _, counts = torch.unique(e, dim=0, return_counts=True)
    assert bool((counts == 2).all())
    assert unique_edges(faces).shape[0] == counts.shape[0]


def test_refine_recovers_a_perturbed_elevation(shoe):
    torch.manual_seed(0)
    masks, crops, _ = shoe
    start_el = 16.0  # the truth is 12: the grid's hull is carved with a rig 4 degrees off
    start = turntable_cameras(12, start_el, 30.0, framing_distance(30.0, 0.8), 1, crops)
    occ, origin, size = carve_occupancy(masks, start, 24, 0)
    verts, faces = hull_mesh(occ, origin, size)
    params = TurntableParams(start_el, 30.0, crops, verts, 0.8, 1)
    losses = refine(masks, params, faces, RefineConfig(levels=(48,), steps=(100,), views_per_step=6))
    assert sum(losses[-10:]) < sum(losses[:10])
    elevation = float(params.elevation.detach())
    assert abs(elevation - 12.0) < 2.0, elevation
    assert float(params.fov.detach()) == pytest.approx(30.0)  # the fov is not descended on by default


def test_refine_keeps_the_best_scoring_level_not_the_last(shoe):
    """With a ``score``, the parameters end at the state of the best-scoring level (here the first)."""
    masks, crops, _ = shoe
    start = turntable_cameras(12, 14.0, 30.0, framing_distance(30.0, 0.8), 1, crops)
    occ, origin, size = carve_occupancy(masks, start, 16, 0)
    verts, faces = hull_mesh(occ, origin, size)
    params = TurntableParams(14.0, 30.0, crops, verts, 0.8, 1)
    seen = []

    def score(p):
        seen.append([q.detach().clone() for q in p.parameters()])
        return [0.9, 0.5][len(seen) - 1]  # the first level "wins"

    refine(masks, params, faces, RefineConfig(levels=(24, 48), steps=(3, 3), views_per_step=4, lr=0.05), score=score)
    assert len(seen) == 2
    now = [q.detach() for q in params.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(now, seen[0]))
    assert not all(torch.equal(a, b) for a, b in zip(now, seen[1]))  # the second level did move them


def test_refine_config_needs_one_entry_per_level(shoe):
    masks, crops, _ = shoe
    verts, faces = hull_mesh(torch.ones(4, 4, 4, dtype=torch.bool), torch.zeros(3), 0.1)
    params = TurntableParams(12.0, 30.0, crops, verts, 0.8, 1)
    with pytest.raises(ValueError, match="sigma_pixels"):
        refine(masks, params, faces, RefineConfig(levels=(24, 48), steps=(1, 1), sigma_pixels=(0.5,)))
