"""Profile the real training step of one or more configs side by side and print where the milliseconds go.

    python benchmarks/train_step.py --config experiments/configs/base.yaml experiments/configs/v2_full.yaml \
        --random-backbones --size 64 --batch 4 --views 2 --threads 1 [--repeat 5] [--set key=value ...]

Each config builds the project's own ``Trainer`` (any config works: v1, v2_full, an ablation) on a small
synthetic dataset generated into a temporary folder (``--data`` to use a folder), and runs ``train_step`` on
real batches. The steps of the configs are interleaved (A, B, A, B, ...) so that load from other processes hits
all of them alike; the table shows means over ``--repeat`` steps after one warm-up step (means: with ``losses.adversarial.critic_every`` or
``losses.novel_every`` = k, take ``--repeat`` a multiple of k).

Rows are exclusive milliseconds per step (a row's time excludes the rows timed inside it): the network forward,
input augmentation, the target-view renders, every loss term's forward (align split into its visibility pass and
the rest), the novel-view renders, the critic update(s) (with the gradient penalty), the generator's adversarial
and FID terms, backward, the optimiser step, everything else, and the remeshing time amortised over the steps
between two remeshes (``remesh.every_epochs`` x batches per epoch of the config's own dataset size).

``--random-backbones`` is the explicit way to run configs that name pretrained networks (LPIPS, FID's
Inception) on a machine without their weights: random backbones, same cost, meaningless values.
Always quote the load average printed at the end next to the numbers.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

RANDOM_BACKBONES = ["losses.perceptual.pretrained=false", "losses.fid.pretrained=false", "eval.lpips=random",
                    "eval.fid=random"]


class SectionTimer:
    """Exclusive time (wall clock or this process's CPU time) per labelled section; nested sections are subtracted from their parent."""

    def __init__(self, device: torch.device, clock=time.perf_counter):
        self.device, self.clock, self.times, self.stack = device, clock, defaultdict(float), []

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()

    @contextlib.contextmanager
    def section(self, label: str):
        self._sync()
        start = self.clock()
        self.stack.append(0.0)
        try:
            yield
        finally:
            self._sync()
            elapsed = self.clock() - start
            children = self.stack.pop()
            self.times[label] += elapsed - children
            if self.stack:
                self.stack[-1] += elapsed

    def wrap(self, fn, label):
        """``fn`` timed under ``label`` (a string, or a callable giving the label at call time)."""
        def timed(*args, **kwargs):
            with self.section(label() if callable(label) else label):
                return fn(*args, **kwargs)
        timed.__wrapped__ = fn
        return timed

    def reset(self) -> dict[str, float]:
        out, self.times = dict(self.times), defaultdict(float)
        return out


# (module, attribute, row) of the functions timed; absent ones (other code versions) are skipped.
LOSS_FUNCTIONS = [
    ("shoerecon.losses.silhouette", "silhouette_iou_loss", "loss silhouette"),
    ("shoerecon.losses.image", "image_l2_loss", "loss image"),
    ("shoerecon.losses.perceptual", "perceptual_loss", "loss perceptual (LPIPS)"),
    ("shoerecon.losses.flow", "flow_mask_loss", "loss flow"),
    ("shoerecon.losses.regularizers", "laplacian_loss", "loss laplacian"),
    ("shoerecon.losses.regularizers", "flatten_loss", "loss flatten"),
    ("shoerecon.losses.regularizers", "normal_consistency_loss", "loss normal consistency"),
    ("shoerecon.losses.regularizers", "edge_length_loss", "loss edge length"),
    ("shoerecon.losses.align", "visible_faces", "loss align: visibility pass"),
    ("shoerecon.losses.align", "align_loss", "loss align"),
    ("shoerecon.losses.flow_smooth", "flow_smoothness_loss", "loss flow smoothness"),
    ("shoerecon.train.system", "augment_input_batch", "input augmentation"),
]
ROW_ORDER = ["network", "input augmentation", "render targets", "loss silhouette", "loss image",
             "loss perceptual (LPIPS)", "loss flow", "loss laplacian", "loss flatten", "loss normal consistency",
             "loss edge length", "loss align: visibility pass", "loss align", "loss flow smoothness",
             "render novel views", "critic update(s) + GP", "loss adversarial (generator)", "loss FID",
             "backward", "optimiser step", "other"]


def instrument_modules(timer: SectionTimer, state: dict) -> None:
    """Wrap the module-level functions (once per process) in timed sections."""
    import importlib

    import shoerecon.train.novel_views as novel_module
    import shoerecon.train.system as system_module

    def patch(obj, name, label):
        if hasattr(obj, name):
            setattr(obj, name, timer.wrap(getattr(obj, name), label))

    for mod_name, attr, label in LOSS_FUNCTIONS:
        with contextlib.suppress(ImportError):
            patch(importlib.import_module(mod_name), attr, label)
    patch(system_module, "render_prediction", lambda: "render novel views" if state["novel"] else "render targets")
    init = novel_module.NovelViews.__init__

    def novel_init(self, render, *args, **kwargs):  # the novel views render through the same render_prediction
        def novel_render(cameras):
            state["novel"] = True
            try:
                return render(cameras)
            finally:
                state["novel"] = False

        init(self, novel_render, *args, **kwargs)

    novel_module.NovelViews.__init__ = novel_init


def instrument_trainer(trainer, timer: SectionTimer, state: dict) -> None:
    """Wrap one trainer's network, novel-view terms' modules, backward and optimiser in timed sections."""
    trainer.net.forward = timer.wrap(trainer.net.forward, "network")
    modules = trainer.system.loss_modules
    if "adversarial" in modules:
        critic = modules["adversarial"]
        critic.critic_step = timer.wrap(critic.critic_step, "critic update(s) + GP")
        critic.wgan.generator_objective = timer.wrap(critic.wgan.generator_objective,
                                                     "loss adversarial (generator)")
    if "fid" in modules:
        modules["fid"].forward = timer.wrap(modules["fid"].forward, "loss FID")
    trainer.acc.backward = timer.wrap(trainer.acc.backward, "backward")
    trainer.optimizer.step = timer.wrap(trainer.optimizer.step, "optimiser step")


def remesh_ms_per_step(trainer, cfg, timer: SectionTimer) -> tuple[float, str]:
    """One remesh, timed, divided by the steps between remeshes of the config's own dataset."""
    every = cfg.remesh.every_epochs
    if not every:
        return 0.0, ""
    shoes = cfg.data.max_shoes or cfg.synthetic.shoes
    train_shoes = max(1, round(shoes * cfg.data.split_fractions[0] / sum(cfg.data.split_fractions)))
    steps = every * max(1, train_shoes // cfg.train.batch_size)
    from shoerecon.train.hooks import remesh

    start = timer.clock()
    remesh(trainer)
    ms = (timer.clock() - start) * 1e3
    return ms / steps, f"remesh {ms:.0f} ms every {steps} steps ({every} epochs x ~{train_shoes} shoes / batch)"


def make_dataset(root: Path, shoes: int, views: int, size: int) -> None:
    """A small synthetic dataset; every shoe trains, the first one also validates."""
    from shoerecon.data.layout import write_json
    from shoerecon.data.synthetic import generate_dataset

    generate_dataset(root, shoes, views, size, seed=0, workers=1, progress=False)
    ids = sorted(p.name for p in root.iterdir() if (p / "views").is_dir())
    write_json(root / "splits.json", {"train": ids, "val": ids[:1], "test": ids[:1]})


def budget_overrides(path: str | None) -> list[str]:
    """A budget YAML (as ``experiments/ablate.py --budget``) as dotted overrides."""
    if not path:
        return []
    import yaml

    def flat(tree, prefix=""):
        for k, v in tree.items():
            if isinstance(v, dict):
                yield from flat(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}={yaml.safe_dump(v, default_flow_style=True).strip().removesuffix('...').strip()}"

    return list(flat(yaml.safe_load(Path(path).read_text()) or {}))


def build(config: str, args, data_root: Path, out_dir: Path):
    from shoerecon.train.config import load_config
    from shoerecon.train.trainer import Trainer

    overrides = [*budget_overrides(args.budget), f"data.root={data_root}", f"data.image_size={args.size}", f"render.image_size={args.size}",
                 f"train.batch_size={args.batch}", f"data.num_target_views={args.views}", f"train.out_dir={out_dir}",
                 f"train.name={Path(config).stem}", f"train.cpu_threads={args.threads}", "train.log_every=0",
                 "train.sample_every=0", "train.val_every=0", "train.checkpoint_every=0", "synthetic.enabled=false",
                 f"train.device={args.device}", "data.cache=never",
                 *(RANDOM_BACKBONES if args.random_backbones else []), *args.overrides]
    cfg = load_config(config, overrides)
    return cfg, Trainer(cfg)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", nargs="+", default=["experiments/configs/base.yaml", "experiments/configs/v2_full.yaml"])
    p.add_argument("--budget", default=None, help="YAML merged over every config first (e.g. budgets/cpu.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="override for every config")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--views", type=int, default=2, help="target views per shoe (data.num_target_views)")
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--random-backbones", action="store_true",
                   help="random LPIPS/Inception backbones (no pretrained weights needed; same cost)")
    p.add_argument("--data", default=None, help="dataset folder (default: a temporary synthetic one)")
    p.add_argument("--shoes", type=int, default=8, help="shoes of the temporary dataset")
    p.add_argument("--clock", choices=("cpu", "wall"), default=None,
                   help="cpu: this process's CPU time (default on CPU: robust to other processes' load, = wall time "
                        "on an idle machine with --threads 1); wall: wall clock (default on CUDA)")
    p.add_argument("--no-remesh", action="store_true", help="skip timing one remesh")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    args.clock = args.clock or ("wall" if device.type == "cuda" else "cpu")

    with tempfile.TemporaryDirectory(prefix="train_step_") as tmp:
        data_root = Path(args.data) if args.data else Path(tmp) / "data"
        if not args.data:
            make_dataset(data_root, max(args.shoes, args.batch), 12, args.size)
        names = [Path(c).stem for c in args.config]
        built = [build(c, args, data_root, Path(tmp) / "runs") for c in args.config]
        clock = time.process_time if args.clock == "cpu" else time.perf_counter
        timer, state = SectionTimer(device, clock), {"novel": False}
        instrument_modules(timer, state)
        for _, trainer in built:
            instrument_trainer(trainer, timer, state)
        rows: list[list[dict]] = [[] for _ in built]
        iters = [iter(()) for _ in built]
        for rep in range(args.repeat + 1):
            for i, (cfg, trainer) in enumerate(built):
                try:
                    batch = next(iters[i])
                except StopIteration:
                    iters[i] = iter(trainer.loader)
                    batch = next(iters[i])
                from shoerecon.train.trainer import to_device

                batch = to_device(batch, trainer.device)
                timer.reset()
                start = clock()
                with timer.section("other"):
                    trainer.train_step(batch)
                    trainer.step += 1
                total = (clock() - start) * 1e3
                if rep:
                    rows[i].append({**{k: v * 1e3 for k, v in timer.reset().items()}, "step": total})
        remesh = []
        for cfg, trainer in built:
            ms, note = (0.0, "") if args.no_remesh else remesh_ms_per_step(trainer, cfg, timer)
            remesh.append((ms, note))
    # means, not medians: with losses.adversarial.critic_every / losses.novel_every = k some steps carry the k-step work
    # (take --repeat a multiple of k)
    med = [{k: statistics.mean(r.get(k, 0.0) for r in rs) for k in {k for r in rs for k in r}} for rs in rows]
    for m, (ms, _) in zip(med, remesh):
        m["remeshing (amortised)"] = ms
        m["step + remesh"] = m["step"] + ms
    cfg0 = built[0][0]
    print(f"device {device}, {args.clock} time, threads {args.threads}, {args.size}px, batch {args.batch} x {args.views} target views, "
          f"template faces {built[0][1].net.faces.shape[0]}, mean of {args.repeat} steps (interleaved)")
    w = max(12, *(len(n) for n in names))
    print(f"{'ms per step':<30}" + "".join(f"{n:>{w}}" for n in names))
    for row in [*ROW_ORDER, "remeshing (amortised)"]:
        if any(m.get(row, 0.0) >= 0.05 for m in med):
            print(f"{row:<30}" + "".join(f"{m.get(row, 0.0):>{w}.1f}" for m in med))
    print("-" * (30 + w * len(names)))
    for row in ("step", "step + remesh"):
        print(f"{row:<30}" + "".join(f"{m[row]:>{w}.1f}" for m in med))
    if len(med) > 1:
        print(f"{'x ' + names[0]:<30}" + "".join(f"{m['step + remesh'] / med[0]['step + remesh']:>{w}.2f}" for m in med))
    for n, (_, note) in zip(names, remesh):
        if note:
            print(f"{n}: {note}")
    del cfg0
    print(f"load average: {open('/proc/loadavg').read().strip()}" if os.path.exists("/proc/loadavg") else "")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
