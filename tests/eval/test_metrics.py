"""Every metric against a case with a known answer or a slow, obviously-correct reference."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
import trimesh

from shoerecon.eval.metrics import (
    MetricsConfig, nearest_neighbours, lpips_distance, mesh_metrics_3d, mesh_quality, point_cloud_metrics, psnr,
    grid_axis, sample_points, silhouette_iou, ssim, voxel_grid_centers,
    voxel_iou, voxelize, winding_numbers,
)
from shoerecon.geometry.mesh import Mesh
from shoerecon.geometry.quality import candidate_pairs, self_intersecting_faces, triangle_angles


def tm_to_mesh(tm: trimesh.Trimesh) -> Mesh:
    return Mesh(torch.tensor(tm.vertices, dtype=torch.float32), torch.tensor(tm.faces, dtype=torch.long))


def sphere(radius=0.5, subdivisions=3, center=(0, 0, 0)) -> Mesh:
    tm = trimesh.creation.icosphere(subdivisions=subdivisions, radius=radius)
    tm.apply_translation(center)
    return tm_to_mesh(tm)


def cube(side=1.0, center=(0, 0, 0)) -> Mesh:
    tm = trimesh.creation.box(extents=(side, side, side))
    tm.apply_translation(center)
    return tm_to_mesh(tm)


# ====================================================================== 2D
def test_silhouette_iou_known_rectangles():
    pred = torch.zeros(2, 1, 4, 4)
    target = torch.zeros(2, 1, 4, 4)
    pred[0, :, :2, :] = 1      # 8 px
    target[0, :, :, :2] = 1    # 8 px, 4 shared -> 4 / 12
    iou = silhouette_iou(pred, target)
    assert iou[0].item() == pytest.approx(1 / 3)
    assert iou[1].item() == 1.0  # both empty


def test_psnr_known_values():
    a = torch.zeros(3, 3, 8, 8)
    b = a.clone()
    b[0] += 0.1      # mse 0.01 -> 20 dB
    b[1, :, :4] = 1  # mse 0.5 -> 10 log10 2
    out = psnr(b, a)
    assert out[0].item() == pytest.approx(20.0, abs=1e-4)
    assert out[1].item() == pytest.approx(10 * math.log10(2), abs=1e-4)
    assert out[2].item() == pytest.approx(100.0)  # identical: capped, not inf


def ssim_naive(x: np.ndarray, y: np.ndarray, size: int, sigma: float, k1=0.01, k2=0.03) -> float:
    """Textbook SSIM: explicit weighted sums over every valid window of every channel, float64."""
    r = np.arange(size) - (size - 1) / 2
    g = np.exp(-r**2 / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    c1, c2 = k1**2, k2**2
    vals = []
    for ch in range(x.shape[0]):
        for i in range(x.shape[1] - size + 1):
            for j in range(x.shape[2] - size + 1):
                px, py = x[ch, i:i + size, j:j + size], y[ch, i:i + size, j:j + size]
                mx, my = (w * px).sum(), (w * py).sum()
                vx, vy = (w * (px - mx) ** 2).sum(), (w * (py - my) ** 2).sum()
                cov = (w * (px - mx) * (py - my)).sum()
                vals.append((2 * mx * my + c1) * (2 * cov + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(vals))


def test_ssim_matches_naive_reference():
    x = torch.rand(2, 3, 16, 18, dtype=torch.float64)
    y = (x + 0.2 * torch.randn_like(x)).clamp(0, 1)
    got = ssim(x, y, window_size=7)
    for b in range(2):
        assert got[b].item() == pytest.approx(ssim_naive(x[b].numpy(), y[b].numpy(), 7, 1.5), abs=1e-5)


def test_ssim_known_values():
    x = torch.rand(1, 3, 32, 32)
    assert ssim(x, x).item() == pytest.approx(1.0, abs=1e-5)
    # Constant images: only the luminance term remains, (2 a b + C1) / (a^2 + b^2 + C1).
    a, b, c1 = 0.2, 0.7, 0.01**2
    got = ssim(torch.full((1, 1, 16, 16), a), torch.full((1, 1, 16, 16), b)).item()
    assert got == pytest.approx((2 * a * b + c1) / (a * a + b * b + c1), abs=1e-5)
    with pytest.raises(ValueError, match="at least 11"):
        ssim(torch.rand(1, 1, 8, 8), torch.rand(1, 1, 8, 8))


def test_lpips_distance_zero_for_identical_images():
    perceptual = pytest.importorskip("shoerecon.losses.perceptual")
    model = perceptual.build_lpips(pretrained=False)
    x = torch.rand(2, 3, 32, 32)
    same = lpips_distance(model, x, x)
    diff = lpips_distance(model, x, torch.rand(2, 3, 32, 32))
    assert same.shape == (2,) and torch.allclose(same, torch.zeros(2), atol=1e-6)
    assert (diff > 0).all()


# ====================================================================== 3D surface
def test_sample_points_area_weighted_and_on_surface():
    tm = trimesh.creation.box(extents=(1.0, 1.0, 4.0))  # two 1x1 end faces, four 1x4 sides: 2 / 18 of the area
    mesh = tm_to_mesh(tm)
    pts, normals = sample_points(mesh.verts, mesh.faces, 20000, torch.Generator().manual_seed(0))
    on_ends = (pts[:, 2].abs() > 2 - 1e-5)
    assert on_ends.float().mean().item() == pytest.approx(2 / 18, abs=0.01)
    # On the surface: at least one coordinate on the box boundary; normals along that axis.
    half = torch.tensor([0.5, 0.5, 2.0])
    on_face = (pts.abs() - half).abs() < 1e-5
    assert on_face.any(-1).all()
    assert torch.allclose(normals.abs().max(-1).values, torch.ones(len(pts)))
    # Uniform inside a face: mean of points on the +x side is its centre.
    side = pts[pts[:, 0] > 0.5 - 1e-5]
    assert side[:, 1:].mean(0).abs().max().item() < 0.05


def test_nearest_neighbours_kdtree_matches_brute_force():
    a, b = torch.rand(300, 3), torch.rand(200, 3)
    d_kd, i_kd = nearest_neighbours(a, b, use_kdtree=True)
    d_bf, i_bf = nearest_neighbours(a, b, chunk=64, use_kdtree=False)
    brute = ((a[:, None] - b[None]) ** 2).sum(-1).min(-1)
    torch.testing.assert_close(d_kd, brute.values, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(d_bf, brute.values, atol=1e-6, rtol=1e-5)
    assert torch.equal(i_kd, brute.indices) and torch.equal(i_bf, brute.indices)


def grid_points(n=10, spacing=0.1):
    ij = torch.stack(torch.meshgrid(torch.arange(n), torch.arange(n), indexing="ij"), -1).reshape(-1, 2).float()
    pts = torch.cat([ij * spacing, torch.zeros(len(ij), 1)], dim=-1)
    return pts, torch.tensor([[0.0, 0.0, 1.0]]).expand(len(pts), 3)


def test_point_cloud_metrics_on_a_shifted_plane():
    # Shift a grid (spacing 0.1) by d = 0.015 along its normal: every nearest neighbour is the same point
    # moved, at distance d. Chamfer = 2 d^2; F-score 1 above d, 0 below; normals agree.
    pts, normals = grid_points()
    d = 0.015
    out = point_cloud_metrics(pts + torch.tensor([0, 0, d]), normals, pts, normals, thresholds=(0.01, 0.02))
    assert out["chamfer_l2"] == pytest.approx(2 * d * d, rel=1e-4)
    assert out["fscore@0.01"] == 0.0 and out["fscore@0.02"] == 1.0
    assert out["normal_consistency"] == pytest.approx(1.0)
    # Perpendicular normals: consistency 0; flipped normals still count as consistent (orientation-free).
    side = torch.tensor([[1.0, 0.0, 0.0]]).expand_as(normals)
    assert point_cloud_metrics(pts, side, pts, normals)["normal_consistency"] == pytest.approx(0.0, abs=1e-6)
    assert point_cloud_metrics(pts, -normals, pts, normals)["normal_consistency"] == pytest.approx(1.0)


def test_point_cloud_metrics_precision_and_recall_differ():
    # Prediction = half the ground truth: precision 1, recall 1/2, F = 2/3, Chamfer only from gt -> pred.
    pts, normals = grid_points()
    half = pts[:50]
    out = point_cloud_metrics(half, normals[:50], pts, normals, thresholds=(0.01,))
    assert out["precision@0.01"] == 1.0 and out["recall@0.01"] == 0.5
    assert out["fscore@0.01"] == pytest.approx(2 / 3)
    assert out["chamfer_l2"] == pytest.approx(sum(0.1 * 0.1 * (r + 1) ** 2 for r in range(5)) * 10 / 100, rel=1e-4)


def test_identical_meshes():
    mesh = sphere()
    out = mesh_metrics_3d(mesh, mesh, MetricsConfig(num_points=4000))
    # Two independent uniform samples of one surface of area A: E[nearest d^2] = A / (pi N) per direction.
    area = 4 * math.pi * 0.5**2
    assert out["chamfer_l2"] == pytest.approx(2 * area / (math.pi * 4000), rel=0.15)
    # and P(nearest < t) = 1 - exp(-pi t^2 N / A): the F-score of a perfect prediction is capped by sampling.
    assert out["fscore@0.02"] == pytest.approx(1 - math.exp(-math.pi * 0.02**2 * 4000 / area), abs=0.03)
    assert out["normal_consistency"] > 0.98
    assert out["voxel_iou"] == 1.0


def test_concentric_spheres():
    # Radius gap 0.05: every nearest distance is about 0.05 -> Chamfer ~ 2 * 0.05^2; no point within 2 %.
    out = mesh_metrics_3d(sphere(0.5, 4), sphere(0.55, 4), MetricsConfig(num_points=6000))
    assert out["chamfer_l2"] == pytest.approx(2 * 0.05**2, rel=0.1)
    assert out["fscore@0.01"] == 0.0 and out["fscore@0.02"] == 0.0
    assert out["normal_consistency"] > 0.99
    # Voxel IoU ~ (0.5 / 0.55)^3 = 0.751.
    assert out["voxel_iou"] == pytest.approx((0.5 / 0.55) ** 3, abs=0.03)


def test_winding_numbers_inside_outside():
    mesh = cube()
    w = winding_numbers(torch.tensor([[0.0, 0, 0], [0.4, -0.3, 0.2], [2.0, 0, 0], [0, 0.6, 0]]), mesh.verts, mesh.faces)
    torch.testing.assert_close(w, torch.tensor([1.0, 1.0, 0.0, 0.0]), atol=1e-5, rtol=0)
    flipped = winding_numbers(torch.zeros(1, 3), mesh.verts, mesh.faces[:, [0, 2, 1]])
    assert flipped.item() == pytest.approx(-1.0, abs=1e-5)


def test_voxel_iou_cube_vs_inscribed_sphere():
    # Both bounded by [-0.5, 0.5]^3: the answer is the fraction of the 32^3 voxel centres inside the sphere (~pi/6).
    c = (torch.arange(32) + 0.5) / 32 - 0.5
    centres = torch.stack(torch.meshgrid(c, c, c, indexing="ij"), -1).reshape(-1, 3)
    expected = (centres.norm(dim=-1) < 0.5).float().mean().item()
    assert expected == pytest.approx(math.pi / 6, abs=0.01)
    assert voxel_iou(sphere(0.5, 4), cube(1.0), 32) == pytest.approx(expected, abs=0.01)


def test_voxel_iou_shifted_cube():
    # Unit cube vs the same cube shifted by half its side: overlap 1/2, union 3/2 -> 1/3 in the continuum.
    # On the 32^3 grid over the union's bounding cube the exact answer counts voxel centres inside each box.
    lo = torch.tensor([-0.5, -0.5, -0.5])
    c = lo[0] + (torch.arange(32) + 0.5) / 32 * 1.5
    in_a, in_b = (c > -0.5) & (c < 0.5), (c > 0.0) & (c < 1.0)
    expected = (in_a & in_b).sum().item() / (in_a | in_b).sum().item()  # y and z columns cancel
    got = voxel_iou(cube(1.0), cube(1.0, center=(0.5, 0, 0)), 32)
    assert got == pytest.approx(expected, abs=1e-9) and got == pytest.approx(1 / 3, abs=0.03)
    assert voxel_iou(cube(1.0), cube(1.0, center=(2.0, 0, 0)), 32) == 0.0


@pytest.mark.parametrize("shape", ["torus", "dented", "capsule"])
def test_voxelize_matches_winding_number_oracle(shape):
    if shape == "torus":
        tm = trimesh.creation.torus(major_radius=0.5, minor_radius=0.2, major_sections=16, minor_sections=8)
    elif shape == "capsule":
        tm = trimesh.creation.capsule(height=0.6, radius=0.25, count=[8, 8])
        tm.apply_transform(trimesh.transformations.rotation_matrix(0.7, [1, 1, 0]))
    else:
        tm = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
        tm.vertices[tm.vertices[:, 0] > 0.3] *= [-0.5, 1, 1]  # push a cap inward: a non-convex dent
    mesh = tm_to_mesh(tm)
    lo, hi = mesh.verts.min(0).values - 0.05, mesh.verts.max(0).values + 0.05
    axis = grid_axis(lo, hi, 12)
    got = voxelize(mesh.verts, mesh.faces, axis).reshape(-1)
    w = winding_numbers(voxel_grid_centers(lo, hi, 12), mesh.verts, mesh.faces)
    assert (w.round() == w.round().clamp(0, 1)).all() and ((w - w.round()).abs() < 1e-4).all()
    np.testing.assert_array_equal(got.numpy(), (w > 0.5).numpy())
    assert 0 < got.sum() < got.numel()


def test_voxel_grid_is_cubic_and_covers_bounds():
    g = voxel_grid_centers(torch.tensor([0.0, 0, 0]), torch.tensor([2.0, 1, 1]), 4)
    assert g.shape == (64, 3)
    torch.testing.assert_close(g.min(0).values, torch.tensor([0.25, -0.25, -0.25]))
    torch.testing.assert_close(g.max(0).values, torch.tensor([1.75, 1.25, 1.25]))


# ====================================================================== mesh quality
def test_triangle_angles_known():
    h = math.sqrt(3) / 2
    v = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0.5, h, 0], [0, 1, 0], [3, 0, 0]])
    got = torch.rad2deg(triangle_angles(v, torch.tensor([[0, 1, 2], [0, 1, 3], [0, 4, 3]])))
    torch.testing.assert_close(got[0], torch.full((3,), 60.0), atol=1e-4, rtol=0)
    torch.testing.assert_close(got[1], torch.tensor([90.0, 45, 45]), atol=1e-4, rtol=0)
    assert got[2, 1].item() == pytest.approx(math.degrees(math.atan(1 / 3)), abs=1e-4)
    assert torch.allclose(got.sum(-1), torch.full((3,), 180.0))


def test_mesh_quality_of_a_regular_icosahedron():
    q = mesh_quality(tm_to_mesh(trimesh.creation.icosahedron()))
    assert q["min_angle_deg"] == pytest.approx(60, abs=1e-3)
    assert q["mean_min_angle_deg"] == pytest.approx(60, abs=1e-3)
    assert q["self_intersection_fraction"] == 0.0


def seg_tri_oracle(p, q, a, b, c) -> bool:
    """Line-plane intersection parameter in (0, 1), then point strictly inside by edge tests against the normal."""
    n = np.cross(b - a, c - a)
    denom = n @ (q - p)
    if abs(denom) < 1e-15:
        return False
    t = n @ (a - p) / denom
    if not 0 < t < 1:
        return False
    x = p + t * (q - p)
    return all(np.cross(e1 - e0, x - e0) @ n > 0 for e0, e1 in ((a, b), (b, c), (c, a)))


def self_intersections_oracle(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
    flagged = np.zeros(len(faces), dtype=bool)
    for i, j in itertools.combinations(range(len(faces)), 2):
        if set(faces[i]) & set(faces[j]):
            continue
        t1, t2 = verts[faces[i]], verts[faces[j]]
        if any(seg_tri_oracle(s[k], s[(k + 1) % 3], *t) for s, t in ((t1, t2), (t2, t1)) for k in range(3)):
            flagged[i] = flagged[j] = True
    return flagged


@pytest.mark.parametrize("seed", range(4))
def test_self_intersections_match_brute_force_oracle(seed):
    rng = np.random.default_rng(seed)
    verts = rng.uniform(-1, 1, size=(25, 3))
    faces = np.array([rng.choice(25, size=3, replace=False) for _ in range(40)])
    expected = self_intersections_oracle(verts, faces)
    got = self_intersecting_faces(torch.tensor(verts), torch.tensor(faces)).numpy()
    assert expected.any() and not expected.all()  # the case is informative
    np.testing.assert_array_equal(got, expected)


def test_self_intersections_of_a_dented_sphere():
    tm = trimesh.creation.icosphere(subdivisions=1)
    mesh = tm_to_mesh(tm)
    assert not self_intersecting_faces(mesh.verts, mesh.faces).any()
    # Push one vertex through the sphere to the far side: its fan now crosses the opposite faces.
    verts = mesh.verts.clone()
    verts[0] = -1.5 * verts[0]
    got = self_intersecting_faces(verts, mesh.faces)
    np.testing.assert_array_equal(got.numpy(), self_intersections_oracle(verts.double().numpy(), mesh.faces.numpy()))
    assert got.any()
    # Faces that share a vertex are never counted against each other, even when folded over.
    fold = torch.tensor([[0.0, 0, 0], [1, 0, 0], [0, 1, 0], [0.2, 0.2, -0.5], [0.2, 0.2, 0.5]])
    assert not self_intersecting_faces(fold, torch.tensor([[0, 1, 2], [0, 3, 4]])).any()
    assert mesh_quality(Mesh(verts, mesh.faces))["self_intersection_fraction"] == pytest.approx(got.float().mean().item())


def test_candidate_pairs_finds_every_overlapping_box_in_small_chunks():
    g = torch.Generator().manual_seed(0)
    lo = torch.rand(60, 3, generator=g)
    hi = lo + 0.3 * torch.rand(60, 3, generator=g)
    got = torch.cat(list(candidate_pairs(lo, hi, max_pairs=7)))
    got = {tuple(sorted(p)) for p in got.tolist()}
    expected = {(i, j) for i, j in itertools.combinations(range(60), 2)
                if bool(((lo[i] <= hi[j]) & (lo[j] <= hi[i])).all())}
    assert got == expected
