"""`shoerecon predict --refine N --orientation ...`: --refine 0 is the plain forward pass bit for bit; a short
refinement writes every output plus the fit sheet; --keep-handedness mirrors the mesh back."""
from __future__ import annotations

import pytest
import torch

from shoerecon.data.synthetic import SynthConfig, generate_dataset
from shoerecon.geometry.io.obj import load_obj
from shoerecon.export.predict import PredictConfig, load_input, predict_files, predict_meshes
from shoerecon.export.turntable import TurntableConfig
from shoerecon.fit import RefineConfig
from shoerecon.data.dataset import DataConfig

SIZE = 32


@pytest.fixture(scope="module")
def photo_path(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate_dataset(root, 1, num_views=2, image_size=48, seed=3, workers=0,
                     cfg=SynthConfig(edge_length=0.06, texture_size=64), progress=False)
    return sorted(root.glob("shoe_*/views/000.png"))[0]


def outputs(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_refine_zero_is_the_plain_forward_pass_bit_for_bit(tiny_model, photo_path, tmp_path):
    data_cfg = DataConfig(image_size=SIZE)
    small = TurntableConfig(num_views=2, image_size=32)
    plain, _ = predict_files(tiny_model, data_cfg, [photo_path], tmp_path / "a", PredictConfig(turntable_cfg=small),
                             progress=False)
    zero, _ = predict_files(tiny_model, data_cfg, [photo_path], tmp_path / "b",
                            PredictConfig(turntable_cfg=small, refine_steps=0, orientation="as-is",
                                          refine_cfg=RefineConfig(steps=0)), progress=False)
    assert outputs(tmp_path / "a") == outputs(tmp_path / "b")
    # and the exported vertices are the network's own prediction
    image, _ = load_input(photo_path, data_cfg)
    expected = predict_meshes(tiny_model, image[None])[0]
    obj = load_obj(tmp_path / "b" / photo_path.stem / f"{photo_path.stem}.obj")
    torch.testing.assert_close(obj.verts, expected.verts, atol=1e-5, rtol=0)


def test_refine_and_orientation_write_every_output(tiny_model, photo_path, tmp_path):
    data_cfg = DataConfig(image_size=SIZE)
    rcfg = RefineConfig(image_size=32, texture_size=32, orientation_steps=2, camera_only_steps=1)
    cfg = PredictConfig(formats=("obj",), turntable=False, refine_steps=3, orientation="mirror",
                        keep_handedness=True, refine_cfg=rcfg)
    records, errors = predict_files(tiny_model, data_cfg, [photo_path], tmp_path, cfg, progress=False)
    assert not errors and records[0]["orientation"] == "mirror"
    assert records[0]["handedness"].startswith("left")
    names = {p.split("/")[-1] for p in records[0]["files"]}
    stem = photo_path.stem
    assert {f"{stem}.obj", f"{stem}_input.png", f"{stem}_fit.png"} <= names
    mesh = load_obj(tmp_path / stem / f"{stem}.obj")
    assert mesh.texture.shape[-1] == 32  # the baked texture
    # mirrored back: the refined right shoe reflected in z (the mesh's z extent flips sign)
    right = predict_files(tiny_model, data_cfg, [photo_path], tmp_path / "r",
                          PredictConfig(formats=("obj",), turntable=False, refine_steps=3, orientation="mirror",
                                        refine_cfg=rcfg), progress=False)[0][0]
    assert right["handedness"] == "right"
    right_mesh = load_obj(tmp_path / "r" / stem / f"{stem}.obj")
    torch.testing.assert_close(mesh.verts[:, 2].sort().values, (-right_mesh.verts[:, 2]).sort().values,
                               atol=1e-5, rtol=0)
