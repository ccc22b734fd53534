"""Scalar logs of a run: tensorboard event files and one CSV (``step,wall_time,name,value``).

The CSV is long-format so that scalars logged at different intervals (losses, validation) share
one file; ``read_scalars`` turns it back into ``{name: [(step, value), ...]}``.
"""
from __future__ import annotations

import csv
import time
from pathlib import Path
from typing import Mapping


class ScalarLogger:
    """Writes to ``<log_dir>/scalars.csv`` and tensorboard; a disabled logger (other ranks) does nothing."""

    def __init__(self, log_dir: str | Path, enabled: bool = True, tensorboard: bool = True):
        self.enabled = enabled
        self.log_dir = Path(log_dir)
        self._writer = None
        self._csv = None
        if not enabled:
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        path = self.log_dir / "scalars.csv"
        new = not path.exists() or path.stat().st_size == 0
        self._csv = open(path, "a", newline="")
        if new:
            self._csv.write("step,wall_time,name,value\n")
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(str(self.log_dir))

    def log(self, scalars: Mapping[str, float], step: int) -> None:
        if not self.enabled:
            return
        now = time.time()
        writer = csv.writer(self._csv)
        for name, value in scalars.items():
            writer.writerow([step, f"{now:.3f}", name, f"{float(value):.6g}"])
            if self._writer is not None:
                self._writer.add_scalar(name, float(value), step)
        self._csv.flush()

    def close(self) -> None:
        if self._csv is not None:
            self._csv.close()
            self._csv = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def read_scalars(path: str | Path) -> dict[str, list[tuple[int, float]]]:
    """``scalars.csv`` -> ``{name: [(step, value), ...]}`` in file order."""
    out: dict[str, list[tuple[int, float]]] = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            out.setdefault(row["name"], []).append((int(row["step"]), float(row["value"])))
    return out
