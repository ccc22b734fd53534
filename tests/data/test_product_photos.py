import json

import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.data.layout import read_image, read_rig
from shoerecon.data.product_photos import ProductPhotoConfig, generate_product_photos, recentre_crops, sample_hidden_rig
from shoerecon.data.preprocess import mask_bbox


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    root = tmp_path_factory.mktemp("pp")
    cfg = ProductPhotoConfig(height=36, width=48, num_views=4, supersample=1)
    out, truth = generate_product_photos(root / "src", 1, seed=3, cfg=cfg, progress=False)
    return out, truth, cfg


def test_photos_are_shop_named_jpegs_and_truth_is_apart(photos):
    out, truth, cfg = photos
    assert sorted(p.name for p in (out / "sku_00000").iterdir()) == ["img01.jpg", "img02.jpg", "img03.jpg", "img04.jpg"]
    assert Image.open(out / "sku_00000" / "img01.jpg").size == (48, 36)
    rig = json.loads((truth / "rig.json").read_text())["shoes"]["sku_00000"]
    assert 0 <= rig["elevation"] <= 20 and 15 <= rig["fov"] <= 50 and abs(rig["start_azimuth"]) <= 20
    assert np.hypot(rig["translation"][0], rig["translation"][2]) <= 0.1


def test_truth_cameras_reproduce_alpha(photos):
    from shoerecon.data.product_photos import _render
    from shoerecon.data.synthetic import sample_shoe_params, shoe_mesh, shoe_rng

    out, truth, cfg = photos
    cams = read_rig(truth / "sku_00000" / "cameras.json").cameras
    assert cams.shape == (4, 10)
    mesh = shoe_mesh(sample_shoe_params(shoe_rng(3, 0)))
    alpha = _render(mesh.verts, mesh, cams, cfg, textured=False)[:, 3:]
    for v in range(4):
        _, a = read_image(truth / "sku_00000" / "alpha" / f"{v:03d}.png")
        inter = ((a > 0.5) & (alpha[v] > 0.5)).sum()
        union = ((a > 0.5) | (alpha[v] > 0.5)).sum()
        assert inter / union > 0.97
        r0, r1, c0, c1 = mask_bbox(a)
        assert abs((c0 + c1) / 2 - 24) <= 1.5 and abs((r0 + r1) / 2 - 18) <= 1.5  # re-centred on the shoe
        assert max((c1 - c0) / 48, (r1 - r0) / 36) > 0.7  # and zoomed to fill


def test_recentre_crops_centres_and_fills():
    pts = torch.tensor([[[0.1, 0.2], [0.5, 0.4]]])  # box centre (0.3, 0.3), extent (0.4, 0.2)
    crop = recentre_crops(pts, 30, 60, torch.tensor([0.5]))  # x half-range 2, y half-range 1
    zoom = crop[0, 2]
    assert torch.isclose(zoom, torch.tensor(min(0.5 * 4 / 0.4, 0.5 * 2 / 0.2)))
    moved = zoom * pts[0] + crop[0, :2]
    assert torch.allclose(moved.mean(0), torch.zeros(2), atol=1e-6)


def test_hidden_rigs_turn_either_way_only_when_asked():
    draws = lambda d: [sample_hidden_rig(np.random.default_rng(i), ProductPhotoConfig(direction=d)) for i in range(40)]  # noqa: E731
    assert {r["direction"] for r in draws(0)} == {-1, 1}
    assert {r["direction"] for r in draws(-1)} == {-1}
    assert {r["direction"] for r in draws(1)} == {1}
