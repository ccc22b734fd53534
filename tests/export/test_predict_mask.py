"""`shoerecon predict` on a shop photo without alpha: the shoe is cut out with the product-photo mask (white sole
kept, contact shadow dropped), the same cut-out the dataset uses for views without alpha or mask files."""
import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.data.dataset import DataConfig, cut_out
from shoerecon.data.layout import DataError
from shoerecon.data.preprocess import pad_to_square, prepare_input
from shoerecon.export.predict import load_input
from tests.data.test_import import shoe_photo


def _write(path, img):
    Image.fromarray((img * 255).round().astype(np.uint8)).save(path)  # RGB, no alpha: the mask is cut out


def _iou(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a > 0.5, b > 0.5
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("view", [0, 2])
def test_predict_cuts_out_white_soles_without_the_shadow(tmp_path, view):
    img, truth = shoe_photo(view, white_sole=True, shadow=True)
    _write(tmp_path / "photo.png", img)
    rgb = torch.from_numpy(np.asarray(Image.open(tmp_path / "photo.png"), dtype=np.float32) / 255).permute(2, 0, 1)
    truth = torch.from_numpy(truth)[None].float()
    cfg = DataConfig(image_size=64)
    mask = cut_out(rgb, cfg, "photo.png")
    assert _iou(mask, truth) > 0.97  # measured 0.98-0.99
    # The old path (threshold against white) keeps the contact shadow and loses the white sole.
    assert _iou(cut_out(rgb, dataclasses.replace(cfg, mask_method="threshold"), "photo.png"), truth) < 0.8  # 0.65
    # predict frames the photo by exactly this mask.
    _, framed = load_input(tmp_path / "photo.png", cfg)
    expected = prepare_input(pad_to_square(rgb, cfg.background), pad_to_square(mask, 0.0), 64, cfg.input_fill)[1]
    assert torch.equal(framed, expected)


def test_cut_out_names_the_file_when_the_background_is_not_white():
    img, _ = shoe_photo(0)
    rgb = torch.from_numpy(img * np.array([0.4, 0.8, 0.5])).permute(2, 0, 1).float()
    with pytest.raises(DataError, match=r"green\.jpg: not on a white background.*mask_method: threshold"):
        cut_out(rgb, DataConfig(), "green.jpg")


def test_unknown_mask_method_lists_the_valid_ones():
    with pytest.raises(ValueError, match="product.*threshold"):
        DataConfig(mask_method="grabcut")


def _midsole_photo(dark_outsole: bool) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) photo and exact mask of a toy shoe whose white midsole has no outline at its ends (it fades into
    the floor's soft reflection), over an optional black outsole, standing in a soft contact shadow."""
    h, w = 60, 96
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    upper = (((xx - 48) / 36) ** 2 + ((yy - 36) / 22) ** 2 <= 1) & (yy < 36)
    midsole = (np.abs(xx - 48) <= 38) & (yy >= 36) & (yy < 43)
    outsole = (np.abs(xx - 48) <= 38) & (yy >= 43) & (yy < 46) if dark_outsole else np.zeros_like(upper)
    bottom = 46 if dark_outsole else 43
    img = np.ones((h, w, 3))
    shadow = 0.35 * np.exp(-np.clip(yy - bottom, 0, None) / 3) * (np.abs(xx - 48) <= 42) * (yy >= bottom)
    img *= 1 - shadow[..., None]
    img[upper] = (0.15, 0.3, 0.7)
    img[midsole] = (0.94, 0.94, 0.93)
    img[midsole & (yy == 42)] = 0.8  # the rounded lower edge of the midsole is shaded
    img[outsole] = (0.08, 0.08, 0.09)
    return img, upper | midsole | outsole


@pytest.mark.parametrize("dark_outsole", [False, True])
def test_white_midsole_is_kept_down_to_the_contact_line(dark_outsole):
    img, truth = _midsole_photo(dark_outsole)
    mask = cut_out(torch.from_numpy(img).permute(2, 0, 1).float(), DataConfig(), "toy.png")[0] > 0.5
    truth = torch.from_numpy(truth)
    iou = float((mask & truth).sum() / (mask | truth).sum())
    assert iou > 0.95, iou
    assert not mask[49:].any()  # the contact shadow below stays out
