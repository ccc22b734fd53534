"""Quick validation during training: silhouette IoU and PSNR of held-out shoes predicted from their input view.

The full evaluation (2D/3D/invariance/quality/seams/FID) is ``shoerecon.eval.report.evaluate``; this is the
cheap check logged every ``train.val_every`` steps and written to ``metrics.json`` as ``val/`` and ``template/``.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from shoerecon.eval.metrics import psnr, silhouette_iou
from shoerecon.train.system import render_prediction


def input_of(dataset, shoe_id: str) -> Tensor:
    """The (3, H, W) network input of one shoe, prepared exactly as in training."""
    return dataset.load_shoe(shoe_id, views=[0])["input"]


@torch.no_grad()
def evaluate_shoes(net, renderer, dataset, shoe_ids: Sequence[str], views: Sequence[int] | None, device,
                   template_only: bool = False, chunk: int = 12) -> list[dict[str, float]]:
    """Per shoe: mean silhouette IoU and PSNR over its views, predicted from its input view alone.

    ``template_only``: render the bare template (no offsets) with the predicted texture: the
    baseline a network has to beat on shape.
    """
    was_training = net.training
    net.eval()
    rows = []
    for sid in tqdm(shoe_ids, desc="validate", leave=False, disable=True if len(shoe_ids) < 8 else None):
        full = dataset.load_shoe(sid, views)
        image = full["input"][None].to(device)
        cams, masks, targets = (full[k].to(device) for k in ("target_cameras", "target_masks", "targets"))
        out = net(image)
        verts = net.template_verts[None].to(out.verts.dtype) if template_only else out.verts
        ious, psnrs = [], []
        for s in range(0, cams.shape[0], chunk):
            r = render_prediction(renderer, verts, net, out.texture, cams[None, s:s + chunk])[0].float()
            ious.append(silhouette_iou(r[:, 3:4], masks[s:s + chunk]))
            psnrs.append(psnr(r[:, :3], targets[s:s + chunk]))
        rows.append({"shoe_id": sid, "iou": torch.cat(ious).mean().item(), "psnr": torch.cat(psnrs).mean().item()})
    net.train(was_training)
    return rows


def summarize(rows: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Mean IoU and PSNR over the shoes' rows ({} for none)."""
    return {k: float(np.mean([r[k] for r in rows])) for k in ("iou", "psnr")} if rows else {}


__all__ = ["input_of", "evaluate_shoes", "summarize"]
