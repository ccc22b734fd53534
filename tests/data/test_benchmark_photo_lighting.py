"""benchmarks/photo_lighting.py runs end to end on a tiny synthetic shop set and its re-lighting does what it says."""
import numpy as np
import pytest

from benchmarks import photo_lighting as bench
from shoerecon.data.product_photos import ProductPhotoConfig, generate_product_photos


def test_vignette_darkens_the_corners_and_the_floor_by_its_strength():
    img = np.ones((9, 9, 3))
    out = bench.vignette(0.2)(img, np.random.default_rng(0), np.ones((9, 9)))
    assert 0.96 * 0.8 <= out[0, 0, 0] <= 1.02 * 0.8                      # a top corner: 20% less light, times exposure
    assert out[0, 0, 0] < out[0, 4, 0] < out[4, 4, 0]                    # brightest in the middle
    assert out[8, 4, 0] < out[0, 4, 0]                                   # darker towards the floor
    assert np.allclose(out[..., 0], out[..., 2])                         # no tint


def test_cut_out_keeps_the_shoe_and_whitens_the_rest():
    img = np.full((4, 4, 3), 0.3)                                        # a grey floor with a shadow...
    alpha = np.zeros((4, 4)); alpha[1:3, 1:3] = 1.0; alpha[0, 0] = 0.5
    out = bench.cut_out(img, np.random.default_rng(0), alpha)
    assert np.allclose(out[1:3, 1:3], 0.3)                                # the shoe as it was
    assert np.allclose(out[3, 3], 1.0)                                    # ... is pure white now
    assert np.allclose(out[0, 0], 0.5 * 0.3 + 0.5)                        # an edge pixel blends by its alpha


def test_benchmark_prints_one_row_per_condition(tmp_path, capsys):
    cfg = ProductPhotoConfig(height=48, width=64, num_views=4, supersample=1)
    generate_product_photos(tmp_path / "photos", 1, seed=0, cfg=cfg, truth=tmp_path / "truth", progress=False)
    sheet = tmp_path / "sheet.png"
    assert bench.main(["--work", str(tmp_path), "--shoes", "1", "--conditions", "plain,over-exposed 4%",
                       "--sheet", str(sheet)]) == 0
    from PIL import Image
    assert Image.open(sheet).size == (2 * (64 + 4), 48 + 4)                # one tile per condition
    rows = [line.split("|") for line in capsys.readouterr().out.splitlines() if line.startswith("| plain")
            or line.startswith("| over-exposed")]
    assert len(rows) == 2
    plain = float(rows[0][2])
    assert 0.8 < plain <= 1.0


def test_benchmark_refuses_an_unknown_condition(tmp_path, capsys):
    (tmp_path / "photos").mkdir()
    (tmp_path / "truth").mkdir()
    with pytest.raises(SystemExit):
        bench.main(["--work", str(tmp_path), "--conditions", "sunset"])
    assert "valid: plain" in capsys.readouterr().err
