"""Runs never overwrite runs: a folder with checkpoints needs --resume/--overwrite, a live run's lock stops a second
one at once, a killed run's lock and half-written checkpoint temporaries are cleaned up at the next start."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny import tiny_overrides

from shoerecon.train.run_dir import LOCK_NAME, RunDirError, claim_run_dir, process_start_time

REPO = Path(__file__).resolve().parents[2]


def test_folder_with_checkpoints_needs_resume_or_overwrite(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    (run / "logs").mkdir()
    (run / "logs" / "scalars.csv").write_text("step,wall_time,name,value\n1,0,loss,1\n")
    with pytest.raises(RunDirError, match=r"already holds a run \(checkpoints: last.pt\); pass --resume .* --overwrite"):
        claim_run_dir(run).release()
    claim_run_dir(run, resume=True).release()
    assert (run / "checkpoints" / "last.pt").exists()
    with pytest.raises(RunDirError, match="contradict"):
        claim_run_dir(run, resume=True, overwrite=True)
    claim_run_dir(run, overwrite=True).release()
    assert not (run / "checkpoints").exists() and not (run / "logs").exists()  # nothing of the old run mixes in
    claim_run_dir(run).release()  # an empty folder is free


def test_partial_checkpoint_writes_are_removed(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    partial = run / "checkpoints" / ".last.pt.k2j3h4.tmp"  # the name atomic_torch_save's temporaries have
    partial.write_bytes(b"half a checkpoint")
    (run / "checkpoints" / "last.pt").write_bytes(b"x")
    claim_run_dir(run, resume=True).release()
    assert not partial.exists() and (run / "checkpoints" / "last.pt").exists()


HOLDER = """
import sys, time
sys.path.insert(0, {repo!r})
from shoerecon.train.run_dir import claim_run_dir
claim_run_dir({run!r})
print("locked", flush=True)
time.sleep(120)
"""


def test_a_live_run_blocks_a_second_one_and_a_killed_run_does_not(tmp_path, capsys):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(repo=str(REPO), run=str(run))],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"in use by another run \\(pid {holder.pid} on "):
            claim_run_dir(run)
    finally:
        holder.send_signal(signal.SIGKILL)  # killed: no chance to remove its lock
        holder.wait()
    assert (run / LOCK_NAME).exists()
    lock = claim_run_dir(run)
    assert "stale lock" in capsys.readouterr().out
    assert json.loads((run / LOCK_NAME).read_text())["pid"] == os.getpid()
    lock.release()
    assert not (run / LOCK_NAME).exists()


def test_reused_pid_and_foreign_host_locks(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    parent = os.getppid()  # alive, but its start time is not the one recorded: the pid was reused
    assert process_start_time(parent) is not None
    (run / LOCK_NAME).write_text(json.dumps({"pid": parent, "host": socket.gethostname(), "start": "1"}))
    claim_run_dir(run).release()
    (run / LOCK_NAME).write_text(json.dumps({"pid": parent, "host": "elsewhere", "start": "1"}))
    with pytest.raises(RunDirError, match=f"delete {run / LOCK_NAME}"):
        claim_run_dir(run)


def test_experiments_run_refuses_a_second_run_with_one_line(tmp_path, capsys):
    sys.path.insert(0, str(REPO / "experiments"))
    try:
        import run as run_py
    finally:
        sys.path.pop(0)
    args = ["--config", str(REPO / "experiments/configs/base.yaml")]
    for o in tiny_overrides(str(tmp_path / "data"), str(tmp_path / "runs"), "twice", steps=1) + \
            ["train.final_eval_shoes=0", "train.export_shoes=0"]:
        args += ["--set", o]
    assert run_py.main(args) == 0
    capsys.readouterr()
    assert run_py.main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "already holds a run" in err and "Traceback" not in err
    assert len(err.splitlines()) == 1
    with pytest.raises(RunDirError):
        run_py.main(args + ["--debug"])
    assert run_py.main(args + ["--resume"]) == 0
