"""Self-contained checkpoints, written atomically.

A checkpoint is one ``torch.save`` dict: model/optimizer/scheduler/scaler state, step and epoch,
the RNG states of every process (python, numpy, torch, cuda), the resolved config (a plain dict)
and the current template mesh (verts, faces, uvs, uv_faces; it changes when v2 remeshes), so
``load_for_inference`` needs nothing but the file. Writes go to a temporary file in the same folder
and ``os.replace`` it over the target: a crash mid-write leaves the previous file intact.
Checkpoints whose model holds NaN/inf values are refused.

Loading never runs code from the file: ``torch.load(weights_only=True)`` (tensors, dicts, lists,
tuples, numbers, strings) plus an explicit allow-list of the few numpy globals that checkpoints of
version 1 hold (the numpy RNG state as an ndarray). Version 2 stores that state as tensors, so its
files need no allow-list at all. A file that needs anything else is refused with a message naming
the global and how to convert a trusted file of one's own (``python -m shoerecon.train.checkpoint
--convert-trusted OLD NEW``, the only place that unpickles, and only when asked to).
"""
from __future__ import annotations

import argparse
import errno
import os
import pickle
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import Tensor

from shoerecon.data.sampler import (  # noqa: F401 (re-exported: the RNG state lives with the data order)
    _plain_rng_state,
    capture_rng_state,
    restore_rng_state,
)
from shoerecon.geometry.mesh import Mesh
from shoerecon.model import ShoeReconNet
from shoerecon.train.config import config_from_dict
from shoerecon.train.model_file import is_model_file, load_model_file

CHECKPOINT_VERSION = 2  # 2: numpy RNG state as tensors (1: as a pickled ndarray)


class CheckpointError(ValueError):
    """A checkpoint that cannot be read or written; the message names the file and the problem."""


class UnsafeCheckpointError(CheckpointError):
    """A file that could only be loaded by running code from it (unpickling a non-allow-listed global)."""


def _legacy_safe_globals() -> list:
    """What version-1 checkpoints need beyond weights_only's defaults: numpy arrays (the numpy RNG
    state) rebuilt by numpy's own reconstructor. Nothing here can run code of the file's choosing."""
    try:
        from numpy._core import multiarray
    except ImportError:  # numpy < 2
        from numpy.core import multiarray
    allowed = [multiarray._reconstruct, (multiarray._reconstruct, "numpy.core.multiarray._reconstruct"),
               np.ndarray, np.dtype, type(np.dtype(np.uint32))]
    return allowed


class NonFiniteCheckpointError(ValueError):
    """Raised instead of writing a checkpoint whose model state has NaN/inf values."""


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of floating tensors in a (nested) state dict that hold NaN or inf."""
    bad = []
    for name, value in state.items():
        if isinstance(value, Tensor) and value.is_floating_point() and not torch.isfinite(value).all():
            bad.append(str(name))
        elif isinstance(value, Mapping):
            bad += [f"{name}.{sub}" for sub in nonfinite_tensors(value)]
    return bad


def atomic_torch_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` to a temporary file next to ``path``, fsync, then ``os.replace`` onto ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def save_checkpoint(path: str | Path, state: Mapping[str, Any]) -> None:
    """Atomically write ``state`` (see ``build_checkpoint``); refuse non-finite model values. A full disk
    is a ``CheckpointError`` in one line: the file, that the disk is full, which checkpoint is intact."""
    bad = nonfinite_tensors(state.get("model", {}))
    if bad:
        raise NonFiniteCheckpointError(
            f"not writing {path}: model state has NaN/inf in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
        )
    try:
        atomic_torch_save(dict(state), path)
    except OSError as err:
        if err.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise CheckpointError(f"could not write {path} (step {state.get('step')}): the disk is full; "
                              f"{intact_checkpoint_note(Path(path))}") from None


def intact_checkpoint_note(path: Path) -> str:
    """Which earlier checkpoint survived a failed write of ``path`` (the write never replaces it half-way)."""
    for candidate in [path, *sorted(path.parent.glob("*.pt"), key=lambda p: p.stat().st_mtime, reverse=True)]:
        if candidate.is_file():
            try:
                step = load_checkpoint(candidate).get("step")
            except (CheckpointError, OSError):
                continue
            return f"{candidate} (step {step}) is intact"
    return f"no earlier checkpoint in {path.parent}"


def safe_torch_load(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with the legacy allow-list; ``UnsafeCheckpointError`` (naming
    the file and the refused global) for anything that would have to run code to load."""
    path = Path(path)
    try:
        with torch.serialization.safe_globals(_legacy_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "Unsupported global" not in text:
            raise
        marker = "Unsupported global: GLOBAL "
        what = text.split(marker, 1)[1].split()[0] if marker in text else "a Python object"
        raise UnsafeCheckpointError(
            f"{path}: refused to load: it asks to run {what}, which a shoerecon checkpoint never needs "
            f"(files are loaded without running code). If this is your own trusted checkpoint from an older "
            f"version, convert it once: python -m shoerecon.train.checkpoint --convert-trusted {path} NEW.pt"
        ) from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint`` without running code from it; clear errors for
    missing, foreign or unsafe files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = safe_torch_load(path, map_location)
    except UnsafeCheckpointError:
        raise
    except Exception as err:  # truncated or not a torch file
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise CheckpointError(f"{path}: not a shoerecon checkpoint (needs 'model' and 'config' entries)")
    return state


def convert_trusted_checkpoint(src: str | Path, dst: str | Path) -> None:
    """Rewrite an old checkpoint in the current format. UNPICKLES ``src`` (runs whatever code it holds):
    call it only on files you made yourself; the output then loads safely."""
    state = torch.load(src, map_location="cpu", weights_only=False)
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{src}: not a shoerecon checkpoint (needs 'model' and 'config' entries)")
    state = dict(state)
    state["rng"] = [_plain_rng_state(r) for r in state.get("rng") or []]
    state["version"] = CHECKPOINT_VERSION
    save_checkpoint(dst, state)


# ------------------------------------------------------------------------------------------ template
def template_state(model: torch.nn.Module) -> dict[str, Tensor]:
    """The model's current template mesh as plain CPU tensors (verts, faces, uvs, uv_faces)."""
    return {k: getattr(model, src).detach().cpu().clone() for k, src in
            (("verts", "template_verts"), ("faces", "faces"), ("uvs", "uvs"), ("uv_faces", "uv_faces"))}


def template_from_state(state: Mapping[str, Tensor]) -> Mesh:
    return Mesh(state["verts"], state["faces"], state.get("uvs"), state.get("uv_faces"))


def build_checkpoint(
    model: torch.nn.Module,
    config: Mapping[str, Any],
    step: int,
    epoch: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any = None,
    scaler: Any = None,
    rng_states: list[dict] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Everything resume and inference need. ``model`` is the unwrapped network; ``config`` the
    resolved config as a plain dict; ``rng_states`` one ``capture_rng_state()`` per process."""
    return {
        "version": CHECKPOINT_VERSION,
        "step": int(step),
        "epoch": int(epoch),
        "model": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        "template": template_state(model),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "rng": rng_states if rng_states is not None else [capture_rng_state()],
        "config": dict(config),
        "extra": dict(extra or {}),
    }


def restore_model_template(model: torch.nn.Module, state: Mapping[str, Any]) -> None:
    """Give ``model`` the checkpoint's template (its vertex count may differ after v2 remeshing)."""
    template = template_from_state(state["template"])
    if template.num_verts != model.template_verts.shape[0] or template.num_faces != model.faces.shape[0] \
            or not torch.equal(template.faces, model.faces.cpu()):
        model.set_template(template.to(model.template_verts.device))


def load_for_inference(path: str | Path, device: str | torch.device = "cpu"):
    """-> (ShoeReconNet in eval mode on ``device``, ExperimentConfig), from the file alone: a training
    checkpoint (.pt, loaded safely) or a released model (.safetensors, ``shoerecon export-model``)."""
    if is_model_file(path):
        state = load_model_file(path)
    else:
        state = load_checkpoint(path)
    cfg = config_from_dict(state["config"], source=f"{path} (stored config)")
    model = ShoeReconNet(cfg.model, template_from_state(state["template"]), cfg.variance)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="convert a trusted old checkpoint to the current (safely loadable) format")
    p.add_argument("--convert-trusted", nargs=2, metavar=("OLD", "NEW"), required=True,
                   help="UNPICKLES OLD (it can run code): only for checkpoints you made yourself")
    args = p.parse_args(argv)
    src, dst = args.convert_trusted
    convert_trusted_checkpoint(src, dst)
    load_checkpoint(dst)  # the result must load safely
    print(f"wrote {dst} (loads without running code)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
