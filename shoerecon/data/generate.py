"""Generate the synthetic dataset into ``data.root`` on first use (the ``synthetic:`` config section)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shoerecon.data.synthetic import SynthConfig, generate_dataset


@dataclass
class SyntheticDataConfig:
    """Generate the synthetic dataset into ``data.root`` when that folder does not exist yet.

    ``shoes``: dataset size. ``views`` None: ``synth.num_views``; ``image_size`` None:
    ``data.image_size``. The procedural shoe family and the rig are the ``synth`` section
    (``SynthConfig``). ``workers`` None: every CPU core.
    """
    enabled: bool = False
    shoes: int = 200
    views: int | None = None
    image_size: int | None = None
    seed: int = 0
    workers: int | None = None


def synthetic_banner(root: str | Path, shoes: int) -> str:
    """The notice printed before synthetic data is generated: runs on it must not pass for real-data runs."""
    lines = [f"SYNTHETIC DATA: data.root {root} does not exist, so {shoes} procedural shoes are generated there",
             "(synthetic.enabled: true). Results of this run are on synthetic shoes, not photos. For real data,",
             "point data.root at a turntable dataset; configs on real data keep synthetic.enabled: false."]
    bar = "=" * max(len(line) for line in lines)
    return "\n".join([bar, *lines, bar])


def ensure_dataset(root: str | Path, synthetic: SyntheticDataConfig, synth: SynthConfig, image_size: int) -> None:
    """Generate the synthetic dataset into ``root`` when the folder is missing and ``synthetic.enabled``;
    else a missing folder is an error saying what to do. Call it from one process only."""
    root = Path(root)
    if root.exists():
        return
    if not synthetic.enabled:
        raise FileNotFoundError(
            f"data folder {root} does not exist; point data.root at a turntable dataset, or set "
            f"synthetic.enabled: true (--set synthetic.enabled=true) to generate a synthetic one there"
        )
    s = synthetic
    tmp = root.with_name(root.name + f".partial-{os.getpid()}")
    print(synthetic_banner(root, s.shoes), flush=True)
    generate_dataset(tmp, num_shoes=s.shoes, num_views=s.views, image_size=s.image_size or image_size,
                     seed=s.seed, workers=s.workers, cfg=synth)
    os.replace(tmp, root)  # a crashed generation never looks like a finished dataset


__all__ = ["SyntheticDataConfig", "ensure_dataset", "synthetic_banner"]
