"""Evaluate a saved checkpoint on another dataset (e.g. a BreakHis-trained model on BACH: cross-dataset
generalisation): predictions + metrics, written beside each other."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from trainer.data.records import malignant_columns
from trainer.engine.loop import make_loader, predict_loader
from trainer.metrics import classification_metrics
from trainer.models import load_checkpoint as resolve_checkpoint
from trainer.models.base import ModelAdapter
from trainer.rundir import BEST_DIR, EVAL_PREFIX, FOLD_METRICS, PREDICTIONS_FILE, write_json_atomic


def load_checkpoint(directory: str | Path, device: str | None = None) -> tuple[ModelAdapter, dict]:
    """(adapter, engine metadata) of a checkpoint folder: ``trainer.models.load_checkpoint`` in the shape the
    tests and scripts use."""
    ckpt = resolve_checkpoint(directory, device)
    return ckpt.adapter, ckpt.meta


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
    """Predict every image of ``data_root`` (any source ``index_dataset`` reads: BreakHis, BACH, IDC, class
    folders, a folder with a ``manifest.csv``/``MANIFEST.csv``) with the checkpoint; write ``predictions.csv`` and
    ``metrics.json`` to ``out_dir`` (default: ``<checkpoint>/../eval-<dataset folder name>``). Metrics are benign
    vs malignant (P(malignant) sums the malignant subtypes of an 8-class model); problem images (unreadable,
    ``too_small`` ...) are skipped and counted."""
    from trainer.cv import write_predictions
    from trainer.data.dataset import PatchDataset
    from trainer.data.index import index_dataset

    checkpoint = Path(checkpoint)
    ckpt = resolve_checkpoint(checkpoint)
    adapter, meta, classes = ckpt.adapter, ckpt.meta, ckpt.classes
    report = index_dataset(data_root, source, verify=True)
    records = [r for r in report.records if magnification in (None, "all") or r.magnification == magnification]
    if not records:
        raise ValueError(f"no usable images in {data_root}" + (f" at {magnification}" if magnification else ""))
    size = input_size or ckpt.input_size
    ds = PatchDataset(records, adapter.transform(False, size), target="label", stain=meta.get("stain_normalization"))
    loader = make_loader(ds, adapter, batch_size, train=False, num_workers=num_workers)
    probs, _, idx = predict_loader(adapter, loader, None, progress=progress, desc="evaluate")
    recs = [records[i] for i in idx]
    y = np.array([r.label for r in recs])
    p_mal = probs[:, malignant_columns(classes)].sum(axis=1)
    metrics = classification_metrics(y, p_mal, [r.patient_id for r in recs])
    name = Path(data_root).resolve().name
    out = (
        Path(out_dir)
        if out_dir
        else (checkpoint if checkpoint.name != BEST_DIR else checkpoint.parent) / f"{EVAL_PREFIX}{name}"
    )
    write_predictions(
        out / PREDICTIONS_FILE,
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
        "patients": len({r.patient_id for r in recs}),
        "label_level": report.label_level,
        "problems": len(report.problems),
        "input_size": size,
        "trained_on": meta,
        "metrics": metrics,
    }
    write_json_atomic(out / FOLD_METRICS, result)
    return {**result, "out_dir": str(out)}
