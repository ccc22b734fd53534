"""Data order of training: seeded epoch permutations sharded over processes, items loaded under their own seed.

Every epoch is a permutation seeded by (seed, epoch), cut into per-process batches (rank r takes batches r,
r + W, ...), and every item is loaded under its own seed, so a resumed run sees exactly the batches (and random
target views) of an uninterrupted one, whatever the number of loader workers.
"""
from __future__ import annotations

import contextlib
import random
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def _plain_rng_state(state: Mapping[str, Any]) -> dict:
    """``state`` with the numpy RNG state as tensors (loadable under weights_only without allow-list)."""
    state = dict(state)
    np_state = state.get("numpy")
    if isinstance(np_state, tuple):
        name, key, pos, has_gauss, cached = np_state
        state["numpy"] = {"bit_generator": str(name), "key": torch.from_numpy(np.asarray(key, dtype=np.int64)),
                          "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    return state


def capture_rng_state() -> dict:
    """The python, numpy, torch (and cuda, if any) RNG states of this process (tensors, ints, tuples)."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return _plain_rng_state(state)


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Inverse of ``capture_rng_state`` (also of version-1 states); cuda is restored only where CUDA exists."""
    random.setstate(state["python"])
    np_state = state["numpy"]
    if isinstance(np_state, Mapping):
        np_state = (np_state["bit_generator"], np_state["key"].numpy().astype(np.uint32), np_state["pos"],
                    np_state["has_gauss"], np_state["cached_gaussian"])
    np.random.set_state(np_state)
    torch.set_rng_state(state["torch"].cpu())
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = state["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all([s.cpu() for s in cuda_states])


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Seed python/numpy/torch global RNGs inside the block; restore the previous states after."""
    state = capture_rng_state()
    random.seed(seed)
    np.random.seed(seed % 2**32)
    # the CPU generator only: torch.manual_seed also queues a lazy CUDA seeding (with a stack trace, ~3 ms) per
    # item on machines where CUDA is not initialised, and restore_rng_state would undo that seeding anyway
    torch.default_generator.manual_seed(seed)
    try:
        yield
    finally:
        restore_rng_state(state)


class SeededItems(Dataset):
    """Wraps a dataset so that ``ds[(index, seed)]`` loads item ``index`` under RNG seed ``seed``."""

    def __init__(self, dataset: Dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]):
        index, seed = key
        with seeded_rng(seed):
            return self.dataset[index]


class ShardedEpochBatches(Sampler):
    """Batch sampler: a (seed, epoch) permutation cut into batches of ``batch_size`` for each of
    ``world`` processes (rank r takes global batches r, r+W, ...; the incomplete tail is dropped so
    every rank takes the same number of steps). Yields lists of (index, item_seed).

    >>> s = ShardedEpochBatches(10, batch_size=2, rank=1, world=2, seed=0, shuffle=False)
    >>> [[i for i, _ in b] for b in s]
    [[2, 3], [6, 7]]
    """
    def __init__(self, size: int, batch_size: int, rank: int, world: int, seed: int, shuffle: bool = True):
        self.size, self.batch_size, self.rank, self.world = size, batch_size, rank, world
        self.seed, self.shuffle = seed, shuffle
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        self.epoch, self.skip = epoch, skip_batches

    @property
    def batches_per_epoch(self) -> int:
        return self.size // (self.batch_size * self.world)

    def __len__(self) -> int:
        return self.batches_per_epoch - self.skip

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.size, generator=g) if self.shuffle else torch.arange(self.size)
        item_seeds = torch.randint(0, 2**31 - 1, (self.size,), generator=g)
        for b in range(self.skip, self.batches_per_epoch):
            start = (b * self.world + self.rank) * self.batch_size
            idx = order[start:start + self.batch_size].tolist()
            yield [(i, int(item_seeds[i])) for i in idx]


__all__ = ["capture_rng_state", "restore_rng_state", "seeded_rng", "SeededItems", "ShardedEpochBatches"]
