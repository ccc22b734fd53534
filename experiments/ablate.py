"""Ablation table: run base, v2_full and every single-feature ablation for one budget and seed, tabulate metrics.

    python experiments/ablate.py [--configs base v2_full ablations/augment ...]
        [--budget experiments/configs/budgets/cpu.yaml] [--seed 0] [--set key=value ...]
        [--jobs N] [--out runs/ablate] [--skip-existing] [--table-only]

The budget is a YAML file of config overrides (any sections of ``ExperimentConfig``, no ``base:``) deep-merged
over EVERY config, so all rows share data, step/time budget and eval settings; ``--set`` overrides come after
it. Each config runs as its own ``experiments/run.py`` subprocess, so a crash is a failed row, not the end of
the table. Layout under ``--out``:

    <out>/<label>/                 the run folder (train.out_dir=<out>, train.name=<label>), e.g.
                                   <out>/base, <out>/v2_full, <out>/ablations/augment
    <out>/logs/<label>.log         the run's stdout + stderr
    <out>/logs/<label>.json        status: return code, start/finish time, wall minutes, error tail
    <out>/settings.json            budget, overrides, seed, configs (``--table-only`` reuses them)
    <out>/ablation.md / .json      the table (and differences against base) / the raw numbers
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import yaml

HERE = Path(__file__).resolve().parent
CONFIG_DIR = HERE / "configs"
RUN_PY = HERE / "run.py"
REPO = HERE.parent
DEFAULT_BUDGET = CONFIG_DIR / "budgets" / "cpu.yaml"
BASE_LABEL = "base"


# ------------------------------------------------------------------------------------------ table columns
@dataclass(frozen=True)
class Column:
    """One table column: the metrics.json keys to try in order, and which direction is better (None: neither)."""

    title: str
    keys: tuple[str, ...]
    better: Optional[str] = None   # "higher" | "lower" | None (budget columns: no delta)


COLUMNS: tuple[Column, ...] = (
    Column("steps", ("train/steps", "step")),
    Column("train min", ("train/minutes",)),        # the training loop's wall clock (run.py's own)
    Column("wall min", ("ablate/wall_minutes",)),   # the whole run: start-up, training, final report
    Column("CPU min", ("ablate/cpu_minutes",)),     # its CPU time: what the row costs on a loaded machine
    Column("load", ("ablate/load",)),               # mean 1-min load average while it ran (others' work too)
    Column("val IoU", ("val/iou",), "higher"),
    Column("novel IoU", ("eval/novel/silhouette_iou",), "higher"),
    Column("input PSNR", ("eval/input/psnr",), "higher"),
    Column("novel PSNR", ("eval/novel/psnr",), "higher"),
    Column("input SSIM", ("eval/input/ssim",), "higher"),
    Column("novel SSIM", ("eval/novel/ssim",), "higher"),
    Column("novel LPIPS", ("eval/novel/lpips",), "lower"),
    Column("novel FID", ("eval/novel/fid",), "lower"),
    Column("seam error", ("eval/novel/seam_error",), "lower"),
    Column("seam excess", ("eval/novel/seam_excess",), "lower"),
    Column("seam fraction", ("eval/novel/seam_fraction",), "lower"),
    Column("invariance CD", ("eval/invariance/mean",), "lower"),
    Column("3D CD", ("eval/3d/chamfer_l2",), "lower"),
    Column("F@2%", ("eval/3d/fscore@0.02",), "higher"),
    Column("normal cons.", ("eval/3d/normal_consistency",), "higher"),
    Column("self-isect", ("eval/quality/self_intersection_fraction",), "lower"),
    Column("min angle", ("eval/quality/min_angle_deg",), "higher"),
    Column("mean min angle", ("eval/quality/mean_min_angle_deg",), "higher"),
)


def column_value(metrics: Mapping[str, Any], col: Column) -> Optional[float]:
    """The first of ``col.keys`` present in ``metrics`` as a finite number, else None."""
    for key in col.keys:
        v = metrics.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
            return float(v)
    return None


def fmt(v: Optional[float]) -> str:
    """4 significant digits; integers as integers; None as n/a.

    >>> fmt(None), fmt(500.0), fmt(0.123456), fmt(3.2e-05)
    ('n/a', '500', '0.1235', '3.2e-05')
    """
    if v is None:
        return "n/a"
    if float(v).is_integer() and abs(v) < 1e9:
        return str(int(v))
    return f"{v:.4g}"


def fmt_delta(d: Optional[float], better: Optional[str]) -> str:
    """Signed difference with a mark: ✓ better, ✗ worse (by the column's direction), = equal.

    >>> fmt_delta(0.0123, "higher"), fmt_delta(0.0123, "lower"), fmt_delta(0.0, "lower"), fmt_delta(None, "lower")
    ('+0.0123 ✓', '+0.0123 ✗', '0 =', 'n/a')
    """
    if d is None:
        return "n/a"
    if d == 0:
        return "0 ="
    good = (d > 0) == (better == "higher")
    return f"{d:+.3g} {'✓' if good else '✗'}"


# ------------------------------------------------------------------------------------------ overrides
def yaml_value(value: Any) -> str:
    """One-line YAML for a value, so that ``yaml.safe_load`` gives it back (strings quoted where needed).

    >>> yaml_value("no"), yaml_value(1e-5), yaml_value([0, 3]), yaml_value(None)
    ("'no'", '1.0e-05', '[0, 3]', 'null')
    """
    text = yaml.safe_dump(value, default_flow_style=True, width=2**31).strip()
    if text.endswith("\n..."):
        text = text[: -len("\n...")].rstrip()
    return text


def flatten_overrides(tree: Mapping[str, Any], prefix: tuple[str, ...] = ()) -> list[str]:
    """Nested override dict -> dotted ``section.key=value`` strings for ``load_config`` (leaves only: applying
    them one by one with ``deep_merge`` gives the same tree as merging the nested dict at once).

    >>> flatten_overrides({"train": {"lr": 0.001, "betas": [0.5, 0.9]}, "eval": {"lpips": "off"}})
    ['train.lr=0.001', 'train.betas=[0.5, 0.9]', "eval.lpips='off'"]
    """
    out: list[str] = []
    for key, value in tree.items():
        key = str(key)
        if not key or "." in key or "=" in key:
            raise ValueError(f"override key {'.'.join((*prefix, key))!r}: keys may not be empty or contain '.' or '='")
        path = (*prefix, key)
        if isinstance(value, Mapping) and value:
            out += flatten_overrides(value, path)
        else:
            out.append(f"{'.'.join(path)}={yaml_value(value)}")
    return out


def load_budget(path: str | Path) -> dict:
    """Read a budget YAML (a mapping of config sections, checked against the schema; no ``base:``)."""
    from shoerecon.train.config import ConfigError, ExperimentConfig, check_tree, migrate_moved_keys, read_yaml_mapping

    path = Path(path)
    tree = migrate_moved_keys(read_yaml_mapping(path, "budget"), str(path))
    if "base" in tree:
        raise ConfigError(f"{path}: a budget is merged over every config; it cannot name a 'base:'")
    check_tree(tree, ExperimentConfig, source=str(path))
    return tree


def check_overrides(overrides: Sequence[str]) -> None:
    """ConfigError for a malformed or unknown dotted override, before any run starts."""
    from shoerecon.train.config import ExperimentConfig, check_tree, migrate_moved_keys, parse_override

    for text in overrides:
        source = f"override {text!r}"
        check_tree(migrate_moved_keys(parse_override(text), source), ExperimentConfig, source=source)


# ------------------------------------------------------------------------------------------ configs
def default_configs() -> list[Path]:
    """base.yaml, v2_full.yaml, v2_fast.yaml (v2_full's speed trade) and every ablations/*.yaml (sorted)."""
    return [CONFIG_DIR / "base.yaml", CONFIG_DIR / "v2_full.yaml", CONFIG_DIR / "v2_fast.yaml",
            *sorted((CONFIG_DIR / "ablations").glob("*.yaml"))]


def resolve_config(name: str | Path) -> Path:
    """A config path from an existing file path or a name relative to experiments/configs ('.yaml' optional)."""
    p = Path(name)
    if p.is_file():
        return p.resolve()
    for cand in (CONFIG_DIR / p, CONFIG_DIR / p.with_suffix(".yaml") if p.suffix != ".yaml" else None):
        if cand is not None and cand.is_file():
            return cand.resolve()
    raise FileNotFoundError(f"config {str(name)!r}: no such file, nor {CONFIG_DIR / p}[.yaml]")


def config_label(path: Path) -> str:
    """Row name and run folder: the path relative to experiments/configs without '.yaml' (else the stem)."""
    path = Path(path).resolve()
    try:
        return path.relative_to(CONFIG_DIR.resolve()).with_suffix("").as_posix()
    except ValueError:
        return path.stem


def run_overrides(budget_overrides: Sequence[str], sets: Sequence[str], out: Path, label: str, seed: int,
                  jobs: int) -> list[str]:
    """Budget, then --set, then what ablate fixes: the run folder, the seed, one thread per run when parallel."""
    fixed = [f"train.out_dir={yaml_value(str(out))}", f"train.name={yaml_value(label)}", f"train.seed={seed}"]
    if jobs > 1:
        fixed.append("train.cpu_threads=1")
    return [*budget_overrides, *sets, *fixed]


# ------------------------------------------------------------------------------------------ running
@dataclass
class RunStatus:
    """What ablate knows about one run besides its metrics.json."""

    config: str                      # label
    config_path: str
    status: str = "pending"          # ok | failed | reused (--skip-existing) | missing (never ran)
    returncode: Optional[int] = None
    started: Optional[str] = None
    finished: Optional[str] = None
    wall_minutes: Optional[float] = None
    cpu_minutes: Optional[float] = None   # user + system CPU of the run and the children it waited for
    load: Optional[float] = None          # mean 1-min load average sampled while it ran
    log: Optional[str] = None
    error: Optional[str] = None      # last lines of the log when the run failed
    command: list[str] = field(default_factory=list)


def log_paths(out: Path, label: str) -> tuple[Path, Path]:
    return out / "logs" / f"{label}.log", out / "logs" / f"{label}.json"


def tail(path: Path, lines: int = 20) -> str:
    """Last ``lines`` lines of a log (progress-bar carriage returns resolved to their final state)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    rows = [r.rsplit("\r", 1)[-1] for r in text.split("\n")]
    return "\n".join([r for r in rows if r.strip()][-lines:])


_print_lock = threading.Lock()


def progress(msg: str) -> None:
    with _print_lock:
        print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def wait_measured(proc: subprocess.Popen, timeout_s: Optional[float], poll_s: float = 1.0,
                  load_every_s: float = 30.0) -> tuple[int, Optional[float], Optional[float]]:
    """Wait for ``proc`` (killing it after ``timeout_s``) -> (return code, CPU seconds, mean load average).

    The CPU time is the child's user + system time and that of the children it waited for (``os.wait4``), so a
    row's cost can be compared across rows that ran under different load; the load average (1 min) is sampled
    every ``load_every_s`` while it runs. Where ``os.wait4`` is missing: plain ``wait``, CPU time None.
    """
    if not hasattr(os, "wait4"):
        return proc.wait(timeout=timeout_s), None, None
    t0, next_load, loads = time.monotonic(), 0.0, []
    while True:
        now = time.monotonic() - t0
        if now >= next_load:
            loads.append(os.getloadavg()[0])
            next_load += load_every_s
        if timeout_s is not None and now > timeout_s:
            proc.kill()
            os.wait4(proc.pid, 0)
            proc.returncode = -9
            raise subprocess.TimeoutExpired(proc.args, timeout_s)
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(status)  # Popen must not wait for it again
            return proc.returncode, usage.ru_utime + usage.ru_stime, sum(loads) / len(loads)
        time.sleep(poll_s)


def launch(path: Path, label: str, overrides: Sequence[str], out: Path, timeout_min: Optional[float] = None,
           env: Optional[Mapping[str, str]] = None) -> RunStatus:
    """Run one config as ``python experiments/run.py`` (stdout+stderr -> its log); record its status file."""
    log, status_file = log_paths(out, label)
    log.parent.mkdir(parents=True, exist_ok=True)
    stale = out / label / "metrics.json"
    if stale.exists():
        stale.unlink()  # a failed rerun must not show an earlier run's numbers
    cmd = [sys.executable, str(RUN_PY), "--config", str(path), "--overwrite"]  # a rerun replaces the row's run
    for o in overrides:
        cmd += ["--set", o]
    st = RunStatus(config=label, config_path=str(path), log=str(log), command=cmd,
                   started=datetime.now().isoformat(timespec="seconds"))
    t0 = time.monotonic()
    try:
        with open(log, "w") as f:
            f.write("$ " + " ".join(cmd) + "\n")
            f.flush()
            proc = subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=dict(env) if env else None)
            st.returncode, cpu_s, st.load = wait_measured(proc, None if timeout_min is None else 60 * timeout_min)
        st.cpu_minutes = None if cpu_s is None else cpu_s / 60
    except subprocess.TimeoutExpired:
        st.returncode = -9
        with open(log, "a") as f:
            f.write(f"\nablate: killed after --timeout {timeout_min} min\n")
    st.wall_minutes = (time.monotonic() - t0) / 60
    st.finished = datetime.now().isoformat(timespec="seconds")
    has_metrics = (out / label / "metrics.json").is_file()
    st.status = "ok" if st.returncode == 0 and has_metrics else "failed"
    if st.status == "failed":
        st.error = tail(log) or f"return code {st.returncode}"
        if st.returncode == 0:
            st.error += "\nablate: run exited 0 but wrote no metrics.json (no validation shoes?)"
    status_file.write_text(json.dumps(asdict(st), indent=2))
    return st


def config_error(path: Path, overrides: Sequence[str]) -> Optional[str]:
    """The ConfigError message of a config with its overrides, or None when it loads."""
    from shoerecon.train.config import ConfigError, load_config

    try:
        load_config(path, overrides)
    except ConfigError as err:
        return str(err)
    return None


def record_config_error(path: Path, label: str, out: Path, error: str) -> RunStatus:
    """A failed row for a config that does not load (no subprocess: it would only say the same, slower)."""
    log, status_file = log_paths(out, label)
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(f"config error: {error}\n")
    now = datetime.now().isoformat(timespec="seconds")
    st = RunStatus(config=label, config_path=str(path), status="failed", returncode=2, started=now, finished=now,
                   wall_minutes=0.0, log=str(log), error=f"config error: {error}")
    status_file.write_text(json.dumps(asdict(st), indent=2))
    return st


def prepare_datasets(configs: Sequence[Path], overrides: Sequence[str]) -> None:
    """Generate each missing synthetic data.root once, before parallel runs could race to create it."""
    from shoerecon.data.generate import ensure_dataset
    from shoerecon.train.config import load_config

    done: set[str] = set()
    for path in configs:
        cfg = load_config(path, overrides)
        root = str(Path(cfg.data.root).resolve())
        if root in done or Path(root).exists() or not cfg.synthetic.enabled:
            continue
        progress(f"generating dataset {cfg.data.root} ({cfg.synthetic.shoes} shoes) for all runs")
        ensure_dataset(cfg.data.root, cfg.synthetic, cfg.synth, cfg.data.image_size)
        done.add(root)


def run_all(configs: Sequence[Path], budget_overrides: Sequence[str], sets: Sequence[str], out: Path, seed: int,
            jobs: int, skip_existing: bool, timeout_min: Optional[float]) -> dict[str, RunStatus]:
    """Launch every config (``jobs`` at a time); progress lines per run; statuses by label."""
    path_env = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONUNBUFFERED="1", TQDM_MININTERVAL="5", PYTHONPATH=path_env)
    if jobs > 1:
        env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    todo, statuses = [], {}
    for path in configs:
        label = config_label(path)
        overrides = run_overrides(budget_overrides, sets, out, label, seed, jobs)
        if skip_existing and (out / label / "metrics.json").is_file():
            statuses[label] = RunStatus(config=label, config_path=str(path), status="reused")
            progress(f"reuse  {label} (metrics.json exists)")
        elif (error := config_error(path, overrides)) is not None:
            statuses[label] = record_config_error(path, label, out, error)
            progress(f"finish {label}: failed (config error, not run): {error}")
        else:
            todo.append((path, label, overrides))
    if todo:
        prepare_datasets([p for p, _, _ in todo], todo[0][2])

    def one(item: tuple[int, tuple[Path, str, list[str]]]) -> RunStatus:
        i, (path, label, overrides) = item
        progress(f"start  {label} ({i + 1}/{len(todo)})")
        st = launch(path, label, overrides, out, timeout_min, env)
        last = "" if st.status == "ok" else f"; see {st.log}\n    " + (st.error or "").strip().replace("\n", "\n    ")
        progress(f"finish {label}: {st.status} (rc {st.returncode}), {st.wall_minutes:.1f} min{last}")
        return st

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for st in pool.map(one, enumerate(todo)):
            statuses[st.config] = st
    return statuses


# ------------------------------------------------------------------------------------------ table
def read_status(out: Path, label: str, config_path: str = "") -> RunStatus:
    """The status file of a run if ablate launched it, else inferred from its metrics.json."""
    _, status_file = log_paths(out, label)
    if status_file.is_file():
        return RunStatus(**json.loads(status_file.read_text()))
    has = (out / label / "metrics.json").is_file()
    return RunStatus(config=label, config_path=config_path, status="ok" if has else "missing")


def collect_rows(out: Path, labels: Sequence[str], statuses: Optional[Mapping[str, RunStatus]] = None) -> list[dict]:
    """One row per label: status, the run's metrics.json (may be empty), and the column values."""
    rows = []
    for label in labels:
        st = (statuses or {}).get(label)
        if st is None:
            st = read_status(out, label)
        elif st.status == "reused":  # metrics of an earlier run: its own status file says how it went
            st = replace(read_status(out, label, st.config_path), status="reused")
        metrics_file = out / label / "metrics.json"
        metrics: dict = {}
        if metrics_file.is_file():
            try:
                metrics = json.loads(metrics_file.read_text())
            except json.JSONDecodeError as err:
                st = RunStatus(**{**asdict(st), "status": "failed", "error": f"{metrics_file}: bad JSON: {err}"})
        measured = {"ablate/wall_minutes": st.wall_minutes, "ablate/cpu_minutes": st.cpu_minutes,
                    "ablate/load": st.load}
        values = {c.title: column_value({**metrics, **measured}, c) for c in COLUMNS}
        rows.append({"config": label, "status": st.status, "run_dir": str(out / label), "values": values,
                     "metrics": metrics, "run": asdict(st)})
    return rows


def compute_deltas(rows: Sequence[dict], base: str = BASE_LABEL) -> dict[str, dict[str, Optional[float]]]:
    """{label: {column: value - base value}} for every row but base over the metric columns (n/a -> None)."""
    base_row = next((r for r in rows if r["config"] == base), None)
    if base_row is None:
        return {}
    out = {}
    for r in rows:
        if r["config"] == base:
            continue
        out[r["config"]] = {
            c.title: (None if r["values"][c.title] is None or base_row["values"][c.title] is None
                      else r["values"][c.title] - base_row["values"][c.title])
            for c in COLUMNS if c.better
        }
    return out


def _arrow(c: Column) -> str:
    return {"higher": " ↑", "lower": " ↓"}.get(c.better or "", "")


def markdown_table(rows: Sequence[dict], settings: Mapping[str, Any], base: str = BASE_LABEL) -> str:
    """The ablation report: settings, the metric table, and the differences against base."""
    lines = ["# Ablations", ""]
    lines += [f"Seed {settings.get('seed')}, {settings.get('jobs')} run(s) at a time, "
              f"written {settings.get('written', datetime.now().isoformat(timespec='seconds'))}"
              + (f", commit {settings['commit']}" if settings.get("commit") else "") + ".", ""]
    lines += [f"Budget `{settings.get('budget')}` (merged over every config):", "", "```yaml",
              yaml.safe_dump(settings.get("budget_tree") or {}, sort_keys=False).rstrip(), "```", ""]
    if settings.get("sets"):
        lines += ["Extra overrides: " + ", ".join(f"`{s}`" for s in settings["sets"]), ""]
    lines += ["↑ / ↓: higher / lower is better. n/a: the run did not produce that metric "
              "(feature off, no ground truth, or the run failed). train min: the training loop's wall clock; "
              "wall min: the whole run (start-up and final report too); CPU min: its CPU time (comparable "
              "across rows when the machine's load changed); load: the mean 1-min load average while it ran.", ""]
    head = ["config", "status", *(c.title + _arrow(c) for c in COLUMNS)]
    lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join([r["config"], r["status"], *(fmt(r["values"][c.title]) for c in COLUMNS)]) + " |")
    deltas = compute_deltas(rows, base)
    if deltas:
        cols = [c for c in COLUMNS if c.better]
        lines += ["", f"## Differences against `{base}`", "",
                  "Each cell: row minus base; ✓ better, ✗ worse, by the column's direction.", ""]
        head = ["config", *(c.title + _arrow(c) for c in cols)]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for label, d in deltas.items():
            lines.append("| " + " | ".join([label, *(fmt_delta(d[c.title], c.better) for c in cols)]) + " |")
    else:
        lines += ["", f"(no `{base}` row: no differences computed)"]
    failed = [r for r in rows if r["status"] in ("failed", "missing")]
    if failed:
        lines += ["", "## Failed or missing runs", ""]
        for r in failed:
            err = (r["run"].get("error") or "").strip().splitlines()
            lines.append(f"- `{r['config']}`: {r['status']}" + (f" (log: {r['run']['log']}): `{err[-1]}`" if err else ""))
    return "\n".join(lines) + "\n"


def write_table(out: Path, rows: Sequence[dict], settings: Mapping[str, Any], base: str = BASE_LABEL) -> Path:
    """<out>/ablation.md and <out>/ablation.json (settings, columns, rows with raw metrics, deltas)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "ablation.md").write_text(markdown_table(rows, settings, base))
    data = {"settings": dict(settings), "base": base, "columns": [asdict(c) for c in COLUMNS],
            "rows": list(rows), "deltas": compute_deltas(rows, base)}
    (out / "ablation.json").write_text(json.dumps(data, indent=2, default=str))
    return out / "ablation.md"


def git_commit() -> Optional[str]:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True, text=True,
                              timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


# ------------------------------------------------------------------------------------------ CLI
def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--configs", nargs="+", default=None, metavar="CONFIG",
                   help="config names under experiments/configs ('base', 'ablations/augment') or YAML paths; "
                        "default: base, v2_full, every ablations/*.yaml")
    p.add_argument("--budget", default=str(DEFAULT_BUDGET), help="YAML of overrides merged over every config")
    p.add_argument("--seed", type=int, default=0, help="train.seed of every run")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra dotted override for every run, after the budget (repeatable)")
    p.add_argument("--jobs", type=int, default=1, help="runs at a time (>1 forces train.cpu_threads=1)")
    p.add_argument("--out", default="runs/ablate", help="output folder (run folders, logs, the table)")
    p.add_argument("--skip-existing", action="store_true", help="keep runs whose metrics.json exists")
    p.add_argument("--table-only", action="store_true", help="only rebuild the table from existing run folders")
    p.add_argument("--timeout", type=float, default=None, metavar="MIN", help="kill a run after this many minutes")
    p.add_argument("--base", default=BASE_LABEL, help="the row the differences are taken against")
    return p.parse_args(argv)


def ensure_importable() -> None:
    """Make ``shoerecon`` importable from a source checkout even without (or with a stale) editable install."""
    try:
        import shoerecon  # noqa: F401
    except ImportError:
        sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    args = parse_args(argv)
    ensure_importable()
    from shoerecon.train.config import ConfigError

    out = Path(args.out)
    settings_file = out / "settings.json"
    saved = json.loads(settings_file.read_text()) if args.table_only and settings_file.is_file() else None
    try:
        if saved is not None:
            settings = saved
            configs = [Path(c) for c in saved["configs"]] if args.configs is None else \
                [resolve_config(c) for c in args.configs]
        else:
            configs = default_configs() if args.configs is None else [resolve_config(c) for c in args.configs]
            budget = load_budget(args.budget)
            check_overrides(args.sets)
            settings = {"budget": str(args.budget), "budget_tree": budget, "sets": list(args.sets),
                        "seed": args.seed, "jobs": args.jobs, "configs": [str(c) for c in configs],
                        "commit": git_commit()}
    except (ConfigError, FileNotFoundError) as err:
        print(f"ablate: {err}", file=sys.stderr)
        return 2
    labels = [config_label(c) for c in configs]
    dupes = sorted({lb for lb in labels if labels.count(lb) > 1})
    if dupes:
        print(f"ablate: configs share a run name: {', '.join(dupes)}", file=sys.stderr)
        return 2

    statuses = None
    if not args.table_only:
        out.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(settings, indent=2, default=str))
        progress(f"{len(configs)} configs, budget {args.budget}, seed {args.seed}, {args.jobs} at a time -> {out}")
        statuses = run_all(configs, flatten_overrides(settings["budget_tree"]), args.sets, out, args.seed,
                           args.jobs, args.skip_existing, args.timeout)
    settings = {**settings, "written": datetime.now().isoformat(timespec="seconds")}
    rows = collect_rows(out, labels, statuses)
    path = write_table(out, rows, settings, args.base)
    bad = [r["config"] for r in rows if r["status"] in ("failed", "missing")]
    progress(f"table: {path}" + (f" ({len(bad)} failed/missing: {', '.join(bad)})" if bad else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
