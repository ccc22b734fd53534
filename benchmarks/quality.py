"""Quality bar (issues 4 and 10): how well held-out shoes are reconstructed from their input view alone,
by the trained network and by the bare template (no network).

    python benchmarks/quality.py --checkpoint runs/<name>/checkpoints/last.pt [--data ROOT] [--split val]
            [--views 0 9 18] [--shoes N] [--grid out.png]

Prints one table row per model (network, template): silhouette IoU over the novel views (every
view but the input view) and over all views, PSNR, F-score@2% and Chamfer-L2 against each shoe's
mesh.glb. Then the shape's dependence on the input: the mean pairwise Chamfer-L2 between the
predictions for different held-out shoes next to the same between their ground-truth meshes (a
network that learned only a mean shoe has a ratio near 0; issue 10 asks for >= 0.5), and per axis how well the
predicted extents follow the ground truth's (length, height, width: correlation and mean error).
The dataset defaults to the checkpoint's own ``data.root``. Silhouettes are rendered as in
validation (``train.val_blend``, default hard: exact pixel coverage, like the dataset's masks).
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import os
import statistics

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", default=None, help="dataset root (default: the checkpoint's data.root)")
    p.add_argument("--split", default="val")
    p.add_argument("--views", type=int, nargs="*", default=None, help="default: every view")
    p.add_argument("--shoes", type=int, default=None, help="first N shoes of the split (default: all)")
    p.add_argument("--points", type=int, default=20000, help="surface samples per mesh for F-score / Chamfer")
    p.add_argument("--grid", default=None, help="write a PNG: per shoe, input | GT views | network | template")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from tqdm import tqdm

    from shoerecon.data import TurntableDataset
    from shoerecon.eval.metrics import MetricsConfig, chamfer_between_meshes, mesh_metrics_3d, psnr, silhouette_iou
    from shoerecon.export.glb import load_glb
    from shoerecon.geometry.mesh import Mesh
    from shoerecon.render import Renderer
    from shoerecon.train.checkpoint import load_for_inference
    from shoerecon.train.system import eval_render_config, render_prediction

    net, cfg = load_for_inference(args.checkpoint, args.device)
    net.eval()
    data_cfg = dataclasses.replace(cfg.data, root=args.data) if args.data else cfg.data
    dataset = TurntableDataset(data_cfg, split=args.split, seed=cfg.train.seed)
    ids = list(dataset.shoe_ids)[: args.shoes]
    renderer = Renderer(eval_render_config(cfg)).to(args.device)
    mcfg = dataclasses.replace(MetricsConfig(), num_points=args.points)
    print(f"{args.checkpoint}: {len(ids)} {args.split} shoes of {data_cfg.root}, "
          f"views {'all' if args.views is None else args.views}, {cfg.data.image_size}px, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = {"network": [], "template": []}
    meshes = {"network": [], "template": [], "gt": []}
    grid_rows = []
    for sid in tqdm(ids, desc="shoes"):
        shoe = dataset.load_shoe(sid, args.views)
        novel = shoe["target_views"] != dataset.input_index(dataset.rigs[sid])
        gt = load_glb(shoe["mesh_path"]) if shoe["mesh_path"] else None
        meshes["gt"].append(gt)
        with torch.no_grad():
            out = net(shoe["input"][None].to(args.device))
            for name in ("network", "template"):
                verts = net.template_verts[None].to(out.verts.dtype) if name == "template" else out.verts
                r = torch.cat([render_prediction(renderer, verts, net, out.texture, shoe["target_cameras"][None, s:s + 12].to(args.device))[0]
                               for s in range(0, len(shoe["target_views"]), 12)]).float().cpu()
                iou = silhouette_iou(r[:, 3:4], shoe["target_masks"])
                row = {"iou_novel": iou[novel].mean().item(), "iou_all": iou.mean().item(),
                       "psnr": psnr(r[:, :3], shoe["targets"]).mean().item()}
                mesh = Mesh(verts[0].float().cpu(), net.faces.cpu())
                meshes[name].append(mesh)
                if gt is not None:
                    m3 = mesh_metrics_3d(mesh, gt, mcfg)
                    row.update(fscore=m3["fscore@0.02"], chamfer=m3["chamfer_l2"])
                rows[name].append(row)
                if args.grid and name == "network":
                    net_r = r
                elif args.grid:
                    pick = torch.linspace(0, len(shoe["target_views"]) - 1, 6).round().long()
                    inp = shoe["input"][None].cpu()
                    size = shoe["targets"].shape[-1]
                    inp = torch.nn.functional.interpolate(inp, size=(size, size), mode="bilinear", align_corners=False)
                    grid_rows.append(torch.cat([inp, shoe["targets"][pick], net_r[pick, :3], r[pick, :3]]))
    print(f"\n| {'model':<9} | {'IoU novel':>9} {'IoU all':>8} {'IoU min':>8} | {'PSNR dB':>7} | {'F@2%':>6} | {'Chamfer-L2':>10} |")
    print(f"|{'-' * 11}|{'-' * 29}|{'-' * 9}|{'-' * 8}|{'-' * 12}|")
    for name, rs in rows.items():
        f = [r["fscore"] for r in rs if "fscore" in r]
        c = [r["chamfer"] for r in rs if "chamfer" in r]
        print(f"| {name:<9} | {statistics.mean(r['iou_novel'] for r in rs):9.4f} {statistics.mean(r['iou_all'] for r in rs):8.4f} "
              f"{min(r['iou_novel'] for r in rs):8.4f} | {statistics.mean(r['psnr'] for r in rs):7.2f} | "
              f"{statistics.mean(f) if f else float('nan'):6.4f} | {statistics.mean(c) if c else float('nan'):10.6f} |")
    if all(m is not None for m in meshes["gt"]) and len(ids) > 1:
        pairs = list(itertools.combinations(range(len(ids)), 2))
        pred = statistics.mean(chamfer_between_meshes(meshes["network"][i], meshes["network"][j]) for i, j in pairs)
        gtc = statistics.mean(chamfer_between_meshes(meshes["gt"][i], meshes["gt"][j]) for i, j in pairs)
        print(f"\nmean pairwise Chamfer-L2 over {len(pairs)} pairs of held-out shoes: predictions {pred:.6f}, "
              f"ground truth {gtc:.6f}, ratio {pred / gtc:.3f} (issue 10: >= 0.5)")
        print_extent_table(meshes["network"], meshes["gt"])
    print("\nper shoe (network IoU novel / F@2%, template IoU novel / F@2%):")
    for sid, a, b in zip(ids, rows["network"], rows["template"]):
        print(f"  {sid}: {a['iou_novel']:.3f} / {a.get('fscore', float('nan')):.3f}   "
              f"{b['iou_novel']:.3f} / {b.get('fscore', float('nan')):.3f}")
    if args.grid and grid_rows:
        import torchvision.utils as vutils

        tiles = torch.cat(grid_rows)
        vutils.save_image(tiles, args.grid, nrow=19, padding=2, pad_value=1.0)
        print(f"\ngrid: {args.grid} (per shoe: input | 6 ground-truth views | network | template)")


def print_extent_table(pred: list, gt: list) -> None:
    """Which proportions the prediction reads from the input: per axis, the bounding-box extent of predicted and
    ground-truth meshes (means), their correlation over the shoes and the mean absolute error. A side view shows
    length and height; width (z) only through the sliver of the top that the camera's elevation reveals."""
    ext = lambda ms: torch.stack([m.verts.float().amax(0) - m.verts.float().amin(0) for m in ms])  # noqa: E731
    p, g = ext(pred), ext(gt)
    print(f"\n| extent     | GT mean  GT sd | pred mean  pred sd | r (pred, GT) | mean abs err |")
    print(f"|{'-' * 12}|{'-' * 16}|{'-' * 20}|{'-' * 14}|{'-' * 14}|")
    for axis, name in enumerate(("length (x)", "height (y)", "width (z)")):
        a, b = p[:, axis], g[:, axis]
        r = float(torch.corrcoef(torch.stack([a, b]))[0, 1]) if a.std() > 0 and b.std() > 0 else float("nan")
        print(f"| {name:<10} | {b.mean():7.3f} {b.std():6.3f} | {a.mean():9.3f} {a.std():8.3f} | {r:12.2f} | "
              f"{(a - b).abs().mean():12.4f} |")


if __name__ == "__main__":
    main()
