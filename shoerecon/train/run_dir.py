"""A run folder belongs to one run: lock it, never start over a finished or interrupted run by accident.

``claim_run_dir(run_dir, resume, overwrite)`` (main process) before anything is written there:

- ``<run>/.lock`` holds ``{"pid", "host", "start"}`` of the run that owns the folder. It is created
  atomically (``os.link`` of a complete temporary file), so a second run started at the same time fails
  at once. A lock whose process is gone (same host, pid not alive, or alive but started at another
  time: the pid was reused) is stale, from a killed run, and is taken over. A lock from another host
  cannot be checked: the message says how to remove it.
- A folder that already holds checkpoints is refused unless ``resume`` (continue it) or ``overwrite``
  (delete its checkpoints, logs, samples, exports and metrics, then start over).
- Temporary files of a checkpoint write that was killed half-way (``checkpoints/.*.tmp``) are removed.

The lock is released when the run ends (``RunLock.release``, also at interpreter exit).
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

LOCK_NAME = ".lock"
RUN_OUTPUTS = ("checkpoints", "logs", "samples", "exports", "eval", "metrics.json", "config.yaml")


class RunDirError(RuntimeError):
    """The run folder is in use or holds a run that would be overwritten; the message says what to do."""


def process_start_time(pid: int) -> str | None:
    """Start time of ``pid`` in clock ticks since boot (Linux ``/proc``), to tell a reused pid; None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]  # field 22 overall; fields after the (comm) start at 3


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def lock_is_stale(info: dict) -> bool:
    """A lock of this host whose process is gone (or whose pid now belongs to a younger process)."""
    if info.get("host") != socket.gethostname():
        return False
    pid = int(info.get("pid", -1))
    if pid <= 0 or not pid_alive(pid):
        return True
    start = info.get("start")
    return start is not None and process_start_time(pid) not in (None, start)


@dataclass
class RunLock:
    path: Path
    released: bool = False

    def release(self) -> None:
        """Remove the lock if it is still ours (idempotent)."""
        if self.released:
            return
        self.released = True
        try:
            if json.loads(self.path.read_text()).get("pid") == os.getpid():
                self.path.unlink()
        except (OSError, ValueError):
            pass


def acquire_lock(run_dir: Path) -> RunLock:
    """Create ``run_dir/.lock`` for this process; take over a stale one; RunDirError if a live run holds it."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lock = run_dir / LOCK_NAME
    me = {"pid": os.getpid(), "host": socket.gethostname(), "start": process_start_time(os.getpid())}
    fd, tmp = tempfile.mkstemp(prefix=".lock.", suffix=".tmp", dir=run_dir)
    with os.fdopen(fd, "w") as f:
        json.dump(me, f)
    try:
        for _ in range(3):
            try:
                os.link(tmp, lock)  # atomic: fails if the lock exists, never leaves a half-written one
                break
            except FileExistsError:
                try:
                    info = json.loads(lock.read_text())
                except (OSError, ValueError):
                    info = {}
                if info.get("pid") == me["pid"] and info.get("host") == me["host"]:
                    break  # this process already owns it (a second Trainer in the same process)
                if not lock_is_stale(info):
                    raise RunDirError(
                        f"{run_dir} is in use by another run (pid {info.get('pid')} on {info.get('host')}, "
                        f"lock {lock}); choose another train.name, or wait for it to finish. If that run is "
                        f"dead (e.g. on another machine), delete {lock}") from None
                print(f"{run_dir}: removing the stale lock of a killed run (pid {info.get('pid')})")
                lock.unlink(missing_ok=True)
        else:
            raise RunDirError(f"{run_dir}: could not take the lock {lock}")
    finally:
        os.unlink(tmp)
    held = RunLock(lock)
    atexit.register(held.release)
    return held


def remove_partial_writes(run_dir: Path) -> list[Path]:
    """Delete temporaries of checkpoint/model writes that a kill interrupted (``.<name>.*.tmp``)."""
    removed = []
    for folder in (run_dir, run_dir / "checkpoints"):
        for tmp in folder.glob(".*.tmp") if folder.is_dir() else ():
            if tmp.name.startswith(".lock."):
                continue
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    if removed:
        print(f"{run_dir}: removed {len(removed)} partial file(s) of an interrupted checkpoint write")
    return removed


def check_not_overwriting(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """RunDirError if ``run_dir`` holds checkpoints and neither ``resume`` nor ``overwrite`` is given;
    with ``overwrite``, delete the earlier run's outputs (so nothing of it mixes into the new one)."""
    ckpts = sorted((run_dir / "checkpoints").glob("*.pt")) if (run_dir / "checkpoints").is_dir() else []
    if not ckpts or resume:
        return
    if not overwrite:
        names = ", ".join(p.name for p in ckpts[:3]) + (" ..." if len(ckpts) > 3 else "")
        raise RunDirError(
            f"{run_dir} already holds a run (checkpoints: {names}); pass --resume to continue it, --overwrite to "
            f"delete it and start over, or choose another train.name")
    for name in RUN_OUTPUTS:
        target = run_dir / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    print(f"{run_dir}: --overwrite: deleted the earlier run's checkpoints, logs and outputs")


def claim_run_dir(run_dir: str | Path, resume: bool = False, overwrite: bool = False) -> RunLock:
    """Lock ``run_dir`` for this run, clean partial writes, refuse to replace a run; see the module doc."""
    if resume and overwrite:
        raise RunDirError("--resume and --overwrite contradict each other; pass one")
    run_dir = Path(run_dir)
    lock = acquire_lock(run_dir)
    try:
        remove_partial_writes(run_dir)
        check_not_overwriting(run_dir, resume, overwrite)
    except BaseException:
        lock.release()
        raise
    return lock
