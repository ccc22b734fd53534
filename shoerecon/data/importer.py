"""`shoerecon import SRC --out DATASET`: folders of shop turntable photos -> a dataset in the DESIGN layout.

SRC holds one folder per shoe with its photos in any naming (natural sort: ``img2.jpg`` before ``img10.jpg``),
JPEG / PNG / WebP, any size, EXIF orientation applied. Per shoe: read and check every photo, mask it
(``masks.product_mask``: white backgrounds with soft shadows, floor reflections and white soles), check each
view's mask against its turntable neighbours, and write ``views/NNN.png`` + ``masks/NNN.png``. The dataset
gets a placeholder ``rig.json`` (a default turntable, marked uncalibrated: run ``shoerecon calibrate``),
``splits.json``, ``import_report.md`` and ``contact_sheet.png`` (every shoe's views with mask outlines).

A broken shoe (too few photos, a corrupt file, mixed sizes, duplicates, a photo not on white, an
all-white photo, too many odd views) is skipped with one message naming the file; the rest goes on.
"""
from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from shoerecon.data.layout import DEFAULT_MAX_PIXELS, DataError, hash_split, read_image, rig_from_turntable, write_json
from shoerecon.data.masks import BackgroundError, ProductMaskConfig, outline, product_mask
from shoerecon.data.preprocess import mask_bbox

PHOTO_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


@dataclass
class ImportConfig:
    """Settings of ``import_folder``.

    Attributes:
        views: photos per shoe (a turntable of ``views`` evenly spaced views). A folder with an exact
            multiple of it keeps every k-th photo; other counts skip the shoe.
        max_side: photos larger than this (longest side, pixels) are downscaled; None keeps them.
        max_pixels: photos with more pixels are refused before they are decoded (the shoe is skipped): the guard
            against decompression bombs. A 100 MP studio camera's photos need a higher limit (about 1.6 GB to
            decode each).
        outlier_ratio: a view whose mask area, width or height differs from the median of its 4 turntable
            neighbours by more than this factor is flagged. max_flagged: a shoe with more flagged views
            than this fraction is skipped.
        min_area: a mask covering less of the photo is "empty" (an all-white photo).
        mask: the mask settings.
    """

    views: int = 36
    max_side: int | None = 1024
    max_pixels: int = DEFAULT_MAX_PIXELS
    outlier_ratio: float = 1.6
    max_flagged: float = 0.15
    min_area: float = 0.002
    mask: ProductMaskConfig = field(default_factory=ProductMaskConfig)


@dataclass
class ShoeReport:
    """What happened to one shoe folder."""

    name: str
    photos: int = 0
    size: tuple[int, int] | None = None
    status: str = "ok"
    problem: str = ""
    flagged: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    thumbs: list[tuple[Tensor, Tensor, bool]] = field(default_factory=list)


class ShoeSkipped(Exception):
    """This shoe cannot be imported; the message names the file and the problem."""


def natural_key(path: Path) -> list:
    """Sort key that orders embedded numbers by value: img2 < img10. ``sorted(paths, key=natural_key)``."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def shoe_photos(folder: Path) -> list[Path]:
    """The photos of a shoe folder in natural order (hidden files and other extensions ignored)."""
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_EXTENSIONS and not p.name.startswith(".")]
    return sorted(files, key=natural_key)


def _pick_views(photos: list[Path], views: int, folder: Path) -> tuple[list[Path], str | None]:
    if len(photos) < views:
        raise ShoeSkipped(f"{folder}: {len(photos)} photos but --views is {views}")
    if len(photos) == views:
        return photos, None
    if len(photos) % views == 0:
        k = len(photos) // views
        return photos[::k], f"{len(photos)} photos: kept every {k}th for {views} views"
    raise ShoeSkipped(f"{folder}: {len(photos)} photos is not a multiple of --views {views}; which belong to the turntable?")


def _photo_mode_note(path: Path) -> str | None:
    """A note for photos that are not plain RGB (they are converted)."""
    try:
        with Image.open(path) as img:
            mode = img.mode
    except Exception:
        return None  # read_image reports it
    if mode in ("L", "1", "I;16", "I"):
        return f"{path.name}: grayscale photo, used as grey RGB"
    if mode == "CMYK":
        return f"{path.name}: CMYK photo, converted to RGB"
    return None


def _read_photo(path: Path, max_side: int | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> Tensor:
    """(3, H, W) RGB of a photo (alpha composited on white), downscaled to ``max_side``; refused (``ShoeSkipped``)
    above ``max_pixels``."""
    try:
        rgb, alpha = read_image(path, max_pixels)
    except DataError as e:
        raise ShoeSkipped(str(e)) from None
    if alpha is not None:
        rgb = rgb * alpha + (1 - alpha)
    h, w = rgb.shape[-2:]
    if max_side is not None and max(h, w) > max_side:
        s = max_side / max(h, w)
        rgb = F.interpolate(rgb[None], size=(round(h * s), round(w * s)), mode="bilinear", antialias=True,
                            align_corners=False)[0].clamp(0, 1)
    return rgb


def _check_sizes(photos: list[Path], sizes: list[tuple[int, int]], folder: Path) -> None:
    values, counts = np.unique(np.array(sizes), axis=0, return_counts=True)
    if len(values) > 1:
        common = tuple(int(v) for v in values[np.argmax(counts)])
        odd = [p.name for p, s in zip(photos, sizes) if tuple(s) != common]
        raise ShoeSkipped(f"{folder}: mixed photo sizes: {', '.join(odd[:5])} not {common[1]}x{common[0]} (WxH) like the others")


def _check_duplicates(photos: list[Path], images: list[Tensor]) -> None:
    seen: dict[str, Path] = {}
    for p, img in zip(photos, images):
        digest = hashlib.sha1((img * 255).round().byte().numpy().tobytes()).hexdigest()
        if digest in seen:
            raise ShoeSkipped(f"{p}: duplicate of {seen[digest].name} (the turntable misses a view)")
        seen[digest] = p


def flag_outliers(masks: list[Tensor], ratio: float) -> dict[int, str]:
    """Views whose mask area, bbox width or height is off by more than ``ratio`` from what its two turntable
    neighbours predict (their geometric mean; circular). With fewer than 36 views neighbours are farther
    apart and differ more, so the allowed log-ratio grows with sqrt(36 / views). masks: list of (1, H, W).
    Returns {view: reason}."""
    stats = []
    for m in masks:
        box = mask_bbox(m)
        area = float((m > 0.5).float().sum())
        stats.append((area, box[3] - box[2], box[1] - box[0]) if box else (0.0, 0, 0))
    logs = np.log(np.array(stats, dtype=np.float64).clip(min=1.0))
    n, out = len(masks), {}
    tol = np.log(ratio) * max(1.0, 36 / n) ** 0.5
    for i in range(n):
        ref = (logs[(i - 1) % n] + logs[(i + 1) % n]) / 2
        off = np.abs(logs[i] - ref)
        worst = int(np.argmax(off))
        if off[worst] > tol:
            what = ("mask area", "mask width", "mask height")[worst]
            out[i] = f"{what} {np.exp(logs[i, worst]):.0f} vs neighbours' {np.exp(ref[worst]):.0f}"
    return out


def import_shoe(folder: Path, out: Path, cfg: ImportConfig, thumb_height: int = 64) -> ShoeReport:
    """Import one shoe folder into ``out / folder.name``; problems raise ``ShoeSkipped`` (nothing is written)."""
    rep = ShoeReport(folder.name)
    photos, note = _pick_views(shoe_photos(folder), cfg.views, folder)
    rep.photos = len(photos)
    if note:
        rep.notes.append(note)
    rep.notes += [n for n in (_photo_mode_note(p) for p in photos) if n]
    images = [_read_photo(p, cfg.max_side, cfg.max_pixels) for p in photos]
    sizes = [tuple(img.shape[-2:]) for img in images]
    _check_sizes(photos, sizes, folder)
    rep.size = sizes[0]
    _check_duplicates(photos, images)
    masks = []
    for p, img in zip(photos, images):
        try:
            m = product_mask(img, cfg.mask, p)
        except BackgroundError as e:
            raise ShoeSkipped(str(e)) from None
        if float(m.mean()) < cfg.min_area:
            raise ShoeSkipped(f"{p}: no shoe found (an all-white or empty photo)")
        masks.append(m)
    rep.flagged = flag_outliers(masks, cfg.outlier_ratio)
    if len(rep.flagged) > cfg.max_flagged * len(masks):
        names = ", ".join(photos[i].name for i in sorted(rep.flagged)[:5])
        raise ShoeSkipped(f"{folder}: {len(rep.flagged)} of {len(masks)} views have masks unlike their neighbours ({names})")
    dst = out / folder.name
    if dst.exists():
        shutil.rmtree(dst)
    for i, (img, m) in enumerate(zip(images, masks)):
        _save(dst / "views" / f"{i:03d}.png", img)
        _save(dst / "masks" / f"{i:03d}.png", m)
    write_json(dst / "import.json", {"source": str(folder), "photos": [p.name for p in photos],
                                     "flagged": {str(k): v for k, v in rep.flagged.items()}, "notes": rep.notes})
    for i in np.linspace(0, len(images) - 1, min(len(images), 12)).round().astype(int):
        s = thumb_height / img.shape[-2]
        size = (thumb_height, max(1, round(images[i].shape[-1] * s)))
        rep.thumbs.append((F.interpolate(images[i][None], size=size, mode="area")[0],
                           F.interpolate(masks[i][None], size=size, mode="area")[0], int(i) in rep.flagged))
    return rep


def _save(path: Path, image: Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = image.clamp(0, 1).mul(255).round().byte().permute(1, 2, 0).numpy()
    Image.fromarray(arr[..., 0] if arr.shape[-1] == 1 else arr).save(path, compress_level=1)


def contact_sheet(reports: list[ShoeReport], path: Path) -> None:
    """One row per imported shoe: thumbnails with the mask outline in red (yellow frame: a flagged view)."""
    rows = []
    for rep in reports:
        tiles = []
        for img, m, flagged in rep.thumbs:
            t = img.clone()
            t[:, outline(m)[0]] = torch.tensor([1.0, 0.0, 0.0])[:, None]
            if flagged:
                t[:, :2], t[:, -2:], t[:, :, :2], t[:, :, -2:] = (torch.tensor([1.0, 0.8, 0.0]).view(3, 1, 1),) * 4
            tiles.append(F.pad(t, (1, 1, 1, 1), value=1.0))
        if tiles:
            rows.append(torch.cat(tiles, dim=2))
    if not rows:
        return
    width = max(r.shape[-1] for r in rows)
    sheet = torch.cat([F.pad(r, (0, width - r.shape[-1]), value=1.0) for r in rows], dim=1)
    _save(path, sheet)


def write_report(reports: list[ShoeReport], path: Path, cfg: ImportConfig, seconds: float) -> None:
    ok = [r for r in reports if r.status == "ok"]
    lines = [
        "# Import report", "",
        f"{len(ok)} of {len(reports)} shoes imported ({cfg.views} views each) in {seconds:.1f} s. "
        "Cameras are not known yet: run `shoerecon calibrate` on this folder.", "",
        "| shoe | photos | size (WxH) | status | flagged views | notes |", "|---|---|---|---|---|---|",
    ]
    for r in reports:
        size = f"{r.size[1]}x{r.size[0]}" if r.size else ""
        flagged = "; ".join(f"{i:03d}: {why}" for i, why in sorted(r.flagged.items()))
        lines.append(f"| {r.name} | {r.photos} | {size} | {r.status} | {flagged} | {'; '.join(r.notes + ([r.problem] if r.problem else []))} |")
    lines += ["", "Contact sheet: `contact_sheet.png` (red: mask outline, yellow frame: a flagged view)."]
    path.write_text("\n".join(lines) + "\n")


def import_folder(src: str | Path, out: str | Path, cfg: ImportConfig | None = None, progress: bool = True) -> list[ShoeReport]:
    """Import every shoe folder of ``src`` into the dataset ``out``; returns one report per folder."""
    from tqdm import tqdm

    cfg = cfg or ImportConfig()
    src, out = Path(src), Path(out)
    if not src.is_dir():
        raise DataError(f"{src}: source folder not found")
    folders = sorted((p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")), key=natural_key)
    if not folders:
        raise DataError(f"{src}: no shoe folders (expected one folder of photos per shoe)")
    out.mkdir(parents=True, exist_ok=True)
    start, reports = time.perf_counter(), []
    for folder in tqdm(folders, desc="import", unit="shoe", disable=not progress):
        try:
            reports.append(import_shoe(folder, out, cfg))
        except ShoeSkipped as e:
            warnings.warn(f"skipping shoe {folder.name!r}: {e}", stacklevel=2)
            reports.append(ShoeReport(folder.name, status="skipped", problem=str(e)))
    ok = [r.name for r in reports if r.status == "ok"]
    rig = rig_from_turntable(cfg.views)
    write_json(out / "rig.json", rig.to_json(background=[1.0, 1.0, 1.0], source={"import": str(src), "calibrated": False}))
    splits = {k: [] for k in ("train", "val", "test")}
    for name in ok:
        splits[hash_split(name)].append(name)
    write_json(out / "splits.json", splits)
    write_report(reports, out / "import_report.md", cfg, time.perf_counter() - start)
    contact_sheet([r for r in reports if r.status == "ok"], out / "contact_sheet.png")
    return reports


# ----------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = ImportConfig()
    parser.add_argument("src", help="folder with one folder of photos per shoe (JPEG/PNG/WebP, any naming and size)")
    parser.add_argument("--out", required=True, help="dataset folder to write (DESIGN layout)")
    parser.add_argument("--views", type=int, default=d.views, help=f"photos per turntable (default {d.views})")
    parser.add_argument("--max-side", type=int, default=d.max_side, help=f"downscale larger photos (default {d.max_side}; 0 = keep)")
    parser.add_argument("--max-pixels", type=int, default=d.max_pixels,
                        help=f"refuse photos with more pixels, before decoding them (default {d.max_pixels:,}; "
                             "raise it for a 100 MP studio camera)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    if args.views < 3:
        raise SystemExit("import: --views must be at least 3")
    if args.max_pixels < 1:
        raise SystemExit("import: --max-pixels must be a positive number of pixels")
    cfg = ImportConfig(views=args.views, max_side=args.max_side or None, max_pixels=args.max_pixels)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the summary below says the same, once
        try:
            reports = import_folder(args.src, args.out, cfg)
        except DataError as e:
            raise SystemExit(f"import: {e}") from None
    for r in reports:
        if r.status != "ok":
            print(f"skipped {r.name}: {r.problem}")
    ok = sum(r.status == "ok" for r in reports)
    print(f"imported {ok} of {len(reports)} shoes into {args.out} (report: {Path(args.out) / 'import_report.md'})")
    return 0 if ok else 1
