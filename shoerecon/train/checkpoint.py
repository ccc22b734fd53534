"""Self-contained checkpoints, written atomically.

A checkpoint is one ``torch.save`` dict: model/optimizer/scheduler/scaler state, step and epoch,
the RNG states of every process (python, numpy, torch, cuda), the resolved config (a plain dict)
and the current template mesh (verts, faces, uvs, uv_faces; it changes when v2 remeshes), so
``load_for_inference`` needs nothing but the file. Writes go to a temporary file in the same folder
and ``os.replace`` it over the target: a crash mid-write leaves the previous file intact.
Checkpoints whose model holds NaN/inf values are refused.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor

from shoerecon.data.sampler import capture_rng_state, restore_rng_state  # noqa: F401 (re-exported)
from shoerecon.geometry.mesh import Mesh
from shoerecon.model import ShoeReconNet
from shoerecon.train.config import config_from_dict

CHECKPOINT_VERSION = 1


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
    """Atomically write ``state`` (see ``build_checkpoint``); refuse non-finite model values."""
    bad = nonfinite_tensors(state.get("model", {}))
    if bad:
        raise NonFiniteCheckpointError(
            f"not writing {path}: model state has NaN/inf in {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}"
        )
    atomic_torch_save(dict(state), path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict:
    """Read a checkpoint written by ``save_checkpoint``; clear errors for missing or foreign files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:  # truncated or not a torch file
        raise ValueError(f"{path}: not a readable checkpoint ({type(err).__name__}: {err})") from err
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"{path}: not a shoerecon checkpoint (needs 'model' and 'config' entries)")
    return state


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
    """-> (ShoeReconNet in eval mode on ``device``, ExperimentConfig), from the checkpoint alone."""
    state = load_checkpoint(path)
    cfg = config_from_dict(state["config"], source=f"{path} (stored config)")
    model = ShoeReconNet(cfg.model, template_from_state(state["template"]), cfg.variance)
    model.load_state_dict(state["model"])
    return model.to(device).eval(), cfg
