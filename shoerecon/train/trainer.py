"""The training loop: seeded data order -> ``ReconSystem`` step -> accelerate update -> hooks.

One ``Trainer`` runs the same way under ``python experiments/run.py`` and ``accelerate launch``. What a step
computes is the system's (``system.py``); data order is ``shoerecon.data.sampler``'s (a resumed run sees
exactly the batches of an uninterrupted one); logging, samples, validation, checkpoints, remeshing and the
end-of-run metrics/exports/report are hooks (``hooks.py``). Every random draw of a step comes from a
generator seeded by (seed, step, rank), so resumed runs repeat them exactly.

Run folder ``<out_dir>/<name>/``: ``config.yaml`` (resolved), ``checkpoints/`` (``last.pt`` +
periodic), ``logs/`` (tensorboard + ``scalars.csv``), ``samples/`` (PNG grids: input | renders |
targets), ``exports/`` (OBJ + GLB of validation shoes), ``eval/`` (the full report),
``metrics.json`` (final validation, the report's summary, training steps and minutes).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import torch
from accelerate.utils import gather_object, set_seed
from torch import Tensor
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from shoerecon.data import TurntableDataset
from shoerecon.data.batch import TrainBatch
from shoerecon.data.generate import ensure_dataset
from shoerecon.data.sampler import SeededItems, ShardedEpochBatches, capture_rng_state, restore_rng_state
from shoerecon.train.accelerator import build_accelerator
from shoerecon.train.checkpoint import (
    NonFiniteCheckpointError, build_checkpoint, load_checkpoint, restore_model_template, save_checkpoint,
)
from shoerecon.train.config import ExperimentConfig, config_to_dict, load_config, save_config
from shoerecon.train.guards import DivergenceGuard
from shoerecon.train.hooks import Hook, default_hooks
from shoerecon.train.logging import ScalarLogger
from shoerecon.train.run_dir import claim_run_dir
from shoerecon.train.system import ReconSystem, check_config, step_generator


def to_device(batch: TrainBatch | Mapping, device) -> TrainBatch | dict:
    if isinstance(batch, TrainBatch):
        return batch.to(device, non_blocking=True)
    return {k: v.to(device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}


@dataclass
class StepResult:
    skipped: bool
    losses: dict[str, float]
    grad_norm: float


class Trainer:
    """Builds everything from one ExperimentConfig; ``fit()`` trains, then runs the end-of-run hooks."""

    def __init__(self, cfg: ExperimentConfig, resume: bool = False, accelerator=None,
                 hooks: Sequence[Hook] | None = None, overwrite: bool = False):
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
            ensure_dataset(cfg.data.root, cfg.synthetic, cfg.synth, cfg.data.image_size)
        self.acc.wait_for_everyone()

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
        self.system = ReconSystem(cfg, self.device)
        self.net = self.system.net
        self.step, self.epoch, self.batch_in_epoch = 0, 0, 0
        state = self._find_resume_state() if resume else None
        if state is not None:
            restore_model_template(self.net, state)
            self.net.load_state_dict(state["model"])
        self.system.build()
        self.optimizer, self.scheduler = self.system.make_optimizer(self.total_steps)
        if state is not None:
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.system.load_checkpoint_extra(state["extra"])
        self.model, self.optimizer = self.acc.prepare(self.net, self.optimizer)
        self.hooks = list(hooks) if hooks is not None else default_hooks(cfg)
        self._train_seconds = float(state["extra"].get("train_seconds", 0.0)) if state is not None else 0.0
        self._loop_start: float | None = None
        self.last_renders: Tensor | None = None
        if state is not None:
            self._restore_progress(state)
        else:
            set_seed(t.seed + 7919 * self.acc.process_index)  # per-rank stream for model-side randomness
        self.logger = ScalarLogger(self.run_dir / "logs", enabled=self.acc.is_main_process)

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
        if self.acc.process_index < len(rng):
            restore_rng_state(rng[self.acc.process_index])
        if self.acc.is_main_process:
            print(f"resumed from {self.ckpt_dir / 'last.pt'} at step {self.step} (epoch {self.epoch})")

    # ---------------------------------------------------------------- one step
    def step_generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator for the random draws of the current step: same (seed, step, rank) -> same draws."""
        return step_generator(self.cfg.train.seed, self.step, self.acc.process_index, salt)

    def compute(self, batch: TrainBatch, model=None) -> tuple[dict[str, Tensor], object, Tensor]:
        """Forward: network on the input views, render its meshes from the target cameras, losses
        (the novel-view terms' extra scalars, e.g. the critic's, go to ``self.step_stats``)."""
        losses, out, renders, self.step_stats = self.system.compute(
            model or self.model, batch, self.step_generator(salt=1), self.acc, self.acc.autocast(), step=self.step)
        return losses, out, renders

    def train_step(self, batch: TrainBatch) -> StepResult:
        """One optimizer step; a NaN/inf loss (on any rank) or gradient skips it on every rank."""
        self.model.train()
        batch = self.system.prepare_input(batch, self.step_generator())
        losses, out, renders = self.compute(batch)
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
        self.last_renders = renders
        values = {k: float(v.detach()) for k, v in losses.items() if isinstance(v, Tensor) and v.numel() == 1}
        values.update({f"critic/{k}": v for k, v in getattr(self, "step_stats", {}).items()})
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
        Returns the final metrics (main process) when training completes."""
        end = self.total_steps if stop_at_step is None else min(stop_at_step, self.total_steps)
        self._start = self._loop_start = time.monotonic()
        bar = tqdm(total=self.total_steps, initial=self.step, desc=self.cfg.train.name, dynamic_ncols=True,
                   disable=not self.acc.is_main_process)
        guard = DivergenceGuard.for_run(self.cfg.train, self.ckpt_dir)  # stops a diverged run (train/guards.py)
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
                bar.update(1)
                if result.losses.get("total") is not None:
                    bar.set_postfix(loss=f"{result.losses['total']:.4f}", refresh=False)
                for hook in self.hooks:
                    hook.on_step_end(self, batch, result)
                if self._out_of_time():
                    end = self.total_steps = self.step
                if self.step >= end:
                    break
            if self.batch_in_epoch >= self.sampler.batches_per_epoch:
                self.epoch += 1
                self.batch_in_epoch = 0
                for hook in self.hooks:
                    hook.on_epoch_end(self)
        bar.close()
        self._train_seconds, self._loop_start = self.train_seconds, None
        self.save("last.pt")
        if self.step < self.total_steps:
            return None
        metrics = self.finish()
        self.logger.close()
        return metrics

    def finish(self) -> dict | None:
        """The end-of-run hooks (main process, when there are validation shoes) -> metrics.json."""
        metrics = None
        if self.acc.is_main_process and len(self.val_set) > 0:
            metrics = {}
            for hook in self.hooks:
                hook.on_fit_end(self, metrics)
        self.acc.wait_for_everyone()
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

    def val_shoe_ids(self) -> list[str]:
        ids = list(self.val_set.shoe_ids)
        return ids[: self.cfg.train.val_shoes] if self.cfg.train.val_shoes is not None else ids

    @property
    def train_seconds(self) -> float:
        """Wall-clock seconds of training loops, over resumes (evaluation at the end not included)."""
        running = time.monotonic() - self._loop_start if self._loop_start is not None else 0.0
        return self._train_seconds + running

    # ---------------------------------------------------------------- checkpoints
    def save(self, filename: str) -> None:
        """All ranks: gather RNG states; main: write atomically (never with NaN/inf weights)."""
        rng = [capture_rng_state()]
        rng = gather_object(rng) if self.acc.num_processes > 1 else rng
        if self.acc.is_main_process:
            optimizer = getattr(self.optimizer, "optimizer", self.optimizer)
            state = build_checkpoint(
                self.net, config_to_dict(self.cfg), self.step, self.epoch, optimizer, self.scheduler, self.acc.scaler,
                rng, extra={"batch_in_epoch": self.batch_in_epoch, "train_seconds": self.train_seconds,
                            **self.system.checkpoint_extra()})
            try:
                save_checkpoint(self.ckpt_dir / filename, state)
            except NonFiniteCheckpointError as err:
                warnings.warn(str(err))
            if filename.startswith("step_"):
                self._prune_periodic()
        self.acc.wait_for_everyone()

    def _prune_periodic(self) -> None:
        keep = self.cfg.train.keep_checkpoints
        if keep > 0:
            for old in sorted(self.ckpt_dir.glob("step_*.pt"))[:-keep]:
                old.unlink(missing_ok=True)


def main(config: str, overrides: Sequence[str] = (), resume: bool = False, overwrite: bool = False) -> dict | None:
    return Trainer(load_config(config, overrides), resume=resume, overwrite=overwrite).fit()
