import json
import math
import os
import socket
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tiny import tiny_overrides
from shoerecon.train.checkpoint import load_checkpoint
from shoerecon.train.config import config_to_dict, load_config
from shoerecon.train.logging import read_scalars
from shoerecon.train.trainer import Trainer

REPO = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """One tiny dataset per test module; the first trainer generates it (synthetic.enabled)."""
    return str(tmp_path_factory.mktemp("data") / "synthetic")


def tiny(data_root, out_dir, name="tiny", steps=3, extra=()):
    return load_config(None, tiny_overrides(data_root, str(out_dir), name, steps) + list(extra))


def params(trainer):
    return {k: v.detach().clone() for k, v in trainer.net.state_dict().items()}


def test_end_to_end_run_py_writes_the_run_folder(data_root, tmp_path):
    sys.path.insert(0, str(REPO / "experiments"))
    import run

    cfg_file = tmp_path / "tiny.yaml"
    cfg_file.write_text(f"base: {REPO / 'experiments/configs/base.yaml'}\ntrain:\n  name: e2e\n")
    overrides = tiny_overrides(data_root, str(tmp_path / "runs"), "e2e", 3)
    argv = ["--config", str(cfg_file)] + [a for o in overrides for a in ("--set", o)]
    assert run.main(argv) == 0
    run_dir = tmp_path / "runs/e2e"
    plain = lambda c: config_to_dict(c)  # noqa: E731  (YAML has lists where dataclass defaults have tuples)
    assert plain(load_config(run_dir / "config.yaml")) == plain(load_config(cfg_file, overrides))
    state = load_checkpoint(run_dir / "checkpoints/last.pt")
    assert state["step"] == 3
    scalars = read_scalars(run_dir / "logs/scalars.csv")
    assert [s for s, _ in scalars["loss/total"]] == [1, 2, 3]
    assert all(math.isfinite(v) for _, v in scalars["loss/total"])
    assert list((run_dir / "logs").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (run_dir / "samples").glob("*.png")) == ["step_0000002.png"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert 0 <= metrics["val/iou"] <= 1 and 0 <= metrics["template/iou"] <= 1 and metrics["step"] == 3
    # The run ends with the issue-5 report and textured exports of validation shoes.
    assert 0 <= metrics["eval/novel/silhouette_iou"] <= 1 and "eval/3d/chamfer_l2" in metrics
    assert (run_dir / "eval/metrics.json").is_file() and (run_dir / "eval/grid.png").is_file()
    exported = {p.suffix for p in (run_dir / "exports").iterdir()}
    assert {".obj", ".mtl", ".png", ".glb"} <= exported


def test_nan_loss_skips_the_step_and_never_reaches_a_checkpoint(data_root, tmp_path, monkeypatch):
    trainer = Trainer(tiny(data_root, tmp_path, steps=3, extra=["train.checkpoint_every=1"]))
    real_compute = trainer.compute
    snapshots = {}

    def poisoned(batch, model=None):
        losses, out, renders = real_compute(batch, model)
        if trainer.step == 1:  # the second step
            snapshots["before"] = params(trainer)
            losses["total"] = losses["total"] * float("nan")
        return losses, out, renders

    monkeypatch.setattr(trainer, "compute", poisoned)
    with pytest.warns(UserWarning, match="step 1: non-finite loss.*skipped"):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / "tiny/checkpoints/step_0000002.pt")
    for k, v in snapshots["before"].items():  # the skipped step changed nothing
        assert torch.equal(ckpt["model"][k], v), k
    last = load_checkpoint(tmp_path / "tiny/checkpoints/last.pt")
    assert all(torch.isfinite(v).all() for v in last["model"].values() if v.is_floating_point())
    skipped = dict(read_scalars(tmp_path / "tiny/logs/scalars.csv")["skipped"])
    assert skipped == {1: 0.0, 2: 1.0, 3: 0.0}

    # NaN weights: the checkpoint is refused, the previous last.pt stays
    with torch.no_grad():
        next(trainer.net.parameters()).fill_(float("nan"))
    with pytest.warns(UserWarning, match="NaN/inf"):
        trainer.save("last.pt")
    assert load_checkpoint(tmp_path / "tiny/checkpoints/last.pt")["step"] == 3


def test_resume_continues_exactly(data_root, tmp_path):
    extra = ["train.lr_schedule=cosine", "train.warmup_steps=2", "train.lr=1e-3"]
    straight = Trainer(tiny(data_root, tmp_path / "a", steps=5, extra=extra))
    straight.fit()

    first = Trainer(tiny(data_root, tmp_path / "b", steps=5, extra=extra))
    assert first.fit(stop_at_step=2) is None
    del first
    resumed = Trainer(tiny(data_root, tmp_path / "b", steps=5, extra=extra), resume=True)
    assert resumed.step == 2
    resumed.fit()
    assert resumed.step == 5
    a, b = params(straight), params(resumed)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-5, atol=1e-6, msg=k)
    # and the run did move away from its start
    fresh = Trainer(tiny(data_root, tmp_path / "c", steps=5, extra=extra))
    assert any(not torch.allclose(fresh.net.state_dict()[k].float(), a[k].float()) for k in a)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DRIVER = """
import hashlib, json, os, sys
sys.path.insert(0, {tests!r})
from tiny import tiny_overrides
import torch
from shoerecon.train.config import config_to_dict, load_config
from shoerecon.train.trainer import Trainer

trainer = Trainer(load_config(None, tiny_overrides({root!r}, {out!r}, "ddp", 2)))
seen = []
step = trainer.train_step
def recording(batch):
    seen.extend(batch["shoe_id"])
    return step(batch)
trainer.train_step = recording
trainer.fit()
blob = b"".join(v.detach().cpu().numpy().tobytes() for v in trainer.net.state_dict().values())
rank = trainer.acc.process_index
with open(os.path.join({out!r}, f"rank{{rank}}.json"), "w") as f:
    json.dump({{"rank": rank, "world": trainer.acc.num_processes, "type": str(trainer.acc.distributed_type),
               "seen": seen, "hash": hashlib.sha256(blob).hexdigest()}}, f)
"""


def run_process_group(cmd: list, timeout: float, **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` whose timeout also kills the launcher's workers. accelerate's ranks are grandchildren:
    a plain timeout killed only the launcher and left both ranks waiting on each other for good (two orphans were
    found 43 minutes after such a timeout on a loaded machine)."""
    proc = subprocess.Popen(cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            **kwargs)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail(f"{' '.join(map(str, cmd[:4]))} ... did not finish in {timeout} s; its process group was killed")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


@pytest.mark.slow
def test_two_cpu_processes_are_really_data_parallel(data_root, tmp_path):
    out = tmp_path / "runs"
    out.mkdir()
    Trainer(tiny(data_root, tmp_path / "gen", steps=1))  # make sure the dataset exists
    driver = tmp_path / "driver.py"
    driver.write_text(DRIVER.format(tests=str(Path(__file__).parent), root=data_root, out=str(out)))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ACCELERATE_", "WORLD_SIZE", "RANK"))}
    env.update(OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
           "--main_process_port", str(_free_port()), str(driver)]
    proc = run_process_group(cmd, timeout=240, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["rank"] for r in ranks] == [0, 1]
    assert all(r["world"] == 2 and "MULTI_CPU" in r["type"] for r in ranks)
    # data sharded: 3 training shoes, batch 1 x 2 ranks -> 1 step per epoch, 2 steps, different shoes per step
    assert len(ranks[0]["seen"]) == len(ranks[1]["seen"]) == 2
    assert all(a != b for a, b in zip(ranks[0]["seen"], ranks[1]["seen"]))
    # gradients synchronised: identical parameters at the end
    assert ranks[0]["hash"] == ranks[1]["hash"]
