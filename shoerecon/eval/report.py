"""Evaluate a model on a dataset split: 2D metrics (input view and novel views apart), 3D metrics
against ``mesh.glb`` where it exists, invariance to input framing, mesh quality, seam error
(colour jumps across UV seams, ``eval.seams``) and one FID over all novel views; and write
``metrics.json``, ``metrics.md`` and ``grid.png`` (prediction vs ground truth at several azimuths).

``evaluate(model, cfg, dataset)`` is what ``shoerecon eval`` and ``experiments/run.py`` call.
Renders for the 2D metrics use a hard renderer (nearest face, exact coverage, as a viewer shows
the exported mesh) at the dataset's image size.
"""
from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from shoerecon.data.layout import DataError
from shoerecon.eval.invariance import InvarianceConfig, invariance_chamfer
from shoerecon.eval.seams import render_with_faces, seam_error
from shoerecon.eval.perceptual import (
    FID_MODES, LPIPS_MODES, FIDAccumulator, build_fid_features, build_lpips_metric, on_white,
)
from shoerecon.eval.metrics import (
    MetricsConfig, lpips_distance, mesh_metrics_3d, mesh_quality, psnr, silhouette_iou, ssim,
)
from shoerecon.export.predict import model_device, predict_meshes
from shoerecon.export.turntable import image_grid, preview_renderer, render_mesh, to_pil
from shoerecon.geometry.io.glb import load_glb
from shoerecon.geometry.mesh import Mesh
from shoerecon.render import Cameras, Renderer

IMAGE_METRICS = ("silhouette_iou", "psnr", "ssim", "lpips")
VIEW_GROUPS = ("input", "novel", "all")


@dataclass
class EvalConfig:
    """What to evaluate and how much of it.

    lpips: auto (pretrained AlexNet if its weights are on disk, else skipped with a note) |
        pretrained (error if missing) | random (random backbone: tests only) | off.
    fid: the same four modes for ``novel/fid`` (torchvision Inception-v3; one FID over the novel views of
        all evaluated shoes, renders vs real views, both RGB on white). fid_weights: the Inception file
        (None: the torch hub cache). fid_resize: Inception input side (299 as trained; >= 75, much faster
        on CPU, values not comparable across sizes). fid_batch_size: images per Inception forward.
    refine_steps: refine each prediction for this many steps against its input view before measuring.
    seams: ``novel/seam_error`` / ``seam_baseline`` / ``seam_excess`` / ``seam_fraction`` (``eval.seams``).
    views: view indices per shoe; None = every view of the rig. max_shoes: first N shoes of the split.
    batch_size: shoes per network forward.
    grid_shoes / grid_views: rows (shoes) and columns (azimuths) of grid.png.
    image_metrics: the per-view 2D metrics (of ``IMAGE_METRICS``). view_groups: the views each is averaged
        over, ``<group>/<metric>`` (``VIEW_GROUPS``: input = the input view, novel = the others, all = every
        asked view). view_chunk: render at most this many views at a time (None: all at once; soft renders
        differ in the last bit with the chunking, so the training validation keeps its own).
    template_only: measure the bare template (no offsets) with the predicted texture: the baseline a network
        has to beat on shape. clamp_texture: clamp predicted textures to [0, 1] (as exported).
    ``EvalConfig.quick(...)`` is the training-time validation preset.
    """
    max_shoes: Optional[int] = None
    views: Optional[list[int]] = None
    batch_size: int = 8
    lpips: str = "auto"
    lpips_weights: Optional[str] = None
    three_d: bool = True
    invariance: bool = True
    quality: bool = True
    seams: bool = True
    fid: str = "auto"
    fid_weights: Optional[str] = None
    fid_resize: int = 299
    fid_batch_size: int = 32
    grid_shoes: int = 4
    grid_views: int = 6
    refine_steps: int = 0  # > 0: fit each prediction to its input view first (``shoerecon.fit``, cfg.refine)
    image_metrics: list[str] = field(default_factory=lambda: list(IMAGE_METRICS))
    view_groups: list[str] = field(default_factory=lambda: ["input", "novel"])
    view_chunk: Optional[int] = None
    template_only: bool = False
    clamp_texture: bool = True
    metrics: MetricsConfig = field(default_factory=MetricsConfig)
    invariance_cfg: InvarianceConfig = field(default_factory=InvarianceConfig)

    @classmethod
    def quick(cls, max_shoes: Optional[int] = None, views: Optional[list[int]] = None,
              template_only: bool = False) -> "EvalConfig":
        """The cheap preset of validation during training: silhouette IoU and PSNR averaged over every asked
        view (``all/silhouette_iou``, ``all/psnr``), one shoe per forward, 12 views per render, the raw
        (unclamped) texture; no LPIPS, FID, 3D, invariance, quality, seams or grid.

        >>> EvalConfig.quick(max_shoes=2).image_metrics
        ['silhouette_iou', 'psnr']
        """
        return cls(max_shoes=max_shoes, views=views, batch_size=1, lpips="off", three_d=False, invariance=False,
                   quality=False, seams=False, fid="off", grid_shoes=0, image_metrics=["silhouette_iou", "psnr"],
                   view_groups=["all"], view_chunk=12, template_only=template_only, clamp_texture=False)

    def __post_init__(self) -> None:
        if self.lpips not in LPIPS_MODES:
            raise ValueError(f"EvalConfig.lpips must be one of {LPIPS_MODES}, got {self.lpips!r}")
        if self.fid not in FID_MODES:
            raise ValueError(f"EvalConfig.fid must be one of {FID_MODES}, got {self.fid!r}")
        for key, given, valid in (("image_metrics", self.image_metrics, IMAGE_METRICS),
                                  ("view_groups", self.view_groups, VIEW_GROUPS)):
            bad = [name for name in given if name not in valid]
            if bad:
                raise ValueError(f"EvalConfig.{key}: unknown {bad}; valid: {', '.join(valid)}")
        if self.batch_size < 1 or (self.view_chunk is not None and self.view_chunk < 1):
            raise ValueError(f"EvalConfig.batch_size and view_chunk must be >= 1, got {self.batch_size}, "
                             f"{self.view_chunk}")
        if self.fid_resize < 75:
            raise ValueError(f"EvalConfig.fid_resize must be >= 75 (Inception-v3's smallest input), "
                             f"got {self.fid_resize}")


# ---------------------------------------------------------------------------------------- pieces
def view_metrics(
    render: Tensor, images: Tensor, masks: Tensor, lpips_model=None, cfg: MetricsConfig = MetricsConfig(),
    names: Sequence[str] = IMAGE_METRICS,
) -> dict[str, Tensor]:
    """Per-view 2D metrics ``names`` (SSIM only on images of at least its window, LPIPS only with a model and
    >= 32 px). render (V, 4, H, W), images (V, 3, H, W), masks (V, 1, H, W) -> {name: (V,)}."""
    rgb, alpha = render[:, :3], render[:, 3:]
    images, masks = images.to(rgb), masks.to(rgb)
    out = {}
    if "silhouette_iou" in names:
        out["silhouette_iou"] = silhouette_iou(alpha, masks, cfg.silhouette_threshold)
    if "psnr" in names:
        out["psnr"] = psnr(rgb, images)
    if "ssim" in names and min(rgb.shape[-2:]) >= cfg.ssim_window:
        out["ssim"] = ssim(rgb, images, cfg.ssim_window)
    if "lpips" in names and lpips_model is not None and min(rgb.shape[-2:]) >= 32:
        lpips_model = lpips_model.to(rgb.device)
        out["lpips"] = lpips_distance(lpips_model, rgb, images)
    return {k: v.detach().float().cpu() for k, v in out.items()}


def grid_view_indices(num_views: int, count: int) -> list[int]:
    """``count`` view positions spread evenly over ``num_views`` (first one included)."""
    n = max(1, min(count, num_views))
    return sorted({int(round(i * num_views / n)) % num_views for i in range(n)})


def shoe_record(mesh: Mesh, shoe: dict, input_view: int, renderer, lpips_model, cfg: EvalConfig) -> tuple[dict, Tensor]:
    """All per-shoe metrics except invariance and FID, and the renders (V, 4, H, W) at the shoe's views."""
    cams = Cameras.from_tensor(shoe["target_cameras"].float())
    with_seams = cfg.seams and mesh.uvs is not None and mesh.texture is not None
    if with_seams:  # one rasterisation serves the 2D metrics and the seam error
        render, pix_to_face = render_with_faces(mesh, cams, renderer)
    else:
        chunk = cfg.view_chunk or max(1, cams.shape[0])
        render = torch.cat([render_mesh(mesh, cams[s:s + chunk], renderer) for s in range(0, cams.shape[0], chunk)])
    per_view = view_metrics(render, shoe["targets"], shoe["target_masks"], lpips_model, cfg.metrics,
                            cfg.image_metrics)
    is_input = (shoe["target_views"] == input_view).to(render.device)
    groups = {"input": is_input, "novel": ~is_input, "all": torch.ones_like(is_input)}
    rec: dict[str, Any] = {"shoe_id": shoe["shoe_id"]}
    for group in cfg.view_groups:
        sel = groups[group]
        for name, values in per_view.items():
            rec[f"{group}/{name}"] = float(values[sel.cpu()].mean()) if sel.any() else None
    if with_seams and (~is_input).any():
        seams = seam_error(mesh, rgb=render[~is_input, :3], pix_to_face=pix_to_face[~is_input])
        rec.update({f"novel/{k}": seams[k] for k in ("seam_error", "seam_baseline", "seam_excess", "seam_fraction")})
    if cfg.three_d and shoe.get("mesh_path"):

        gt = load_glb(shoe["mesh_path"]).to(device=mesh.verts.device)
        rec.update({f"3d/{k}": v for k, v in mesh_metrics_3d(mesh, gt, cfg.metrics).items()})
    if cfg.quality:
        rec.update({f"quality/{k}": v for k, v in mesh_quality(mesh).items()})
    return rec, render


def summarize(per_shoe: Sequence[dict]) -> dict[str, float]:
    """Mean over shoes of every numeric metric (shoes without it, e.g. no mesh.glb, are left out)."""
    values: dict[str, list[float]] = defaultdict(list)
    for rec in per_shoe:
        for k, v in rec.items():
            if isinstance(v, (int, float)) and v is not None and math.isfinite(v):
                values[k].append(float(v))
    out = {k: float(np.mean(v)) for k, v in values.items()}
    out.update({f"count/{k}": len(v) for k, v in values.items() if len(v) != len(per_shoe)})
    return out


# ---------------------------------------------------------------------------------------- main entry
def evaluate(
    model: torch.nn.Module,
    cfg: Any,
    dataset,
    eval_cfg: EvalConfig = EvalConfig(),
    out_dir: str | Path | None = None,
    progress: bool = True,
    renderer: Renderer | None = None,
) -> dict:
    """Evaluate ``model`` on every shoe of ``dataset`` (a ``TurntableDataset``).

    Args:
        model: a ShoeReconNet (or anything with the same forward and template buffers), eval mode.
        cfg: the ExperimentConfig or None (its run name is recorded; the dataset carries the data settings).
        eval_cfg: what to measure (``EvalConfig.quick()``: the cheap validation during training).
        out_dir: if given, metrics.json, metrics.md and grid.png are written there.
        renderer: the renderer of the 2D metrics; None: a hard renderer (nearest face, exact coverage) at the
            dataset's image size and background. Training validation passes its own (``train.val_blend``).
    Returns:
        {"summary": {metric: mean over shoes}, "per_shoe": [...], "num_shoes", "split", "notes"}.
        Metric names: input/* and novel/* (silhouette_iou, psnr, ssim, lpips), novel/seam_error,
        novel/seam_baseline, novel/seam_excess (means over the shoes with such pixel pairs in sight),
        novel/seam_fraction, novel/fid (one value over all shoes; "fid_images" = [renders, real views] it
        saw), 3d/* (chamfer_l2,
        fscore@0.01, fscore@0.02, normal_consistency, voxel_iou, ...), invariance/* (Chamfer per
        perturbation and their mean), quality/* (self_intersection_fraction, min/mean_min angle).
    """
    was_training = model.training
    model.eval()
    notes: list[str] = []
    lpips_model = build_lpips_metric(eval_cfg.lpips if "lpips" in eval_cfg.image_metrics else "off",
                                     eval_cfg.lpips_weights, notes)
    fid_net = build_fid_features(eval_cfg.fid, eval_cfg.fid_weights, eval_cfg.fid_resize, notes)
    device = model_device(model)
    fid = FIDAccumulator(fid_net.to(device), eval_cfg.fid_batch_size, device) if fid_net is not None else None
    if renderer is None:
        renderer = preview_renderer(dataset.cfg.image_size, dataset.cfg.background)
    shoe_ids = list(dataset.shoe_ids)[: eval_cfg.max_shoes]
    per_shoe, grid_rows = [], []
    bar = tqdm(total=len(shoe_ids), desc="eval", unit="shoe", disable=not progress)
    for start in range(0, len(shoe_ids), eval_cfg.batch_size):
        chunk = shoe_ids[start:start + eval_cfg.batch_size]
        shoes = load_shoes(dataset, chunk, eval_cfg.views, notes)
        bar.update(len(chunk) - len(shoes))  # skipped ones
        if not shoes:
            continue
        inputs = torch.stack([s["input"] for s in shoes]).to(model_device(model))
        meshes = predict_meshes(model, inputs, clamp_texture=eval_cfg.clamp_texture)
        if eval_cfg.refine_steps > 0:
            from shoerecon.fit import RefineConfig, refine_meshes

            masks = torch.stack([s["input_mask"] for s in shoes]).to(inputs.device)
            meshes = refine_meshes(model, inputs, masks, getattr(cfg, "refine", None) or RefineConfig(),
                                   eval_cfg.refine_steps)
        if eval_cfg.template_only:  # the shape baseline: the bare template wearing the predicted texture
            meshes = [replace(m, verts=model.template_verts.to(m.verts.dtype)) for m in meshes]
        inv = invariance_chamfer(model, inputs, eval_cfg.invariance_cfg) if eval_cfg.invariance else {}
        for i, (shoe, mesh) in enumerate(zip(shoes, meshes)):
            input_view = dataset.input_index(dataset.rigs[shoe["shoe_id"]])
            rec, render = shoe_record(mesh, shoe, input_view, renderer, lpips_model, eval_cfg)
            if fid is not None:
                novel = shoe["target_views"] != input_view
                bg = dataset.cfg.background
                fid.add(on_white(render[novel.to(render.device), :3], render[novel.to(render.device), 3:], bg),
                        on_white(shoe["targets"][novel], shoe["target_masks"][novel], bg))
            if inv:
                rec.update({f"invariance/{k}": float(v[i]) for k, v in inv.items()})
                rec["invariance/mean"] = float(np.mean([float(v[i]) for v in inv.values()]))
            per_shoe.append(rec)
            if len(grid_rows) < 2 * eval_cfg.grid_shoes:
                grid_rows += grid_pair(shoe, render, eval_cfg.grid_views)
            bar.update()
    bar.close()
    model.train(was_training)
    summary = summarize(per_shoe)
    if eval_cfg.seams and per_shoe and "novel/seam_error" not in summary:
        notes.append("seam error missing: no novel-view pixel pair straddles a UV seam (continuous layout, "
                     "seams out of sight, or an untextured mesh)")
    if fid is not None:
        value = fid.value()
        if value is None:
            notes.append(f"FID skipped: needs at least 2 novel views on each side, got {fid.counts}")
        else:
            summary["novel/fid"] = value
    results = {
        "summary": summary, "per_shoe": per_shoe, "num_shoes": len(per_shoe),
        "experiment": getattr(getattr(cfg, "train", None), "name", None),
        "split": getattr(dataset, "split", None), "data_root": str(getattr(dataset, "root", "")),
        "image_size": dataset.cfg.image_size, "fid_images": list(fid.counts) if fid is not None else None,
        "notes": notes, "eval_config": _jsonable(asdict(eval_cfg)),
    }
    if out_dir is not None:
        write_report(results, out_dir, grid_rows)
    return results


def load_shoes(dataset, shoe_ids: Sequence[str], views, notes: list[str]) -> list[dict]:
    """``dataset.load_shoe`` for each id; with ``on_error="skip"`` a broken shoe becomes a note, else it raises."""
    shoes = []
    for sid in shoe_ids:
        try:
            shoes.append(dataset.load_shoe(sid, views))
        except DataError as err:
            if getattr(dataset.cfg, "on_error", "raise") != "skip":
                raise
            notes.append(f"skipped shoe {sid}: {err}")
    return shoes


def grid_pair(shoe: dict, render: Tensor, grid_views: int, min_size: int = 96, background: float = 0.8) -> list[list[Tensor]]:
    """Two grid rows for one shoe: [input | predictions at the grid views] over [blank | ground truth].

    Everything is composited on a grey ``background`` by its alpha/mask so that white parts of a
    texture stay visible; small images are enlarged (nearest) to at least ``min_size`` px.
    """
    cols = grid_view_indices(len(shoe["target_views"]), grid_views)
    factor = max(1, math.ceil(min_size / shoe["input"].shape[-1]))

    def show(rgb: Tensor, alpha: Tensor) -> Tensor:
        rgb, alpha = rgb[:3].float().cpu(), alpha.float().cpu()
        out = rgb * alpha + background * (1 - alpha)
        return torch.nn.functional.interpolate(out[None], scale_factor=factor, mode="nearest")[0]

    inp = show(shoe["input"], shoe["input_mask"])
    pred = [inp] + [show(render[c, :3], render[c, 3:]) for c in cols]
    gt = [torch.ones_like(inp)] + [show(shoe["targets"][c], shoe["target_masks"][c]) for c in cols]
    return [pred, gt]


# ---------------------------------------------------------------------------------------- writing
def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    return str(x)


def _fmt(v) -> str:
    if v is None:
        return "–"
    if abs(v) >= 100 or v == int(v):
        return f"{v:.4g}"
    return f"{v:.4f}" if abs(v) >= 1e-3 else f"{v:.3e}"


def markdown_report(results: dict) -> str:
    """Markdown tables: 2D (input view vs novel views), 3D, invariance, mesh quality."""
    s = results["summary"]
    lines = [f"# Evaluation: {results.get('data_root', '')} split `{results.get('split')}`, "
             f"{results['num_shoes']} shoes, {results.get('image_size')} px", ""]
    names_2d = [n for n in ("silhouette_iou", "psnr", "ssim", "lpips", "fid",
                            "seam_error", "seam_baseline", "seam_excess", "seam_fraction")
                if f"input/{n}" in s or f"novel/{n}" in s]
    if names_2d:
        lines += ["## 2D", "", "| metric | input view | novel views |", "| --- | --- | --- |"]
        lines += [f"| {n} | {_fmt(s.get(f'input/{n}'))} | {_fmt(s.get(f'novel/{n}'))} |" for n in names_2d]
        lines.append("")
    for title, prefix in (("3D (vs mesh.glb)", "3d/"), ("Invariance (Chamfer-L2 vs the unperturbed prediction)", "invariance/"),
                          ("Mesh quality", "quality/")):
        keys = [k for k in s if k.startswith(prefix)]
        if keys:
            lines += [f"## {title}", "", "| metric | value |", "| --- | --- |"]
            lines += [f"| {k[len(prefix):]} | {_fmt(s[k])} |" for k in keys]
            if any(f"count/{k}" in s for k in keys):
                lines.append(f"\n(over {s.get(f'count/{keys[0]}', results['num_shoes'])} shoes with ground truth)")
            lines.append("")
    if results.get("notes"):
        lines += ["## Notes", ""] + [f"- {n}" for n in results["notes"]] + [""]
    return "\n".join(lines)


def write_report(results: dict, out_dir: str | Path, grid_rows: Sequence[Sequence[Tensor]] = ()) -> Path:
    """metrics.json, metrics.md and (when rows are given) grid.png in ``out_dir``; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(_jsonable(results), indent=2) + "\n")
    (out / "metrics.md").write_text(markdown_report(results))
    if grid_rows:
        to_pil(image_grid(grid_rows)).save(out / "grid.png")
    return out
