"""Oversized images (decompression bombs) are refused before decoding: a data error naming the file; a skipped shoe
with on_error=skip; only that file skipped by predict."""
import struct
import warnings
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.data import DataConfig, DataError, TurntableDataset
from shoerecon.data.layout import read_image

from tiny_spec import SIZE

SHOE = "shoe_00001"


def png_claiming(path, width, height):
    """A 1x1 PNG whose header claims ``width`` x ``height``: a few hundred bytes that would decode to gigabytes."""
    Image.new("RGB", (1, 1), "white").save(path)
    data = bytearray(path.read_bytes())
    ihdr = 8 + 8  # signature, then the IHDR chunk's length and type
    data[ihdr:ihdr + 8] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr - 4:ihdr + 13]))
    data[ihdr + 13:ihdr + 17] = struct.pack(">I", crc)
    path.write_bytes(bytes(data))
    return path


def test_bomb_is_a_data_error_naming_the_file(tmp_path):
    small = png_claiming(tmp_path / "eighty_mp.png", 9000, 9000)  # 81 MP: PIL only warns; our default refuses
    assert Image.open(small).size == (9000, 9000)
    with pytest.raises(DataError, match=r"eighty_mp\.png: image too large: 9000x9000 = 81 MP .* 64 MP \(data.max_pixels; shoerecon import --max-pixels\)"):
        read_image(small)
    huge = png_claiming(tmp_path / "bomb.png", 40000, 40000)
    with pytest.raises(DataError, match=r"bomb\.png: image too large"):
        read_image(huge, max_pixels=None)  # PIL's own guard, mapped to our error


def test_pixel_limit_is_configurable(tmp_path):
    Image.new("RGB", (200, 100), "white").save(tmp_path / "a.png")
    assert read_image(tmp_path / "a.png", max_pixels=20_000)[0].shape == (3, 100, 200)
    with pytest.raises(DataError, match=r"a\.png: image too large: 200x100"):
        read_image(tmp_path / "a.png", max_pixels=19_999)


def test_skip_drops_the_shoe_with_the_bomb(dataset_copy):
    png_claiming(dataset_copy / SHOE / "views" / "002.png", 9000, 9000)
    cfg = DataConfig(root=str(dataset_copy), image_size=SIZE, on_error="skip")
    ds = TurntableDataset(cfg, "all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(len(ds))]
    assert any("skipping shoe 'shoe_00001'" in str(w.message) and "image too large" in str(w.message) for w in caught)
    assert all(it["shoe_id"] != SHOE for it in items)
    with pytest.raises(DataError, match=r"002\.png: image too large"):
        TurntableDataset(DataConfig(root=str(dataset_copy), image_size=SIZE), "all").load_shoe(SHOE)


def test_predict_skips_only_the_oversized_file(dataset_copy, tmp_path):
    from shoerecon.export.predict import PredictConfig, predict_files
    from shoerecon.geometry.template import load_template
    from shoerecon.model import ModelConfig, ShoeReconNet

    net = ShoeReconNet(ModelConfig(unet_depth=2, unet_width=4, latent_dim=16, latent_pool=2, shape_hidden=16,
                                   shape_layers=2, texture_size=16, flow_hidden=4), load_template()).eval()
    good = dataset_copy / "shoe_00000" / "views" / "000.png"
    bomb = png_claiming(tmp_path / "bomb.png", 9000, 9000)
    records, errors = predict_files(net, DataConfig(image_size=SIZE), [bomb, good], tmp_path / "out",
                                    PredictConfig(formats=("obj",), turntable=False), progress=False)
    assert [r["name"] for r in records] == ["000"]
    assert len(errors) == 1 and "bomb.png: image too large" in errors[0]
