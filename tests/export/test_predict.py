"""`shoerecon predict`: any photo is framed exactly like the training input view; batched = one by one;
every output file is written and readable; bad files give a clear message and do not stop the others."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.data.dataset import DataConfig, TurntableDataset
from shoerecon.data.synthetic import SynthConfig, generate_dataset
from shoerecon.geometry.io.glb import load_glb
from shoerecon.geometry.io.obj import load_obj
from shoerecon.export.predict import PredictConfig, load_input, predict_files, predict_meshes
from shoerecon.export.turntable import TurntableConfig

SIZE = 32


@pytest.fixture(scope="module")
def dataset_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, 2, num_views=4, image_size=48, seed=1, workers=0,
                     cfg=SynthConfig(edge_length=0.06, texture_size=64, look="flat"), progress=False)
    return root


def view_file(root):
    return sorted(root.glob("shoe_*/views/000.png"))[0]


def test_predict_input_is_the_dataset_input(dataset_root):
    data_cfg = DataConfig(root=str(dataset_root), image_size=SIZE)
    ds = TurntableDataset(data_cfg, split="all")
    path = view_file(dataset_root)
    expected = ds.load_shoe(path.parent.parent.name)["input"]
    got, mask = load_input(path, data_cfg)
    torch.testing.assert_close(got, expected)
    assert got.shape == (3, SIZE, SIZE) and mask.shape == (1, SIZE, SIZE)


def test_any_photo_format_gives_the_same_framing(dataset_root, tmp_path):
    data_cfg = DataConfig(image_size=SIZE)
    rgba = np.asarray(Image.open(view_file(dataset_root)).convert("RGBA")).astype(np.float32) / 255
    a = rgba[..., 3:]
    on_white = (rgba[..., :3] * a + (1 - a)) * 255
    # The same shoe: RGBA with alpha; RGB on white, wider canvas (other aspect), larger; a JPEG; grey.
    wide = np.full((60, 120, 3), 255.0)
    wide[6:54, 50:98] = on_white
    Image.fromarray(rgba.__mul__(255).round().astype(np.uint8), "RGBA").save(tmp_path / "a.png")
    Image.fromarray(wide.round().astype(np.uint8)).resize((240, 120), Image.BICUBIC).save(tmp_path / "b.png")
    Image.fromarray(wide.round().astype(np.uint8)).save(tmp_path / "c.jpg", quality=95)
    Image.fromarray(on_white.round().astype(np.uint8)).convert("L").save(tmp_path / "d.png")
    ref, ref_mask = load_input(tmp_path / "a.png", data_cfg)
    for name in ("b.png", "c.jpg", "d.png"):
        img, mask = load_input(tmp_path / name, data_cfg)
        iou = ((mask > 0.5) & (ref_mask > 0.5)).sum() / ((mask > 0.5) | (ref_mask > 0.5)).sum()
        # Same framing: the shoe lands on the same pixels. At 32 px one source pixel of bounding box moves the
        # framed shoe by ~1 px (IoU ~0.05): the cut-out of the bicubic b.png keeps the heel tab (as the alpha
        # does) but half a pixel taller, and frames at 0.84 where the old mask, without the tab, happened to
        # give 0.90 (at 64 px it is the other way round: 0.885 vs 0.867). A wrong framing gives far less.
        assert iou > 0.8, name
        if name != "d.png":
            assert (img - ref).abs().mean() < 0.05, name


def test_batched_prediction_equals_one_by_one(tiny_model):
    images = torch.rand(3, 3, SIZE, SIZE)
    batched = predict_meshes(tiny_model, images)
    for i in range(3):
        single = predict_meshes(tiny_model, images[i:i + 1])[0]
        torch.testing.assert_close(batched[i].verts, single.verts, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(batched[i].texture, single.texture, atol=1e-5, rtol=1e-5)


def test_predict_files_writes_everything_and_skips_bad_files(dataset_root, tiny_model, tmp_path):
    data_cfg = DataConfig(image_size=SIZE)
    good = view_file(dataset_root)
    (tmp_path / "broken.png").write_bytes(b"not an image")
    Image.new("RGB", (40, 30), "white").save(tmp_path / "blank.png")
    cfg = PredictConfig(batch_size=2, turntable_cfg=TurntableConfig(image_size=24))
    records, errors = predict_files(tiny_model, data_cfg, [good, tmp_path / "broken.png", good, tmp_path / "blank.png"],
                                    tmp_path / "out", cfg, progress=False)
    assert [r["name"] for r in records] == ["000", "000_1"]
    assert len(errors) == 2 and "broken.png" in errors[0] and "blank.png" in errors[1]
    folder = tmp_path / "out" / "000"
    assert {p.name for p in folder.iterdir()} == {"000.obj", "000.mtl", "000_texture.png", "000.glb", "000_turntable.png",
                                                  "000_input.png"}
    for mesh in (load_glb(folder / "000.glb"), load_obj(folder / "000.obj")):
        assert mesh.num_faces == tiny_model.faces.shape[0] and mesh.texture.shape == (3, 16, 16)
    assert Image.open(folder / "000_turntable.png").size == (8 * 24 + 7 * 2, 24)


def test_predict_cli(dataset_root, tiny_model, tmp_path, capsys):
    from shoerecon.cli import main
    from shoerecon.train.checkpoint import build_checkpoint, save_checkpoint
    from shoerecon.train.config import ExperimentConfig, config_to_dict

    cfg = ExperimentConfig()
    cfg.data = DataConfig(image_size=SIZE)
    cfg.model = tiny_model.cfg
    ckpt = tmp_path / "m.pt"
    save_checkpoint(ckpt, build_checkpoint(tiny_model, config_to_dict(cfg), step=0, epoch=0))
    rc = main(["predict", str(view_file(dataset_root)), "--checkpoint", str(ckpt), "--out", str(tmp_path / "o"),
               "--format", "glb", "--strip-size", "16", "--quiet"])
    assert rc == 0
    assert (tmp_path / "o" / "000" / "000.glb").is_file() and not (tmp_path / "o" / "000" / "000.obj").exists()
    with pytest.raises(SystemExit, match="valid formats"):
        main(["predict", "x.png", "--checkpoint", str(ckpt), "--out", str(tmp_path), "--format", "fbx"])


def test_output_names_stay_inside_out(tmp_path, dataset_root, tiny_model):
    """An input named '...png' (stem '..') once wrote into the parent of --out."""
    from shoerecon.data.dataset import DataConfig as DC

    photo = (tmp_path / "in").mkdir() or tmp_path / "in" / "...png"
    photo.write_bytes(view_file(dataset_root).read_bytes())
    out = tmp_path / "deep" / "out"
    records, errors = predict_files(tiny_model, DC(image_size=SIZE), [photo], out,
                                    PredictConfig(formats=("obj",), turntable=False), progress=False)
    assert not errors
    for f in records[0]["files"]:
        assert out.resolve() in __import__("pathlib").Path(f).resolve().parents
    assert sorted(p.name for p in (tmp_path / "deep").iterdir()) == ["out"]
