"""experiments/ablate.py: budget flattening, the table builder on fake run folders, and one smoke run end to end."""
from __future__ import annotations

import functools
import importlib.util
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from shoerecon.train.config import config_from_dict, deep_merge, load_config, parse_override, read_yaml_tree

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "experiments" / "configs"
SMOKE = CONFIGS / "budgets" / "smoke.yaml"
CPU = CONFIGS / "budgets" / "cpu.yaml"


def _load_ablate():
    spec = importlib.util.spec_from_file_location("ablate", REPO / "experiments" / "ablate.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["ablate"] = module
    spec.loader.exec_module(module)
    return module


ablate = _load_ablate()


# ------------------------------------------------------------------------------------------ flattening
@pytest.mark.parametrize("budget", [CPU, SMOKE], ids=["cpu", "smoke"])
@pytest.mark.parametrize("config", ["base.yaml", "v2_full.yaml", "ablations/gan.yaml"])
def test_flattened_budget_equals_deep_merge(budget, config):
    tree = yaml.safe_load(budget.read_text())
    expected = config_from_dict(deep_merge(read_yaml_tree(CONFIGS / config), tree))
    assert load_config(CONFIGS / config, ablate.flatten_overrides(tree)) == expected


def test_flatten_tricky_values_round_trip():
    tree = {"train": {"mixed_precision": "no", "lr": 1e-5, "val_views": [0, 3], "val_shoes": None,
                      "name": "a=b: c", "betas": [0.5, 0.9]},
            "losses": {"adversarial": {"critic": {"norm": "layer", "base_channels": 8}}}, "eval": {"lpips": "off"}}
    flat = ablate.flatten_overrides(tree)
    assert len(flat) == 9  # one per leaf
    cfg = load_config(CONFIGS / "base.yaml", flat)
    assert cfg == config_from_dict(deep_merge(read_yaml_tree(CONFIGS / "base.yaml"), tree))
    assert (cfg.train.mixed_precision, cfg.train.name, cfg.eval.lpips) == ("no", "a=b: c", "off")
    assert cfg.losses.adversarial.critic.norm == "layer" and cfg.train.val_views == [0, 3] and cfg.train.lr == 1e-5


def test_flatten_rejects_dotted_keys():
    with pytest.raises(ValueError, match="a.b"):
        ablate.flatten_overrides({"train": {"a.b": 1}})


_keys = st.text("abcxyz_", min_size=1, max_size=4)
_leaves = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=False)
           | st.text(max_size=8) | st.lists(st.integers(-5, 5) | st.text("ab: -", max_size=3), max_size=3))
_trees = st.recursive(_leaves, lambda ch: st.dictionaries(_keys, ch, max_size=3), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(base=st.dictionaries(_keys, _trees, max_size=3), tree=st.dictionaries(_keys, _trees, max_size=3))
def test_flatten_property_matches_nested_merge(base, tree):
    """Applying the dotted overrides one by one (as load_config does) == merging the nested tree at once."""
    merged = functools.reduce(deep_merge, (parse_override(o) for o in ablate.flatten_overrides(tree)), base)
    assert merged == deep_merge(base, tree)


def test_run_overrides_fix_name_seed_and_threads():
    budget = ablate.flatten_overrides({"train": {"cpu_threads": 2, "seed": 5, "name": "x"}})
    over = ablate.run_overrides(budget, ["train.lr=0.01"], Path("/tmp/o u t"), "ablations/augment", seed=3, jobs=2)
    cfg = load_config(CONFIGS / "ablations" / "augment.yaml", over)
    assert (cfg.train.out_dir, cfg.train.name, cfg.train.seed) == ("/tmp/o u t", "ablations/augment", 3)
    assert cfg.train.cpu_threads == 1 and cfg.train.lr == 0.01 and cfg.augment.enabled
    single = load_config(CONFIGS / "base.yaml", ablate.run_overrides(budget, [], Path("o"), "base", 0, jobs=1))
    assert single.train.cpu_threads == 2  # one job at a time: the budget's threads stand


def test_every_shipped_config_loads_with_the_budgets():
    for path in ablate.default_configs():
        for budget in (CPU, SMOKE):
            load_config(path, ablate.flatten_overrides(ablate.load_budget(budget)))
    assert {ablate.config_label(p) for p in ablate.default_configs()} >= {
        "base", "v2_full", "ablations/spherical_uv", "ablations/flow_smooth", "ablations/augment",
        "ablations/remesh", "ablations/variance_multiply", "ablations/variance_gradient_only",
        "ablations/align", "ablations/gan", "ablations/fid"}
    labels = [ablate.config_label(p) for p in ablate.default_configs()]
    assert labels[:3] == ["base", "v2_full", "v2_fast"]  # v2_fast's speed trade next to what it trades against


def test_bad_budget_is_a_clear_error(tmp_path, capsys):
    bad = tmp_path / "budget.yaml"
    bad.write_text("train:\n  max_stepz: 3\n")
    assert ablate.main(["--budget", str(bad), "--out", str(tmp_path / "out"), "--configs", "base"]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "max_stepz" in err and "max_steps" in err


# ------------------------------------------------------------------------------------------ table
BASE = {"train/steps": 500, "train/minutes": 4.0, "val/iou": 0.9, "eval/novel/psnr": 20.0, "eval/novel/ssim": 0.8,
        "eval/invariance/mean": 2e-4, "eval/3d/fscore@0.02": 0.7, "eval/quality/min_angle_deg": 5.0}
AUG = {"train/steps": 480, "train/minutes": 4.5, "val/iou": 0.92, "eval/novel/psnr": 19.5, "eval/novel/ssim": 0.8,
       "eval/invariance/mean": 5e-5, "eval/quality/min_angle_deg": 7.5}   # no F@2%: n/a
# the columns these keys feed (written out here, independently of ablate.COLUMNS)
TITLES = {"val/iou": "val IoU", "eval/novel/psnr": "novel PSNR", "eval/novel/ssim": "novel SSIM",
          "eval/invariance/mean": "invariance CD", "eval/3d/fscore@0.02": "F@2%", "eval/quality/min_angle_deg": "min angle"}


def _fake_runs(out: Path) -> None:
    for label, metrics in (("base", BASE), ("ablations/augment", AUG)):
        (out / label).mkdir(parents=True)
        (out / label / "metrics.json").write_text(json.dumps(metrics))
    log, status = ablate.log_paths(out, "ablations/remesh")
    status.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("Traceback (most recent call last):\nRuntimeError: remesh exploded\n")
    status.write_text(json.dumps({"config": "ablations/remesh", "config_path": "x", "status": "failed",
                                  "returncode": 1, "log": str(log), "error": "RuntimeError: remesh exploded"}))


def _md_rows(md: str) -> dict[str, dict[str, str]]:
    """{section heading: {row name: cells}} of every markdown table, keyed by the header titles (arrows dropped)."""
    tables, header, section = {}, None, "main"
    for line in md.splitlines():
        if line.startswith("## "):
            section, header = line[3:], None
        if not line.startswith("|") or line.startswith("|---"):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = [c.rstrip(" ↑↓") for c in cells]
            continue
        tables.setdefault(section, {})[cells[0]] = dict(zip(header, cells))
    return tables


def test_table_from_fake_runs(tmp_path):
    out = tmp_path / "out"
    _fake_runs(out)
    code = ablate.main(["--table-only", "--out", str(out), "--budget", str(SMOKE),
                        "--configs", "base", "ablations/augment", "ablations/remesh", "ablations/gan"])
    assert code == 0
    md = (out / "ablation.md").read_text()
    tables = _md_rows(md)
    main, diff = tables["main"], tables["Differences against `base`"]
    assert list(main) == ["base", "ablations/augment", "ablations/remesh", "ablations/gan"]
    assert [main[r]["status"] for r in main] == ["ok", "ok", "failed", "missing"]
    assert main["base"]["steps"] == "500" and main["ablations/augment"]["train min"] == "4.5"
    assert main["base"]["novel PSNR"] == "20" and main["ablations/augment"]["val IoU"] == "0.92"
    assert main["ablations/augment"]["F@2%"] == "n/a" and main["base"]["novel LPIPS"] == "n/a"
    assert all(v == "n/a" for k, v in main["ablations/remesh"].items() if k not in ("config", "status"))
    assert "remesh exploded" in md
    data = json.loads((out / "ablation.json").read_text())
    rows = {r["config"]: r for r in data["rows"]}
    assert rows["ablations/augment"]["metrics"] == AUG
    for key, title in TITLES.items():
        want = AUG[key] - BASE[key] if key in AUG and key in BASE else None
        got = data["deltas"]["ablations/augment"][title]
        assert (got is None and want is None) or math.isclose(got, want, rel_tol=1e-12), (title, got, want)
        cell = diff["ablations/augment"][title]
        assert cell == "n/a" if want is None else cell.startswith(f"{want:+.3g}" if want else "0"), (title, cell)
    # direction marks: higher IoU better, lower PSNR worse, lower invariance Chamfer better, equal SSIM
    assert diff["ablations/augment"]["val IoU"].endswith("✓")
    assert diff["ablations/augment"]["novel PSNR"].endswith("✗")
    assert diff["ablations/augment"]["invariance CD"].endswith("✓")
    assert diff["ablations/augment"]["novel SSIM"] == "0 ="
    assert "steps" not in diff["ablations/augment"]  # budget columns get no delta
    assert "max_steps: 3" in md  # the budget is printed above the table


def test_skip_existing_reuses_metrics_without_running(tmp_path):
    out = tmp_path / "out"
    _fake_runs(out)
    t0 = time.monotonic()
    assert ablate.main(["--configs", "base", "--skip-existing", "--out", str(out), "--budget", str(SMOKE)]) == 0
    assert time.monotonic() - t0 < 20  # nothing trained
    data = json.loads((out / "ablation.json").read_text())
    assert [(r["config"], r["status"]) for r in data["rows"]] == [("base", "reused")]
    assert data["rows"][0]["metrics"] == BASE


def test_table_shows_each_rows_minutes_cpu_and_load(tmp_path):
    """wall min / CPU min / load come from ablate's status file, train min from the run's metrics.json."""
    out = tmp_path / "out"
    _fake_runs(out)
    _, status = ablate.log_paths(out, "base")
    status.write_text(json.dumps({"config": "base", "config_path": "x", "status": "ok", "returncode": 0,
                                  "wall_minutes": 5.25, "cpu_minutes": 4.5, "load": 2.75}))
    assert ablate.main(["--table-only", "--out", str(out), "--budget", str(SMOKE),
                        "--configs", "base", "ablations/augment"]) == 0
    main = _md_rows((out / "ablation.md").read_text())["main"]
    assert (main["base"]["train min"], main["base"]["wall min"], main["base"]["CPU min"], main["base"]["load"]) \
        == ("4", "5.25", "4.5", "2.75")
    assert main["ablations/augment"]["train min"] == "4.5" and main["ablations/augment"]["CPU min"] == "n/a"


# ------------------------------------------------------------------------------------------ running
_BURN = "import time\nwhile time.process_time() < 0.3:\n    pass\n"


def test_wait_measured_counts_the_cpu_of_waited_grandchildren():
    """A child that only waits for a grandchild burning 0.3 s of CPU is charged that CPU; a sleeper is not."""
    if not hasattr(os, "wait4"):
        pytest.skip("no os.wait4 here")
    parent = f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {_BURN!r}])\nsys.exit(3)\n"
    code, cpu, load = ablate.wait_measured(subprocess.Popen([sys.executable, "-c", parent]), None, poll_s=0.05)
    assert code == 3 and cpu >= 0.3 and load >= 0
    code, idle, _ = ablate.wait_measured(subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.5)"]),
                                         None, poll_s=0.05)
    assert code == 0 and idle < cpu


def test_wait_measured_kills_after_the_timeout():
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    with pytest.raises(subprocess.TimeoutExpired):
        ablate.wait_measured(proc, 0.5, poll_s=0.05)
    assert proc.returncode == -9 and proc.poll() == -9


def test_crashing_run_becomes_a_failed_row(tmp_path, monkeypatch):
    """A run that dies (here a stand-in for run.py) leaves a failed status with its stderr tail, not an exception."""
    fake = tmp_path / "run.py"
    fake.write_text("import sys\nprint('training...')\nprint('x\\rRuntimeError: boom', file=sys.stderr)\nsys.exit(3)\n")
    monkeypatch.setattr(ablate, "RUN_PY", fake)
    out = tmp_path / "out"
    (out / "base").mkdir(parents=True)
    (out / "base" / "metrics.json").write_text(json.dumps(BASE))  # stale: must not be reported for the failed run
    st = ablate.launch(CONFIGS / "base.yaml", "base", ["train.lr=0.1"], out)
    assert (st.status, st.returncode) == ("failed", 3)
    assert st.error.splitlines()[-1] == "RuntimeError: boom"  # carriage-return progress resolved
    log = Path(st.log).read_text()
    assert "training..." in log and "--set train.lr=0.1" in log
    saved = json.loads(ablate.log_paths(out, "base")[1].read_text())
    assert saved["status"] == "failed" and not (out / "base" / "metrics.json").exists()
    row = ablate.collect_rows(out, ["base"])[0]
    measured = ("wall min", "CPU min", "load")  # ablate's own measurements of the run: kept for a failed row
    assert row["status"] == "failed" and all(v is None for k, v in row["values"].items() if k not in measured)
    assert all(row["values"][k] is not None for k in measured if k != "CPU min" or hasattr(os, "wait4"))


# ------------------------------------------------------------------------------------------ end to end
def test_smoke_end_to_end(tmp_path):
    """base + one ablation + a broken config, two at a time: two ok rows, one failed row, a table."""
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"base: {CONFIGS / 'base.yaml'}\ntrain:\n  not_a_key: 1\n")
    out = tmp_path / "out"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(REPO / "experiments" / "ablate.py"), "--configs", "base", "ablations/augment",
         str(broken), "--budget", str(SMOKE), "--set", f"data.root={tmp_path / 'data'}", "--out", str(out),
         "--jobs", "2", "--seed", "1"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for label in ("base", "ablations/augment"):
        assert f"start  {label}" in proc.stdout and f"finish {label}: ok" in proc.stdout
    assert "finish broken: failed (config error, not run)" in proc.stdout  # caught before a subprocess
    data = json.loads((out / "ablation.json").read_text())
    rows = {r["config"]: r for r in data["rows"]}
    assert [rows[k]["status"] for k in ("base", "ablations/augment", "broken")] == ["ok", "ok", "failed"]
    assert "not_a_key" in rows["broken"]["run"]["error"]
    assert "not_a_key" in (out / "logs" / "broken.log").read_text()
    for label in ("base", "ablations/augment"):
        metrics = json.loads((out / label / "metrics.json").read_text())
        assert rows[label]["values"]["val IoU"] == metrics["val/iou"]
        cfg = yaml.safe_load((out / label / "config.yaml").read_text())
        assert cfg["train"]["seed"] == 1 and cfg["train"]["cpu_threads"] == 1 and cfg["train"]["max_steps"] == 3
        assert cfg["train"]["name"] == label and Path(cfg["train"]["out_dir"]) == out
    assert cfg["augment"]["enabled"] is True
    md = (out / "ablation.md").read_text()
    assert "| base | ok |" in md and "| broken | failed |" in md
    # --table-only rebuilds the same rows from the folders (and the saved settings)
    (out / "ablation.json").unlink()
    assert ablate.main(["--table-only", "--out", str(out)]) == 0
    again = {r["config"]: r for r in json.loads((out / "ablation.json").read_text())["rows"]}
    assert {k: (r["status"], r["values"]) for k, r in again.items()} == \
        {k: (r["status"], r["values"]) for k, r in rows.items()}
