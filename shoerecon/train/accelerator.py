"""The accelerate ``Accelerator`` of a training run (data-parallel on CPU-only launches too)."""
from __future__ import annotations

import os
import warnings
from datetime import timedelta

import torch
from accelerate import Accelerator, DistributedDataParallelKwargs, InitProcessGroupKwargs

from shoerecon.train.config import TrainConfig


def build_accelerator(cfg: TrainConfig) -> Accelerator:
    """An Accelerator that really is data-parallel on CPU-only launches.

    ``accelerate launch --multi_gpu --num_processes 2`` on a machine without CUDA sets WORLD_SIZE=2
    but ``Accelerator()`` then runs two independent single processes; ``cpu=True`` makes it
    initialise a gloo process group (MULTI_CPU). Mixed precision is GPU-only here.
    """
    env_cpu = os.environ.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes")
    use_cpu = cfg.device == "cpu" or env_cpu or not torch.cuda.is_available()
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but CUDA is not available on this machine")
    precision = cfg.mixed_precision
    if use_cpu and precision != "no":
        warnings.warn(f"train.mixed_precision={precision!r} ignored on CPU; training in float32")
        precision = "no"
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)  # v1 leaves e.g. the variance head unused
    # other ranks wait at a barrier while the main process generates the synthetic dataset
    group = InitProcessGroupKwargs(timeout=timedelta(hours=3))
    return Accelerator(cpu=use_cpu, mixed_precision=precision, kwargs_handlers=[ddp, group])
