"""Training losses: one registry of terms (see :mod:`shoerecon.losses.registry`), each a function plus a config
dataclass holding its weight and options together.

``LossConfig`` has one field per registered term (``losses.<name>: {weight: ..., <options>}``; weight 0: the
term is not computed) and ``novel_views`` (random-azimuth renders per shoe for the novel-view terms).
``compute_losses(cfg, ctx)`` sums the enabled terms. A new loss is one file in this package (registered with
``@register_loss``; it is imported here automatically) plus its test.
"""
from __future__ import annotations

import dataclasses
import importlib
import numbers
import pkgutil

# The built-in terms, imported in summation order (v1 terms, then v2's flow terms, then the novel-view terms).
from shoerecon.losses import silhouette, image, perceptual, flow, regularizers, align, flow_smooth  # noqa: F401,I001
from shoerecon.losses import adversarial, fid  # noqa: F401
from shoerecon.losses.perceptual import build_lpips, default_alexnet_path, perceptual_loss
from shoerecon.losses.registry import (
    LOSSES,
    LossContext,
    LossTerm,
    TermConfig,
    build_loss_modules,
    compute_losses,
    enabled_terms,
    register_loss,
)
from shoerecon.losses.flow import flow_mask_loss
from shoerecon.losses.image import image_l2_loss
from shoerecon.losses.regularizers import edge_length_loss, flatten_loss, laplacian_loss, normal_consistency_loss
from shoerecon.losses.silhouette import silhouette_iou_loss, soft_iou

# Any other module of this package may register terms (a new loss = one file): import it after the built-ins.
for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    importlib.import_module(f"{__name__}.{_info.name}")

# Terms computed on renders from random azimuths (they read LossContext.novel).
NOVEL_VIEW_LOSSES = ("adversarial", "fid")
LOSS_NAMES = tuple(name for name in LOSSES if name not in NOVEL_VIEW_LOSSES)


def _loss_config_post_init(self) -> None:
    """A plain number for a term is shorthand for ``{weight: number}`` (Python callers); novel_views >= 1."""
    for name, term in LOSSES.items():
        value = getattr(self, name)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            setattr(self, name, term.config(weight=float(value)))
        elif not isinstance(value, term.config):
            raise ValueError(f"LossConfig.{name} must be a {term.config.__name__} or a weight, got {value!r}")
    if self.novel_views < 1:
        raise ValueError(f"LossConfig.novel_views must be >= 1, got {self.novel_views}")
    if self.novel_every < 1:
        raise ValueError(f"LossConfig.novel_every must be >= 1, got {self.novel_every}")


def _make_loss_config() -> type:
    fields = [(name, term.config, dataclasses.field(default_factory=term.config)) for name, term in LOSSES.items()]
    fields.append(("novel_views", int, dataclasses.field(default=2)))
    fields.append(("novel_every", int, dataclasses.field(default=1)))
    cls = dataclasses.make_dataclass("LossConfig", fields, namespace={"__post_init__": _loss_config_post_init})
    cls.__module__ = __name__
    cls.__doc__ = ("One section per registered loss term (its weight and options; weight 0: not computed), and "
                   "novel_views: random-azimuth renders per shoe for the novel-view terms (adversarial, fid); "
                   "novel_every: compute those terms (renders, critic, FID) on every k-th step only, with k times "
                   "their weights (a speed trade, 1 = every step). "
                   "Defaults: the v1 report's weights.")
    return cls


LossConfig = _make_loss_config()


__all__ = [
    "LossConfig", "LossContext", "LossTerm", "TermConfig", "LOSSES", "LOSS_NAMES", "NOVEL_VIEW_LOSSES",
    "register_loss", "compute_losses", "build_loss_modules", "enabled_terms", "build_lpips", "default_alexnet_path",
    "perceptual_loss", "image_l2_loss", "silhouette_iou_loss", "soft_iou", "flow_mask_loss", "laplacian_loss",
    "flatten_loss", "normal_consistency_loss", "edge_length_loss",
]
