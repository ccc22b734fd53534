"""Training hooks: what happens around the steps (logging, sample grids, validation, checkpoints, remeshing,
the end-of-run metrics, exports and report). Each is small and reads the trainer; ``default_hooks`` lists them
in the order they run. A hook may implement any of ``on_step_end(trainer, batch, result)``,
``on_epoch_end(trainer)`` and ``on_fit_end(trainer, metrics)`` (metrics: the dict written to ``metrics.json``
by the main process, filled in by the hooks in turn).
"""
from __future__ import annotations

import dataclasses
import json
from typing import Mapping, Sequence

import torch
import torchvision.utils as vutils
from accelerate.utils import broadcast_object_list
from torch import Tensor

from shoerecon.eval.report import evaluate
from shoerecon.export.predict import export_mesh
from shoerecon.geometry.mesh import Mesh
from shoerecon.geometry.quality import mesh_quality
from shoerecon.geometry.remesh import Remesher, remesh_template
from shoerecon.train.validation import input_of, validate


class Hook:
    """No-op base: override what you need."""

    def on_step_end(self, trainer, batch: Mapping, result) -> None:
        pass

    def on_epoch_end(self, trainer) -> None:
        pass

    def on_fit_end(self, trainer, metrics: dict) -> None:
        pass


def sample_grid(inputs: Tensor, renders: Tensor, targets: Tensor, max_rows: int = 4) -> Tensor:
    """One image: a row per shoe of input | V renders (RGB) | V targets.

    inputs (B,3,H,W), renders (B,V,4,H,W), targets (B,V,3,H,W) -> (3, rows*H', (1+2V)*W') with a
    2-px white gutter.
    """
    b = min(max_rows, inputs.shape[0])
    tiles = []
    for i in range(b):
        tiles += [inputs[i], *renders[i, :, :3], *targets[i]]
    tiles = [t.detach().float().cpu().clamp(0, 1) for t in tiles]
    return vutils.make_grid(tiles, nrow=1 + 2 * renders.shape[1], padding=2, pad_value=1.0)


class LogHook(Hook):
    """Means of the step losses (and grad norm, skipped share) over ``train.log_every`` steps -> logger."""

    def __init__(self):
        self.sums: dict[str, float] = {}
        self.count = 0

    def on_step_end(self, trainer, batch, result) -> None:
        self.count += 1
        self.sums["skipped"] = self.sums.get("skipped", 0.0) + float(result.skipped)
        if not result.skipped:
            for k, v in result.losses.items():
                self.sums[f"loss/{k}"] = self.sums.get(f"loss/{k}", 0.0) + v
            self.sums["grad_norm"] = self.sums.get("grad_norm", 0.0) + result.grad_norm
            self.sums["_ok"] = self.sums.get("_ok", 0.0) + 1
        every = trainer.cfg.train.log_every
        if every and trainer.step % every == 0:
            self.flush(trainer)

    def flush(self, trainer) -> None:
        ok = max(1.0, self.sums.pop("_ok", 0.0))
        names = sorted(self.sums)
        local = torch.tensor([self.sums[n] / (self.count if n == "skipped" else ok) for n in names],
                             device=trainer.device, dtype=torch.float64)
        mean = trainer.acc.reduce(local, "mean") if trainer.acc.num_processes > 1 else local
        scalars = dict(zip(names, mean.tolist()))
        scalars["lr"] = trainer.scheduler.get_last_lr()[0]
        trainer.logger.log(scalars, trainer.step)
        self.sums, self.count = {}, 0


class SampleHook(Hook):
    """Every ``train.sample_every`` steps: input | renders | targets of the step's batch -> samples/*.png."""

    def on_step_end(self, trainer, batch, result) -> None:
        t = trainer.cfg.train
        if t.sample_every and trainer.step % t.sample_every == 0 and trainer.acc.is_main_process:
            grid = sample_grid(batch["input"], trainer.last_renders, batch["targets"], t.sample_shoes)
            vutils.save_image(grid, trainer.run_dir / "samples" / f"step_{trainer.step:07d}.png")


class ValidationHook(Hook):
    """Every ``train.val_every`` steps (not the last) and at the end: IoU/PSNR of held-out shoes (main process;
    ``train.validation.validate``: the eval report's quick preset); at the end also of the bare template, into
    metrics.json."""

    def on_step_end(self, trainer, batch, result) -> None:
        t = trainer.cfg.train
        if t.val_every and trainer.step % t.val_every == 0 and trainer.step < trainer.total_steps:
            if trainer.acc.is_main_process and len(trainer.val_set) > 0:
                metrics = self.measure(trainer)
                trainer.logger.log({f"val/{k}": v for k, v in metrics.items()}, trainer.step)
            trainer.acc.wait_for_everyone()

    @staticmethod
    def measure(trainer, template_only: bool = False) -> dict[str, float]:
        """{"iou", "psnr"} of ``validate`` (the eval report's quick preset) on ``train.val_shoes`` val shoes."""
        t = trainer.cfg.train
        return validate(trainer.net, trainer.system.eval_renderer, trainer.val_set, t.val_shoes, t.val_views,
                        template_only)

    def on_fit_end(self, trainer, metrics: dict) -> None:
        net, tmpl = self.measure(trainer), self.measure(trainer, template_only=True)
        metrics.update({"step": trainer.step, "val_shoes": len(trainer.val_shoe_ids()), "train/steps": trainer.step,
                        "train/minutes": trainer.train_seconds / 60, **{f"val/{k}": v for k, v in net.items()},
                        **{f"template/{k}": v for k, v in tmpl.items()}})
        trainer.logger.log({k: v for k, v in metrics.items() if "/" in k}, trainer.step)


class CheckpointHook(Hook):
    """Every ``train.checkpoint_every`` steps: ``step_XXXXXXX.pt`` (the oldest pruned) and ``last.pt``."""

    def on_step_end(self, trainer, batch, result) -> None:
        every = trainer.cfg.train.checkpoint_every
        if every and trainer.step % every == 0:
            trainer.save(f"step_{trainer.step:07d}.pt")
            trainer.save("last.pt")


class RemeshHook(Hook):
    """Every ``remesh.every_epochs`` epochs (not after the last step): retriangulate the template so the mean
    prediction of ``remesh.prior_shoes`` training shoes has isotropic triangles (main process; broadcast)."""

    def __init__(self, remesher: Remesher):
        self.remesher = remesher

    def on_epoch_end(self, trainer) -> None:
        if self.remesher.due(trainer.epoch) and trainer.step < trainer.total_steps:
            remesh(trainer)


@torch.no_grad()
def shape_prior(trainer) -> Tensor:
    """(N, 3) mean predicted vertices over the first ``remesh.prior_shoes`` training shoes (eval mode)."""
    net = trainer.net
    was_training = net.training
    net.eval()
    ids = list(trainer.train_set.shoe_ids)[: max(1, trainer.cfg.remesh.prior_shoes)]
    total = torch.zeros_like(net.template_verts)
    for start in range(0, len(ids), 8):
        images = torch.stack([input_of(trainer.train_set, sid) for sid in ids[start:start + 8]]).to(trainer.device)
        total += net(images).verts.float().sum(0)
    net.train(was_training)
    return total / len(ids)


def remesh(trainer) -> None:
    """Replace the template by ``remesh_template`` of the current shape prior (main process; broadcast)."""
    cfg, net = trainer.cfg, trainer.net
    mesh, prior = None, shape_prior(trainer)
    if trainer.acc.is_main_process:
        mesh = remesh_template(net.template_mesh().to(device="cpu"), prior.cpu(), cfg.remesh, cfg.uv)
    if trainer.acc.num_processes > 1:
        mesh = broadcast_object_list([mesh])[0]
    before = mesh_quality(prior.cpu(), net.faces.cpu())
    trainer.system.set_template(mesh)
    after = mesh_quality(shape_prior(trainer).cpu(), net.faces.cpu())
    scalars = {"remesh/faces": float(mesh.num_faces), "remesh/min_angle_before": before["min_angle_deg"],
               "remesh/min_angle_after": after["min_angle_deg"]}
    trainer.logger.log(scalars, trainer.step)
    if trainer.acc.is_main_process:
        print(f"epoch {trainer.epoch}: remeshed the template to {mesh.num_verts} vertices / {mesh.num_faces} faces; "
              f"min angle of the prior {before['min_angle_deg']:.1f} -> {after['min_angle_deg']:.1f} deg")


class ExportHook(Hook):
    """At the end: predicted meshes of the first ``train.export_shoes`` validation shoes -> exports/."""

    def on_fit_end(self, trainer, metrics: dict) -> None:
        export_val_shoes(trainer, trainer.val_shoe_ids()[: trainer.cfg.train.export_shoes])


def export_val_shoes(trainer, shoe_ids: Sequence[str]) -> None:
    """Predicted meshes of ``shoe_ids`` as OBJ+MTL+PNG and GLB under <run>/exports/."""
    net = trainer.net
    net.eval()
    with torch.no_grad():
        for sid in shoe_ids:
            image = input_of(trainer.val_set, sid)[None].to(trainer.device)
            out = net(image)
            t = net.template
            mesh = Mesh(out.verts[0].cpu(), t.faces.cpu(), t.uvs.cpu(), t.uv_faces.cpu(),
                        out.texture[0].float().cpu().clamp(0, 1))
            export_mesh(mesh, trainer.run_dir / "exports", sid, trainer.cfg.train.export_formats)


class ReportHook(Hook):
    """At the end: the full evaluation report of ``train.final_eval_shoes`` val shoes -> eval/ and ``eval/*``
    keys of metrics.json (written here, after every other end-of-run hook)."""

    def on_fit_end(self, trainer, metrics: dict) -> None:
        cfg = trainer.cfg
        if cfg.train.final_eval_shoes != 0:
            eval_cfg = dataclasses.replace(cfg.eval, max_shoes=cfg.train.final_eval_shoes, views=cfg.train.val_views)
            report = evaluate(trainer.net, cfg, trainer.val_set, eval_cfg, out_dir=trainer.run_dir / "eval",
                              progress=True)
            metrics.update({f"eval/{k}": v for k, v in report["summary"].items()})
        (trainer.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))


def default_hooks(cfg) -> list[Hook]:
    """The hooks of a run, in order: per step log, samples, validation, checkpoints; per epoch remeshing;
    at the end validation, exports, report (+ metrics.json)."""
    return [LogHook(), SampleHook(), ValidationHook(), CheckpointHook(), RemeshHook(Remesher(cfg.remesh)),
            ExportHook(), ReportHook()]


__all__ = ["Hook", "LogHook", "SampleHook", "ValidationHook", "CheckpointHook", "RemeshHook", "ExportHook",
           "ReportHook", "default_hooks", "sample_grid", "shape_prior", "remesh", "export_val_shoes"]
