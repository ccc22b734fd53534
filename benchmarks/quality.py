"""Quality bar (issue 4, section 5): mean silhouette IoU on held-out shoes over all views, predicted
from the input view alone, beside the bare template's IoU (no network).

    python benchmarks/quality.py --checkpoint runs/<name>/checkpoints/last.pt [--data ROOT] [--split val]
            [--views 0 9 18] [--shoes N]

Prints one table row per model (network, template) with mean/min IoU and PSNR over the shoes.
The dataset defaults to the checkpoint's own ``data.root``. Silhouettes are rendered as in validation
(``train.val_blend``, default hard: exact pixel coverage, like the dataset's masks).
"""
from __future__ import annotations

import argparse
import dataclasses
import statistics

import torch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--data", default=None, help="dataset root (default: the checkpoint's data.root)")
    p.add_argument("--split", default="val")
    p.add_argument("--views", type=int, nargs="*", default=None, help="default: every view")
    p.add_argument("--shoes", type=int, default=None, help="first N shoes of the split (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from shoerecon.data import TurntableDataset
    from shoerecon.render import Renderer
    from shoerecon.train.checkpoint import load_for_inference
    from shoerecon.train.system import eval_render_config
    from shoerecon.train.validation import evaluate_shoes

    net, cfg = load_for_inference(args.checkpoint, args.device)
    data_cfg = dataclasses.replace(cfg.data, root=args.data) if args.data else cfg.data
    dataset = TurntableDataset(data_cfg, split=args.split, seed=cfg.train.seed)
    ids = list(dataset.shoe_ids)[: args.shoes]
    renderer = Renderer(eval_render_config(cfg)).to(args.device)
    print(f"{args.checkpoint}: {len(ids)} {args.split} shoes of {data_cfg.root}, "
          f"views {'all' if args.views is None else args.views}, {cfg.data.image_size}px")
    print(f"{'model':<10} | {'IoU mean':>8} {'IoU min':>8} | {'PSNR dB':>8}")
    for name, template_only in (("network", False), ("template", True)):
        rows = evaluate_shoes(net, renderer, dataset, ids, args.views, args.device, template_only=template_only)
        ious = [r["iou"] for r in rows]
        print(f"{name:<10} | {statistics.mean(ious):8.4f} {min(ious):8.4f} | "
              f"{statistics.mean(r['psnr'] for r in rows):8.2f}")


if __name__ == "__main__":
    main()
