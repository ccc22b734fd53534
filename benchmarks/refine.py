"""Refinement at predict time (issue 12): input-view fit, novel views and 3D before/after ``--refine N``,
speed per step, and ``--orientation auto`` on mirrored photos.

    shoerecon synth --out bench/expo512 --shoes 20 --views 12 --size 512 --seed 777   # held out from seed-0 training sets
    python benchmarks/refine.py --checkpoint runs/<name>/checkpoints/last.pt --data ROOT [--split all]
            [--shoes 20] [--steps 100] [--size 128] [--jpeg-quality 90] [--orientation-shoes 20] [--threads 1]

Each shoe's input view is composited on its background (the PNG's RGB where alpha is 0: white, darker in the
contact shadow) like a camera would take it, saved as JPEG at the dataset's size and read back through
``predict``'s loader (the network input at the checkpoint's size, the fit's photo at ``--size``). A dataset
rendered larger than ``--size`` (``shoerecon synth --size 512``) gives photos like a user's: cut out at full
size, then framed and resized (``--alpha-drop`` writes the PNG's RGB without compositing, the earlier
benchmark's photo: partly covered pixels keep the shoe's full colour). "before" is the network's mesh and texture with the
photo camera framed by silhouette moments (no optimisation); "after" is ``refine`` for ``--steps`` steps.
Input view: hard render in the photo camera vs the JPEG photo (silhouette IoU, PSNR on the whole image). The
JPEG has no alpha, so the photo's mask is cut out of the white background (``data.mask_method``, what
``predict`` does): the fit's target and the first IoU. White shoe parts and floor shadows make that mask differ from the shoe, so the table also
gives IoU against the true silhouette (the PNG's alpha, framed exactly like the photo) and the mask's own IoU.
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
    p.add_argument("--first", type=int, default=0, help="skip this many shoes of the split (split a run over processes)")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--size", type=int, default=128, help="fit / evaluation image size")
    p.add_argument("--jpeg-quality", type=int, default=90)
    p.add_argument("--alpha-drop", action="store_true",
                   help="write the PNG's straight RGB as the photo (the earlier benchmark) instead of compositing")
    p.add_argument("--orientation-shoes", type=int, default=20, help="mirrored photos for --orientation auto")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="RefineConfig override, e.g. --set lr=0.005 (parsed as YAML)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    import yaml
    from PIL import Image

    from shoerecon.data import TurntableDataset
    from shoerecon.data.layout import read_image, view_files
    from shoerecon.data.synth.photo import composite
    from shoerecon.data.dataset import cut_out
    from shoerecon.data.preprocess import pad_to_square, prepare_input
    from shoerecon.eval.metrics import mesh_metrics_3d, psnr, silhouette_iou
    from shoerecon.geometry.io.glb import load_glb
    from shoerecon.export.predict import load_input
    from shoerecon.export.turntable import preview_renderer, render_mesh
    from shoerecon.fit import fit_photo, hard_iou, predict_one, refine
    from shoerecon.fit.symmetry import mirror_partners
    from shoerecon.render import Cameras
    from shoerecon.train.checkpoint import load_for_inference

    def save_photo(png: Path, jpg: Path) -> None:
        """The camera's photo of a view: straight RGB * alpha + background * (1 - alpha), as JPEG. The PNG keeps the
        background (white, shadow) only where alpha is 0: partly covered pixels take their uncovered neighbours'."""
        if args.alpha_drop:
            Image.open(png).convert("RGB").save(jpg, quality=args.jpeg_quality)
            return
        rgb, alpha = read_image(png)
        if alpha is None:
            alpha = torch.ones_like(rgb[:1])
        free = (alpha == 0).to(rgb)
        num, den = (torch.nn.functional.avg_pool2d(t[None], 3, 1, 1)[0] for t in (rgb * free, free))
        bg = torch.where(free > 0, rgb, torch.where(den > 0, num / den.clamp_min(1e-6), torch.ones_like(rgb)))
        photo = composite(torch.cat([rgb, alpha]), bg)
        Image.fromarray((photo.permute(1, 2, 0) * 255).round().clamp(0, 255).byte().numpy()).save(jpg, quality=args.jpeg_quality)

    def input_png(sid: str) -> Path:
        rig = dataset.rigs[sid]
        return view_files(dataset.root / sid, rig.num_views)[dataset.input_index(rig)]

    def photo_size(sid: str) -> str:
        return "x".join(str(n) for n in Image.open(input_png(sid)).size)

    def true_silhouette(png: Path, jpg: Path) -> torch.Tensor:
        """(1, S, S) the PNG's alpha cropped and scaled by the JPEG's cut-out mask (``load_input``'s framing)."""
        rgb, _ = read_image(jpg)
        _, alpha = read_image(png)
        m = cut_out(rgb, data_cfg, jpg)
        framed, _ = prepare_input(pad_to_square(alpha.expand(3, -1, -1), 0.0), pad_to_square(m, 0.0), args.size,
                                  data_cfg.input_fill, (0.0, 0.0, 0.0), composite=False)
        return (framed[:1] > 0.5).float()

    model, cfg = load_for_inference(args.checkpoint)
    rcfg = dataclasses.replace(cfg.refine, image_size=args.size, **{k: yaml.safe_load(v) for k, v in
                                                                    (s.split("=", 1) for s in args.set)})
    data_cfg = dataclasses.replace(cfg.data, root=args.data, image_size=args.size)
    dataset = TurntableDataset(data_cfg, split=args.split)
    ids = list(dataset.shoe_ids)[args.first: args.first + max(args.shoes, args.orientation_shoes)]
    renderer = preview_renderer(args.size, data_cfg.background)
    partners = mirror_partners(model.template_verts)
    tmp = Path(tempfile.mkdtemp(prefix="refine_bench_"))
    rows, forward_cpu, orient = [], [], []
    print(f"checkpoint {args.checkpoint}; data {args.data} ({args.split}, photos {photo_size(ids[0])} px, "
          f"{'alpha dropped' if args.alpha_drop else 'composited'}); {args.steps} steps at {args.size} px; "
          f"threads {args.threads}; JPEG q{args.jpeg_quality}; load average at start {load_avg()}")
    for n, sid in enumerate(ids):
        rig = dataset.rigs[sid]
        iv = dataset.input_index(rig)
        jpg = tmp / f"{sid}.jpg"
        png = input_png(sid)
        save_photo(png, jpg)
        net_in, _ = load_input(jpg, cfg.data)
        photo, mask = load_input(jpg, data_cfg)
        true_mask = true_silhouette(png, jpg) if read_image(png)[1] is not None else mask
        if n < args.orientation_shoes:  # toe-left photo: the mirrored JPEG
            flipped = tmp / f"{sid}_mirrored.jpg"
            Image.open(jpg).transpose(Image.FLIP_LEFT_RIGHT).save(flipped, quality=args.jpeg_quality)
            f_in, _ = load_input(flipped, cfg.data)
            f_photo, f_mask = load_input(flipped, data_cfg)
            fit = fit_photo(model, f_in, f_photo, f_mask, rcfg, "auto", steps=0, progress=False)
            orient.append(fit.mirrored)
            print(f"{sid} mirrored: --orientation auto chose {'mirror' if fit.mirrored else 'as-is'} "
                  f"(IoU as-is {fit.scores['as-is']:.3f}, mirror {fit.scores['mirror']:.3f})", flush=True)
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
        row = {"shoe": sid, "cpu_s": cpu, "wall_s": wall, "loop_s": after.seconds, "load": load_avg(),
               "mask_iou": hard_iou(mask, true_mask)}
        for tag, res, mesh in (("before", before, mesh0), ("after", after, after.mesh)):
            r = res.render
            row[f"in_iou_{tag}"] = hard_iou(r[3:], mask)
            row[f"true_iou_{tag}"] = hard_iou(r[3:], true_mask)
            row[f"in_psnr_{tag}"] = float(psnr(r[None, :3], photo[None])[0])
            nv = render_mesh(mesh, cams, renderer)
            row[f"nv_iou_{tag}"] = float(silhouette_iou(nv[:, 3:], shoe["target_masks"][novel]).mean())
            row[f"nv_psnr_{tag}"] = float(psnr(nv[:, :3], shoe["targets"][novel]).mean())
            row[f"f2_{tag}"] = mesh_metrics_3d(mesh, gt)["fscore@0.02"] if gt is not None else float("nan")
        rows.append(row)
        print(f"{sid}: input IoU {row['in_iou_before']:.3f} -> {row['in_iou_after']:.3f} (true silhouette "
              f"{row['true_iou_before']:.3f} -> {row['true_iou_after']:.3f}, JPEG mask {row['mask_iou']:.3f}), PSNR "
              f"{row['in_psnr_before']:.2f} -> {row['in_psnr_after']:.2f}; novel IoU {row['nv_iou_before']:.3f} -> "
              f"{row['nv_iou_after']:.3f}, PSNR {row['nv_psnr_before']:.2f} -> {row['nv_psnr_after']:.2f}; F@2% "
              f"{row['f2_before']:.3f} -> {row['f2_after']:.3f}; refine {cpu:.2f} s CPU / {wall:.2f} s wall "
              f"(load {row['load']})", flush=True)
    if orient:
        print(f"\n--orientation auto on mirrored (toe-left) photos: chose mirror on {sum(orient)}/{len(orient)}")
    if not rows:
        return
    mean = lambda k: statistics.fmean(r[k] for r in rows)  # noqa: E731
    print(f"\n## Refinement, {len(rows)} shoes, {args.steps} steps at {args.size} px (JPEG inputs)\n")
    print("| metric | before | after | change |\n| --- | --- | --- | --- |")
    for name, key in (("input-view silhouette IoU (vs the photo's mask)", "in_iou"),
                      ("input-view silhouette IoU (vs the true silhouette)", "true_iou"),
                      ("input-view PSNR (dB)", "in_psnr"),
                      ("novel-view silhouette IoU", "nv_iou"), ("novel-view PSNR (dB)", "nv_psnr"),
                      ("F-score@2% (3D)", "f2")):
        b, a = mean(f"{key}_before"), mean(f"{key}_after")
        print(f"| {name} | {b:.4f} | {a:.4f} | {a - b:+.4f} |")
    print(f"| JPEG mask vs the true silhouette (IoU) | {mean('mask_iou'):.4f} | | |")
    good = [r for r in rows if r["mask_iou"] >= 0.95]
    if good:
        print(f"\n{len(good)} shoes whose JPEG mask has IoU >= 0.95 with the true silhouette: input IoU "
              f"{statistics.fmean(r['in_iou_before'] for r in good):.4f} -> {statistics.fmean(r['in_iou_after'] for r in good):.4f}, "
              f"novel IoU {statistics.fmean(r['nv_iou_before'] for r in good):.4f} -> {statistics.fmean(r['nv_iou_after'] for r in good):.4f}")
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


if __name__ == "__main__":
    main()
