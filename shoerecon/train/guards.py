"""Guards that stop a run early and clearly instead of burning hours or losing work.

- ``DivergenceGuard``: ``train.max_skipped_steps`` consecutive skipped steps (non-finite loss or
  gradient), or a finite loss more than ``train.divergence_factor`` times the median of the recent
  ones, raise ``TrainingDiverged`` (run.py: one line, exit 1).
- ``check_train_values``: the values of ``train:`` that the type alone does not restrict.
- ``synthetic_banner``: the visible notice printed when synthetic data is generated for a run.
"""
from __future__ import annotations

import math
from collections import deque
from pathlib import Path
from statistics import median

from shoerecon.data.generate import synthetic_banner  # noqa: F401 (re-exported; data generation prints it)


class TrainingDiverged(RuntimeError):
    """Training stopped because it diverged; the message says why, where the last checkpoints are, what to try."""


class DivergenceGuard:
    """Watches the per-step results of the training loop.

    >>> g = DivergenceGuard(max_skipped=2, factor=10.0)
    >>> for s in range(12): g.update(s, skipped=False, loss=1.0)
    >>> g.update(12, skipped=True, loss=None)
    >>> g.update(13, skipped=True, loss=None)
    Traceback (most recent call last):
    ...
    shoerecon.train.guards.TrainingDiverged: training diverged at step 13: 2 consecutive steps had a non-finite loss or gradient (train.max_skipped_steps=2)
    """

    WINDOW = 50      # recent finite losses the median is taken over
    MIN_HISTORY = 10  # no explosion check before this many finite losses (the first steps move fast)

    def __init__(self, max_skipped: int = 20, factor: float | None = 100.0, hint: str = ""):
        self.max_skipped, self.factor, self.hint = max_skipped, factor, hint
        self.skipped_in_a_row = 0
        self.recent: deque[float] = deque(maxlen=self.WINDOW)

    @classmethod
    def for_run(cls, train_cfg, ckpt_dir: str | Path) -> "DivergenceGuard":
        hint = (f"; checkpoints from before are in {ckpt_dir}; try a lower train.lr (now {train_cfg.lr:g})"
                f"{'' if train_cfg.grad_clip is not None else ' or set train.grad_clip'}")
        return cls(train_cfg.max_skipped_steps, train_cfg.divergence_factor, hint)

    def update(self, step: int, skipped: bool, loss: float | None) -> None:
        """Record one step's outcome; raise ``TrainingDiverged`` when a stop criterion is met."""
        if skipped or loss is None or not math.isfinite(loss):
            self.skipped_in_a_row += 1
            if self.max_skipped and self.skipped_in_a_row >= self.max_skipped:
                raise TrainingDiverged(
                    f"training diverged at step {step}: {self.skipped_in_a_row} consecutive steps had a non-finite "
                    f"loss or gradient (train.max_skipped_steps={self.max_skipped}){self.hint}")
            return
        self.skipped_in_a_row = 0
        if self.factor and len(self.recent) >= self.MIN_HISTORY:
            ref = median(self.recent)
            if ref > 0 and loss > self.factor * ref:
                raise TrainingDiverged(
                    f"training diverged at step {step}: loss {loss:.4g} is more than {self.factor:g}x the median "
                    f"{ref:.4g} of the last {len(self.recent)} steps (train.divergence_factor){self.hint}")
        self.recent.append(loss)


def check_train_values(cfg) -> None:
    """ValueError naming the key for ``train:`` values outside their range (called by ``TrainConfig``)."""
    if not (isinstance(cfg.lr, (int, float)) and math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ValueError(f"train.lr must be a finite number > 0, got {cfg.lr!r}")
    for key in ("max_steps", "checkpoint_every", "epochs", "max_skipped_steps"):
        value = getattr(cfg, key)
        if value is not None and value < 0:
            raise ValueError(f"train.{key} must be >= 0, got {value!r}")
    if cfg.divergence_factor is not None and not cfg.divergence_factor > 1:
        raise ValueError(f"train.divergence_factor must be > 1 (or null: off), got {cfg.divergence_factor!r}")
