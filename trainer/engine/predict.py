"""Prediction over a loader, the engine's evaluation half: probabilities (validation, ``trainer evaluate``) or
logits and features in one pass (the test step, fitting the trust reference), in dataset order, gathered
across processes with accelerate."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from trainer.models.base import ModelAdapter


@torch.no_grad()
def _gather_batches(adapter: ModelAdapter, loader, accelerator, fn, *, progress: bool, desc: str) -> list[np.ndarray]:
    """Run ``fn(batch) -> tuple of (N, ...) tensors`` over the loader; returns those outputs, the targets and the
    dataset indices as numpy arrays in dataset order (gathered across processes with accelerate)."""
    from tqdm.auto import tqdm

    adapter.module.eval()
    parts: list[list[torch.Tensor]] | None = None
    main = accelerator is None or accelerator.is_local_main_process
    ctx = accelerator.autocast if accelerator is not None else nullcontext
    device = accelerator.device if accelerator is not None else next(adapter.module.parameters()).device
    for batch, y, idx in tqdm(loader, desc=desc, disable=not (progress and main), leave=False, mininterval=1.0):
        if accelerator is None:
            batch = to_device(batch, device)
        with ctx():
            outs = tuple(t.float() for t in fn(batch))
        row = (*outs, y.to(outs[0].device), idx.to(outs[0].device))
        if accelerator is not None:
            row = accelerator.gather_for_metrics(row)
        parts = [[] for _ in row] if parts is None else parts
        for store, t in zip(parts, row, strict=True):
            store.append(t.cpu())
    if parts is None:
        return []
    arrays = [torch.cat(p).numpy() for p in parts]
    order = np.argsort(arrays[-1], kind="stable")
    return [a[order] for a in arrays]


def predict_loader(adapter: ModelAdapter, loader, accelerator=None, *, progress: bool = False, desc: str = "predict"):
    """(probabilities (N, C), targets (N,), dataset indices (N,)) as numpy, in dataset order."""
    out = _gather_batches(
        adapter, loader, accelerator, lambda b: (adapter.predict_proba(b),), progress=progress, desc=desc
    )
    if not out:
        return np.zeros((0, adapter.num_classes)), np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return out[0], out[1], out[2]


def predict_outputs(adapter: ModelAdapter, loader, accelerator=None, *, progress: bool = False, desc: str = "predict"):
    """(logits (N, C), features (N, D), targets (N,), dataset indices (N,)) from one pass per batch
    (``ModelAdapter.logits_and_features``): what calibration and the OOD check need."""
    out = _gather_batches(adapter, loader, accelerator, adapter.logits_and_features, progress=progress, desc=desc)
    if not out:
        empty = np.zeros((0, adapter.num_classes), dtype=np.float32)
        return empty, np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    return tuple(out)


def to_device(batch, device):
    """A batch (tensor, or dict / list / tuple of them) on ``device``; what is not a tensor is left as it is."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(to_device(v, device) for v in batch)
    return batch


def nll(probs: np.ndarray, targets: np.ndarray) -> float:
    """Mean negative log-likelihood of the true class: the validation loss every family shares."""
    if len(targets) == 0:
        return float("nan")
    p = probs[np.arange(len(targets)), targets]
    return float(-np.log(np.clip(p, 1e-12, 1.0)).mean())
