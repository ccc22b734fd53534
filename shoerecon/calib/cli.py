"""`shoerecon calibrate DATASET`: the unknown rig of an imported turntable dataset, from its masks.

Writes ``<shoe>/cameras.json`` (product cameras: crop per view, the shoe's offset, start azimuth, direction)
for every shoe that converged, ``rig.json`` (the median elevation / fov / distance as a plain turntable),
``calibration.md`` (per shoe and per view reprojection IoU) and ``calibration_overlay.png`` (masks in grey,
the calibrated hull's reprojection outline in red). Shoes that do not converge are named, get no cameras
and are left out of ``splits.json``, so training never sees wrong cameras.
"""
from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from shoerecon.calib.refine import RefineConfig
from shoerecon.calib.turntable import (CalibConfig, PolishConfig, calibrate_shoe, downscale_masks, score_reprojection,
                                      silhouettes, splat)
from shoerecon.data.layout import (DataError, Rig, list_shoes, mask_files, read_mask, read_rig, read_splits, view_files,
                                   write_json, read_image)
from shoerecon.render.cameras import Cameras


def load_masks(root: Path, shoe: str, num_views: int) -> torch.Tensor:
    """(V, 1, H, W) masks of a shoe: masks/ files (as `shoerecon import` writes them), else the views' alpha."""
    files = mask_files(root / shoe, num_views)
    views = view_files(root / shoe, num_views)
    out = []
    for i, v in enumerate(views):
        if files is not None:
            rgb, _ = read_image(v)
            out.append(read_mask(files[i], tuple(rgb.shape[-2:])))
        else:
            _, alpha = read_image(v)
            if alpha is None:
                raise DataError(f"{v}: no mask file and no alpha channel; run `shoerecon import` first")
            out.append(alpha)
    return torch.stack(out)


def reprojection(result: dict, masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, 1, h, w) reprojection of a voxel-hull result (no ``polish``) with the final cameras, and the masks
    (V, 1, h, w) at its fitting resolution. A polished result carries its own (``calibrate_shoe``)."""
    small = downscale_masks(masks, result["mask_height"])
    cams = Cameras.from_tensor(result["cameras"])
    h, w = small.shape[-2:]
    if result.get("surface"):
        return silhouettes(result["hull"], cams, h, w), small
    px = result["voxel"] * float((cams.focal() * cams.crop[:, 2] / cams.distance).mean()) * min(h, w) / 2
    return splat(result["hull"], cams, h, w, max(0, int(round(px / 2)))), small


def overlay_sheet(rows: list[tuple[torch.Tensor, torch.Tensor]], path: Path, per_row: int = 12) -> None:
    """Masks (grey) with the reprojection's outline (red), up to ``per_row`` views per shoe."""
    from shoerecon.data.importer import _save
    from shoerecon.data.masks import outline

    lines = []
    for proj, masks in rows:
        idx = torch.linspace(0, masks.shape[0] - 1, min(per_row, masks.shape[0])).round().long()
        tiles = []
        for i in idx:
            t = (1 - 0.35 * masks[i]).expand(3, -1, -1).clone()
            t[:, outline(proj[i])[0]] = torch.tensor([1.0, 0.0, 0.0])[:, None]
            tiles.append(F.pad(t, (1, 1, 1, 1), value=1.0))
        lines.append(torch.cat(tiles, 2))
    if lines:
        width = max(x.shape[-1] for x in lines)
        _save(path, torch.cat([F.pad(x, (0, width - x.shape[-1]), value=1.0) for x in lines], 1))


def calibrate_one(root: Path, shoe: str, num_views: int, cfg: CalibConfig, progress=None) -> tuple[dict, tuple | None]:
    """Calibrate one shoe of a dataset: its result (``calibrate_shoe``'s, with ``seconds`` and the scores of
    ``score_reprojection``) and its overlay row (reprojection, masks), or a not-converged result naming the problem."""
    t0 = time.perf_counter()
    try:
        masks = load_masks(root, shoe, num_views)
    except DataError as e:
        return {"converged": False, "problem": str(e)}, None
    res = calibrate_shoe(masks, cfg, progress=progress)
    res["seconds"] = time.perf_counter() - t0
    if res["cameras"] is None:
        return res, None
    if "reprojection" not in res:  # a voxel hull (no polish): the polished one comes rendered and scored
        score_reprojection(res, *reprojection(res, masks), cfg.min_iou)
    return res, res.pop("reprojection")


def _calibrate_job(job: tuple) -> tuple[str, dict, tuple | None]:
    """``calibrate_one`` in a worker process (one shoe, ``threads`` torch threads)."""
    root, shoe, num_views, cfg, threads = job
    torch.set_num_threads(threads)
    return (shoe, *calibrate_one(root, shoe, num_views, cfg))


def calibrate_dataset(root: str | Path, cfg: CalibConfig | None = None, progress: bool = True,
                      workers: int = 1) -> dict[str, dict]:
    """Calibrate every shoe of ``root`` and write the files listed in the module docstring. Returns shoe -> result.

    ``workers`` > 1 calibrates that many shoes at a time in processes (each with this process's torch threads).
    """
    from tqdm import tqdm

    cfg = cfg or CalibConfig()
    root = Path(root)
    rig = read_rig(root / "rig.json")
    shoes = list_shoes(root)
    if not shoes:
        raise DataError(f"{root}: no shoe folders")
    results, overlays, start = {}, [], time.perf_counter()
    if workers > 1:  # a bar per shoe: the workers' fits are not seen from here
        import multiprocessing as mp

        jobs = [(root, shoe, rig.num_views, cfg, torch.get_num_threads()) for shoe in shoes]
        with mp.get_context("fork").Pool(min(workers, len(shoes))) as pool:
            done = list(tqdm(pool.imap(_calibrate_job, jobs), total=len(shoes), desc="calibrate", unit="shoe",
                             disable=not progress))
    else:
        done = []
        per_shoe = (len(cfg.elevations) * len(cfg.fovs) * (2 if cfg.direction == 0 else 1) + 8 * cfg.fine_steps
                    + (sum(cfg.refine.steps) if cfg.refine is not None else 0)
                    + (cfg.polish.candidates if cfg.polish is not None else 0))
        bar = tqdm(total=len(shoes) * per_shoe, desc="calibrate", unit="fit", disable=not progress)
        for shoe in shoes:
            bar.set_postfix_str(shoe)
            done.append((shoe, *calibrate_one(root, shoe, rig.num_views, cfg, progress=bar.update)))
            bar.n = min(bar.total, len(done) * per_shoe)  # per_shoe is an estimate: do not let it drift
            bar.refresh()
        bar.close()
    for shoe, res, overlay in done:
        results[shoe] = res
        if overlay is not None:
            overlays.append(overlay)
        path = root / shoe / "cameras.json"
        if res["converged"]:
            write_json(path, _cameras_json(res, res["cameras"], rig.input_view))
        elif path.exists():
            path.unlink()  # stale cameras of an earlier run would be wrong now
    ok = {k: r for k, r in results.items() if r.get("converged")}
    if ok:
        med = {k: statistics.median(r[k] for r in ok.values()) for k in ("elevation", "fov", "distance")}
        base = Cameras.turntable(rig.num_views, med["elevation"], med["distance"], med["fov"]).to_tensor()
        write_json(root / "rig.json", Rig(base, rig.input_view).to_json(
            background=[1.0, 1.0, 1.0], source={"calibrated": True, "by": "shoerecon calibrate",
                                                "note": "per-shoe cameras.json hold each shoe's crop and pose"}))
    splits = read_splits(root, shoes)
    write_json(root / "splits.json", {k: [s for s in v if s in ok] for k, v in splits.items()})
    _write_report(root / "calibration.md", results, cfg, time.perf_counter() - start)
    overlay_sheet(overlays, root / "calibration_overlay.png")
    return results


def _cameras_json(res: dict, cams: torch.Tensor, input_view: int) -> dict:
    v = cams.shape[0]
    views = [{"azimuth": round(i * 360.0 / v, 6), "elevation": round(res["elevation"], 4), "distance": round(res["distance"], 6),
              "fov": round(res["fov"], 4), "shift_x": round(float(c[4]), 6), "shift_y": round(float(c[5]), 6),
              "zoom": round(float(c[6]), 6)} for i, c in enumerate(cams)]
    return {"num_views": v, "input_view": int(res.get("input_view", input_view)), "views": views,
            "object": {"translation": [round(float(t), 6) for t in res["translation"]],
                       "start_azimuth": round(res["start_azimuth"], 4), "direction": int(res["direction"])},
            "source": {"calibrated": True, "mean_iou": round(res["mean_iou"], 4)}}


# calibration.md's views to check: the hull's outline is this far from the mask's (fraction of the image height,
# 5 px at 128) and 4 times its shoe's median. On synthetic shop sets it flags masks that lost a band of the shoe
# (outline 5.4-7.4 px off against a median of 0.7-1.2) and not the end-on views whose IoU dips (3.5-4.4 px).
CHECK_OUTLINE, CHECK_RATIO, CHECK_IOU_DROP = 0.04, 4.0, 0.2


def views_to_check(view_outline: torch.Tensor, view_iou: torch.Tensor) -> list[int]:
    """Views whose outline error (V,) (``outline_error`` in image heights) is above ``CHECK_OUTLINE`` and
    ``CHECK_RATIO`` times the median, or whose reprojection IoU (V,) is ``CHECK_IOU_DROP`` below the median: usually
    a mask that lost a part of the shoe or kept a shadow. (A lost white heel counter in a back view: IoU 0.69 where
    the median is 0.97, its outline only 0.032 image heights off; views seen end-on fit loosely, 0.84-0.88.)"""
    limit = max(CHECK_OUTLINE, CHECK_RATIO * float(view_outline.median()))
    drop = view_iou < float(view_iou.median()) - CHECK_IOU_DROP
    return ((view_outline > limit) | drop).nonzero()[:, 0].tolist()


def _write_report(path: Path, results: dict, cfg: CalibConfig, seconds: float) -> None:
    ok = sum(bool(r.get("converged")) for r in results.values())
    lines = ["# Calibration", "",
             f"{ok} of {len(results)} shoes converged (mean reprojection IoU >= {cfg.min_iou}) in {seconds:.0f} s. "
             "Shoes that did not converge have no cameras.json and are left out of splits.json.", "",
             "| shoe | status | elevation | fov | distance | start azimuth | direction | mean IoU | worst view (IoU) | s |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for shoe, r in results.items():
        if "problem" in r:
            lines.append(f"| {shoe} | error: {r['problem']} | | | | | | | | |")
            continue
        vi = r["view_iou"]
        worst = int(vi.argmin())
        status = "ok" if r["converged"] else "NOT CONVERGED"
        lines.append(f"| {shoe} | {status} | {r['elevation']:.1f} | {r['fov']:.1f} | {r['distance']:.2f} | "
                     f"{r['start_azimuth']:.1f} | {r['direction']:+d} | {r['mean_iou']:.3f} | {worst:03d} ({float(vi[worst]):.3f}) | "
                     f"{r.get('seconds', 0):.0f} |")
    suspects = {shoe: views_to_check(r["view_outline"], r["view_iou"]) for shoe, r in results.items()
                if "view_outline" in r}
    if any(suspects.values()):
        lines += ["", "## Views to check", "",
                  f"Views where the calibrated hull's outline is on average more than {CHECK_OUTLINE:g} of the image "
                  f"height and {CHECK_RATIO:g} times its shoe's median from the mask's, or whose reprojection IoU is "
                  f"{CHECK_IOU_DROP:g} below its shoe's median: usually a mask that lost a part "
                  "of the shoe (a white toe cap or sole on white) or kept a shadow. The hull keeps a part up to "
                  "`--tolerance` of the masks lost, but such a view's mask is wrong where you train on it. "
                  "View (reprojection IoU, outline distance in image heights):", ""]
        lines += [f"- {shoe}: " + ", ".join(f"{i:03d} ({float(results[shoe]['view_iou'][i]):.2f}, "
                                            f"{float(results[shoe]['view_outline'][i]):.3f})" for i in views)
                  for shoe, views in suspects.items() if views]
    lines += ["", "## Per-view reprojection IoU", ""]
    for shoe, r in results.items():
        if "view_iou" in r:
            lines.append(f"- {shoe}: " + " ".join(f"{float(x):.2f}" for x in r["view_iou"]))
    lines += ["", "Overlay: `calibration_overlay.png` (grey: mask, red: the calibrated hull's outline)."]
    path.write_text("\n".join(lines) + "\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = CalibConfig()
    parser.add_argument("dataset", help="dataset folder (as `shoerecon import` writes it: views + masks)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process (default 1)")
    parser.add_argument("--workers", type=int, default=1,
                        help="shoes calibrated at a time, one process each (default 1; about 40 CPU s a shoe)")
    parser.add_argument("--direction", type=int, default=d.direction, choices=(1, -1, 0),
                        help=f"turntable direction: 1, -1, or 0 to try both (default {d.direction}: shops spin either way)")
    parser.add_argument("--min-iou", type=float, default=d.min_iou, help=f"convergence threshold (default {d.min_iou})")
    parser.add_argument("--voxels", type=int, default=d.voxels, help=f"voxel grid resolution (default {d.voxels})")
    parser.add_argument("--mask-height", type=int, default=d.mask_height, help=f"fitting resolution (default {d.mask_height})")
    parser.add_argument("--tolerance", type=float, default=d.polish.tolerance,
                        help=f"fraction of the views a point of the shoe's hull may fall outside of (default "
                             f"{d.polish.tolerance}: 2 of 36), so that a mask which lost a part does not cut it out of "
                             "the shoe; raise it for poor masks, 0 for exact ones")
    parser.add_argument("--refine", action="store_true",
                        help="also run the gradient-descent stage (calib.refine) after the grid search (slower)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(max(1, args.threads))
    if not 0.0 <= args.tolerance < 0.5:
        raise SystemExit(f"calibrate: --tolerance must be in [0, 0.5) (a fraction of the views), got {args.tolerance}")
    cfg = CalibConfig(direction=args.direction, min_iou=args.min_iou, voxels=args.voxels, mask_height=args.mask_height,
                      polish=replace(PolishConfig(), tolerance=args.tolerance))
    if args.refine:
        cfg = replace(cfg, refine=RefineConfig())
    try:
        results = calibrate_dataset(args.dataset, cfg, workers=max(1, args.workers))
    except DataError as e:
        raise SystemExit(f"calibrate: {e}") from None
    for shoe, r in results.items():
        if not r.get("converged"):
            why = r.get("problem") or f"mean reprojection IoU {r.get('mean_iou', 0):.3f} < {cfg.min_iou}"
            print(f"not converged: {shoe}: {why} (no cameras written)")
    ok = sum(bool(r.get("converged")) for r in results.values())
    print(f"calibrated {ok} of {len(results)} shoes (report: {Path(args.dataset) / 'calibration.md'})")
    return 0 if ok else 1
