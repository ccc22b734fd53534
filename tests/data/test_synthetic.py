import json
from dataclasses import fields, replace

import numpy as np
import pytest
import torch

from shoerecon.data.synthetic import (
    DEFAULT_SHAPE_RANGES,
    ShoeParams,
    SynthConfig,
    sample_shoe_params,
    shoe_geometry,
    shoe_mesh,
    shoe_rng,
    shoe_surface,
    split_ids,
)


def _edges_count(faces: np.ndarray) -> dict:
    counts = {}
    for f in faces.tolist():
        for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0])):
            key = (min(a, b), max(a, b))
            counts[key] = counts.get(key, 0) + 1
    return counts


def _directed_edges(faces: np.ndarray) -> set:
    return {(f[i], f[(i + 1) % 3]) for f in faces.tolist() for i in range(3)}


def _signed_volume(verts, faces):
    total = 0.0
    for a, b, c in faces.tolist():  # slow, obviously-correct divergence-theorem sum
        total += float(np.dot(verts[a], np.cross(verts[b], verts[c]))) / 6.0
    return total


def _shoes():
    return [ShoeParams.mean()] + [sample_shoe_params(shoe_rng(11, i)) for i in range(3)]


@pytest.mark.parametrize("k", range(4))
def test_mesh_is_closed_oriented_genus_zero(k):
    p = _shoes()[k]
    verts, faces, uvs, uv_faces = shoe_geometry(p, edge_length=0.05)
    counts = _edges_count(faces)
    assert set(counts.values()) == {2}, "every edge must border exactly two faces (closed manifold)"
    assert len(_directed_edges(faces)) == 3 * len(faces), "consistent orientation: no directed edge twice"
    assert len(verts) - len(counts) + len(faces) == 2, "Euler characteristic 2 = genus 0"
    assert _signed_volume(verts, faces) > 0, "faces must be counter-clockwise seen from outside"
    assert len(np.unique(faces)) == len(verts), "no unused vertices"


@pytest.mark.parametrize("k", range(4))
def test_triangles_are_well_shaped(k):
    verts, faces, _, _ = shoe_geometry(_shoes()[k], edge_length=0.035)
    tri = verts[faces]
    angles = []
    for i in range(3):
        a, b, c = tri[:, i], tri[:, (i + 1) % 3], tri[:, (i + 2) % 3]
        u, v = b - a, c - a
        cos = np.einsum("fi,fi->f", u, v) / (np.linalg.norm(u, axis=1) * np.linalg.norm(v, axis=1))
        angles.append(np.degrees(np.arccos(np.clip(cos, -1, 1))))
    min_angle = np.min(angles, axis=0)
    assert min_angle.min() > 3.0
    assert np.mean(min_angle > 15.0) > 0.97
    assert np.median(min_angle) > 35.0


def test_uvs_cover_unit_square_and_faces_are_not_folded_in_uv():
    _, faces, uvs, uv_faces = shoe_geometry(ShoeParams.mean(), edge_length=0.05)
    assert uvs.min() >= 0 and uvs.max() <= 1 and uv_faces.shape == faces.shape
    t = uvs[uv_faces]
    area = (t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1]) - (t[:, 2, 0] - t[:, 0, 0]) * (t[:, 1, 1] - t[:, 0, 1])
    assert (np.sign(area) == np.sign(area[0])).all() and (np.abs(area) > 0).all(), "one UV orientation, no degenerate UV face"
    # Consistently oriented faces whose areas sum to the covered area do not overlap. Everything is
    # covered except half of the first and last strips (the pole fans are triangles to v = 0 / 1).
    inner = np.unique(uvs[:, 1][(uvs[:, 1] > 0) & (uvs[:, 1] < 1)])
    expected = 1.0 - (inner[0] + (1.0 - inner[-1])) / 2
    assert np.isclose(np.abs(area).sum() / 2, expected, atol=1e-9)


def test_normalised_with_toe_at_plus_x_heel_taller_and_medial_toe():
    p = replace(ShoeParams.mean(), toe_offset=0.03)
    m = shoe_mesh(p, SynthConfig(edge_length=0.05), textured=False)
    v = m.verts
    lo, hi = v.min(0).values, v.max(0).values
    assert torch.allclose((lo + hi) / 2, torch.zeros(3), atol=1e-5)
    assert abs((hi - lo).max().item() - 1.0) < 1e-5 and (hi - lo).argmax().item() == 0, "length along X is the longest"
    back, front = v[v[:, 0] < -0.3], v[v[:, 0] > 0.3]
    assert back[:, 1].max() > front[:, 1].max() + 0.05, "the collar at the heel (-X) is higher than the toe box (+X)"
    assert v[v[:, 0].argmax(), 2] < 0, "the toe tip leans to the medial side (-Z) of a right shoe"
    bottom = v[v[:, 1] < lo[1] + 0.02]
    assert (hi - lo)[1] < 0.6 and len(bottom) > 20, "a flat sole rests at the bottom"


@pytest.mark.parametrize("name", sorted(DEFAULT_SHAPE_RANGES))
def test_every_shape_parameter_changes_the_surface(name):
    lo, hi = DEFAULT_SHAPE_RANGES[name]
    s = np.linspace(0, 1, 41)[:, None]
    th = np.linspace(-np.pi / 2, 1.5 * np.pi, 48)[None, :]
    a = shoe_surface(replace(ShoeParams.mean(), **{name: lo}), s, th)
    b = shoe_surface(replace(ShoeParams.mean(), **{name: hi}), s, th)
    assert np.abs(a - b).max() > 1e-3
    assert len(DEFAULT_SHAPE_RANGES) >= 8


def test_sampling_is_deterministic_and_in_range():
    cfg = SynthConfig()
    a, b = sample_shoe_params(shoe_rng(5, 7), cfg), sample_shoe_params(shoe_rng(5, 7), cfg)
    assert a == b
    assert a != sample_shoe_params(shoe_rng(5, 8), cfg) and a != sample_shoe_params(shoe_rng(6, 7), cfg)
    for k, (lo, hi) in {**cfg.shape_ranges, **cfg.texture_ranges}.items():
        assert lo <= getattr(a, k) <= hi
    for f in fields(ShoeParams):
        if f.name.endswith("_color"):
            assert all(0 <= c <= 1 for c in getattr(a, f.name))


def test_mean_params_are_the_dataclass_defaults():
    mean, default = ShoeParams.mean(), ShoeParams()
    for k in {**DEFAULT_SHAPE_RANGES}:
        assert getattr(mean, k) == pytest.approx(getattr(default, k))


def test_synth_config_rejects_unknown_ranges():
    with pytest.raises(ValueError, match="unknown parameters"):
        SynthConfig(shape_ranges={"heel_hieght": (0.1, 0.2)})
    with pytest.raises(ValueError, match="low <= high"):
        SynthConfig(shape_ranges={"heel_height": (0.2, 0.1)})


def test_split_ids_partition_and_determinism():
    ids = [f"s{i}" for i in range(20)]
    a = split_ids(ids, 0, 0.1, 0.1)
    assert sorted(a["train"] + a["val"] + a["test"]) == sorted(ids)
    assert len(a["val"]) == 2 and len(a["test"]) == 2
    assert a == split_ids(ids, 0, 0.1, 0.1)


def test_texture_lateral_and_medial_sides_differ():
    pytest.importorskip("shoerecon.render.renderer")
    from shoerecon.data.synthetic import render_turntable

    p = sample_shoe_params(shoe_rng(0, 2))
    m = shoe_mesh(p, SynthConfig(edge_length=0.05, texture_size=64))
    cams = torch.tensor([[0.0, 0.0, 2.2, 30.0], [180.0, 0.0, 2.2, 30.0]])
    rgba = render_turntable(m, cams, 48)
    lateral, medial = rgba[0], rgba[1].flip(-1)  # medial view mirrored: same silhouette region
    both = (lateral[3] > 0.5) & (medial[3] > 0.5)
    assert both.float().sum() > 0.8 * (lateral[3] > 0.5).float().sum()
    diff = (lateral[:3] - medial[:3]).abs().amax(0)[both]
    assert (diff > 0.15).float().mean() > 0.03, "the two sides must look different"


def test_generated_dataset_layout(tiny_dataset):
    from tiny_spec import NUM_SHOES, NUM_VIEWS, SIZE
    from PIL import Image

    rig = json.loads((tiny_dataset / "rig.json").read_text())
    assert rig["input_view"] == 0 and len(rig["views"]) == NUM_VIEWS
    assert [v["azimuth"] for v in rig["views"]] == pytest.approx([360.0 / NUM_VIEWS * i for i in range(NUM_VIEWS)])
    assert {v["elevation"] for v in rig["views"]} == {10.0} and {v["distance"] for v in rig["views"]} == {2.2}
    splits = json.loads((tiny_dataset / "splits.json").read_text())
    ids = sorted(splits["train"] + splits["val"] + splits["test"])
    assert ids == [f"shoe_{i:05d}" for i in range(NUM_SHOES)]
    for sid in ids:
        files = sorted((tiny_dataset / sid / "views").iterdir())
        assert [f.name for f in files] == [f"{i:03d}.png" for i in range(NUM_VIEWS)]
        img = Image.open(files[0])
        assert img.mode == "RGBA" and img.size == (SIZE, SIZE)
        alpha = np.asarray(img)[..., 3]
        assert set(np.unique(alpha)) <= {0, 255}, "supersample=1: alpha is exact 0/1 coverage"
        assert (tiny_dataset / sid / "mesh.glb").exists()


def test_generation_is_deterministic(tiny_dataset, tmp_path):
    from tiny_spec import NUM_VIEWS, SIZE
    from shoerecon.data.layout import rig_from_turntable
    from shoerecon.data.synthetic import generate_shoe

    cfg = SynthConfig(edge_length=0.05, texture_size=64, supersample=1, image_size=SIZE, num_views=NUM_VIEWS)
    generate_shoe(tmp_path, 1, 3, cfg, rig_from_turntable(NUM_VIEWS).cameras)
    for v in range(NUM_VIEWS):
        a = (tmp_path / "shoe_00001" / "views" / f"{v:03d}.png").read_bytes()
        b = (tiny_dataset / "shoe_00001" / "views" / f"{v:03d}.png").read_bytes()
        assert a == b


def test_ground_truth_glb_matches_the_rendered_mesh(tiny_dataset):
    glb = pytest.importorskip("shoerecon.geometry.io.glb")
    from shoerecon.data.synthetic import sample_shoe_params

    m = glb.load_glb(tiny_dataset / "shoe_00000" / "mesh.glb")
    ref = shoe_mesh(sample_shoe_params(shoe_rng(3, 0)), SynthConfig(edge_length=0.05, texture_size=64))
    assert m.num_faces == ref.num_faces
    assert torch.allclose(m.verts.min(0).values, ref.verts.min(0).values, atol=1e-4)
    assert torch.allclose(m.verts.max(0).values, ref.verts.max(0).values, atol=1e-4)
    assert m.texture is not None and m.uvs is not None
