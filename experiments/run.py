"""Train shoerecon: ``python experiments/run.py --config X.yaml [--set section.key=value ...] [--resume]``.

The same script runs under ``accelerate launch [--multi_gpu --num_processes N] experiments/run.py ...``
(on a CPU-only machine that gives N data-parallel gloo processes). Output: ``<train.out_dir>/<train.name>/``.
"""
from __future__ import annotations

import argparse
import sys


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="experiment YAML (may name a 'base:' file)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="dotted override, e.g. --set train.lr=1e-3 (repeatable; value parsed as YAML)")
    p.add_argument("--resume", action="store_true", help="continue from <run>/checkpoints/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="delete an earlier run in the same folder and start over (without it, such a folder is refused)")
    p.add_argument("--debug", action="store_true", help="show the full traceback of data/checkpoint/run-folder errors")
    return p.parse_args(argv)


def close_progress_bars() -> None:
    """End the stopped run's progress bar(s) with a newline, so the error is a line of its own."""
    from tqdm import tqdm

    for bar in list(getattr(tqdm, "_instances", ())):
        bar.close()


def main(argv=None) -> int:
    args = parse_args(argv)
    from shoerecon.data.layout import DataError
    from shoerecon.train.checkpoint import CheckpointError
    from shoerecon.train.config import ConfigError
    from shoerecon.train.guards import TrainingDiverged
    from shoerecon.train.run_dir import RunDirError
    from shoerecon.train.trainer import main as train

    try:
        metrics = train(args.config, args.overrides, resume=args.resume, overwrite=args.overwrite)
    except ConfigError as err:
        print(f"config error: {err}", file=sys.stderr)
        return 2
    except (DataError, RunDirError, CheckpointError, TrainingDiverged, FileNotFoundError) as err:
        # the project's own errors already say what and where: one line, the traceback only with --debug
        if args.debug:
            raise
        close_progress_bars()
        print(f"error: {err}", file=sys.stderr)
        return 1
    if metrics:
        print({k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
