"""One loader for the pretrained torchvision backbones (LPIPS's AlexNet, FID's Inception-v3, the ResNet encoders).

shoerecon never downloads weights. Each backbone's state dict is read from a local file: the path given in
the config, else torchvision's file name in the torch hub cache (``$TORCH_HOME/hub/checkpoints/``, by default
``~/.cache/torch/hub/checkpoints/``). A missing file is a FileNotFoundError naming the path, the URL to fetch
it from on a machine with internet and the config key that points elsewhere; random weights are only ever an
explicit option of the caller.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import torch

BASE_URL = "https://download.pytorch.org/models/"
# torchvision's ImageNet weight files; ``check``: a key every valid state dict of that network has
BACKBONES: dict[str, dict[str, str]] = {
    "alexnet": {"file": "alexnet-owt-7be5be79.pth", "check": "features.0.weight", "title": "AlexNet"},
    "inception_v3": {"file": "inception_v3_google-0cc3c7bd.pth", "check": "Mixed_7c.branch_pool.conv.weight",
                     "title": "Inception-v3"},
    "resnet18": {"file": "resnet18-f37072fd.pth", "check": "layer4.1.conv2.weight", "title": "ResNet-18"},
    "resnet34": {"file": "resnet34-b627a593.pth", "check": "layer4.2.conv2.weight", "title": "ResNet-34"},
}


def _spec(name: str) -> dict[str, str]:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone {name!r}; known: {', '.join(BACKBONES)}")
    return BACKBONES[name]


def backbone_url(name: str) -> str:
    return BASE_URL + _spec(name)["file"]


def backbone_path(name: str, path: Optional[str | os.PathLike] = None) -> Path:
    """``path`` if given, else ``<torch hub dir>/checkpoints/<torchvision file name>``.

    >>> backbone_path("resnet18", "/w/r18.pth").as_posix()
    '/w/r18.pth'
    """
    return Path(path) if path else Path(torch.hub.get_dir()) / "checkpoints" / _spec(name)["file"]


def missing_weights_error(name: str, path: Path, config_key: str = "") -> FileNotFoundError:
    """The error for a missing weight file: where it was looked for, where to get it, how to point elsewhere."""
    where = f" (or set {config_key} to its path)" if config_key else ""
    return FileNotFoundError(
        f"{_spec(name)['title']} weights not found at {path}. shoerecon never downloads weights: fetch "
        f"{backbone_url(name)} on a machine with internet and copy it to {path}{where}.")


def load_backbone_state(name: str, path: Optional[str | os.PathLike] = None, config_key: str = "") -> dict:
    """The torchvision state dict of backbone ``name`` from a local file (see the module docstring).

    Raises:
        FileNotFoundError (missing file, naming where to put it), RuntimeError (unreadable file),
        ValueError (a state dict of another network).
    """
    file = backbone_path(name, path)
    if not file.is_file():
        raise missing_weights_error(name, file, config_key)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - re-raised with the file named
        raise RuntimeError(f"could not read {_spec(name)['title']} weights from {file}: {err}") from err
    if not isinstance(state, dict) or _spec(name)["check"] not in state:
        raise ValueError(f"{file} is not a torchvision {_spec(name)['title']} state dict "
                         f"(no {_spec(name)['check']})")
    return state


__all__ = ["BACKBONES", "backbone_path", "backbone_url", "load_backbone_state", "missing_weights_error"]
