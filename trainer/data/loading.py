"""``make_loader``: the one place the engine builds DataLoaders (seeding, workers, caches)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset


def _worker_init(worker_id: int) -> None:
    # DataLoader seeds torch per worker from the loader's generator; seed numpy/random from it too, and keep
    # each worker to one thread so N workers do not oversubscribe the CPU.
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)
    torch.set_num_threads(1)


def available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def make_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    num_workers: int = 0,
    collate_fn: Callable | None = None,
    seed: int = 0,
    *,
    drop_last: bool = False,
    pin_memory: bool = False,
    warm_cache: bool = True,
    progress: bool = False,
) -> DataLoader:
    """A seeded DataLoader (same order and augmentations for the same seed and worker count).

    ``num_workers`` is capped at the CPUs this process may use. With workers, they persist across epochs.
    A dataset with a memory cache (``PatchDataset(cache_size=...)``) is filled in this process first
    (``warm_cache``): forked workers then share that one copy instead of each decoding and holding their own;
    without workers the cache fills during the first epoch."""
    num_workers = max(0, min(int(num_workers), available_cpus()))
    if num_workers and warm_cache and getattr(dataset, "memory_cache", False) and hasattr(dataset, "warm"):
        dataset.warm(workers=max(1, num_workers), progress=progress)
    generator = torch.Generator()
    generator.manual_seed(int(seed))
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=collate_fn,  # None: torch's default_collate stacks (tensor, target, index)
        generator=generator,
        worker_init_fn=_worker_init if num_workers else None,
        persistent_workers=bool(num_workers),
        drop_last=drop_last,
        pin_memory=pin_memory,
    )
