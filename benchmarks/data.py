"""Data loading speed: views per second from the image folder vs the ``shoerecon cache`` arrays.

    python benchmarks/data.py [--sizes 64 128 256] [--workers 0 2] [--photo-size 256] [--data DIR] [--threads 1]

A dataset of ``--photo-size`` px PNG photos (default: a few synthetic shoes, copied to ``--shoes`` shoe folders;
``--data`` for a real folder) is read through the training path (``TurntableDataset`` -> ``SeededItems`` ->
``DataLoader`` with the trainer's batch sampler) at every ``--sizes`` px: from the folder (decode + resize every
view) and from float32 and uint8 caches built for that size. Each row: batches of ``--batch`` shoes x
``--views`` target views (+ each shoe's input view), views per second (targets + inputs) and ms per batch.
The issue's target: a batch of 8 shoes x 5 views at 128 px from the cache in <= 10 ms with 0 workers on one core.
"cpu ms" is this process's CPU time per batch (with 0 workers: the loading work itself, robust to other load).
Quote the load average printed at the end next to the numbers.
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch


def make_photos(root: Path, shoes: int, size: int, views: int = 12, distinct: int = 4) -> None:
    """``distinct`` synthetic shoes at ``size`` px, copied to ``shoes`` folders (decoding cost is per file)."""
    from shoerecon.data.layout import write_json
    from shoerecon.data.synthetic import generate_dataset

    src = root.with_name(root.name + "_src")
    generate_dataset(src, min(distinct, shoes), views, size, seed=0, workers=1, progress=False)
    root.mkdir(parents=True)
    shutil.copy(src / "rig.json", root / "rig.json")
    originals = sorted(p for p in src.iterdir() if (p / "views").is_dir())
    ids = [f"shoe_{i:05d}" for i in range(shoes)]
    for i, sid in enumerate(ids):
        shutil.copytree(originals[i % len(originals)], root / sid)
    write_json(root / "splits.json", {"train": ids, "val": [], "test": []})


def time_loader(cfg, batch: int, workers: int, batches: int) -> tuple[float, float, float]:
    """(views per second, median wall ms per batch, median CPU ms of this process per batch) of the training
    loader over ``batches`` batches (after warm-up). With 0 workers the CPU time is the loading work itself,
    whatever else loads the machine; with workers it is only the main process's share."""
    from shoerecon.data import TurntableDataset
    from shoerecon.data.sampler import SeededItems, ShardedEpochBatches

    ds = TurntableDataset(cfg, split="train", seed=0)
    sampler = ShardedEpochBatches(len(ds), batch, 0, 1, seed=0)
    loader = torch.utils.data.DataLoader(SeededItems(ds), batch_sampler=sampler, num_workers=workers,
                                         persistent_workers=workers > 0)
    times, cpu, views = [], [], 0
    epoch = 0
    while len(times) < batches + 1 + workers:
        sampler.set_epoch(epoch)
        ds.set_epoch(epoch)
        it = iter(loader)
        while len(times) < batches + 1 + workers:
            start, start_cpu = time.perf_counter(), time.process_time()
            try:
                b = next(it)
            except StopIteration:
                break
            times.append(time.perf_counter() - start)
            cpu.append(time.process_time() - start_cpu)
            views = b["targets"].shape[0] * (b["targets"].shape[1] + 1)
        epoch += 1
    t = times[1 + workers:]  # skip the warm-up (and the workers' start-up)
    return views / statistics.mean(t), 1e3 * statistics.median(t), 1e3 * statistics.median(cpu[1 + workers:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256])
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--batch", type=int, default=8, help="shoes per batch")
    p.add_argument("--views", type=int, default=5, help="target views per shoe")
    p.add_argument("--batches", type=int, default=20, help="timed batches per row")
    p.add_argument("--shoes", type=int, default=48)
    p.add_argument("--photo-size", type=int, default=256, help="side of the generated PNG photos")
    p.add_argument("--data", default=None, help="an existing dataset folder instead (its caches are written into a temporary folder)")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from shoerecon.data import DataConfig
    from shoerecon.data.cache import build_cache

    with tempfile.TemporaryDirectory(prefix="bench_data_") as tmp:
        root = Path(args.data) if args.data else Path(tmp) / "photos"
        if not args.data:
            make_photos(root, args.shoes, args.photo_size)
        print(f"{root}: photos {args.photo_size if not args.data else '(given)'} px, batch {args.batch} shoes x "
              f"{args.views} target views (+ input), torch threads {args.threads}")
        print(f"{'size':>5} {'source':>14} {'workers':>8} | {'views/s':>9} {'ms/batch':>9} {'cpu ms':>7}")
        for size in args.sizes:
            base = DataConfig(root=str(root), image_size=size, num_target_views=args.views)
            sources = [("folder", replace(base, cache="never"))]
            for dtype in ("float32", "uint8"):
                folder = Path(tmp) / f"cache_{size}_{dtype}"
                start = time.perf_counter()
                build_cache(base, folder, dtype=dtype, progress=False)
                build_s = time.perf_counter() - start
                sources.append((f"cache {dtype}", replace(base, cache="require", cache_dir=str(folder))))
                print(f"{size:>5} {'(build ' + dtype + ')':>14} {'':>8} | {'':>9} {1e3 * build_s:9.0f}  "
                      f"({args.shoes} shoes, whole cache)")
            for name, cfg in sources:
                for w in args.workers:
                    vps, ms, cpu_ms = time_loader(cfg, args.batch, w, args.batches)
                    print(f"{size:>5} {name:>14} {w:>8} | {vps:9.0f} {ms:9.2f} {cpu_ms:7.2f}")
    print(f"load average: {open('/proc/loadavg').read().strip()}")


if __name__ == "__main__":
    main()
