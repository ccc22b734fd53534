"""LPIPS perceptual loss (Zhang et al. 2018) with an AlexNet trunk, built without any download.

Weights come from two local files:

* the torchvision ImageNet AlexNet weights ``alexnet-owt-7be5be79.pth``, read from the torch hub cache
  (``$TORCH_HOME/hub/checkpoints/``, by default ``~/.cache/torch/hub/checkpoints/``) or a path you give;
* LPIPS's own linear calibration layers, which ship inside the ``lpips`` package (``lpips/weights/v0.1/alex.pth``).

``lpips.LPIPS`` is always built with ``pnet_rand=True`` (torchvision never fetches anything); the trunk
weights are then copied in from the local file.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor, nn

from shoerecon.losses.registry import LossContext, TermConfig, register_loss
from shoerecon.model.backbones import BACKBONES, backbone_path, load_backbone_state, missing_weights_error

ALEXNET_WEIGHTS_FILE = BACKBONES["alexnet"]["file"]


def default_alexnet_path() -> Path:
    """Where the AlexNet weights are looked for: ``<torch hub dir>/checkpoints/alexnet-owt-7be5be79.pth``."""
    return backbone_path("alexnet")


def _lpips_linear_path(version: str = "0.1") -> Path:
    import lpips

    return Path(lpips.__file__).parent / "weights" / f"v{version}" / "alex.pth"


def _missing(path: Path, what: str, hint: str) -> FileNotFoundError:
    return FileNotFoundError(f"LPIPS: {what} not found at {path}. {hint}")


def _load_alexnet_trunk(net: nn.Module, path: Path) -> None:
    """Copy torchvision AlexNet ``features.*`` weights into lpips' sliced trunk (``sliceK.<i>.*``)."""
    state = load_backbone_state("alexnet", path, config_key="losses.perceptual.weights")
    mapped = {}
    for name in net.state_dict():
        key = "features." + name.split(".", 1)[1]  # "slice2.3.weight" -> "features.3.weight"
        if key not in state:
            raise ValueError(f"LPIPS: {path} is not a torchvision AlexNet state dict (missing {key})")
        mapped[name] = state[key]
    net.load_state_dict(mapped)


def _load_linear_layers(model: nn.Module, path: Path) -> None:
    """LPIPS calibration layers ``lin*.model.1.weight``; strict about them (lpips itself loads with strict=False)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise RuntimeError(f"LPIPS: could not read linear-layer weights {path}: {err}") from err
    result = model.load_state_dict(state, strict=False)
    missing = [k for k in result.missing_keys if k.startswith("lin") and not k.startswith("lins.")]  # lins.* alias lin*
    if missing or result.unexpected_keys:
        raise RuntimeError(f"LPIPS: {path} is not an LPIPS AlexNet linear-layer file "
                           f"(missing {missing[:3]}, unexpected {result.unexpected_keys[:3]})")


def build_lpips(pretrained: Union[bool, str, os.PathLike] = True, linear_path: Optional[str] = None) -> nn.Module:
    """An ``lpips.LPIPS(net="alex")`` module, frozen and in eval mode, that never downloads.

    Args:
        pretrained: True: real weights, AlexNet from :func:`default_alexnet_path`; a path: real weights,
            AlexNet from that file; False: randomly initialised trunk and linear layers (tests only).
        linear_path: LPIPS linear-layer weights; default the file inside the ``lpips`` package.
    Returns:
        nn.Module called as ``module(x, y, normalize=True)`` on (B, 3, H, W) images in [0, 1] -> (B, 1, 1, 1).
    Raises:
        FileNotFoundError naming the missing file and where to put it.
    """
    import lpips

    use_real = pretrained is not False
    if use_real:
        trunk = default_alexnet_path() if pretrained is True else Path(pretrained)
        if not trunk.is_file():
            raise missing_weights_error("alexnet", trunk, "losses.perceptual.weights")
        linear = Path(linear_path) if linear_path else _lpips_linear_path()
        if not linear.is_file():
            raise _missing(linear, "linear-layer weights", "Reinstall the `lpips` package (the file ships with it) "
                           "or pass its path as linear_path.")
    with warnings.catch_warnings():  # lpips calls torchvision's deprecated `pretrained=` argument
        warnings.simplefilter("ignore", UserWarning)
        model = lpips.LPIPS(pretrained=False, net="alex", pnet_rand=True, verbose=False)
    if use_real:
        _load_linear_layers(model, linear)
        _load_alexnet_trunk(model.net, trunk)
    model.eval()
    model.requires_grad_(False)
    return model


def perceptual_loss(lpips_model: nn.Module, rgb: Tensor, target: Tensor) -> Tensor:
    """Mean LPIPS distance: ``mean_i LPIPS(rgb_i, target_i)`` with inputs mapped from [0, 1] to [-1, 1].

    Args:
        lpips_model: from :func:`build_lpips`. rgb, target: (..., 3, H, W) in [0, 1], H, W >= 32.
    Returns:
        () scalar.
    """
    x = rgb.reshape(-1, *rgb.shape[-3:])
    y = target.reshape(-1, *target.shape[-3:])
    return lpips_model(x, y, normalize=True).mean()


@dataclass
class PerceptualConfig(TermConfig):
    """LPIPS (AlexNet) of renders vs targets. ``weights``: the AlexNet file (None: the torch hub cache, see
    :func:`default_alexnet_path`); ``pretrained`` False: a random backbone (tests, smoke runs)."""

    weight: float = 0.01
    weights: Optional[str] = None
    pretrained: bool = True


def build_perceptual(cfg: PerceptualConfig) -> nn.Module:
    """The frozen LPIPS module of the perceptual term."""
    return build_lpips(cfg.weights or cfg.pretrained)


@register_loss("perceptual", PerceptualConfig, build=build_perceptual)
def perceptual_term(ctx: LossContext, cfg: PerceptualConfig) -> Tensor:
    """``perceptual_loss`` of the renders' RGB (B, V, 3, H, W) vs the targets."""
    return perceptual_loss(ctx.module("perceptual"), ctx.renders[:, :, :3], ctx.targets[0])
