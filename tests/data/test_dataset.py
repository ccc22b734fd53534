import json

import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.data import DataConfig, TurntableDataset
from shoerecon.data.layout import hash_split, read_rig
from shoerecon.data.preprocess import mask_bbox
from shoerecon.render.cameras import fov_after_padding

from tiny_spec import NUM_SHOES, NUM_VIEWS, SIZE


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    return ((a & b).sum() / (a | b).sum().clamp_min(1)).item()


def test_item_matches_the_contract(tiny_dataset):
    ds = TurntableDataset(DataConfig(root=str(tiny_dataset), image_size=24, num_target_views=3), split="all", seed=1)
    assert len(ds) == NUM_SHOES
    item = ds[0]
    assert item["shoe_id"] == "shoe_00000"
    assert item["input"].shape == (3, 24, 24) and item["input_mask"].shape == (1, 24, 24)
    assert item["targets"].shape == (3, 3, 24, 24) and item["target_masks"].shape == (3, 1, 24, 24)
    assert item["target_cameras"].shape == (3, 4) and item["target_views"].dtype == torch.long
    assert len(set(item["target_views"].tolist())) == 3
    for t in ("input", "input_mask", "targets", "target_masks"):
        assert item[t].dtype == torch.float32 and 0 <= item[t].min() and item[t].max() <= 1
    rig = read_rig(tiny_dataset / "rig.json")
    assert torch.equal(item["target_cameras"], rig.cameras[item["target_views"]])
    assert torch.equal(item["input_camera"], rig.cameras[0])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["targets"].shape == (2, 3, 3, 24, 24) and batch["shoe_id"] == ["shoe_00000", "shoe_00001"]


def test_target_views_reproducible_and_varied(tiny_dataset):
    cfg = DataConfig(root=str(tiny_dataset), image_size=16, num_target_views=2)
    a, b = TurntableDataset(cfg, "all", seed=0), TurntableDataset(cfg, "all", seed=0)
    views = lambda ds: [ds.sample_targets(i, NUM_VIEWS, 0).tolist() for i in range(20)]  # noqa: E731
    assert views(a) == views(b)
    assert len({tuple(v) for v in views(a)}) > 3, "different items draw different views"
    c = TurntableDataset(cfg, "all", seed=1)
    assert views(a) != views(c)
    b.set_epoch(1)
    assert views(a) != views(b)
    ex = TurntableDataset(DataConfig(root=str(tiny_dataset), num_target_views=NUM_VIEWS - 1, exclude_input_from_targets=True), "all")
    assert ex.sample_targets(0, NUM_VIEWS, 0).tolist() == list(range(1, NUM_VIEWS))


def test_targets_are_the_files_and_alpha_is_the_mask(tiny_dataset):
    ds = TurntableDataset(DataConfig(root=str(tiny_dataset), image_size=SIZE, center_input=False), "all")
    shoe = ds.load_shoe("shoe_00001")
    assert shoe["targets"].shape == (NUM_VIEWS, 3, SIZE, SIZE) and shoe["target_views"].tolist() == list(range(NUM_VIEWS))
    assert shoe["mesh_path"].endswith("mesh.glb")
    rgba = np.asarray(Image.open(tiny_dataset / "shoe_00001" / "views" / "002.png")).astype(np.float32) / 255
    alpha = rgba[..., 3:]
    expected = rgba[..., :3] * alpha + (1 - alpha)  # straight alpha composited on white
    assert np.allclose(shoe["targets"][2].permute(1, 2, 0).numpy(), expected, atol=1e-6)
    assert np.array_equal(shoe["target_masks"][2, 0].numpy(), alpha[..., 0])
    # An independent mask (background threshold) agrees with the alpha.
    thr = TurntableDataset(DataConfig(root=str(tiny_dataset), image_size=SIZE, mask_source="threshold"), "all")
    assert _iou(thr.load_shoe("shoe_00001")["target_masks"][2], shoe["target_masks"][2]) > 0.9


def test_input_view_is_centred_and_scaled(tiny_dataset):
    ds = TurntableDataset(DataConfig(root=str(tiny_dataset), image_size=SIZE, input_fill=0.75), "all")
    m = ds[1]["input_mask"]
    r0, r1, c0, c1 = mask_bbox(m)
    assert abs(max(r1 - r0, c1 - c0) - 0.75 * SIZE) <= 2
    assert abs((r0 + r1) / 2 - SIZE / 2) <= 1.5 and abs((c0 + c1) / 2 - SIZE / 2) <= 1.5
    assert (c1 - c0) > 1.5 * (r1 - r0), "view 0 is a side view: the shoe is long"


def test_mask_files_take_precedence(dataset_copy):
    sid = "shoe_00000"
    (dataset_copy / sid / "masks").mkdir()
    for v in range(NUM_VIEWS):
        m = np.zeros((SIZE, SIZE), np.uint8)
        m[4:20, 6:30] = 255
        Image.fromarray(m).save(dataset_copy / sid / "masks" / f"{v:03d}.png")
    ds = TurntableDataset(DataConfig(root=str(dataset_copy), image_size=SIZE, center_input=False), "all")
    got = ds.load_shoe(sid)["target_masks"][3, 0]
    assert got.sum().item() == 16 * 24 and got[4:20, 6:30].min() == 1
    alpha = TurntableDataset(DataConfig(root=str(dataset_copy), image_size=SIZE, mask_source="alpha"), "all")
    assert not torch.equal(alpha.load_shoe(sid)["target_masks"][3, 0], got)


def test_splits_from_file_and_by_hash(dataset_copy):
    splits = json.loads((dataset_copy / "splits.json").read_text())
    for name in ("train", "val", "test"):
        if splits[name]:
            assert TurntableDataset(DataConfig(root=str(dataset_copy)), name).shoe_ids == splits[name]
    (dataset_copy / "splits.json").unlink()
    ids = TurntableDataset(DataConfig(root=str(dataset_copy)), "all").shoe_ids
    expected = [i for i in ids if hash_split(i) == "train"]
    if expected:
        assert TurntableDataset(DataConfig(root=str(dataset_copy)), "train").shoe_ids == expected
    names = [f"shoe_{i}" for i in range(2000)]
    share = np.mean([hash_split(n) == "train" for n in names])
    assert 0.75 < share < 0.85 and all(hash_split(n) == hash_split(n) for n in names[:10])


def test_reads_a_folder_of_real_style_photos(tmp_path):
    """Renders saved as RGB JPEG 800x600 on white, no masks, no alpha, camera file names: same code, right masks and cameras."""
    pytest.importorskip("shoerecon.render.renderer")
    from shoerecon.data.layout import rig_from_turntable, write_json
    from shoerecon.data.synthetic import SynthConfig, render_turntable, sample_shoe_params, shoe_mesh, shoe_rng
    from shoerecon.render.cameras import Cameras
    from shoerecon.render.renderer import Renderer, RendererConfig

    views, fov = 4, 30.0
    rig = rig_from_turntable(views, fov=fov)
    write_json(tmp_path / "rig.json", rig.to_json())
    from shoerecon.data.synth.shoe import flat_paint, shoe_and_gbuffer

    # Flat per-part colours (soles never white): this tests the loader, not threshold masks of white soles.
    mesh, gbuffer = shoe_and_gbuffer(sample_shoe_params(shoe_rng(0, 4)), 0.05, 64)
    mesh.texture = torch.from_numpy(flat_paint(gbuffer, np.random.default_rng(0))).permute(2, 0, 1).contiguous()
    # A 150x200 photo (fov over the 150-pixel side) upscaled to 600x800 keeps its camera.
    r = Renderer(RendererConfig(image_size=(150, 200), faces_per_pixel=1, blend="hard", cull_backfaces=True))
    photos = r(mesh.verts[None], mesh.faces, Cameras.from_tensor(rig.cameras[None]), mesh.texture[None], mesh.uvs, mesh.uv_faces)[0]
    (tmp_path / "sneaker_a" / "views").mkdir(parents=True)
    for v in range(views):
        arr = (photos[v, :3].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(arr).resize((800, 600), Image.BICUBIC).save(tmp_path / "sneaker_a" / "views" / f"IMG_{v + 98:04d}.JPG", quality=90)  # camera names: sorted order
    ds = TurntableDataset(DataConfig(root=str(tmp_path), image_size=SIZE, num_target_views=views, center_input=False), "all")
    shoe = ds.load_shoe("sneaker_a")
    padded_fov = fov_after_padding(fov, 600, 800)
    assert torch.allclose(shoe["target_cameras"][:, 3], torch.full((views,), padded_fov))
    # Oracle: render the square view directly with the padded fov.
    cams = rig.cameras.clone()
    cams[:, 3] = padded_fov
    ref = render_turntable(mesh, cams, SIZE, supersample=4)
    for v in range(views):
        assert _iou(shoe["target_masks"][v], ref[v, 3:]) > 0.9, f"view {v}"
        inside = (shoe["target_masks"][v, 0] > 0.5) & (ref[v, 3] > 0.99)
        err = (shoe["targets"][v] - ref[v, :3]).abs().mean(0)[inside]
        assert err.median() < 0.08
        assert shoe["targets"][v][:, 0, 0].tolist() == pytest.approx([1.0, 1.0, 1.0], abs=0.03), "padding is white"


@pytest.mark.parametrize("center", [True, False])
def test_input_transform_maps_the_full_view_onto_the_input(tiny_dataset, center):
    """Warping the uncropped view-0 mask through the inverse of input_transform reproduces the input mask."""
    ds = TurntableDataset(DataConfig(root=str(tiny_dataset), image_size=SIZE, input_fill=0.75, center_input=center),
                          "all")
    shoe = ds.load_shoe("shoe_00001", views=[0])
    A = shoe["input_transform"]
    assert A.shape == (2, 3) and torch.equal(ds[1]["input_transform"], A)
    full = torch.cat([A, torch.tensor([[0.0, 0.0, 1.0]])]).inverse()[:2]  # input grid -> full-image grid
    warped = torch.nn.functional.affine_grid(full[None], (1, 1, SIZE, SIZE), align_corners=False)
    resampled = torch.nn.functional.grid_sample(shoe["target_masks"][:1], warped, align_corners=False)
    assert _iou(resampled[0], shoe["input_mask"]) > 0.85
    assert torch.equal(A, torch.eye(2, 3)) != center


def test_rig_json_product_keys_parse_and_old_files_stay_plain(tmp_path):
    from shoerecon.data.layout import DataError, parse_rig

    plain = {"views": [{"azimuth": 10.0, "elevation": 5.0, "distance": 2.2, "fov": 30.0}] * 2}
    assert parse_rig(plain, "rig.json").cameras.shape == (2, 4)
    data = {"object": {"translation": [0.1, 0.0, -0.05], "start_azimuth": 7.0, "direction": -1},
            "views": [{"azimuth": 10.0, "elevation": 5.0, "distance": 2.2, "fov": 30.0, "shift_x": 0.1, "shift_y": -0.2, "zoom": 1.5},
                      {"azimuth": 20.0, "elevation": 5.0, "distance": 2.2, "fov": 30.0}]}
    cams = parse_rig(data, "cameras.json").cameras
    expect = [[-3.0, 5.0, 2.2, 30.0, 0.1, -0.2, 1.5, 0.1, 0.0, -0.05], [-13.0, 5.0, 2.2, 30.0, 0.0, 0.0, 1.0, 0.1, 0.0, -0.05]]
    assert torch.allclose(cams, torch.tensor(expect))
    for bad, match in [({"object": {"offset": [0, 0, 0]}}, "unknown keys.*offset"), ({"object": {"direction": 2}}, "direction"),
                       ({"object": {"translation": [0, 1]}}, "translation"),
                       ({"views": [{**plain["views"][0], "zoom": 1.0}]}, "needs all of"),
                       ({"views": [{**plain["views"][0], "shift_x": 0, "shift_y": 0, "zoom": 0.0}]}, "zoom > 0"),
                       ({"views": [{**plain["views"][0], "crop": 1}]}, "unknown keys.*crop")]:
        with pytest.raises(DataError, match=match):
            parse_rig({**plain, **bad}, "cameras.json")


def test_product_cameras_flow_into_items_and_collate(tiny_dataset, tmp_path):
    import shutil

    from shoerecon.data.layout import Rig, write_json

    root = tmp_path / "ds"
    shutil.copytree(tiny_dataset, root)
    rig = read_rig(root / "rig.json")
    cams = torch.cat([rig.cameras, torch.tensor([0.1, -0.1, 1.2, 0.05, 0.0, 0.02]).expand(rig.num_views, 6)], 1)
    write_json(root / "shoe_00001" / "cameras.json", Rig(cams, rig.input_view).to_json())
    ds = TurntableDataset(DataConfig(root=str(root), image_size=16, num_target_views=2), split="all")
    items = [ds[0], ds[1]]
    assert items[0]["target_cameras"].shape == (2, 10) and items[1]["input_camera"].shape == (10,)
    assert torch.equal(items[0]["target_cameras"][:, 4:], torch.tensor([[0.0, 0, 1, 0, 0, 0]] * 2))
    assert torch.allclose(items[1]["target_cameras"], cams[items[1]["target_views"]])
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=2)))
    assert batch["target_cameras"].shape == (2, 2, 10)
