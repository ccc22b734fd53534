"""`shoerecon predict IMAGE... --checkpoint CKPT --out DIR [--format obj,glb]`.

Loads the checkpoint (network + its config) and runs ``shoerecon.export.predict.predict_files``: per image
``DIR/<name>/<name>.obj|.mtl|_texture.png``, ``<name>.glb``, ``<name>_turntable.png`` and ``<name>_input.png``.
"""
from __future__ import annotations

import argparse
import sys

import torch

from shoerecon.export.predict import FORMATS, PredictConfig, predict_files
from shoerecon.export.turntable import TurntableConfig
from shoerecon.commands import load_model_or_exit


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="photos of a right shoe's lateral side, toe right")
    parser.add_argument("--checkpoint", required=True, help="training checkpoint .pt or model file .safetensors (shoerecon export-model); both self-contained and loaded without running code")
    parser.add_argument("--out", required=True, help="output folder (one subfolder per image)")
    parser.add_argument("--format", default="obj,glb", help="comma-separated: obj, glb (default obj,glb)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--device", default="cpu", help="cpu | cuda | cuda:N (default cpu)")
    parser.add_argument("--no-turntable", action="store_true", help="skip the turntable strip PNG")
    parser.add_argument("--strip-size", type=int, default=128, help="pixel size of each turntable view")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch CPU threads (default torch's choice; 1 is faster on a busy shared CPU)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--refine", type=int, default=None, metavar="N",
                        help="fit each prediction to its photo for N steps (shape, camera, texture from the photo); "
                             "default: the checkpoint's refine.steps (0 = the plain forward pass)")
    parser.add_argument("--orientation", default="as-is", choices=("auto", "as-is", "mirror"),
                        help="the input convention is a right shoe's lateral side, toe right. mirror: the photo "
                             "shows the toe left; auto: fit both briefly and keep the better silhouette (default as-is)")
    parser.add_argument("--keep-handedness", action="store_true",
                        help="when the photo was mirrored, mirror the exported mesh back (a left shoe, z -> -z) "
                             "instead of exporting a right shoe")


def run(args: argparse.Namespace) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
    formats = tuple(f.strip().lower() for f in args.format.split(",") if f.strip())
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise SystemExit(f"shoerecon predict: --format {args.format!r}: valid formats are {', '.join(FORMATS)}")
    model, cfg = load_model_or_exit("predict", args.checkpoint, args.device)
    steps = cfg.refine.steps if args.refine is None else args.refine
    if steps < 0:
        raise SystemExit(f"shoerecon predict: --refine must be >= 0, got {steps}")
    pcfg = PredictConfig(formats=formats, batch_size=args.batch_size, turntable=not args.no_turntable,
                         turntable_cfg=TurntableConfig(image_size=args.strip_size), refine_steps=steps,
                         orientation=args.orientation, keep_handedness=args.keep_handedness, refine_cfg=cfg.refine)
    records, errors = predict_files(model, cfg.data, args.images, args.out, pcfg, progress=not args.quiet)
    for rec in records:
        print(f"{rec['image']} -> {', '.join(rec['files'])}")
        if "orientation" in rec:
            scores = ", ".join(f"{k} IoU {v:.3f}" for k, v in rec["scores"].items())
            print(f"  orientation: {rec['orientation']}" + (f" (auto: {scores})" if scores else "")
                  + f"; exported as a {rec['handedness']} shoe")
        if "fit" in rec:
            f = rec["fit"]
            print(f"  refine: {f['steps']} steps in {f['seconds']:.2f} s, input-view silhouette IoU {f['silhouette_iou']:.3f}")
    for err in errors:
        print(f"skipped: {err}", file=sys.stderr)
    return 1 if errors else 0
