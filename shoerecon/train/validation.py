"""Quick validation during training: silhouette IoU and PSNR of held-out shoes predicted from their input view.

One code path with the full evaluation: ``validate`` is ``shoerecon.eval.report.evaluate`` with the
``EvalConfig.quick`` preset (IoU and PSNR over every asked view, nothing else) and the training's validation
renderer (``train.val_blend``). It is logged every ``train.val_every`` steps and written to ``metrics.json`` as
``val/`` and (the bare template) ``template/``.
"""
from __future__ import annotations

from typing import Optional, Sequence

from torch import Tensor

from shoerecon.eval.report import EvalConfig, evaluate

# the quick preset's summary keys -> the names training logs them under (val/iou, val/psnr)
LOGGED_NAMES = {"all/silhouette_iou": "iou", "all/psnr": "psnr"}


def input_of(dataset, shoe_id: str) -> Tensor:
    """The (3, H, W) network input of one shoe, prepared exactly as in training."""
    return dataset.load_shoe(shoe_id, views=[0])["input"]


def validate(net, renderer, dataset, max_shoes: Optional[int], views: Optional[Sequence[int]],
             template_only: bool = False) -> dict[str, float]:
    """Mean over the first ``max_shoes`` shoes of ``dataset`` (None: all) of their mean silhouette IoU and PSNR
    over ``views`` (None: every view), each predicted from its input view alone: {"iou", "psnr"} ({} for no
    shoes). ``template_only``: the bare template (no offsets) wearing the predicted texture, the baseline a
    network has to beat on shape. ``renderer``: a ``Renderer`` (the training's validation renderer)."""
    eval_cfg = EvalConfig.quick(max_shoes, list(views) if views is not None else None, template_only)
    summary = evaluate(net, None, dataset, eval_cfg, progress=False, renderer=renderer)["summary"]
    return {name: summary[key] for key, name in LOGGED_NAMES.items() if key in summary}


__all__ = ["input_of", "validate", "LOGGED_NAMES"]
