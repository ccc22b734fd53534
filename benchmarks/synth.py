"""Synthetic data generation speed: `python benchmarks/synth.py [--shoes 200 --views 36 --size 128 --workers 2]`.

Prints a table with the wall time of the whole dataset (target: 200 shoes x 36 views at 128 px in
under 10 minutes on the 2-core dev CPU) and a per-stage breakdown for one shoe (single process).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch


def stage_times(size: int, views: int, supersample: int) -> dict[str, float]:
    from shoerecon.data.layout import rig_from_turntable, save_rgba
    from shoerecon.data.synthetic import SynthConfig, render_turntable, sample_shoe_params, shoe_geometry, shoe_mesh, shoe_rng, shoe_texture
    from shoerecon.geometry.io.glb import save_glb

    cfg = SynthConfig(image_size=size, num_views=views, supersample=supersample)
    p = sample_shoe_params(shoe_rng(0, 0), cfg)
    out, t = {}, time.perf_counter()
    shoe_geometry(p, cfg.edge_length)
    out["geometry"], t = time.perf_counter() - t, time.perf_counter()
    shoe_texture(p, cfg.texture_size)
    out["texture"], t = time.perf_counter() - t, time.perf_counter()
    mesh = shoe_mesh(p, cfg)
    t = time.perf_counter()
    rgba = render_turntable(mesh, rig_from_turntable(views).cameras, size, supersample)
    out[f"render {views} views"], t = time.perf_counter() - t, time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for v, x in enumerate(rgba):
            save_rgba(Path(d) / f"{v:03d}.png", x[:3], x[3:])
        out["write PNGs"], t = time.perf_counter() - t, time.perf_counter()
        save_glb(mesh, Path(d) / "mesh.glb")
        out["write GLB"] = time.perf_counter() - t
    out["faces"] = mesh.num_faces
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shoes", type=int, default=200)
    ap.add_argument("--views", type=int, default=36)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--supersample", type=int, default=2)
    ap.add_argument("--out", default=None, help="keep the dataset here (default: a temporary folder)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from shoerecon.data.synthetic import SynthConfig, generate_dataset

    stages = stage_times(args.size, args.views, args.supersample)
    print("per-shoe stages (one process, one thread):")
    print(f"| {'stage':<18} | {'seconds':>8} |\n|{'-' * 20}|{'-' * 10}|")
    for k, v in stages.items():
        print(f"| {k:<18} | {v:>8.3f} |" if k != "faces" else f"| {'(mesh faces)':<18} | {v:>8d} |")

    root = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="synth_bench_"))
    start = time.perf_counter()
    generate_dataset(root, args.shoes, args.views, args.size, seed=0, workers=args.workers,
                     cfg=SynthConfig(supersample=args.supersample))
    wall = time.perf_counter() - start
    if not args.out:
        shutil.rmtree(root)
    total = args.shoes * args.views
    print(f"\nwhole dataset (load average at end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores):")
    print("| shoes | views | size | supersample | workers | wall s | views/s | projected 200x36 min |")
    print("|------:|------:|-----:|------------:|--------:|-------:|--------:|---------------------:|")
    print(f"| {args.shoes} | {args.views} | {args.size} | {args.supersample} | {args.workers} | {wall:.1f} | "
          f"{total / wall:.1f} | {wall * 200 * 36 / total / 60:.1f} |")


if __name__ == "__main__":
    main()
