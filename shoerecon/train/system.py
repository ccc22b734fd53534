"""The training system: what one step computes (network, renderer, loss terms, augmentation, optimisers).

``ReconSystem`` owns the parts; the loop that feeds it (data, accelerate, hooks) is ``trainer.py``. One step:
input view (augmented when ``augment.enabled``) -> ShoeReconNet -> renders from the target cameras ->
``compute_losses`` over the enabled terms of ``cfg.losses`` (the novel-view terms render random azimuths
lazily through ``NovelViews``). Every random draw of a step comes from ``step_generator(seed, step, rank)``.
"""
from __future__ import annotations

import dataclasses

import math
from typing import Any, Mapping, Optional

import torch
from torch import Tensor

from shoerecon.data.augment import InputAugment, augment_input_batch
from shoerecon.data.batch import TrainBatch
from shoerecon.geometry.mesh import Mesh, Meshes
from shoerecon.data.template import default_template
from shoerecon.losses import NOVEL_VIEW_LOSSES, LossContext, build_loss_modules, compute_losses
from shoerecon.model import ShoeReconNet
from shoerecon.render import Renderer
from shoerecon.render.cameras import Cameras
from shoerecon.train.config import ConfigError, ExperimentConfig, TrainConfig
from shoerecon.train.novel_views import NovelViews


def lr_factor(step: int, total_steps: int, cfg: TrainConfig) -> float:
    """Multiplier of ``cfg.lr`` at optimizer step ``step`` (0-based): linear warm-up, then the schedule.

    >>> cfg = TrainConfig(lr_schedule="cosine", warmup_steps=10, lr_min_factor=0.1)
    >>> [round(lr_factor(s, 110, cfg), 3) for s in (0, 9, 10, 60, 110)]
    [0.1, 1.0, 1.0, 0.55, 0.1]
    """
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = min(1.0, (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps))
    low = cfg.lr_min_factor
    if cfg.lr_schedule == "cosine":
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * t))
    if cfg.lr_schedule == "linear":
        return 1 - (1 - low) * t
    if cfg.lr_schedule == "step":
        return cfg.lr_gamma ** ((step - cfg.warmup_steps) // max(1, cfg.lr_step_every))
    return 1.0


def render_prediction(renderer, verts: Tensor, net, texture: Tensor | None, cameras: Tensor) -> Tensor:
    """Render meshes (B, N, 3) with the network's template topology/UV from cameras (B, V, 4 or 10)
    -> (B, V, 4, H, W)."""
    cams = Cameras.from_tensor(cameras.to(verts.dtype))
    return renderer(Meshes.from_topology(net.template, verts, texture), cams)


def eval_render_config(cfg: ExperimentConfig):
    """The renderer settings of validation: ``train.val_blend`` hard = nearest face, exact coverage."""
    if cfg.train.val_blend == "soft":
        return cfg.render
    return cfg.render.hard()


def check_config(cfg: ExperimentConfig) -> None:
    """Cross-section consistency the schema alone cannot express."""
    size = cfg.render.image_size
    if (tuple(size) if isinstance(size, (tuple, list)) else (size, size)) != (cfg.data.image_size,) * 2:
        raise ConfigError(
            f"render.image_size ({cfg.render.image_size}) must equal data.image_size ({cfg.data.image_size})"
        )
    if cfg.train.batch_size < 1:
        raise ConfigError(f"train.batch_size must be >= 1, got {cfg.train.batch_size}")
    b, views = cfg.train.batch_size, cfg.losses.novel_views
    if cfg.losses.fid.weight and min(b * views, b * cfg.data.num_target_views) < 2:
        raise ConfigError(
            f"losses.fid needs >= 2 renders and >= 2 real views per process and step (covariances): "
            f"train.batch_size x losses.novel_views = {b * views}, "
            f"train.batch_size x data.num_target_views = {b * cfg.data.num_target_views}")


def step_generator(seed: int, step: int, rank: int, salt: int = 0) -> torch.Generator:
    """A CPU generator for the random draws of one step: same (seed, step, rank, salt) -> same draws."""
    return torch.Generator().manual_seed(hash((seed, step, rank, salt)) % 2**63)


class ReconSystem:
    """The network (``net``), renderers, loss-term modules (``loss_modules``), input augmentation and the
    optimizer/scheduler factory of one experiment config. ``compute`` is the forward half of a step."""

    def __init__(self, cfg: ExperimentConfig, device: torch.device | str = "cpu",
                 template: Optional[Mesh] = None):
        self.cfg, self.device = cfg, torch.device(device)
        if template is None:
            template = default_template(cfg.train.template, uv_mode=cfg.uv.mode, spherical=cfg.uv.spherical)
        self.net = ShoeReconNet(cfg.model, template, cfg.variance)
        self.renderer = Renderer(cfg.render)
        self.eval_renderer = Renderer(eval_render_config(cfg))
        self.loss_modules: torch.nn.ModuleDict = torch.nn.ModuleDict()
        self.augment: Optional[InputAugment] = None

    def build(self) -> None:
        """Move the network and renderers to the device; build the loss modules and the augmentation.
        (Separate from ``__init__`` so that a checkpoint's template and weights can be loaded in between.)"""
        self.net.to(self.device)
        self.renderer.to(self.device)
        self.eval_renderer.to(self.device)
        self.loss_modules = build_loss_modules(self.cfg.losses).to(self.device)
        self.augment = InputAugment(self.cfg.augment).train() if self.cfg.augment.enabled else None

    # ---------------------------------------------------------------- optimisers
    def make_optimizer(self, total_steps: int) -> tuple[torch.optim.Optimizer, Any]:
        """Adam over the network's parameters and the LambdaLR schedule of ``lr_factor``."""
        t = self.cfg.train
        optimizer = torch.optim.Adam(self.net.parameters(), lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, t))
        return optimizer, scheduler

    # ---------------------------------------------------------------- topology
    def set_template(self, mesh: Mesh) -> None:
        """Replace the template (remeshing). Everything derived from it (edges, Laplacian operands, UV mask and
        chart labels) lives in the network's ``geometry.Template`` and goes with the old one."""
        self.net.set_template(mesh)

    # ---------------------------------------------------------------- one step
    def prepare_input(self, batch: TrainBatch, generator: torch.Generator) -> TrainBatch:
        """The batch with its input view augmented (when ``augment.enabled``)."""
        return augment_input_batch(batch, self.augment, generator) if self.augment is not None else batch

    def step_losses(self, step: Optional[int] = None):
        """The loss config of training step ``step``: with ``losses.novel_every`` = k the novel-view terms are
        off on steps that are not multiples of k and weigh k times more on those that are (None: every term)."""
        c, k = self.cfg.losses, self.cfg.losses.novel_every
        if k == 1 or step is None:
            return c
        on = step % k == 0
        return dataclasses.replace(c, **{name: dataclasses.replace(getattr(c, name), weight=getattr(c, name).weight
                                                                   * k if on else 0.0)
                                         for name in NOVEL_VIEW_LOSSES if getattr(c, name).weight})

    def compute(self, model, batch: TrainBatch, generator: Optional[torch.Generator] = None, accelerator: Any = None,
                autocast: Any = None, step: Optional[int] = None) -> tuple[dict[str, Tensor], Any, Tensor, dict[str, float]]:
        """Forward: ``model`` (the net, possibly DDP-wrapped) on the input views, renders from the target
        cameras, every enabled loss term (of ``step_losses(step)``). -> (losses incl. "total", network output,
        renders, extra scalars)."""
        losses_cfg = self.step_losses(step)
        with autocast if autocast is not None else torch.autocast(self.device.type, enabled=False):
            out = model(batch["input"])
            renders = render_prediction(self.renderer, out.verts, self.net, out.texture, batch["target_cameras"])
            ctx = self.loss_context(batch, out, renders, generator, accelerator, losses_cfg)
            losses = compute_losses(losses_cfg, ctx)
        return losses, out, renders, ctx.stats

    def loss_context(self, batch: TrainBatch, out, renders: Tensor, generator: Optional[torch.Generator] = None,
                     accelerator: Any = None, losses_cfg: Any = None) -> LossContext:
        """What the terms read: the step's output, renders and batch, the UV layout, input cameras, modules,
        and the lazily rendered novel views (``generator``: the step's generator with salt 1)."""
        c = losses_cfg if losses_cfg is not None else self.cfg.losses
        cams = Cameras.from_tensor(batch["input_camera"]) if "input_camera" in batch else None
        novel = None
        if c.adversarial.weight or c.fid.weight:
            def render(cameras: Tensor) -> Tensor:
                return render_prediction(self.renderer, out.verts, self.net, out.texture, cameras)

            novel = NovelViews(render, batch, c.novel_views, generator, accelerator, train_critic=self.net.training)
        return LossContext(out, renders, batch, self.net.template, cams, batch.get("input_transform"),
                           self.loss_modules, novel)

    # ---------------------------------------------------------------- checkpoints
    def checkpoint_extra(self) -> dict:
        """Loss-module state a resume needs (the critic and its optimizer; key of earlier versions)."""
        critic = self.loss_modules["adversarial"] if "adversarial" in self.loss_modules else None
        return {"novel_views": critic.checkpoint_state() if critic is not None else {}}

    def load_checkpoint_extra(self, extra: Mapping) -> None:
        if "adversarial" in self.loss_modules:
            self.loss_modules["adversarial"].load_checkpoint_state(extra.get("novel_views", {}))


__all__ = ["ReconSystem", "lr_factor", "render_prediction", "eval_render_config", "check_config", "step_generator"]
