"""One test per kind of bad input: a clear error naming the file, or a converted image that is exactly right."""
import json
import warnings

import numpy as np
import pytest
from PIL import Image

from shoerecon.data import DataConfig, DataError, TurntableDataset
from shoerecon.data.layout import read_image

from tiny_spec import NUM_VIEWS, SIZE

SHOE = "shoe_00001"


def _ds(root, **kw):
    return TurntableDataset(DataConfig(root=str(root), image_size=SIZE, **kw), "all")


def _view(root, v=2):
    return root / SHOE / "views" / f"{v:03d}.png"


def _rgba(root, v=2):
    return np.asarray(Image.open(_view(root, v))).astype(np.float64) / 255


def test_corrupt_image_names_the_file(dataset_copy):
    _view(dataset_copy).write_bytes(b"this is not a png at all" * 10)
    with pytest.raises(DataError, match=r"002\.png.*not a readable image"):
        _ds(dataset_copy).load_shoe(SHOE)
    with pytest.raises(DataError, match=r"002\.png"):
        _ds(dataset_copy, check_images=True)


def test_truncated_image_names_the_file(dataset_copy):
    data = _view(dataset_copy).read_bytes()
    _view(dataset_copy).write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"002\.png.*(truncated|corrupt)"):
        _ds(dataset_copy).load_shoe(SHOE)


def test_missing_view(dataset_copy):
    _view(dataset_copy, 3).unlink()
    with pytest.raises(DataError, match=rf"{SHOE}.views.*{NUM_VIEWS - 1} view images but the rig has {NUM_VIEWS}.*missing view\(s\) 003"):
        _ds(dataset_copy)


def test_view_count_disagrees_with_rig(dataset_copy):
    rig = json.loads((dataset_copy / "rig.json").read_text())
    rig["views"] = rig["views"][:4]
    rig["num_views"] = 4
    (dataset_copy / "rig.json").write_text(json.dumps(rig))
    with pytest.raises(DataError, match=rf"views: {NUM_VIEWS} view images but the rig has 4 views.*beyond the rig: 004\.png"):
        _ds(dataset_copy)


def test_unknown_keys_in_rig_json(dataset_copy):
    rig = json.loads((dataset_copy / "rig.json").read_text())
    (dataset_copy / "rig.json").write_text(json.dumps({**rig, "elevaton": 5}))
    with pytest.raises(DataError, match=r"rig\.json: unknown keys \['elevaton'\]; valid keys"):
        _ds(dataset_copy)
    rig["views"][1]["azimut"] = 3.0
    (dataset_copy / "rig.json").write_text(json.dumps(rig))
    with pytest.raises(DataError, match=r"rig\.json: views\[1\] has unknown keys \['azimut'\]"):
        _ds(dataset_copy)


def test_grayscale_is_replicated_to_rgb(dataset_copy):
    gray = (_rgba(dataset_copy)[..., :3].mean(-1) * 255).round().astype(np.uint8)
    Image.fromarray(gray, "L").save(_view(dataset_copy))
    rgb, alpha = read_image(_view(dataset_copy))
    assert alpha is None and rgb.shape == (3, SIZE, SIZE)
    for c in range(3):
        assert np.allclose(rgb[c].numpy(), gray / 255.0, atol=1e-6)
    _ds(dataset_copy).load_shoe(SHOE)  # still a valid view (mask by thresholding)


def test_16_bit_is_scaled_not_clipped(dataset_copy):
    gray16 = (_rgba(dataset_copy)[..., :3].mean(-1) * 65535).round().astype(np.uint16)
    Image.fromarray(gray16).save(_view(dataset_copy))
    assert Image.open(_view(dataset_copy)).mode.startswith("I")
    rgb, _ = read_image(_view(dataset_copy))
    assert np.allclose(rgb[0].numpy(), gray16 / 65535.0, atol=1e-6) and rgb.max() <= 1.0
    _ds(dataset_copy).load_shoe(SHOE)


def test_palette_image_is_expanded(dataset_copy):
    rgb8 = (_rgba(dataset_copy)[..., :3] * 255).round().astype(np.uint8)
    pal = Image.fromarray(rgb8, "RGB").quantize(colors=32)
    pal.save(_view(dataset_copy))
    assert Image.open(_view(dataset_copy)).mode == "P"
    expected = np.asarray(pal.convert("RGB")).astype(np.float64) / 255
    rgb, alpha = read_image(_view(dataset_copy))
    assert alpha is None and np.allclose(rgb.permute(1, 2, 0).numpy(), expected, atol=1e-6)
    # With a transparent palette entry the transparency becomes the alpha.
    pal.info["transparency"] = 0
    pal.save(_view(dataset_copy), transparency=0)
    _, alpha = read_image(_view(dataset_copy))
    idx = np.asarray(pal)
    assert alpha is not None and np.array_equal(alpha[0].numpy() == 0, idx == 0)


def test_rgba_alpha_is_the_mask_and_rgb_is_composited(dataset_copy):
    rgba = _rgba(dataset_copy)
    half = rgba.copy()
    half[..., 3] *= 0.5  # semi-transparent: straight colour composited on white
    Image.fromarray((half * 255).round().astype(np.uint8), "RGBA").save(_view(dataset_copy))
    stored = np.asarray(Image.open(_view(dataset_copy))).astype(np.float64) / 255
    shoe = _ds(dataset_copy, center_input=False).load_shoe(SHOE, views=[2])
    a = stored[..., 3:]
    expected = stored[..., :3] * a + (1 - a)
    assert np.allclose(shoe["targets"][0].permute(1, 2, 0).numpy(), expected, atol=1e-5)
    assert np.allclose(shoe["target_masks"][0, 0].numpy(), a[..., 0], atol=1e-6)


def test_mask_of_another_size(dataset_copy):
    (dataset_copy / SHOE / "masks").mkdir()
    for v in range(NUM_VIEWS):
        Image.fromarray(np.full((SIZE, SIZE), 255, np.uint8)).save(dataset_copy / SHOE / "masks" / f"{v:03d}.png")
    Image.fromarray(np.full((SIZE + 3, SIZE), 255, np.uint8)).save(dataset_copy / SHOE / "masks" / "004.png")
    with pytest.raises(DataError, match=rf"masks.004\.png: mask is {SIZE}x{SIZE + 3} \(WxH\) but its view is {SIZE}x{SIZE}"):
        _ds(dataset_copy).load_shoe(SHOE)


def test_empty_mask(dataset_copy):
    (dataset_copy / SHOE / "masks").mkdir()
    for v in range(NUM_VIEWS):
        Image.fromarray(np.full((SIZE, SIZE), 255 if v != 1 else 0, np.uint8)).save(dataset_copy / SHOE / "masks" / f"{v:03d}.png")
    with pytest.raises(DataError, match=r"masks.001\.png: empty mask"):
        _ds(dataset_copy).load_shoe(SHOE)


def test_empty_alpha_is_an_empty_mask(dataset_copy):
    rgba = (_rgba(dataset_copy, 0) * 255).round().astype(np.uint8)
    rgba[..., 3] = 0
    Image.fromarray(rgba, "RGBA").save(_view(dataset_copy, 0))
    with pytest.raises(DataError, match=r"000\.png: empty mask"):
        _ds(dataset_copy)[1]


def test_skip_drops_the_whole_shoe_with_one_warning(dataset_copy):
    _view(dataset_copy).write_bytes(b"garbage")
    ds = _ds(dataset_copy, on_error="skip")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        items = [ds[i] for i in range(len(ds))] + [ds[1]]
    msgs = [str(w.message) for w in caught if "skipping shoe" in str(w.message)]
    assert len(msgs) == 1 and SHOE in msgs[0] and "002.png" in msgs[0]
    assert all(it["shoe_id"] != SHOE for it in items)
    # Structural problems are found when the dataset is built, and skip the shoe there.
    _view(dataset_copy, 4).unlink()
    with pytest.warns(UserWarning, match="skipping shoe 'shoe_00001'.*missing view"):
        ds = _ds(dataset_copy, on_error="skip")
    assert SHOE not in ds.shoe_ids and len(ds) == 2


def test_unreadable_mode_is_an_error(tmp_path):
    Image.fromarray(np.zeros((4, 4), np.float32), "F").save(tmp_path / "f.tif")
    with pytest.raises(DataError, match=r"f\.tif: floating-point images are not supported"):
        read_image(tmp_path / "f.tif")


def test_opaque_rgba_photo_is_thresholded_not_taken_as_a_full_mask(dataset_copy):
    rgba = _rgba(dataset_copy)
    flat = rgba[..., :3] * rgba[..., 3:] + (1 - rgba[..., 3:])  # the photo on white, alpha 1 everywhere
    opaque = np.concatenate([flat, np.ones_like(rgba[..., 3:])], -1)
    Image.fromarray((opaque * 255).round().astype(np.uint8), "RGBA").save(_view(dataset_copy))
    mask = _ds(dataset_copy, center_input=False).load_shoe(SHOE, views=[2])["target_masks"][0, 0].numpy() > 0.5
    true = rgba[..., 3] > 0.5
    assert (mask & true).sum() / (mask | true).sum() > 0.9
