"""The run folder's per-image file, ``predictions.csv``: its one writer (the CV runner's test step and
``trainer evaluate``) and reader (``trainer context``, ``trainer stats``). Beside
``trainer.rundir``, which names the file; torch-free, so the app reads predictions without the training stack."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trainer.data.records import Record, malignant_columns

if TYPE_CHECKING:
    from trainer.trust.assess import Assessment

__all__ = ["write_predictions", "read_predictions", "trust_columns"]


def write_predictions(
    path: Path,
    records: list[Record],
    targets: np.ndarray,
    probs: np.ndarray,
    classes: list[str],
    magnification: str,
    fold: int,
    extra: dict[str, list] | None = None,
) -> Path:
    """``image_id,path,patient_id,label,prob_malignant,pred,magnification,fold,prob_<class>...``, the patches'
    slide coordinates ``x,y`` when they have them (IDC), and then the ``extra`` columns (``trust_columns``:
    uncalibrated P(malignant), OOD score and flag); ``label`` and ``pred`` are class indices of the run's target;
    ``prob_malignant`` sums the malignant classes (calibrated when the checkpoint has a temperature)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    malignant = malignant_columns(classes)
    per_class = [c for c in classes if c != "malignant"]  # binary: prob_malignant is already a column
    placed = any(r.x is not None for r in records)  # slide coordinates (IDC): trainer.context reads them
    pred = (probs[:, 1] >= 0.5).astype(int) if probs.shape[1] == 2 else probs.argmax(axis=1)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["image_id", "path", "patient_id", "label", "prob_malignant", "pred", "magnification", "fold"]
            + [f"prob_{c}" for c in per_class]
            + (["x", "y"] if placed else [])
            + list(extra or {})
        )
        columns = list((extra or {}).values())
        for n, (r, y, p, yp) in enumerate(zip(records, targets, probs, pred, strict=True)):
            w.writerow(
                [
                    r.image_id,
                    r.path,
                    r.patient_id,
                    int(y),
                    f"{p[malignant].sum():.6f}",
                    int(yp),
                    r.magnification or magnification,
                    fold,
                ]
                + [f"{v:.6f}" for v, c in zip(p, classes, strict=True) if c != "malignant"]
                + ([_cell(r.x), _cell(r.y)] if placed else [])
                + [_cell(col[n]) for col in columns]
            )
    os.replace(tmp, path)
    return path


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.6g}"
    return str(value)


def trust_columns(judged: Assessment) -> dict[str, list]:
    """predictions.csv's trust columns: the model's own (uncalibrated) P(malignant), the OOD score and flag."""
    n = len(judged)
    return {
        "prob_malignant_raw": [float(v) for v in judged.p_malignant_raw],
        "ood_score": [float(v) for v in judged.ood_score] if judged.ood_score is not None else [None] * n,
        "ood": list(judged.ood),
    }


def read_predictions(path: str | Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))
