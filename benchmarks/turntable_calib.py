"""Benchmark of `shoerecon import` + `shoerecon calibrate` on synthetic shop turntables with hidden rigs.

    PYTHONPATH=$PWD python benchmarks/turntable_calib.py --shoes 20 --work /tmp/tt_bench --threads 1

Generates (once; reused when ``--work`` already holds it) ``--shoes`` product-photo turntables
(``shoerecon synth-photos``: elevation 0-20, fov 15-50, offset <= 10% of the length, start azimuth +-20,
re-centred/zoomed views, floor shadow + reflection, JPEG q85), imports them, scores the masks against the exact
alpha, calibrates, and scores the rig against the truth. Prints two tables and the targets of issue 13:
masks IoU >= 0.97; elevation within 2 deg, start azimuth within 3 deg, mean reprojection IoU >= 0.95,
<= 60 s per shoe on one core. Timings depend on the machine's load, printed next to them.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch


def loadavg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0:3].__str__()
    except OSError:
        return "n/a"


def _calibrate_one(job) -> dict:
    """Calibrate one imported shoe in this process (one torch thread); the per-shoe time is its wall clock."""
    from shoerecon.calib.cli import load_masks
    from shoerecon.calib.turntable import CalibConfig, calibrate_shoe

    root, shoe, views, threads = job
    torch.set_num_threads(threads)
    t = time.perf_counter()
    r = calibrate_shoe(load_masks(Path(root), shoe, views), CalibConfig())
    return {k: r[k] for k in ("elevation", "fov", "start_azimuth", "mean_iou", "converged")} | {"seconds": time.perf_counter() - t}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shoes", type=int, default=20)
    p.add_argument("--views", type=int, default=36)
    p.add_argument("--height", type=int, default=120)
    p.add_argument("--width", type=int, default=160)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--work", default="/tmp/tt_bench", help="folder for photos, truth and the dataset")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--workers", type=int, default=1, help="processes (one shoe each) for generating and calibrating")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from shoerecon.data.importer import ImportConfig, import_folder
    from shoerecon.data.layout import read_image, read_mask
    from shoerecon.data.product_photos import ProductPhotoConfig, generate_product_photos

    work = Path(args.work)
    src, truth, ds = work / "photos", work / "truth", work / "dataset"
    if not (truth / "rig.json").exists():
        cfg = ProductPhotoConfig(height=args.height, width=args.width, num_views=args.views)
        t = time.perf_counter()
        generate_product_photos(src, args.shoes, args.seed, cfg, truth, workers=args.workers)
        print(f"generated {args.shoes} turntables in {time.perf_counter() - t:.0f} s")
    rigs = json.loads((truth / "rig.json").read_text())["shoes"]

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reports = import_folder(src, ds, ImportConfig(views=args.views), progress=False)
    t_import = time.perf_counter() - t
    print(f"\n## masks (import: {t_import:.1f} s for {len(reports)} shoes, load average {loadavg()})\n")
    print("| shoe | status | mean mask IoU | min mask IoU |\n|---|---|---|---|")
    all_iou = []
    for r in reports:
        if r.status != "ok":
            print(f"| {r.name} | skipped: {r.problem} | | |")
            continue
        ious = []
        for v in range(args.views):
            _, alpha = read_image(truth / r.name / "alpha" / f"{v:03d}.png")
            m = read_mask(ds / r.name / "masks" / f"{v:03d}.png", tuple(alpha.shape[-2:]))
            a, b = alpha > 0.5, m > 0.5
            ious.append(float((a & b).sum() / (a | b).sum()))
        all_iou += ious
        print(f"| {r.name} | ok | {np.mean(ious):.4f} | {np.min(ious):.4f} |")
    print(f"\nmasks: mean IoU {np.mean(all_iou):.4f}, min {np.min(all_iou):.4f} over {len(all_iou)} views "
          f"(target >= 0.97: {'met' if np.mean(all_iou) >= 0.97 else 'NOT met'})")

    t = time.perf_counter()
    shoes = [r.name for r in reports if r.status == "ok"]
    jobs = [(str(ds), s, args.views, args.threads) for s in shoes]
    if args.workers > 1:
        import multiprocessing as mp

        with mp.get_context("fork").Pool(args.workers) as pool:
            res = dict(zip(shoes, pool.map(_calibrate_one, jobs)))
    else:
        res = dict(zip(shoes, map(_calibrate_one, jobs)))
    t_cal = time.perf_counter() - t
    print(f"\n## calibration ({t_cal:.0f} s for {len(res)} shoes, {args.workers} process(es) x --threads {args.threads}, "
          f"load average {loadavg()})\n")
    print("| shoe | elevation (true) | err | start az (true) | err | fov (true) | mean IoU | s | converged |")
    print("|---|---|---|---|---|---|---|---|---|")
    el_err, az_err, ious, secs = [], [], [], []
    for shoe, r in res.items():
        tr = rigs[shoe]
        if "elevation" not in r:
            print(f"| {shoe} | {r.get('problem')} |")
            continue
        e = r["elevation"] - tr["elevation"]
        a = (r["start_azimuth"] - tr["start_azimuth"] + 180) % 360 - 180
        el_err.append(abs(e)), az_err.append(abs(a)), ious.append(r["mean_iou"]), secs.append(r["seconds"])
        print(f"| {shoe} | {r['elevation']:.1f} ({tr['elevation']:.1f}) | {e:+.1f} | {r['start_azimuth']:.1f} "
              f"({tr['start_azimuth']:.1f}) | {a:+.1f} | {r['fov']:.1f} ({tr['fov']:.1f}) | {r['mean_iou']:.3f} | "
              f"{r['seconds']:.0f} | {r['converged']} |")
    def verdict(ok):
        return "met" if ok else "NOT met"
    print(f"\nelevation |err|: max {max(el_err):.2f}, mean {np.mean(el_err):.2f} deg; within 2 deg: "
          f"{sum(x <= 2 for x in el_err)}/{len(el_err)} ({verdict(max(el_err) <= 2)})")
    print(f"start azimuth |err|: max {max(az_err):.2f}, mean {np.mean(az_err):.2f} deg; within 3 deg: "
          f"{sum(x <= 3 for x in az_err)}/{len(az_err)} ({verdict(max(az_err) <= 3)})")
    print(f"mean per-view reprojection IoU: {np.mean(ious):.3f} (min shoe {min(ious):.3f}) ({verdict(np.mean(ious) >= 0.95)})")
    print(f"seconds per shoe: mean {np.mean(secs):.0f}, max {max(secs):.0f} (target <= 60 on one core; load average {loadavg()})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
