"""The data cache (``shoerecon cache``) returns the folder reader's tensors and refuses stale data."""
import os
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.data import DataConfig, TurntableDataset
from shoerecon.data.cache import CacheStale, build_cache, default_cache_dir, verify_cache
from shoerecon.data.layout import DataError

from tiny_spec import NUM_SHOES, NUM_VIEWS

KEYS = ("input", "input_mask", "input_camera", "input_transform", "targets", "target_masks", "target_cameras",
        "target_views")


def _pair(root, size, **kw):
    """The same dataset read from the folder (cache off) and from the cache (cache require)."""
    folder = TurntableDataset(DataConfig(root=str(root), image_size=size, cache="never", **kw), split="all", seed=4)
    cached = TurntableDataset(DataConfig(root=str(root), image_size=size, cache="require", **kw), split="all", seed=4)
    return folder, cached


@pytest.mark.parametrize("size", [24, 32])  # 24: a real (antialiased) resize; 32: the photos' own size
def test_cache_returns_exactly_the_folder_tensors(dataset_copy, size):
    build_cache(DataConfig(root=str(dataset_copy), image_size=size), progress=False)
    folder, cached = _pair(dataset_copy, size, num_target_views=3)
    assert cached.cached == set(cached.shoe_ids) and len(cached) == NUM_SHOES
    for i in range(len(folder)):
        a, b = folder[i], cached[i]
        for k in KEYS:
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), (i, k)
    full_a, full_b = folder.load_shoe("shoe_00001"), cached.load_shoe("shoe_00001")
    for k in ("targets", "target_masks", "target_cameras", "input", "input_mask", "input_transform"):
        assert torch.equal(full_a[k], full_b[k]), k
    assert full_b["targets"].shape == (NUM_VIEWS, 3, size, size)


def _give_product_cameras(root, shoe="shoe_00001"):
    """Calibrated product-photo cameras (crop + object offset) for one shoe; the others keep the plain rig."""
    from shoerecon.data.layout import Rig, read_rig, write_json

    rig = read_rig(root / "rig.json")
    extra = torch.tensor([0.1, -0.1, 1.2, 0.05, 0.0, 0.02]).expand(rig.num_views, 6)
    cams = torch.cat([rig.cameras, extra], 1)
    write_json(root / shoe / "cameras.json", Rig(cams, rig.input_view).to_json())
    return cams


def test_cache_of_product_cameras_returns_exactly_the_folder_tensors(dataset_copy):
    cams = _give_product_cameras(dataset_copy)
    build_cache(DataConfig(root=str(dataset_copy), image_size=24), progress=False)
    folder, cached = _pair(dataset_copy, 24, num_target_views=3)
    assert cached.cached == set(cached.shoe_ids)
    for i in range(len(folder)):
        a, b = folder[i], cached[i]
        for k in KEYS:
            assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), (i, k)
    shoe = cached.load_shoe("shoe_00001")
    assert shoe["target_cameras"].shape == (NUM_VIEWS, 10)
    assert torch.allclose(shoe["target_cameras"], cams)                       # the calibrated crop and offset
    plain = cached.load_shoe("shoe_00000")["target_cameras"]
    assert torch.equal(plain[:, 4:], torch.tensor([[0.0, 0, 1, 0, 0, 0]] * NUM_VIEWS))  # widened with identity


def test_cache_of_another_camera_width_is_refused(dataset_copy):
    _give_product_cameras(dataset_copy)
    build_cache(DataConfig(root=str(dataset_copy), image_size=24), progress=False)
    (dataset_copy / "shoe_00001" / "cameras.json").unlink()   # now no shoe has product cameras: (V, 4)
    with pytest.raises(CacheStale, match="cameras per view"):
        TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, cache="require"), split="all")
    with pytest.warns(UserWarning, match="cameras per view"):
        auto = TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, cache="auto"), split="all")
    assert auto.cache is None and auto[0]["target_cameras"].shape[-1] == 4


def test_uint8_cache_is_within_half_a_level(dataset_copy):
    build_cache(DataConfig(root=str(dataset_copy), image_size=24), dtype="uint8", progress=False)
    folder, cached = _pair(dataset_copy, 24)
    a, b = folder.load_shoe("shoe_00002"), cached.load_shoe("shoe_00002")
    for k in ("targets", "target_masks", "input", "input_mask"):
        assert b[k].dtype == torch.float32
        assert (a[k] - b[k]).abs().max() <= 0.5 / 255 + 1e-6, k
    assert torch.equal(a["target_cameras"], b["target_cameras"])


def _rewrite_view(root, shoe="shoe_00001", view="002.png"):
    """Change one view's pixels (a red square) and bump its mtime."""
    path = root / shoe / "views" / view
    arr = np.asarray(Image.open(path)).copy()
    arr[4:12, 4:12, :3] = (255, 0, 0)
    Image.fromarray(arr).save(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))


def test_stale_shoe_is_refused(dataset_copy):
    build_cache(DataConfig(root=str(dataset_copy), image_size=24), progress=False)
    _rewrite_view(dataset_copy)
    with pytest.raises(CacheStale, match=r"shoe_00001.*changed"):
        TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, cache="require"), split="all")
    with pytest.warns(UserWarning, match=r"1 of 3 shoes are stale.*shoe_00001"):
        auto = TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, cache="auto"), split="all")
    assert auto.cached == {"shoe_00000", "shoe_00002"}
    fresh = TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, cache="never"), split="all")
    assert torch.equal(auto.load_shoe("shoe_00001")["targets"], fresh.load_shoe("shoe_00001")["targets"])


def test_cache_of_other_settings_is_refused(dataset_copy):
    build_cache(DataConfig(root=str(dataset_copy), image_size=24, input_fill=0.9), progress=False)
    with pytest.raises(CacheStale, match=r"input_fill: cache 0.9, config 0.8"):
        TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, input_fill=0.8, cache="require"), split="all")
    with pytest.warns(UserWarning, match="not using the data cache"):
        ds = TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, input_fill=0.8), split="all")
    assert ds.cache is None and not ds.cached


def test_missing_cache(dataset_copy):
    with pytest.raises(DataError, match=r"no cache.*shoerecon cache"):
        TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24, cache="require"), split="all")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TurntableDataset(DataConfig(root=str(dataset_copy), image_size=24), split="all").cache is None


def test_loader_workers_read_the_cache(dataset_copy):
    build_cache(DataConfig(root=str(dataset_copy), image_size=24), progress=False)
    _, cached = _pair(dataset_copy, 24)
    one = next(iter(torch.utils.data.DataLoader(cached, batch_size=3, num_workers=0)))
    two = next(iter(torch.utils.data.DataLoader(cached, batch_size=3, num_workers=2)))
    for k in KEYS:
        assert torch.equal(one[k], two[k]), k


def test_cli_builds_and_verifies(dataset_copy, capsys):
    from shoerecon.cli import main

    assert main(["cache", str(dataset_copy), "--size", "24", "--content-hash"]) == 0
    assert "cached 3 shoes / 18 views at 24px" in capsys.readouterr().out
    assert (default_cache_dir(dataset_copy, 24) / "images.npy").exists()
    assert main(["cache", str(dataset_copy), "--size", "24", "--verify"]) == 0
    # same size and mtime, other bytes: only the content hash sees it
    path = dataset_copy / "shoe_00000" / "views" / "000.png"
    st, data = path.stat(), bytearray(path.read_bytes())
    data[-20] ^= 0xFF
    path.write_bytes(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert verify_cache(default_cache_dir(dataset_copy, 24), dataset_copy) == {
        "shoe_00000": "file contents changed (same sizes and modification times)"}
    assert main(["cache", str(dataset_copy), "--size", "24", "--verify"]) == 1
