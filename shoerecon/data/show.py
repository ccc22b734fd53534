"""`shoerecon show-data DIR --out sheet.png`: a contact sheet of a dataset folder (rows: shoes, columns: views)."""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from shoerecon.data.layout import DataError, list_shoes, read_image, read_rig, shoe_rig, view_files


def contact_sheet(root: str | Path, shoes: int = 6, views: int = 8, cell: int = 128, label: bool = True) -> Image.Image:
    """An RGB sheet of ``shoes`` shoes (evenly picked) x ``views`` views (evenly spaced, starting at view 0).

    Images are composited on white and fitted into ``cell`` x ``cell`` squares; rows are labelled with
    the shoe id and columns with the view index and azimuth.
    """
    root = Path(root)
    rig = read_rig(root / "rig.json")
    ids = list_shoes(root)
    if not ids:
        raise DataError(f"{root}: no shoe folders")
    ids = [ids[i] for i in np.unique(np.linspace(0, len(ids) - 1, min(shoes, len(ids))).round().astype(int))]
    cols = np.unique(np.linspace(0, rig.num_views, min(views, rig.num_views), endpoint=False).astype(int)).tolist()
    head, side = (16, 90) if label else (0, 0)
    sheet = Image.new("RGB", (side + cell * len(cols), head + cell * len(ids)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, v in enumerate(cols):
        if label:
            draw.text((side + c * cell + 4, 2), f"v{v:03d} az{rig.cameras[v, 0]:.0f}", fill="black")
    for r, sid in enumerate(ids):
        files = view_files(root / sid, shoe_rig(root, sid, rig).num_views)
        if label:
            draw.text((4, head + r * cell + cell // 2 - 6), sid, fill="black")
        for c, v in enumerate(cols):
            rgb, alpha = read_image(files[v])
            if alpha is not None:
                rgb = rgb * alpha + (1 - alpha)
            img = Image.fromarray((rgb.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
            img.thumbnail((cell, cell))
            x0 = side + c * cell + (cell - img.width) // 2
            y0 = head + r * cell + (cell - img.height) // 2
            sheet.paste(img, (x0, y0))
            draw.rectangle([side + c * cell, head + r * cell, side + (c + 1) * cell - 1, head + (r + 1) * cell - 1], outline=(220, 220, 220))
    return sheet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", metavar="DIR", help="dataset folder (DESIGN layout)")
    parser.add_argument("--out", required=True, help="PNG to write")
    parser.add_argument("--shoes", type=int, default=6, help="rows (shoes, evenly picked)")
    parser.add_argument("--views", type=int, default=8, help="columns (views, evenly spaced from view 0)")
    parser.add_argument("--cell", type=int, default=128, help="cell size in pixels")


def run(args: argparse.Namespace) -> int:
    sheet = contact_sheet(args.root, args.shoes, args.views, args.cell)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    return 0
