"""Command runners of `shoerecon <command>` that load checkpoints or experiment configs (the application
layer, above train):
each module has ``add_arguments(parser)`` and ``run(args) -> int``. Library code stays in the packages below."""
from __future__ import annotations

from pathlib import Path

import torch

from shoerecon.train.checkpoint import load_for_inference


def load_model_or_exit(command: str, path: str | Path, device: str | torch.device):
    """``load_for_inference`` for `shoerecon <command>`: a missing, unsafe, foreign or broken model file ends the
    command with one line naming it (no traceback). Returns (model in eval mode, ExperimentConfig)."""
    if not Path(path).is_file():
        raise SystemExit(f"shoerecon {command}: checkpoint {path} not found")
    try:
        return load_for_inference(path, torch.device(device))
    except (ValueError, FileNotFoundError) as err:
        raise SystemExit(f"shoerecon {command}: {err}") from None
