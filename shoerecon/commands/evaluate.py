"""`shoerecon eval --checkpoint CKPT --data DIR [--split test]`: metrics.json, metrics.md and grid.png.

Output goes to ``--out``, by default ``<run folder>/eval_<split>/`` (the run folder is the
checkpoint's folder, or its parent when the checkpoint sits in ``checkpoints/``).
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from shoerecon.data.dataset import TurntableDataset
from shoerecon.eval.metrics import MetricsConfig
from shoerecon.eval.report import EvalConfig, evaluate, markdown_report
from shoerecon.commands import load_model_or_exit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, help="training checkpoint .pt or model file .safetensors (shoerecon export-model); both self-contained and loaded without running code")
    parser.add_argument("--data", required=True, help="dataset folder (DESIGN layout: rig.json, <shoe>/views/...)")
    parser.add_argument("--split", default="test", help="train | val | test | all (default test)")
    parser.add_argument("--out", default=None, help="output folder (default <run>/eval_<split>)")
    parser.add_argument("--max-shoes", type=int, default=None, help="evaluate only the first N shoes")
    parser.add_argument("--views", type=int, nargs="+", default=None, help="view indices (default all)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    parser.add_argument("--lpips", default="auto", choices=("auto", "pretrained", "random", "off"),
                        help="auto: pretrained AlexNet if its weights are on disk, else skipped")
    parser.add_argument("--lpips-weights", default=None, help="path of alexnet-owt-7be5be79.pth")
    parser.add_argument("--fid", default="auto", choices=("auto", "pretrained", "random", "off"),
                        help="novel-view FID: auto = pretrained Inception-v3 if its weights are on disk, else skipped; "
                             "random = random backbone (not comparable to published FID)")
    parser.add_argument("--fid-weights", default=None, help="path of inception_v3_google-0cc3c7bd.pth")
    parser.add_argument("--fid-resize", type=int, default=299,
                        help="Inception input side (299 standard; >= 75, faster on CPU, not comparable)")
    parser.add_argument("--seams", action=argparse.BooleanOptionalAction, default=True,
                        help="seam error: colour jump across UV seams in the novel-view renders (default on)")
    parser.add_argument("--num-points", type=int, default=None, help="surface samples for the 3D metrics")
    parser.add_argument("--no-3d", action="store_true", help="skip the 3D metrics")
    parser.add_argument("--no-invariance", action="store_true", help="skip the invariance test")
    parser.add_argument("--no-quality", action="store_true", help="skip the mesh-quality metrics")
    parser.add_argument("--grid-shoes", type=int, default=4)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default torch's choice; 1 is faster on a busy shared CPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--refine", type=int, default=0, metavar="N",
                        help="also evaluate with N refinement steps per shoe (shoerecon.fit, the checkpoint's "
                             "refine: section): before/ holds the plain report, the output folder the refined "
                             "one, before_after.md both side by side")


def default_out_dir(checkpoint: str | Path, split: str) -> Path:
    ckpt = Path(checkpoint).resolve()
    run_dir = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt.parent
    return run_dir / f"eval_{split}"


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    if Path(args.checkpoint).is_file() and not Path(args.data).is_dir():
        raise SystemExit(f"shoerecon eval: data folder {args.data} not found")
    model, cfg = load_model_or_exit("eval", args.checkpoint, args.device)
    dataset = TurntableDataset(replace(cfg.data, root=str(args.data)), split=args.split)
    metrics = MetricsConfig() if args.num_points is None else MetricsConfig(num_points=args.num_points)
    eval_cfg = EvalConfig(
        max_shoes=args.max_shoes, views=args.views, batch_size=args.batch_size, lpips=args.lpips,
        lpips_weights=args.lpips_weights, three_d=not args.no_3d, invariance=not args.no_invariance,
        quality=not args.no_quality, seams=args.seams, fid=args.fid, fid_weights=args.fid_weights,
        fid_resize=args.fid_resize, grid_shoes=args.grid_shoes, metrics=metrics,
    )
    out = Path(args.out) if args.out else default_out_dir(args.checkpoint, args.split)
    if args.refine < 0:
        raise SystemExit(f"shoerecon eval: --refine must be >= 0, got {args.refine}")
    if args.refine == 0:
        results = evaluate(model, cfg, dataset, eval_cfg, out_dir=out, progress=not args.quiet)
        print(markdown_report(results))
        print(f"wrote {out / 'metrics.json'}, {out / 'metrics.md'}, {out / 'grid.png'}")
        return 0
    before = evaluate(model, cfg, dataset, eval_cfg, out_dir=out / "before", progress=not args.quiet)
    after = evaluate(model, cfg, dataset, replace(eval_cfg, refine_steps=args.refine), out_dir=out,
                     progress=not args.quiet)
    table = before_after_table(before["summary"], after["summary"], args.refine)
    (out / "before_after.md").write_text(table + "\n")
    print(markdown_report(after))
    print(table)
    print(f"wrote {out / 'metrics.json'} (refined), {out / 'before' / 'metrics.json'}, {out / 'before_after.md'}")
    return 0


def before_after_table(before: dict, after: dict, steps: int) -> str:
    """Markdown: every summary metric without and with ``steps`` refinement steps, and the change.

    >>> print(before_after_table({"input/psnr": 20.0}, {"input/psnr": 27.5}, 100))
    | metric | no refinement | --refine 100 | change |
    | --- | --- | --- | --- |
    | input/psnr | 20.0000 | 27.5000 | +7.5000 |
    """
    lines = [f"| metric | no refinement | --refine {steps} | change |", "| --- | --- | --- | --- |"]
    for key in before:
        if key.startswith("count/") or key not in after:
            continue
        b, a = before[key], after[key]
        lines.append(f"| {key} | {b:.4f} | {a:.4f} | {a - b:+.4f} |")
    return "\n".join(lines)
