"""`shoerecon export-model RUN_OR_CHECKPOINT --out model.safetensors`: a training checkpoint -> the inference
release (safetensors; the format is ``train/model_file.py``)."""
from __future__ import annotations

import argparse

from shoerecon.train.checkpoint import load_checkpoint, load_for_inference
from shoerecon.train.model_file import resolve_checkpoint, save_model_file


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="run folder (uses checkpoints/last.pt) or a .pt file")
    parser.add_argument("--out", required=True, help="output model file, e.g. model.safetensors")
    parser.add_argument("--half", action="store_true", help="store float weights as float16 (half the size again)")


def run(args: argparse.Namespace) -> int:
    try:
        src = resolve_checkpoint(args.source)
        state = load_checkpoint(src)
        out = save_model_file(state, args.out, half=args.half)
        load_for_inference(out)  # the release must load on its own
    except (FileNotFoundError, ValueError) as err:
        raise SystemExit(f"shoerecon export-model: {err}") from None
    a, b = src.stat().st_size, out.stat().st_size
    print(f"{src} ({a / 1e6:.2f} MB) -> {out} ({b / 1e6:.2f} MB, {a / max(b, 1):.1f}x smaller), step {state['step']}")
    return 0
