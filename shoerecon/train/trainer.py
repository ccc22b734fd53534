"""The v1 training loop: input view -> ShoeReconNet -> render V target views -> losses -> accelerate step.

One ``Trainer`` runs the same way under ``python experiments/run.py`` and ``accelerate launch``.
Data order is owned here, not by accelerate: every epoch is a permutation seeded by (seed, epoch),
split into per-process batches (rank r takes batches r, r + W, ...), and every item is loaded
under its own seed, so a resumed run sees exactly the batches (and random target views) of an
uninterrupted one, whatever the number of loader workers.

v2 features hook in here, each only when its config section switches it on: input augmentation
(``augment``) before the forward pass, the align / flow-smoothness terms through a ``LossContext``,
the critic step and the adversarial / FID terms on random-azimuth renders (``NovelViewLosses``), and
remeshing of the template at epoch boundaries (``remesh.every_epochs``). Every random draw of a step
comes from a generator seeded by (seed, step, rank), so resumed runs repeat them exactly.

Run folder ``<out_dir>/<name>/``: ``config.yaml`` (resolved), ``checkpoints/`` (``last.pt`` +
periodic), ``logs/`` (tensorboard + ``scalars.csv``), ``samples/`` (PNG grids: input | renders |
targets), ``exports/`` (OBJ + GLB of validation shoes), ``eval/`` (the full report),
``metrics.json`` (final validation, the report's summary, training steps and minutes).
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import random
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm.auto import tqdm

from shoerecon.eval.metrics import psnr, silhouette_iou
from shoerecon.geometry.remesh import Remesher
from shoerecon.render.cameras import Cameras
from shoerecon.train.checkpoint import (
    NonFiniteCheckpointError,
    build_checkpoint,
    capture_rng_state,
    load_checkpoint,
    restore_model_template,
    restore_rng_state,
    save_checkpoint,
)
from shoerecon.train.config import ConfigError, ExperimentConfig, TrainConfig, config_to_dict, save_config
from shoerecon.train.guards import DivergenceGuard, synthetic_banner
from shoerecon.train.logging import ScalarLogger
from shoerecon.train.run_dir import claim_run_dir


# ------------------------------------------------------------------------------------------ functional core
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
    """Render meshes (B, N, 3) with the network's topology/UV from cameras (B, V, 4) -> (B, V, 4, H, W)."""
    cams = Cameras.from_tensor(cameras.to(verts.dtype))
    return renderer(verts, net.faces, cams, texture, net.uvs, net.uv_faces)


def sample_grid(inputs: Tensor, renders: Tensor, targets: Tensor, max_rows: int = 4) -> Tensor:
    """One image: a row per shoe of input | V renders (RGB) | V targets.

    inputs (B,3,H,W), renders (B,V,4,H,W), targets (B,V,3,H,W) -> (3, rows*H', (1+2V)*W') with a
    2-px white gutter.
    """
    import torchvision.utils as vutils

    b = min(max_rows, inputs.shape[0])
    tiles = []
    for i in range(b):
        tiles += [inputs[i], *renders[i, :, :3], *targets[i]]
    tiles = [t.detach().float().cpu().clamp(0, 1) for t in tiles]
    return vutils.make_grid(tiles, nrow=1 + 2 * renders.shape[1], padding=2, pad_value=1.0)


# ------------------------------------------------------------------------------------------ data order
@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Seed python/numpy/torch global RNGs inside the block; restore the previous states after."""
    state = capture_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    # the CPU generator only: torch.manual_seed also queues a lazy CUDA seeding (with a stack trace, ~3 ms) per
    # item on machines where CUDA is not initialised, and restore_rng_state would undo that seeding anyway
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        restore_rng_state(state)


class SeededItems(Dataset):
    """Wraps a dataset so that ``ds[(index, seed)]`` loads item ``index`` under RNG seed ``seed``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with seeded_rng(seed):
            return self.dataset[index]


class ShardedEpochBatches(Sampler):
    """Batch sampler: a (seed, epoch) permutation cut into batches of ``batch_size`` for each of
    ``world`` processes (rank r takes global batches r, r+W, ...; the incomplete tail is dropped so
    every rank takes the same number of steps). Yields lists of (index, item_seed).

    >>> s = ShardedEpochBatches(10, batch_size=2, rank=1, world=2, seed=0, shuffle=False)
    >>> [[i for i, _ in b] for b in s]
    [[2, 3], [6, 7]]
    """

    def __init__(self, size: int, batch_size: int, rank: int, world: int, seed: int, shuffle: bool = True):
        self.size, self.batch_size, self.rank, self.world = size, batch_size, rank, world
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches

    @property
    def batches_per_epoch(self) -> int:
        return self.size // (self.batch_size * self.world)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.skip

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g) if self.shuffle else torch.arange(self.size)
        item_seeds = torch.randint(0, 2**31 - 1, (self.size,), generator=g)
        for b in range(self.skip, self.batches_per_epoch):
            start = (b * self.world + self.rank) * self.batch_size
            idx = order[start:start + self.batch_size].tolist()
            yield [(i, int(item_seeds[i])) for i in idx]


# ------------------------------------------------------------------------------------------ setup helpers
def build_accelerator(cfg: TrainConfig):
    """An Accelerator that really is data-parallel on CPU-only launches.

    ``accelerate launch --multi_gpu --num_processes 2`` on a machine without CUDA sets WORLD_SIZE=2
    but ``Accelerator()`` then runs two independent single processes; ``cpu=True`` makes it
    initialise a gloo process group (MULTI_CPU). Mixed precision is GPU-only here.
    """
    from datetime import timedelta

    from accelerate import Accelerator, DistributedDataParallelKwargs, InitProcessGroupKwargs

    env_cpu = os.environ.get("ACCELERATE_USE_CPU", "false").lower() in ("1", "true", "yes")
    use_cpu = cfg.device == "cpu" or env_cpu or not torch.cuda.is_available()
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("train.device is 'cuda' but CUDA is not available on this machine")
    precision = cfg.mixed_precision
    if use_cpu and precision != "no":
        warnings.warn(f"train.mixed_precision={precision!r} ignored on CPU; training in float32")
        precision = "no"
    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)  # v1 leaves e.g. the variance head unused
    # other ranks wait at a barrier while the main process generates the synthetic dataset
    group = InitProcessGroupKwargs(timeout=timedelta(hours=3))
    return Accelerator(cpu=use_cpu, mixed_precision=precision, kwargs_handlers=[ddp, group])


def ensure_dataset(cfg: ExperimentConfig, accelerator) -> None:
    """Generate the synthetic dataset into ``data.root`` (main process; others wait) when the folder
    is missing and ``synthetic.enabled``; else a missing folder is an error saying what to do."""
    root = Path(cfg.data.root)
    if accelerator.is_main_process and not root.exists():
        if not cfg.synthetic.enabled:
            raise FileNotFoundError(
                f"data folder {root} does not exist; point data.root at a turntable dataset, or set "
                f"synthetic.enabled: true (--set synthetic.enabled=true) to generate a synthetic one there"
            )
        from shoerecon.data.synthetic import generate_dataset

        s = cfg.synthetic
        tmp = root.with_name(root.name + f".partial-{os.getpid()}")
        print(synthetic_banner(root, s.shoes), flush=True)
        generate_dataset(tmp, num_shoes=s.shoes, num_views=s.views, image_size=s.image_size or cfg.data.image_size,
                         seed=s.seed, workers=s.workers, cfg=cfg.synth)
        os.replace(tmp, root)  # a crashed generation never looks like a finished dataset
    accelerator.wait_for_everyone()


def check_config(cfg: ExperimentConfig) -> None:
    """Cross-section consistency the schema alone cannot express."""
    size = cfg.render.image_size
    if (tuple(size) if isinstance(size, (tuple, list)) else (size, size)) != (cfg.data.image_size,) * 2:
        raise ConfigError(
            f"render.image_size ({cfg.render.image_size}) must equal data.image_size ({cfg.data.image_size})"
        )
    if cfg.train.batch_size < 1:
        raise ConfigError(f"train.batch_size must be >= 1, got {cfg.train.batch_size}")
    b = cfg.train.batch_size
    if cfg.losses.fid and min(b * cfg.losses.novel_views, b * cfg.data.num_target_views) < 2:
        raise ConfigError(
            f"losses.fid needs >= 2 renders and >= 2 real views per process and step (covariances): "
            f"train.batch_size x losses.novel_views = {b * cfg.losses.novel_views}, "
            f"train.batch_size x data.num_target_views = {b * cfg.data.num_target_views}")


def build_lpips(cfg: ExperimentConfig, device):
    """The LPIPS module the losses need (None when the perceptual weight is 0); losses owns its construction."""
    from shoerecon import losses as L

    make = getattr(L, "make_lpips", None)
    module = make(cfg.losses) if make is not None else None
    return module.to(device) if module is not None else None


def eval_render_config(cfg: ExperimentConfig):
    """The renderer settings of validation: ``train.val_blend`` hard = nearest face, exact coverage."""
    if cfg.train.val_blend == "soft":
        return cfg.render
    return dataclasses.replace(cfg.render, blend="hard", faces_per_pixel=1, blur_radius=None)


def to_device(batch: Mapping, device) -> dict:
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


# ------------------------------------------------------------------------------------------ trainer
@dataclass
class StepResult:
    skipped: bool
    losses: dict[str, float]
    grad_norm: float


class Trainer:
    """Builds everything from one ExperimentConfig; ``fit()`` trains, validates, checkpoints."""

    def __init__(self, cfg: ExperimentConfig, resume: bool = False, accelerator=None, overwrite: bool = False):
        from accelerate.utils import set_seed

        from shoerecon.data import TurntableDataset
        from shoerecon.geometry.template import load_template
        from shoerecon.model import ShoeReconNet
        from shoerecon.render import Renderer

        check_config(cfg)
        self.cfg = cfg
        t = cfg.train
        if t.cpu_threads:
            # On a shared CPU, more torch threads than free cores make every op wait (measured 35x slower).
            torch.set_num_threads(t.cpu_threads)
        self.acc = accelerator or build_accelerator(t)
        self.device = self.acc.device
        self.run_dir = Path(t.out_dir) / t.name
        self.ckpt_dir = self.run_dir / "checkpoints"
        # one run per folder: lock it, refuse to replace a run without --resume/--overwrite (train/run_dir.py)
        self.run_lock = claim_run_dir(self.run_dir, resume, overwrite) if self.acc.is_main_process else None
        if self.acc.is_main_process:
            for sub in ("checkpoints", "logs", "samples", "exports"):
                (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
            save_config(cfg, self.run_dir / "config.yaml")
        ensure_dataset(cfg, self.acc)

        self.train_set = TurntableDataset(cfg.data, split="train", seed=t.seed)
        self.val_set = TurntableDataset(cfg.data, split="val", seed=t.seed)
        self.sampler = ShardedEpochBatches(len(self.train_set), t.batch_size, self.acc.process_index,
                                           self.acc.num_processes, t.seed)
        if self.sampler.batches_per_epoch == 0:
            raise ValueError(
                f"{cfg.data.root}: {len(self.train_set)} training shoes are fewer than batch_size x processes "
                f"({t.batch_size} x {self.acc.num_processes}); lower train.batch_size or add shoes"
            )
        self.loader = DataLoader(SeededItems(self.train_set), batch_sampler=self.sampler,
                                 num_workers=t.num_workers, persistent_workers=False)
        self.total_steps = t.max_steps if t.max_steps is not None else t.epochs * self.sampler.batches_per_epoch

        set_seed(t.seed)  # identical initial weights on every rank
        template = load_template(t.template, uv_mode=cfg.uv.mode, spherical=cfg.uv.spherical)
        self.net = ShoeReconNet(cfg.model, template, cfg.variance)
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        state = self._find_resume_state() if resume else None
        if state is not None:
            restore_model_template(self.net, state)
            self.net.load_state_dict(state["model"])
        self.net.to(self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=t.lr, betas=t.betas, weight_decay=t.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: lr_factor(s, self.total_steps, t))
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
        self.model, self.optimizer = self.acc.prepare(self.net, self.optimizer)
        self.renderer = Renderer(cfg.render).to(self.device)
        self.eval_renderer = Renderer(eval_render_config(cfg)).to(self.device)
        self.lpips = build_lpips(cfg, self.device)
        self.augment = self._build_augment()
        self.novel = self._build_novel_views(state)
        self.remesher = Remesher(cfg.remesh)
        self._refresh_uv_charts()
        self._train_seconds = float(state["extra"].get("train_seconds", 0.0)) if state is not None else 0.0
        self._loop_start: float | None = None
        if state is not None:
            self._restore_progress(state)
        else:
            set_seed(t.seed + 7919 * self.acc.process_index)  # per-rank stream for model-side randomness
        self.logger = ScalarLogger(self.run_dir / "logs", enabled=self.acc.is_main_process)
        self._sums: dict[str, float] = {}
        self._count = 0

    # ---------------------------------------------------------------- resume
    def _find_resume_state(self) -> dict | None:
        path = self.ckpt_dir / "last.pt"
        if not path.exists():
            if self.acc.is_main_process:
                warnings.warn(f"--resume: no checkpoint at {path}; starting from scratch")
            return None
        return load_checkpoint(path)

    def _restore_progress(self, state: dict) -> None:
        self.step, self.epoch = state["step"], state["epoch"]
        self.batch_in_epoch = state["extra"].get("batch_in_epoch", 0)
        if state.get("scaler") is not None and self.acc.scaler is not None:
            self.acc.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        rank = self.acc.process_index
        if rank < len(rng):
            restore_rng_state(rng[rank])
        if self.acc.is_main_process:
            print(f"resumed from {self.ckpt_dir / 'last.pt'} at step {self.step} (epoch {self.epoch})")

    # ---------------------------------------------------------------- v2 parts
    def _build_augment(self):
        if not self.cfg.augment.enabled:
            return None
        from shoerecon.data.augment import InputAugment

        return InputAugment(self.cfg.augment).train()

    def _build_novel_views(self, state: dict | None):
        c = self.cfg
        if not (c.losses.adversarial or c.losses.fid):
            return None
        from shoerecon.train.novel_views import NovelViewLosses

        novel = NovelViewLosses(c.losses, c.gan, c.fid).to(self.device)
        if state is not None:
            novel.load_checkpoint_state(state["extra"].get("novel_views", {}))
        return novel

    def _refresh_uv_charts(self) -> None:
        """Texel chart labels of the current UV layout (flow smoothness stays within a chart)."""
        self._uv_charts = None
        if self.cfg.losses.flow_smooth:
            from shoerecon.losses.flow_smooth import texel_chart_labels

            self._uv_charts, _ = texel_chart_labels(self.net.uvs, self.net.uv_faces, self.cfg.model.texture_size)

    def step_generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator for the random draws of the current step: same (seed, step, rank) -> same draws."""
        seed = hash((self.cfg.train.seed, self.step, self.acc.process_index, salt)) % 2**63
        return torch.Generator().manual_seed(seed)

    def loss_context(self, batch: dict):
        """What the align / flow-smoothness terms need (None when both are off)."""
        c = self.cfg
        if not (c.losses.align or c.losses.flow_smooth):
            return None
        from shoerecon.losses import LossContext

        cams = Cameras.from_tensor(batch["input_camera"]) if "input_camera" in batch else None
        return LossContext(self.net.uvs, self.net.uv_faces, cams, batch.get("input_transform"), self._uv_charts,
                           c.align, c.flow_smooth)

    def novel_view_terms(self, out, batch: dict) -> tuple[dict[str, Tensor], dict[str, float]]:
        """Critic update(s), then the generator's adversarial / FID terms on random-azimuth renders."""
        from shoerecon.train.novel_views import random_azimuth_cameras, real_rgba

        gen = self.step_generator(salt=1)
        cams = random_azimuth_cameras(batch["target_cameras"][:, 0].cpu(), self.cfg.losses.novel_views, gen)
        fake = render_prediction(self.renderer, out.verts, self.net, out.texture, cams.to(self.device))
        fake, real = fake.flatten(0, 1).float(), real_rgba(batch).float()
        stats = self.novel.critic_step(real, fake, self.acc, gen)
        return self.novel.generator_terms(fake, real), stats

    @torch.no_grad()
    def shape_prior(self) -> Tensor:
        """(N, 3) mean predicted vertices over the first ``remesh.prior_shoes`` training shoes (eval mode)."""
        was_training = self.net.training
        self.net.eval()
        ids = list(self.train_set.shoe_ids)[: max(1, self.cfg.remesh.prior_shoes)]
        total = torch.zeros_like(self.net.template_verts)
        for start in range(0, len(ids), 8):
            images = torch.stack([input_of(self.train_set, sid) for sid in ids[start:start + 8]]).to(self.device)
            total += self.net(images).verts.float().sum(0)
        self.net.train(was_training)
        return total / len(ids)

    def remesh(self) -> None:
        """Replace the template by ``remesh_template`` of the current shape prior (main process; broadcast)."""
        from shoerecon.geometry.remesh import mesh_quality, remesh_template

        mesh, prior = None, self.shape_prior()
        if self.acc.is_main_process:
            mesh = remesh_template(self.net.template_mesh().to(device="cpu"), prior.cpu(), self.cfg.remesh,
                                   self.cfg.uv)
        if self.acc.num_processes > 1:
            from accelerate.utils import broadcast_object_list

            mesh = broadcast_object_list([mesh])[0]
        before = mesh_quality(prior.cpu(), self.net.faces.cpu())
        self.net.set_template(mesh)
        self._refresh_uv_charts()
        after = mesh_quality(self.shape_prior().cpu(), self.net.faces.cpu())
        scalars = {"remesh/faces": float(mesh.num_faces), "remesh/min_angle_before": before["min_angle_deg"],
                   "remesh/min_angle_after": after["min_angle_deg"]}
        self.logger.log(scalars, self.step)
        if self.acc.is_main_process:
            print(f"epoch {self.epoch}: remeshed the template to {mesh.num_verts} vertices / {mesh.num_faces} faces; "
                  f"min angle of the prior {before['min_angle_deg']:.1f} -> {after['min_angle_deg']:.1f} deg")

    # ---------------------------------------------------------------- one step
    def compute(self, batch: dict, model=None) -> tuple[dict[str, Tensor], object, Tensor]:
        """Forward: network on the input views, render its meshes from the target cameras, losses."""
        model = model or self.model
        from shoerecon.losses import compute_losses

        with self.acc.autocast():
            out = model(batch["input"])
            renders = render_prediction(self.renderer, out.verts, self.net, out.texture, batch["target_cameras"])
            losses = compute_losses(out, renders, batch, self.net.faces, self.cfg.losses, lpips=self.lpips,
                                    context=self.loss_context(batch))
        return losses, out, renders

    def train_step(self, batch: dict) -> StepResult:
        """One optimizer step; a NaN/inf loss (on any rank) or gradient skips it on every rank."""
        self.model.train()
        if self.augment is not None:
            from shoerecon.data.augment import augment_input_batch

            batch = augment_input_batch(batch, self.augment, self.step_generator())
        losses, out, renders = self.compute(batch)
        stats: dict[str, float] = {}
        if self.novel is not None:
            terms, stats = self.novel_view_terms(out, batch)
            for name, value in terms.items():
                losses[name] = value
                losses["total"] = losses["total"] + getattr(self.cfg.losses, name) * value
        total = losses["total"]
        finite = self.acc.gather(torch.isfinite(total.detach()).float().reshape(1)).min().item() > 0
        grad_norm = float("nan")
        if finite:
            self.acc.backward(total)
            grad_norm = self._clip_and_norm()
            # fp16: the grad scaler itself skips steps with inf gradients and lowers its scale
            if math.isfinite(grad_norm) or self.acc.scaler is not None:
                self.optimizer.step()
            else:
                finite = False
        self.optimizer.zero_grad(set_to_none=True)
        self.scheduler.step()
        self._last_renders = renders
        values = {k: float(v.detach()) for k, v in losses.items() if isinstance(v, Tensor) and v.numel() == 1}
        values.update({f"critic/{k}": v for k, v in stats.items()})
        if not finite and self.acc.is_main_process:
            warnings.warn(f"step {self.step}: non-finite loss or gradient "
                          f"(total={values.get('total')}, grad_norm={grad_norm}); step skipped")
        return StepResult(skipped=not finite, losses=values, grad_norm=grad_norm)

    def _clip_and_norm(self) -> float:
        params = [p for p in self.model.parameters() if p.grad is not None]
        if self.cfg.train.grad_clip is not None:
            norm = self.acc.clip_grad_norm_(params, self.cfg.train.grad_clip)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params]) if params else torch.tensor(0.0)
        return float(norm)

    # ---------------------------------------------------------------- loop
    def fit(self, stop_at_step: int | None = None) -> dict | None:
        """Train to ``total_steps`` (or stop early at ``stop_at_step``, saving ``last.pt`` for resume).
        Returns the final validation metrics (main process) when training completes."""
        t = self.cfg.train
        end = self.total_steps if stop_at_step is None else min(stop_at_step, self.total_steps)
        self._start = self._loop_start = time.monotonic()
        bar = tqdm(total=self.total_steps, initial=self.step, desc=t.name, dynamic_ncols=True,
                   disable=not self.acc.is_main_process)
        guard = DivergenceGuard.for_run(t, self.ckpt_dir)  # stops a diverged run with an error (train/guards.py)
        while self.step < end:
            self.sampler.set_epoch(self.epoch, skip_batches=self.batch_in_epoch)
            if hasattr(self.train_set, "set_epoch"):  # the dataset draws target views per (seed, epoch, index)
                self.train_set.set_epoch(self.epoch)
            for batch in self.loader:
                batch = to_device(batch, self.device)
                result = self.train_step(batch)
                guard.update(self.step, result.skipped, result.losses.get("total"))
                self.step += 1
                self.batch_in_epoch += 1
                self._accumulate(result)
                bar.update(1)
                if result.losses.get("total") is not None:
                    bar.set_postfix(loss=f"{result.losses['total']:.4f}", refresh=False)
                self._periodic(batch)
                if self._out_of_time():
                    end = self.total_steps = self.step
                if self.step >= end:
                    break
            if self.batch_in_epoch >= self.sampler.batches_per_epoch:
                self.epoch += 1
                self.batch_in_epoch = 0
                if self.remesher.due(self.epoch) and self.step < self.total_steps:
                    self.remesh()
        bar.close()
        self._train_seconds, self._loop_start = self._train_seconds_so_far(), None
        self.save("last.pt")
        if self.step < self.total_steps:
            return None
        metrics = self.finish()
        self.logger.close()
        return metrics

    def _out_of_time(self) -> bool:
        """True on every rank once the main process has used up ``train.max_minutes``."""
        limit = self.cfg.train.max_minutes
        if limit is None:
            return False
        over = torch.tensor([float(time.monotonic() - self._start > 60 * limit)], device=self.device)
        if self.acc.num_processes > 1:
            over = self.acc.gather(over)[:1]  # the main process decides
        if over.item() and self.acc.is_main_process:
            print(f"train.max_minutes={limit} reached at step {self.step}; finishing")
        return bool(over.item())

    def _accumulate(self, result: StepResult) -> None:
        self._count += 1
        self._sums["skipped"] = self._sums.get("skipped", 0.0) + float(result.skipped)
        if result.skipped:
            return
        for k, v in result.losses.items():
            self._sums[f"loss/{k}"] = self._sums.get(f"loss/{k}", 0.0) + v
        self._sums["grad_norm"] = self._sums.get("grad_norm", 0.0) + result.grad_norm
        self._sums["_ok"] = self._sums.get("_ok", 0.0) + 1

    def _periodic(self, batch: dict) -> None:
        t, step = self.cfg.train, self.step
        if t.log_every and step % t.log_every == 0:
            self._log_scalars()
        if t.sample_every and step % t.sample_every == 0:
            self.save_samples(batch)
        if t.val_every and step % t.val_every == 0 and step < self.total_steps:
            self.validate_and_log()
        if t.checkpoint_every and step % t.checkpoint_every == 0:
            self.save(f"step_{step:07d}.pt")
            self.save("last.pt")

    def _log_scalars(self) -> None:
        ok = max(1.0, self._sums.pop("_ok", 0.0))
        names = sorted(self._sums)
        local = torch.tensor([self._sums[n] / (self._count if n == "skipped" else ok) for n in names],
                             device=self.device, dtype=torch.float64)
        mean = self.acc.reduce(local, "mean") if self.acc.num_processes > 1 else local
        scalars = dict(zip(names, mean.tolist()))
        scalars["lr"] = self.scheduler.get_last_lr()[0]
        self.logger.log(scalars, self.step)
        self._sums, self._count = {}, 0

    def save_samples(self, batch: dict) -> None:
        if not self.acc.is_main_process:
            return
        import torchvision.utils as vutils

        grid = sample_grid(batch["input"], self._last_renders, batch["targets"], self.cfg.train.sample_shoes)
        vutils.save_image(grid, self.run_dir / "samples" / f"step_{self.step:07d}.png")

    # ---------------------------------------------------------------- validation
    def val_shoe_ids(self) -> list[str]:
        ids = list(self.val_set.shoe_ids)
        return ids[: self.cfg.train.val_shoes] if self.cfg.train.val_shoes is not None else ids

    def validate(self) -> dict[str, float]:
        """Mean silhouette IoU / PSNR over all (or ``val_views``) views of each held-out shoe; main process."""
        per_shoe = evaluate_shoes(self.net, self.eval_renderer, self.val_set, self.val_shoe_ids(),
                                  self.cfg.train.val_views, self.device)
        return summarize(per_shoe)

    def validate_and_log(self) -> dict[str, float] | None:
        metrics = None
        if self.acc.is_main_process and len(self.val_set) > 0:
            metrics = self.validate()
            self.logger.log({f"val/{k}": v for k, v in metrics.items()}, self.step)
        self.acc.wait_for_everyone()
        return metrics

    def finish(self) -> dict | None:
        """Final validation (network and bare template) -> metrics.json; exports; the full eval report."""
        metrics = None
        if self.acc.is_main_process and len(self.val_set) > 0:
            ids, views = self.val_shoe_ids(), self.cfg.train.val_views
            net = summarize(evaluate_shoes(self.net, self.eval_renderer, self.val_set, ids, views, self.device))
            tmpl = summarize(evaluate_shoes(self.net, self.eval_renderer, self.val_set, ids, views, self.device,
                                            template_only=True))
            metrics = {"step": self.step, "val_shoes": len(ids), "train/steps": self.step,
                       "train/minutes": self._train_seconds / 60, **{f"val/{k}": v for k, v in net.items()},
                       **{f"template/{k}": v for k, v in tmpl.items()}}
            self.logger.log({k: v for k, v in metrics.items() if "/" in k}, self.step)
            self.export_val_shoes(ids[: self.cfg.train.export_shoes])
            report = self.final_report()
            if report is not None:
                metrics.update({f"eval/{k}": v for k, v in report["summary"].items()})
            (self.run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2))
        self.acc.wait_for_everyone()
        return metrics

    def final_report(self) -> dict | None:
        """Issue-5 evaluation (2D input/novel, 3D, invariance, mesh quality) of some val shoes -> <run>/eval/."""
        if self.cfg.train.final_eval_shoes == 0:
            return None
        from shoerecon.eval.report import evaluate

        eval_cfg = dataclasses.replace(self.cfg.eval, max_shoes=self.cfg.train.final_eval_shoes,
                                       views=self.cfg.train.val_views)
        return evaluate(self.net, self.cfg, self.val_set, eval_cfg, out_dir=self.run_dir / "eval",
                        progress=True)

    def export_val_shoes(self, shoe_ids: Sequence[str]) -> None:
        """Predicted meshes of ``shoe_ids`` as OBJ+MTL+PNG and GLB under <run>/exports/."""
        from shoerecon.export.predict import export_mesh
        from shoerecon.geometry.mesh import Mesh

        self.net.eval()
        with torch.no_grad():
            for sid in shoe_ids:
                image = input_of(self.val_set, sid)[None].to(self.device)
                out = self.net(image)
                mesh = Mesh(out.verts[0].cpu(), self.net.faces.cpu(), self.net.uvs.cpu(), self.net.uv_faces.cpu(),
                            out.texture[0].float().cpu().clamp(0, 1))
                export_mesh(mesh, self.run_dir / "exports", sid, self.cfg.train.export_formats)

    # ---------------------------------------------------------------- checkpoints
    def save(self, filename: str) -> None:
        """All ranks: gather RNG states; main: write atomically (never with NaN/inf weights)."""
        from accelerate.utils import gather_object

        rng = [capture_rng_state()]
        rng = gather_object(rng) if self.acc.num_processes > 1 else rng
        if self.acc.is_main_process:
            state = build_checkpoint(
                self.net, config_to_dict(self.cfg), self.step, self.epoch, self.optimizer.optimizer
                if hasattr(self.optimizer, "optimizer") else self.optimizer, self.scheduler, self.acc.scaler, rng,
                extra={"batch_in_epoch": self.batch_in_epoch, "train_seconds": self._train_seconds_so_far(),
                       "novel_views": self.novel.state_dict_for_checkpoint() if self.novel is not None else {}})
            try:
                save_checkpoint(self.ckpt_dir / filename, state)
            except NonFiniteCheckpointError as err:
                warnings.warn(str(err))
            if filename.startswith("step_"):
                self._prune_periodic()
        self.acc.wait_for_everyone()

    def _train_seconds_so_far(self) -> float:
        """Wall-clock seconds of training loops, over resumes (evaluation at the end not included)."""
        running = time.monotonic() - self._loop_start if self._loop_start is not None else 0.0
        return self._train_seconds + running

    def _prune_periodic(self) -> None:
        keep = self.cfg.train.keep_checkpoints
        if keep <= 0:
            return
        for old in sorted(self.ckpt_dir.glob("step_*.pt"))[:-keep]:
            old.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ evaluation
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
        cams, masks, targets = (full[k].to(device) for k in ("cameras", "masks", "images"))
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
    return {k: float(np.mean([r[k] for r in rows])) for k in ("iou", "psnr")} if rows else {}


def main(config: str, overrides: Sequence[str] = (), resume: bool = False, overwrite: bool = False) -> dict | None:
    from shoerecon.train.config import load_config

    cfg = load_config(config, overrides)
    return Trainer(cfg, resume=resume, overwrite=overwrite).fit()
