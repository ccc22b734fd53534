"""Refinement at predict time (issue 12): input-view fit, novel views and 3D before/after ``--refine N``,
speed per step, and ``--orientation auto`` on mirrored photos.

    python benchmarks/refine.py --checkpoint runs/<name>/checkpoints/last.pt --data ROOT [--split all]
            [--shoes 20] [--steps 100] [--size 128] [--jpeg-quality 90] [--orientation-shoes 20] [--threads 1]

Each shoe's input view is saved as JPEG and read back through ``predict``'s loader (the network input at the
checkpoint's size, the fit's photo at ``--size``). "before" is the network's mesh and texture with the
photo camera framed by silhouette moments (no optimisation); "after" is ``refine`` for ``--steps`` steps.
Input view: hard render in the photo camera vs the JPEG photo (silhouette IoU, PSNR on the whole image).
Novel views: every other rig view at ``--size``, hard renders with the rig cameras (IoU, PSNR); 3D: F-score
at 2% vs mesh.glb. Times: CPU seconds of this process (``time.process_time``, what one dedicated core would
take) and wall seconds, with the load average (the CPU is shared).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics
import tempfile
import time
from pathlib import Path

import torch


def load_avg() -> str:
    try:
        return Path("/proc/loadavg").read_text().split(" ")[0]
    except OSError:
        return "?"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", required=True, help="held-out turntable dataset (e.g. shoerecon synth --size 128)")
    p.add_argument("--split", default="all")
    p.add_argument("--shoes", type=int, default=20)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--size", type=int, default=128, help="fit / evaluation image size")
    p.add_argument("--jpeg-quality", type=int, default=90)
    p.add_argument("--orientation-shoes", type=int, default=20, help="mirrored photos for --orientation auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="RefineConfig override, e.g. --set lr=0.005 (parsed as YAML)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    import yaml
    from PIL import Image

    from shoerecon.data import TurntableDataset
    from shoerecon.data.layout import view_files
    from shoerecon.eval.metrics import mesh_metrics_3d, psnr, silhouette_iou
    from shoerecon.geometry.io.glb import load_glb
    from shoerecon.export.predict import load_input
    from shoerecon.export.turntable import preview_renderer, render_mesh
    from shoerecon.fit import fit_photo, hard_iou, predict_one, refine
    from shoerecon.fit.symmetry import mirror_partners
    from shoerecon.render import Cameras
    from shoerecon.train.checkpoint import load_for_inference

    model, cfg = load_for_inference(args.checkpoint)
    rcfg = dataclasses.replace(cfg.refine, image_size=args.size, **{k: yaml.safe_load(v) for k, v in
                                                                    (s.split("=", 1) for s in args.set)})
    data_cfg = dataclasses.replace(cfg.data, root=args.data, image_size=args.size)
    dataset = TurntableDataset(data_cfg, split=args.split)
    ids = list(dataset.shoe_ids)[: max(args.shoes, args.orientation_shoes)]
    renderer = preview_renderer(args.size, data_cfg.background)
    partners = mirror_partners(model.template_verts)
    tmp = Path(tempfile.mkdtemp(prefix="refine_bench_"))
    rows, forward_cpu, orient = [], [], []
    print(f"checkpoint {args.checkpoint}; data {args.data} ({args.split}); {args.steps} steps at {args.size} px; "
          f"threads {args.threads}; JPEG q{args.jpeg_quality}; load average at start {load_avg()}")
    for n, sid in enumerate(ids):
        rig = dataset.rigs[sid]
        iv = dataset.input_index(rig)
        jpg = tmp / f"{sid}.jpg"
        Image.open(view_files(dataset.root / sid, rig.num_views)[iv]).convert("RGB").save(jpg, quality=args.jpeg_quality)
        net_in, _ = load_input(jpg, cfg.data)
        photo, mask = load_input(jpg, data_cfg)
        if n < args.orientation_shoes:  # toe-left photo: the mirrored JPEG
            flipped = tmp / f"{sid}_mirrored.jpg"
            Image.open(jpg).transpose(Image.FLIP_LEFT_RIGHT).save(flipped, quality=args.jpeg_quality)
            f_in, _ = load_input(flipped, cfg.data)
            f_photo, f_mask = load_input(flipped, data_cfg)
            fit = fit_photo(model, f_in, f_photo, f_mask, rcfg, "auto", steps=0, progress=False)
            orient.append(fit.mirrored)
        if n >= args.shoes:
            continue
        with torch.no_grad():
            c0 = time.process_time()
            for _ in range(3):
                model(net_in[None])
            forward_cpu.append((time.process_time() - c0) / 3)
        mesh0, flow = predict_one(model, net_in)
        before = refine(mesh0, photo, mask, rcfg, flow, steps=0, partners=partners, bake=False, progress=False)
        c0, w0 = time.process_time(), time.perf_counter()
        after = refine(mesh0, photo, mask, rcfg, flow, steps=args.steps, partners=partners, progress=False)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        shoe = dataset.load_shoe(sid)
        novel = shoe["target_views"] != iv
        cams = Cameras.from_tensor(shoe["target_cameras"][novel].float())
        gt = load_glb(shoe["mesh_path"]) if shoe["mesh_path"] else None
        row = {"shoe": sid, "cpu_s": cpu, "wall_s": wall, "loop_s": after.seconds, "load": load_avg()}
        for tag, res, mesh in (("before", before, mesh0), ("after", after, after.mesh)):
            r = res.render
            row[f"in_iou_{tag}"] = hard_iou(r[3:], mask)
            row[f"in_psnr_{tag}"] = float(psnr(r[None, :3], photo[None])[0])
            nv = render_mesh(mesh, cams, renderer)
            row[f"nv_iou_{tag}"] = float(silhouette_iou(nv[:, 3:], shoe["target_masks"][novel]).mean())
            row[f"nv_psnr_{tag}"] = float(psnr(nv[:, :3], shoe["targets"][novel]).mean())
            row[f"f2_{tag}"] = mesh_metrics_3d(mesh, gt)["fscore@0.02"] if gt is not None else float("nan")
        rows.append(row)
        print(f"{sid}: input IoU {row['in_iou_before']:.3f} -> {row['in_iou_after']:.3f}, PSNR "
              f"{row['in_psnr_before']:.2f} -> {row['in_psnr_after']:.2f}; novel IoU {row['nv_iou_before']:.3f} -> "
              f"{row['nv_iou_after']:.3f}, PSNR {row['nv_psnr_before']:.2f} -> {row['nv_psnr_after']:.2f}; F@2% "
              f"{row['f2_before']:.3f} -> {row['f2_after']:.3f}; refine {cpu:.2f} s CPU / {wall:.2f} s wall "
              f"(load {row['load']})", flush=True)
    mean = lambda k: statistics.fmean(r[k] for r in rows)  # noqa: E731
    print(f"\n## Refinement, {len(rows)} shoes, {args.steps} steps at {args.size} px (JPEG inputs)\n")
    print("| metric | before | after | change |\n| --- | --- | --- | --- |")
    for name, key in (("input-view silhouette IoU", "in_iou"), ("input-view PSNR (dB)", "in_psnr"),
                      ("novel-view silhouette IoU", "nv_iou"), ("novel-view PSNR (dB)", "nv_psnr"),
                      ("F-score@2% (3D)", "f2")):
        b, a = mean(f"{key}_before"), mean(f"{key}_after")
        print(f"| {name} | {b:.4f} | {a:.4f} | {a - b:+.4f} |")
    worse = sum(r["nv_iou_after"] < r["nv_iou_before"] for r in rows)
    print(f"\nshoes with lower novel-view IoU after refinement: {worse}/{len(rows)}; input IoU >= 0.97 on "
          f"{sum(r['in_iou_after'] >= 0.97 for r in rows)}/{len(rows)}, PSNR >= 26 on "
          f"{sum(r['in_psnr_after'] >= 26 for r in rows)}/{len(rows)}")
    cpu = statistics.fmean(r["cpu_s"] for r in rows)
    loop = statistics.fmean(r["loop_s"] for r in rows)
    print(f"\n| time | mean |\n| --- | --- |\n| refine {args.steps} steps + bake, CPU s (one thread) | {cpu:.2f} |\n"
          f"| per step, CPU ms | {1000 * cpu / max(args.steps, 1):.1f} |\n| refine loop, wall s | {loop:.2f} |\n"
          f"| forward pass, CPU ms | {1000 * statistics.fmean(forward_cpu):.1f} |\n"
          f"| load average (end) | {load_avg()} |")
    if orient:
        print(f"\n--orientation auto on mirrored (toe-left) photos: chose mirror on {sum(orient)}/{len(orient)}")


if __name__ == "__main__":
    main()
