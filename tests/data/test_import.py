"""`shoerecon import`: masks of product photos and the importer's handling of good and bad folders."""
import numpy as np
import pytest
import torch
from PIL import Image

from shoerecon.data.importer import ImportConfig, flag_outliers, import_folder, natural_key
from shoerecon.data.masks import BackgroundError, product_mask

H, W = 48, 64


def shoe_photo(view: int, views: int = 6, white_sole: bool = True, shadow: bool = True, seed: int = 0):
    """(H, W, 3) float photo of a toy shoe on white and its exact mask: a coloured upper (half ellipse), a
    white sole band under it, a soft grey contact shadow on the floor below (not part of the mask)."""
    rng = np.random.default_rng([seed, view])
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
    half = 22 + 6 * np.cos(2 * np.pi * view / views)          # the shoe's half-length turns with the table
    cx, top, sole_top, sole_bottom = W / 2, 12.0, 30.0, 36.0
    upper = ((xx - cx) / half) ** 2 + ((yy - sole_top) / (sole_top - top)) ** 2 <= 1
    upper &= yy < sole_top
    sole = (np.abs(xx - cx) <= half) & (yy >= sole_top) & (yy < sole_bottom)
    img = np.ones((H, W, 3))
    if shadow:  # darkest at the contact line, fading below and beyond the ends
        d = np.clip(yy - sole_bottom, 0, None)
        s = 0.3 * np.exp(-d / 2.5) * np.clip((half + 4 - np.abs(xx - cx)) / 6, 0, 1) * (yy >= sole_bottom)
        img *= 1 - s[..., None]
    img[upper] = (0.2, 0.35, 0.8)
    img[sole] = (0.93, 0.93, 0.92) if white_sole else (0.1, 0.1, 0.1)
    if white_sole:  # its rounded edge is shaded: an outline (a flat white band with no outline is not found)
        rim = sole & ~np.roll(sole, 1, 1) | sole & ~np.roll(sole, -1, 1) | sole & ~np.roll(sole, -1, 0)
        img[rim] = 0.6
    img += rng.normal(0, 0.006, img.shape)
    return img.clip(0, 1), (upper | sole)


def _save(path, img, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((img * 255).round().astype(np.uint8)).save(path, **kw)


def _iou(a, b):
    return (a & b).sum() / (a | b).sum()


@pytest.mark.parametrize("white_sole", [True, False])
def test_product_mask_keeps_white_soles_and_drops_soft_shadows(white_sole):
    for view in range(3):
        img, truth = shoe_photo(view, white_sole=white_sole)
        m = product_mask(torch.from_numpy(img).permute(2, 0, 1).float())[0].numpy() > 0.5
        assert _iou(m, truth) > 0.95, view
        assert not m[38:].any()  # nothing of the shadow below the sole


def test_product_mask_refuses_a_coloured_background():
    img, _ = shoe_photo(0)
    img = img * np.array([0.4, 0.8, 0.5])  # a green studio backdrop
    with pytest.raises(BackgroundError, match="not on a white background"):
        product_mask(torch.from_numpy(img).permute(2, 0, 1).float(), path="x.jpg")


def test_natural_sort_and_outlier_flags():
    from pathlib import Path

    names = ["img10.jpg", "img2.jpg", "img1.jpg", "IMG3.jpg"]
    assert [p.name for p in sorted(map(Path, names), key=natural_key)] == ["img1.jpg", "img2.jpg", "IMG3.jpg", "img10.jpg"]
    masks = [torch.zeros(1, 20, 20) for _ in range(36)]
    for i, m in enumerate(masks):
        m[:, 5:15, 4:16] = 1
    masks[3][:, 2:18, 1:19] = 1  # far bigger than its neighbours
    masks[4][:, 5:15, 4:18] = 1  # a little wider: fine
    assert list(flag_outliers(masks, 1.6)) == [3]


def _folder(root, name, views=6, ext="jpg", **kw):
    for v in range(views):
        img, _ = shoe_photo(v, views, seed=hash(name) % 1000)
        _save(root / name / f"img{v + 1}.{ext}", img, **({"quality": 95} if ext == "jpg" else {}))


def test_import_writes_the_layout_and_skips_each_bad_folder_with_a_named_message(tmp_path):
    src, out = tmp_path / "src", tmp_path / "ds"
    _folder(src, "good_jpg")
    _folder(src, "good_webp", ext="webp")
    _folder(src, "few", views=4)
    _folder(src, "mixed")
    big, _ = shoe_photo(2)
    _save(src / "mixed" / "img3.jpg", np.kron(big, np.ones((2, 2, 1))))  # twice the size of the others
    _folder(src, "corrupt")
    (src / "corrupt" / "img4.jpg").write_bytes((src / "corrupt" / "img4.jpg").read_bytes()[:200])
    _folder(src, "dup")
    (src / "dup" / "img5.jpg").write_bytes((src / "dup" / "img4.jpg").read_bytes())
    _folder(src, "green")
    g, _ = shoe_photo(1)
    _save(src / "green" / "img2.jpg", g * np.array([0.4, 0.8, 0.5]))
    _folder(src, "blank")
    _save(src / "blank" / "img6.jpg", np.ones((H, W, 3)))
    _folder(src, "gray")
    gray, _ = shoe_photo(0)
    Image.fromarray((gray.mean(-1) * 255).astype(np.uint8), "L").save(src / "gray" / "img1.jpg")
    Image.fromarray((shoe_photo(3)[0] * 255).astype(np.uint8)).convert("CMYK").save(src / "gray" / "img4.jpg")

    with pytest.warns(UserWarning):
        reports = {r.name: r for r in import_folder(src, out, ImportConfig(views=6), progress=False)}
    assert {k for k, r in reports.items() if r.status == "ok"} == {"good_jpg", "good_webp", "gray"}
    expect = {"few": "4 photos but --views is 6", "mixed": "img3.jpg not 64x48", "corrupt": "img4.jpg",
              "dup": "img5.jpg: duplicate of img4.jpg", "green": "img2.jpg: not on a white background",
              "blank": "img6.jpg: no shoe found"}
    for name, text in expect.items():
        assert text in reports[name].problem, (name, reports[name].problem)
    assert any("grayscale" in n and "img1.jpg" in n for n in reports["gray"].notes)
    assert any("CMYK" in n and "img4.jpg" in n for n in reports["gray"].notes)
    report = (out / "import_report.md").read_text()
    assert "3 of 9 shoes imported" in report and "duplicate of img4.jpg" in report
    assert (out / "contact_sheet.png").exists()
    assert sorted(p.name for p in (out / "good_jpg" / "views").iterdir()) == [f"{i:03d}.png" for i in range(6)]

    from shoerecon.data import DataConfig, TurntableDataset

    ds = TurntableDataset(DataConfig(root=str(out), image_size=16, num_target_views=2), split="all")
    item = ds[0]
    truth = shoe_photo(0, seed=hash("good_jpg") % 1000)[1]
    mask = np.asarray(Image.open(out / "good_jpg" / "masks" / "000.png")) > 127
    assert _iou(mask, truth) > 0.93 and item["target_masks"].shape == (2, 1, 16, 16)


def test_import_respects_exif_orientation(tmp_path):
    src, out = tmp_path / "src", tmp_path / "ds"
    _folder(src, "phone", views=3)
    img, _ = shoe_photo(1, 3, seed=hash("phone") % 1000)
    # stored rotated on its side, with EXIF orientation 6 ("rotate 90 CW to display") as phones do
    stored = Image.fromarray((img * 255).astype(np.uint8)).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    stored.save(src / "phone" / "img2.jpg", exif=exif, quality=95)
    reports = import_folder(src, out, ImportConfig(views=3), progress=False)
    assert reports[0].status == "ok", reports[0].problem
    assert Image.open(out / "phone" / "views" / "001.png").size == (W, H)


def test_import_pixel_limit_skips_a_too_large_shoe_and_the_cli_raises_it(tmp_path):
    import argparse

    from shoerecon.data.importer import add_arguments, run

    src = tmp_path / "src"
    _folder(src, "studio")                                  # 64 x 48 = 3072 pixels a photo
    reports = import_folder(src, tmp_path / "a", ImportConfig(views=6, max_pixels=3000), progress=False)
    assert reports[0].status != "ok" and "image too large: 64x48" in reports[0].problem
    assert "--max-pixels" in reports[0].problem               # says how to raise it
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert run(parser.parse_args([str(src), "--out", str(tmp_path / "b"), "--views", "6", "--max-pixels", "4000"])) == 0
    assert (tmp_path / "b" / "studio" / "views" / "005.png").exists()
    with pytest.raises(SystemExit, match="--max-pixels must be a positive"):
        run(parser.parse_args([str(src), "--out", str(tmp_path / "c"), "--views", "6", "--max-pixels", "0"]))
