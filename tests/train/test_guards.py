"""Guards: divergence stops the run with an error, config values are range-checked (errors name the key and the
override), a missing data.root is generated only on request (with a banner), a full disk is one clear line."""
from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
import torch
from tiny import tiny_overrides

from shoerecon.train import checkpoint as ck
from shoerecon.train.config import ConfigError, load_config
from shoerecon.train.guards import DivergenceGuard, TrainingDiverged

REPO = Path(__file__).resolve().parents[2]
BASE = REPO / "experiments/configs/base.yaml"


def test_consecutive_skipped_steps_stop_and_a_good_step_resets():
    g = DivergenceGuard(max_skipped=3, factor=None)
    for step in range(10):  # two bad, one good, repeatedly: never 3 in a row
        g.update(step, skipped=step % 3 != 2, loss=None if step % 3 != 2 else 1.0)
    g.update(10, True, None)
    with pytest.raises(TrainingDiverged, match="step 11: 3 consecutive steps .*max_skipped_steps=3"):
        g.update(11, True, float("nan"))
    off = DivergenceGuard(max_skipped=0, factor=None)
    for step in range(100):
        off.update(step, True, None)


def test_exploding_loss_stops():
    g = DivergenceGuard(max_skipped=20, factor=100.0)
    for step in range(20):
        g.update(step, False, 2.0 - 0.05 * step)  # a normal, decreasing loss
    g.update(20, False, 50.0)  # a spike of 50x the median is tolerated
    with pytest.raises(TrainingDiverged, match=r"step 21: loss 1e\+04 is more than 100x the median"):
        g.update(21, False, 1e4)


@pytest.mark.parametrize("override, match", [
    ("train.lr=0", "train.lr must be a finite number > 0, got 0.0"),
    ("train.lr=-1e-3", "train.lr must be a finite number > 0"),
    ("train.lr=.nan", "train.lr must be a finite number > 0, got nan"),
    ("train.lr=.inf", "train.lr must be a finite number > 0, got inf"),
    ("train.max_steps=-1", "train.max_steps must be >= 0, got -1"),
    ("train.checkpoint_every=-5", "train.checkpoint_every must be >= 0, got -5"),
    ("train.batch_size=abc", "'train.batch_size': expected int, got 'abc'"),
    ("train.lr=fast", "'train.lr': expected float, got 'fast'"),
])
def test_bad_values_name_the_key_and_the_override(override, match):
    with pytest.raises(ConfigError) as err:
        load_config(BASE, ["train.name=x", override])
    assert str(err.value).startswith(f"override {override!r}"), str(err.value)  # not the YAML file
    assert match in str(err.value)


def test_a_bad_value_in_the_yaml_still_names_the_yaml(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  lr: -1\n")
    with pytest.raises(ConfigError, match=r"c\.yaml: .*train.lr must be a finite number > 0"):
        load_config(tmp_path / "c.yaml", ["train.name=x"])


def test_save_on_a_full_disk_is_one_line_naming_the_intact_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "checkpoints" / "last.pt"
    ck.save_checkpoint(path, {"model": {"w": torch.ones(1)}, "config": {}, "step": 7})
    real_save = torch.save

    def full_disk(obj, f, *a, **k):
        f.write(b"first bytes")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(ck.CheckpointError) as err:
        ck.save_checkpoint(path, {"model": {"w": torch.zeros(1)}, "config": {}, "step": 8})
    monkeypatch.setattr(torch, "save", real_save)
    msg = str(err.value)
    assert msg == f"could not write {path} (step 8): the disk is full; {path} (step 7) is intact"
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left
    assert ck.load_checkpoint(path)["step"] == 7


def _run_py():
    sys.path.insert(0, str(REPO / "experiments"))
    try:
        import run
    finally:
        sys.path.pop(0)
    return run


def _args(tmp_path, name, extra=(), synthetic=True):
    args = ["--config", str(BASE)]
    sets = tiny_overrides(str(tmp_path / "data"), str(tmp_path / "runs"), name, steps=6) + \
        ["train.final_eval_shoes=0", "train.export_shoes=0", *extra]
    if not synthetic:
        sets = [s for s in sets if not s.startswith("synthetic.enabled")]
    for o in sets:
        args += ["--set", o]
    return args


def test_missing_data_root_is_an_error_unless_synthetic_data_is_asked_for(tmp_path, capsys):
    run = _run_py()
    assert run.main(_args(tmp_path, "real", synthetic=False)) == 1  # base.yaml: synthetic.enabled false
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: data folder") and "does not exist" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "data").exists()


def test_divergence_and_full_disk_stop_training_with_one_line(tmp_path, capsys, monkeypatch):
    run = _run_py()
    # a NaN loss weight makes every step non-finite: stopped after train.max_skipped_steps, exit 1
    from shoerecon.losses import LossConfig

    weight = "losses.silhouette" if isinstance(LossConfig().silhouette, float) else "losses.silhouette.weight"
    assert run.main(_args(tmp_path, "nan", [f"{weight}=.nan", "train.max_skipped_steps=3"])) == 1
    out, err = capsys.readouterr()
    assert "SYNTHETIC DATA" in out  # the banner of the generated dataset
    assert err.strip().splitlines()[-1].startswith("error: training diverged at step 2: 3 consecutive steps")
    # a full disk at the second checkpoint: one line naming the file and the intact step-1 checkpoint
    real_save = torch.save
    calls = []

    def fill_up(obj, f, *a, **k):
        calls.append(1)
        if len(calls) > 2:  # step 1 writes step_0000001.pt and last.pt, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", fill_up)
    assert run.main(_args(tmp_path, "full", ["train.checkpoint_every=1"])) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    ckpts = tmp_path / "runs" / "full" / "checkpoints"
    assert err == (f"error: could not write {ckpts / 'step_0000002.pt'} (step 2): the disk is full; "
                   f"{ckpts / 'step_0000001.pt'} (step 1) is intact") or \
        err == (f"error: could not write {ckpts / 'step_0000002.pt'} (step 2): the disk is full; "
                f"{ckpts / 'last.pt'} (step 1) is intact"), err
