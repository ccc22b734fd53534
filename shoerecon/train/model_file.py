"""The inference release format (written by `shoerecon export-model`, ``commands/export_model.py``).

A model file is a safetensors file: the network weights (``model/<name>``) and the template mesh
(``template/{verts,faces,uvs,uv_faces}``) as tensors, and in its string metadata the resolved config
(JSON), the training step and a format tag. Nothing in it is code: safetensors holds only tensors and
strings. It carries no optimizer, scheduler, RNG or critic state, so it is several times smaller
than the training checkpoint it comes from (Adam alone keeps two more copies of every weight).
``load_for_inference`` (predict, eval, serve) reads either kind of file.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Mapping

import torch

FORMAT = "shoerecon-model"
FORMAT_VERSION = "1"
TEMPLATE_KEYS = ("verts", "faces", "uvs", "uv_faces")
TEMPLATE_BUFFERS = ("template_verts", "faces", "uvs", "uv_faces")  # the same tensors inside the network


def is_model_file(path: str | Path) -> bool:
    """True for a safetensors file (by its header: 8-byte length, then a JSON object), whatever its suffix."""
    try:
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    return len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 30)


def model_file_tensors(state: Mapping[str, Any], half: bool = False) -> dict[str, torch.Tensor]:
    """Checkpoint dict -> the flat tensor dict of a model file (``half``: float weights as float16)."""
    tensors = {}
    for name, value in state["model"].items():
        value = value.detach().cpu()
        if half and value.is_floating_point():
            value = value.half()
        tensors[f"model/{name}"] = value.contiguous().clone()
    for key, buffer in zip(TEMPLATE_KEYS, TEMPLATE_BUFFERS):
        value = state["template"].get(key)
        same = buffer in state["model"] and torch.equal(state["model"][buffer].cpu(), value.cpu()) \
            if value is not None else True
        if not same:  # the network's buffers normally are the template: stored once
            tensors[f"template/{key}"] = value.detach().cpu().contiguous().clone()
    return tensors


def save_model_file(state: Mapping[str, Any], path: str | Path, half: bool = False) -> Path:
    """Write the inference part of a checkpoint dict (model, template, config, step) as safetensors, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {"format": FORMAT, "format_version": FORMAT_VERSION, "step": str(int(state.get("step", 0))),
                "config": json.dumps(state["config"]), "dtype": "float16" if half else "float32"}
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # a file to share: the usual permissions, not mkstemp's 0600
    try:
        save_file(model_file_tensors(state, half), tmp, metadata=metadata)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def load_model_file(path: str | Path) -> dict:
    """A model file -> the checkpoint-shaped dict ``load_for_inference`` needs: model, template, config, step."""
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"model file not found: {path}")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ValueError(f"{path}: not a readable safetensors file ({err})") from err
    if meta.get("format") != FORMAT or "config" not in meta:
        raise ValueError(f"{path}: a safetensors file but not a shoerecon model (metadata format={meta.get('format')!r}); "
                         f"make one with `shoerecon export-model`")
    model = {k[len("model/"):]: v.float() if v.dtype == torch.float16 else v
             for k, v in tensors.items() if k.startswith("model/")}
    template = {key: tensors.get(f"template/{key}", model.get(buffer))
                for key, buffer in zip(TEMPLATE_KEYS, TEMPLATE_BUFFERS)}
    return {"model": model, "template": template, "config": json.loads(meta["config"]),
            "step": int(meta.get("step", 0))}


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder -> its ``checkpoints/last.pt``; a checkpoint file -> itself; else a clear error."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / "checkpoints" / "last.pt", path / "last.pt"):
            if candidate.is_file():
                return candidate
        raise FileNotFoundError(f"{path}: a folder without checkpoints/last.pt (expected a run folder or a .pt file)")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    return path
