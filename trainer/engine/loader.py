"""The engine's data loaders: a seeded, resumable epoch order (optionally class-balanced) and the collate that
hands a family's batch (``ModelAdapter.collate``) with its targets and dataset indices to the loop and to
prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from trainer.models.base import ModelAdapter


class EpochSampler(Sampler[int]):
    """A permutation fixed by (seed, epoch): a resumed epoch replays the same order, so skipping the batches
    already done continues exactly where the run stopped. With ``weights`` (``train.balance_classes``) each epoch
    instead draws ``n`` indices with replacement in proportion to them, also fixed by (seed, epoch)."""

    def __init__(self, n: int, seed: int, shuffle: bool, weights: Sequence[float] | None = None):
        self.n, self.seed, self.shuffle, self.epoch = n, seed, shuffle, 0
        self.weights = torch.as_tensor(weights, dtype=torch.double) if weights is not None else None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if not self.shuffle:
            return iter(range(self.n))
        g = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        if self.weights is not None:
            return iter(torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist())
        return iter(torch.randperm(self.n, generator=g).tolist())

    def __len__(self) -> int:
        return self.n


def class_balanced_weights(targets: Sequence[int]) -> list[float]:
    """Per-sample weights 1 / (count of its class): every class is drawn equally often in expectation."""
    counts: dict[int, int] = {}
    for t in targets:
        counts[int(t)] = counts.get(int(t), 0) + 1
    return [1.0 / counts[int(t)] for t in targets]


class AdapterCollate:
    """Dataset items ``(sample, target, index)`` -> ``(adapter batch, targets, indices)``; targets and indices
    travel beside the batch because a VLM batch's ``labels`` are tokens, not classes."""

    def __init__(self, adapter: ModelAdapter):
        self.adapter = adapter

    def __call__(self, items: Sequence[tuple[Any, int, int]]):
        samples, targets, indices = zip(*items, strict=True)
        return (
            self.adapter.collate(list(samples), list(targets)),
            torch.as_tensor(targets, dtype=torch.long),
            torch.as_tensor(indices, dtype=torch.long),
        )


def make_loader(
    dataset: Dataset,
    adapter: ModelAdapter,
    batch_size: int,
    *,
    train: bool,
    seed: int = 0,
    num_workers: int = 0,
    balance: bool = False,
) -> DataLoader:
    """``balance`` (training only): draw classes equally often (``class_balanced_weights`` of the targets)."""
    n = len(dataset)
    weights = class_balanced_weights(dataset.targets) if (balance and train) else None
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochSampler(n, seed, shuffle=train, weights=weights),
        collate_fn=AdapterCollate(adapter),
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        pin_memory=torch.cuda.is_available(),
        # BatchNorm cannot train on a batch of one: drop a ragged last training batch.
        drop_last=train and n > batch_size,
    )
