"""Evaluate a saved checkpoint on another dataset (e.g. a BreakHis-trained model on BACH: cross-dataset
generalisation): predictions + metrics, written beside each other."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import torch

from trainer.data.records import LABELS, SUBTYPES
from trainer.engine.events import write_json_atomic
from trainer.engine.loop import ENGINE_META, make_loader, predict_loader
from trainer.metrics import classification_metrics
from trainer.models import FAMILIES
from trainer.models.base import ADAPTER_FILE, ModelAdapter


def load_checkpoint(directory: str | Path, device: str | torch.device | None = None) -> tuple[ModelAdapter, dict]:
    """(adapter, engine metadata) from a checkpoint folder (``.../fold<k>/best``), without pickle."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"checkpoint folder not found: {directory}")
    if not (directory / ADAPTER_FILE).is_file() and (directory / "best" / ADAPTER_FILE).is_file():
        directory = directory / "best"  # a fold folder was given
    try:
        family = json.loads((directory / ADAPTER_FILE).read_text())["family"]
    except (OSError, ValueError, KeyError):
        raise FileNotFoundError(
            f"not a checkpoint folder (no {ADAPTER_FILE} naming the model family): {directory}"
        ) from None
    if family not in FAMILIES:
        raise ValueError(f"{directory}: unknown model family {family!r}; available: {', '.join(sorted(FAMILIES))}")
    module, factory = FAMILIES[family].split(":")
    cls = getattr(importlib.import_module(module), factory)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    adapter = cls.load(directory, device=device)
    meta = {}
    if (directory / ENGINE_META).is_file():
        meta = json.loads((directory / ENGINE_META).read_text())
    return adapter, meta


def evaluate_checkpoint(
    checkpoint: str | Path,
    data_root: str | Path,
    *,
    source: str = "auto",
    magnification: str | None = None,
    out_dir: str | Path | None = None,
    batch_size: int = 32,
    input_size: int | None = None,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Predict every image of ``data_root`` with the checkpoint; write ``predictions.csv`` and ``metrics.json``
    to ``out_dir`` (default: ``<checkpoint>/../eval-<dataset folder name>``). Metrics are benign vs malignant
    (P(malignant) sums the malignant subtypes of an 8-class model)."""
    from trainer.cv import write_predictions
    from trainer.data.dataset import PatchDataset
    from trainer.data.index import index_dataset

    checkpoint = Path(checkpoint)
    adapter, meta = load_checkpoint(checkpoint)
    report = index_dataset(data_root, source, verify=True)
    records = [r for r in report.records if magnification in (None, "all") or r.magnification == magnification]
    if not records:
        raise ValueError(f"no usable images in {data_root}" + (f" at {magnification}" if magnification else ""))
    size = input_size or meta.get("input_size") or getattr(adapter, "input_size", None) or 224
    classes = meta.get("classes") or (list(LABELS) if adapter.num_classes == 2 else list(SUBTYPES))
    ds = PatchDataset(records, adapter.transform(False, size), target="label", stain=meta.get("stain_normalization"))
    loader = make_loader(ds, adapter, batch_size, train=False, num_workers=num_workers)
    probs, _, idx = predict_loader(adapter, loader, None, progress=progress, desc="evaluate")
    recs = [records[i] for i in idx]
    y = np.array([r.label for r in recs])
    malignant = [i for i, c in enumerate(classes) if c == "malignant" or (c in SUBTYPES and SUBTYPES.index(c) >= 4)]
    p_mal = probs[:, malignant].sum(axis=1)
    metrics = classification_metrics(y, p_mal, [r.patient_id for r in recs])
    name = Path(data_root).resolve().name
    out = (
        Path(out_dir) if out_dir else (checkpoint if checkpoint.name != "best" else checkpoint.parent) / f"eval-{name}"
    )
    write_predictions(
        out / "predictions.csv",
        recs,
        y if len(classes) == 2 else np.array([-1] * len(recs)),
        probs,
        classes,
        magnification or "all",
        int(meta.get("fold", -1)),
    )
    result = {
        "checkpoint": str(checkpoint),
        "data": str(data_root),
        "source": report.source,
        "magnification": magnification or "all",
        "n": len(recs),
        "problems": len(report.problems),
        "input_size": size,
        "trained_on": meta,
        "metrics": metrics,
    }
    write_json_atomic(out / "metrics.json", result)
    return {**result, "out_dir": str(out)}
