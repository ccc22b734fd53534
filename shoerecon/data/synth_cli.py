"""`shoerecon synth --out DIR --shoes N --views 36 --size S --seed K [--workers W]`: a synthetic turntable dataset."""
from __future__ import annotations

import argparse
import time

from shoerecon.data.synthetic import LOOKS, SynthConfig, generate_dataset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = SynthConfig()
    parser.add_argument("--out", required=True, help="dataset folder to write (DESIGN layout)")
    parser.add_argument("--shoes", type=int, default=200, help="number of shoes (default 200)")
    parser.add_argument("--views", type=int, default=d.num_views, help=f"turntable views per shoe (default {d.num_views})")
    parser.add_argument("--size", type=int, default=d.image_size, help=f"image side in pixels (default {d.image_size})")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed; shoe i depends only on (seed, i)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: all cores; 1 = none)")
    parser.add_argument("--supersample", type=int, default=d.supersample, help="antialiasing factor (1 = hard 0/1 alpha)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing dataset in --out")
    parser.add_argument("--elevation", type=float, default=d.elevation)
    parser.add_argument("--distance", type=float, default=d.distance)
    parser.add_argument("--fov", type=float, default=d.fov)
    parser.add_argument("--look", choices=LOOKS, default=d.look,
                        help=f"appearance (default {d.look}: lit, exposed like product photos; photo-clipped: the old "
                             "exposure, white parts clipped to the background's white; see SynthConfig.look)")


def run(args: argparse.Namespace) -> int:
    if args.shoes < 1 or args.views < 1 or args.size < 8:
        raise SystemExit("synth: need --shoes >= 1, --views >= 1 and --size >= 8")
    cfg = SynthConfig(supersample=args.supersample, elevation=args.elevation, distance=args.distance, fov=args.fov,
                      look=args.look)
    start = time.perf_counter()
    root = generate_dataset(args.out, args.shoes, args.views, args.size, args.seed, workers=args.workers, cfg=cfg,
                              overwrite=args.overwrite)
    print(f"wrote {args.shoes} shoes x {args.views} views at {args.size}px to {root} in {time.perf_counter() - start:.1f} s")
    return 0
