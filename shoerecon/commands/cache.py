"""`shoerecon cache DATASET [--size 128]`: decode and resize every view once into memory-mappable arrays.

The dataset then reads ``<DATASET>/.shoerecon_cache/s<size>/`` instead of the image files whenever it is up
to date (``data.cache: auto``); see ``shoerecon/data/cache.py`` for the layout and the staleness rules.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import replace

from shoerecon.data.cache import ViewCache, build_cache, default_cache_dir, verify_cache
from shoerecon.data.dataset import DataConfig
from shoerecon.train.config import load_config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("dataset", help="turntable dataset folder (DESIGN layout)")
    parser.add_argument("--size", type=int, default=128, help="image side of the cached views (= data.image_size; default 128)")
    parser.add_argument("--out", default=None, help="cache folder (default DATASET/.shoerecon_cache/s<size>; "
                                                    "elsewhere: set data.cache_dir to it)")
    parser.add_argument("--dtype", choices=("float32", "uint8"), default="float32",
                        help="float32: exactly the folder reader's tensors; uint8: 4x smaller, pixels rounded to 1/255")
    parser.add_argument("--config", default=None, help="experiment YAML whose data: settings (mask source, input "
                                                       "framing, ...) the cache must match (default: DataConfig defaults)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override (with --config), e.g. data.input_fill=0.8")
    parser.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    parser.add_argument("--content-hash", action="store_true", help="also store a SHA-1 of every shoe's file bytes")
    parser.add_argument("--skip-broken", action="store_true", help="leave shoes with broken files out instead of failing")
    parser.add_argument("--verify", action="store_true", help="check an existing cache against the folder; build nothing")


def run(args: argparse.Namespace) -> int:
    if args.config:
        data = load_config(args.config, list(args.overrides)).data
    elif args.overrides:
        raise SystemExit("cache: --set needs --config")
    else:
        data = DataConfig()
    cfg = replace(data, root=args.dataset, image_size=args.size)
    out = args.out or default_cache_dir(args.dataset, args.size)
    if args.verify:
        bad = verify_cache(out, args.dataset)
        for sid, why in sorted(bad.items()):
            print(f"stale: {sid}: {why}")
        print(f"{out}: {'up to date' if not bad else f'{len(bad)} stale shoes'}")
        return 1 if bad else 0
    if args.size < 8:
        raise SystemExit("cache: --size must be >= 8")
    start = time.perf_counter()
    folder = build_cache(cfg, out, args.dtype, args.workers, args.content_hash, args.skip_broken)
    cache = ViewCache(folder, args.dataset)
    views = sum(r["views"] for r in cache.shoes.values())
    nbytes = sum(p.stat().st_size for p in folder.iterdir())
    print(f"cached {len(cache.shoes)} shoes / {views} views at {args.size}px ({args.dtype}, {nbytes / 2**20:.1f} MiB) "
          f"in {folder} in {time.perf_counter() - start:.1f} s"
          + (f"; left out {len(cache.manifest['broken'])} broken shoes" if cache.manifest["broken"] else ""))
    return 0
