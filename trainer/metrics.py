"""Classification metrics on saved predictions, computed with scikit-learn: accuracy, precision, recall,
F1, ROC-AUC, specificity, balanced accuracy, the BreakHis patient-level recognition rate, expected
calibration error; and their mean / std over folds."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

# Order of the columns in tables; the first five are the paper's.
METRICS: tuple[str, ...] = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "specificity",
    "balanced_accuracy",
    "patient_accuracy",
    "ece",
)
METRIC_NAMES: dict[str, str] = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "AUC",
    "specificity": "Specificity",
    "balanced_accuracy": "Balanced acc.",
    "patient_accuracy": "Patient acc.",
    "ece": "ECE",
}


def _as_probs(y_true, probs) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y_true, dtype=int)
    p = np.asarray(probs, dtype=float)
    if p.ndim == 1:  # probability of the positive class
        p = np.stack([1.0 - p, p], axis=1)
    if len(y) != len(p):
        raise ValueError(f"{len(y)} labels but {len(p)} predictions")
    return y, p


def expected_calibration_error(y_true, probs, n_bins: int = 15) -> float:
    """Top-label ECE (Guo et al. 2017): |accuracy - confidence| per equal-width confidence bin, weighted by
    the bin's share of samples. scikit-learn has only the reliability curve (calibration_curve), not ECE."""
    y, p = _as_probs(y_true, probs)
    if len(y) == 0:
        return float("nan")
    conf = p.max(axis=1)
    correct = (p.argmax(axis=1) == y).astype(float)
    bins = np.minimum((conf * n_bins).astype(int), n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def patient_accuracy(y_true, y_pred, patient_ids: Sequence[str]) -> float:
    """BreakHis patient recognition rate (Spanhol et al. 2016): the mean over patients of the fraction of
    that patient's images classified correctly."""
    y, yp, pid = np.asarray(y_true), np.asarray(y_pred), np.asarray(patient_ids)
    if len(y) == 0:
        return float("nan")
    scores = [float((yp[pid == p] == y[pid == p]).mean()) for p in np.unique(pid)]
    return float(np.mean(scores))


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    from sklearn import metrics as skm  # here, not at the top: the app lists METRIC_NAMES without scikit-learn

    present = np.unique(y)
    if len(present) < 2:
        return float("nan")  # undefined with one class in the test set
    if p.shape[1] == 2:
        return float(skm.roc_auc_score(y, p[:, 1]))
    if len(present) < p.shape[1]:  # one-vs-rest over the classes present
        cols = p[:, present]
        cols = cols / np.clip(cols.sum(axis=1, keepdims=True), 1e-12, None)
        return (
            float(skm.roc_auc_score(y, cols, multi_class="ovr", labels=present))
            if len(present) > 2
            else float(skm.roc_auc_score(y == present[1], cols[:, 1]))
        )
    return float(skm.roc_auc_score(y, p, multi_class="ovr"))


def classification_metrics(y_true, probs, patient_ids: Sequence[str] | None = None, *, threshold: float = 0.5) -> dict:
    """All metrics for one test set. ``probs``: (N, C) class probabilities or (N,) P(malignant).

    Binary (C=2): precision / recall / F1 / specificity of the malignant class, prediction ``P >= threshold``.
    Multi-class: arg-max prediction, macro averages (specificity: mean one-vs-rest true-negative rate)."""
    from sklearn import metrics as skm  # here, not at the top: the app lists METRIC_NAMES without scikit-learn

    y, p = _as_probs(y_true, probs)
    k = p.shape[1]
    pred = (p[:, 1] >= threshold).astype(int) if k == 2 else p.argmax(axis=1)
    out: dict = {"n": int(len(y))}
    if len(y) == 0:
        return {**out, **{m: float("nan") for m in METRICS}}
    labels = list(range(k))
    if k == 2:
        out["precision"] = float(skm.precision_score(y, pred, zero_division=0))
        out["recall"] = float(skm.recall_score(y, pred, zero_division=0))
        out["f1"] = float(skm.f1_score(y, pred, zero_division=0))
        tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        out["specificity"] = float(tn / (tn + fp)) if (tn + fp) else float("nan")
    else:
        out["precision"] = float(skm.precision_score(y, pred, labels=labels, average="macro", zero_division=0))
        out["recall"] = float(skm.recall_score(y, pred, labels=labels, average="macro", zero_division=0))
        out["f1"] = float(skm.f1_score(y, pred, labels=labels, average="macro", zero_division=0))
        cm = skm.confusion_matrix(y, pred, labels=labels)
        tn = cm.sum() - cm.sum(axis=0) - cm.sum(axis=1) + np.diag(cm)
        fp = cm.sum(axis=0) - np.diag(cm)
        present = cm.sum(axis=1) > 0
        out["specificity"] = float(np.mean((tn / np.clip(tn + fp, 1, None))[present]))
    out["accuracy"] = float(skm.accuracy_score(y, pred))
    out["roc_auc"] = _roc_auc(y, p)
    with warnings.catch_warnings():  # one class in the test set: the mean recall over the classes present
        warnings.simplefilter("ignore")
        out["balanced_accuracy"] = float(skm.balanced_accuracy_score(y, pred))
    out["patient_accuracy"] = patient_accuracy(y, pred, patient_ids) if patient_ids is not None else float("nan")
    out["ece"] = expected_calibration_error(y, p)
    out["confusion_matrix"] = skm.confusion_matrix(y, pred, labels=labels).tolist()
    return out


def binary_or_multiclass_quick(y_true, probs) -> dict:
    """Accuracy and AUC only (the per-epoch validation summary)."""
    y, p = _as_probs(y_true, probs)
    if len(y) == 0:
        return {"accuracy": float("nan"), "roc_auc": float("nan")}
    pred = (p[:, 1] >= 0.5).astype(int) if p.shape[1] == 2 else p.argmax(axis=1)
    return {"accuracy": float((pred == y).mean()), "roc_auc": _roc_auc(y, p)}


def aggregate(per_fold: Sequence[dict], names: Sequence[str] = METRICS) -> tuple[dict, dict]:
    """(mean, std) over folds for each metric; std is the sample standard deviation (ddof=1), NaN-aware,
    None where fewer than two folds have a value."""
    mean, std = {}, {}
    for m in names:
        vals = np.array(
            [
                f.get(m)
                for f in per_fold
                if f.get(m) is not None and not (isinstance(f.get(m), float) and math.isnan(f[m]))
            ],
            dtype=float,
        )
        mean[m] = float(vals.mean()) if len(vals) else None
        std[m] = float(vals.std(ddof=1)) if len(vals) > 1 else None
    return mean, std
