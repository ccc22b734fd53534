"""Import masks under the lighting of real shop photos: vignette, tint, over-exposure (mask IoU against exact alpha).

Takes a synthetic shop turntable set as ``benchmarks/turntable_calib.py`` writes it (``<work>/photos/<shoe>/`` and
``<work>/truth/<shoe>/alpha/``), re-lights every photo in memory, saves it as a JPEG again (quality 85) and masks it
as ``shoerecon import`` does (``product_mask`` with ``ImportConfig().mask``). Conditions:

- plain: the photos as they are;
- vignette 5 / 12 / 20%: light falls off by that much at the corners and by half of it towards the floor, each view
  exposed 0.96-1.02 (a lightbox without post-processing);
- warm tint: white balance (0.97, 0.95, 0.90);
- over-exposed 4%: every channel x 1.04, clipped (a shop that blows the background out to pure white; near-white
  parts of the shoe clip with it);
- cut-out: the shoe cut out (by its exact alpha) onto pure white, without its shadow and reflection, as shops and
  sneaker databases publish product shots after background removal.

    python benchmarks/photo_lighting.py --work /tmp/tt_bench --shoes sku_00000,sku_00004,sku_00008 --threads 1 \
        --sheet /tmp/lighting.png     # the worst view of each condition: mask outline red, true outline green
"""
from __future__ import annotations

import argparse
import io
import os
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from shoerecon.data.importer import ImportConfig, shoe_photos
from shoerecon.data.layout import read_image
from shoerecon.data.masks import outline, product_mask


def vignette(strength: float):
    def relight(img: np.ndarray, rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
        h, w, _ = img.shape
        yy, xx = np.mgrid[0:h, 0:w]
        r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
        light = 1 - strength * r2 / 2 - 0.5 * strength * yy / h
        return img * light[..., None] * rng.uniform(0.96, 1.02)
    return relight


def gain(rgb: tuple[float, float, float]):
    return lambda img, rng, alpha: img * np.asarray(rgb)


def cut_out(img: np.ndarray, rng: np.random.Generator, alpha: np.ndarray) -> np.ndarray:
    """The shoe over pure white by its alpha (H, W) in [0, 1]: no floor, shadow or reflection left."""
    return img * alpha[..., None] + (1.0 - alpha[..., None])


# name -> relight(photo (H, W, 3) in [0, 1], rng, exact alpha (H, W)) -> photo
CONDITIONS = {
    "plain": lambda img, rng, alpha: img,
    "vignette 5%": vignette(0.05),
    "vignette 12%": vignette(0.12),
    "vignette 20%": vignette(0.20),
    "warm tint": gain((0.97, 0.95, 0.90)),
    "over-exposed 4%": gain((1.04, 1.04, 1.04)),
    "cut-out": cut_out,
}


def jpeg(img: np.ndarray, quality: int = 85) -> np.ndarray:
    """(H, W, 3) in [0, 1] -> the same after 8-bit JPEG encoding, as a shop would save it."""
    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)).save(buf, "JPEG", quality=quality)
    return np.asarray(Image.open(buf).convert("RGB"), dtype=np.float32) / 255


def score_shoe(work: Path, shoe: str, relight, seed: int) -> tuple[list[float], tuple]:
    """Mask IoU per view (V,) of one shoe's re-lit photos against the exact alpha, and its worst view as
    (IoU, photo (H, W, 3), mask (H, W) bool, truth (H, W) bool)."""
    rng = np.random.default_rng(seed)
    cfg = ImportConfig().mask
    out, worst = [], (2.0,)
    for v, photo in enumerate(shoe_photos(work / "photos" / shoe)):
        _, alpha = read_image(work / "truth" / shoe / "alpha" / f"{v:03d}.png")
        img = np.asarray(Image.open(photo).convert("RGB"), dtype=np.float32) / 255
        img = jpeg(relight(img, rng, alpha[0].numpy()))
        mask = product_mask(torch.from_numpy(img).permute(2, 0, 1).contiguous(), cfg, photo)[0].numpy() > 0.5
        truth = alpha[0].numpy() > 0.5
        out.append(float((mask & truth).sum() / max((mask | truth).sum(), 1)))
        if out[-1] < worst[0]:
            worst = (out[-1], img, mask, truth)
    return out, worst


def sheet_tile(img: np.ndarray, mask: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """(H, W, 3) photo with the true outline in green and the mask's in red (drawn over it)."""
    tile = img.copy()
    for m, colour in ((truth, (0.0, 0.8, 0.0)), (mask, (1.0, 0.0, 0.0))):
        tile[outline(torch.from_numpy(m)[None])[0].numpy()] = colour
    return np.pad(tile, ((2, 2), (2, 2), (0, 0)), constant_values=1.0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", required=True, help="a set as benchmarks/turntable_calib.py writes it (photos/, truth/)")
    p.add_argument("--shoes", default="5", help="comma-separated shoe names, or how many of the first (default 5)")
    p.add_argument("--conditions", default=",".join(CONDITIONS), help=f"comma-separated, of: {', '.join(CONDITIONS)}")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--sheet", default=None, help="save the worst view of each condition here (PNG): mask outline red, "
                                                  "true outline green")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    if not (work / "photos").is_dir() or not (work / "truth").is_dir():
        p.error(f"{work}: no photos/ and truth/ folders (make them with benchmarks/turntable_calib.py --work {work})")
    names = sorted(d.name for d in (work / "photos").iterdir() if d.is_dir())
    shoes = names[:int(args.shoes)] if args.shoes.isdigit() else args.shoes.split(",")
    unknown = [c for c in args.conditions.split(",") if c not in CONDITIONS]
    if unknown:
        p.error(f"unknown condition(s) {unknown}; valid: {', '.join(CONDITIONS)}")
    print(f"# Import masks under shop lighting ({len(shoes)} shoes of {work}, --threads {args.threads})\n")
    print("| condition | mean IoU | min view IoU | worst shoe (mean) | CPU s / photo |")
    print("|---|---|---|---|---|")
    tiles = []
    for name in args.conditions.split(","):
        t0 = time.process_time()
        scored = {s: score_shoe(work, s, CONDITIONS[name], seed=i) for i, s in enumerate(shoes)}
        per_shoe = {s: ious for s, (ious, _) in scored.items()}
        tiles.append(sheet_tile(*min((w for _, w in scored.values()), key=lambda w: w[0])[1:]))
        flat = [x for ious in per_shoe.values() for x in ious]
        worst = min(per_shoe, key=lambda s: np.mean(per_shoe[s]))
        cpu = (time.process_time() - t0) / len(flat)
        print(f"| {name} | {np.mean(flat):.4f} | {np.min(flat):.3f} | {worst} ({np.mean(per_shoe[worst]):.3f}) | "
              f"{cpu:.2f} |", flush=True)
    print(f"\nload average {[round(x, 2) for x in os.getloadavg()]}")
    if args.sheet:
        height = max(t.shape[0] for t in tiles)
        row = np.concatenate([np.pad(t, ((0, height - t.shape[0]), (0, 0), (0, 0)), constant_values=1.0)
                              for t in tiles], 1)
        Image.fromarray((row * 255 + 0.5).astype(np.uint8)).save(args.sheet)
        print(f"worst view of each condition ({', '.join(args.conditions.split(','))}): {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
