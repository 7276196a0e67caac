"""Metrics on hand-made predictions, checked against scikit-learn and against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as skm

from trainer.metrics import (
    aggregate,
    binary_or_multiclass_quick,
    classification_metrics,
    expected_calibration_error,
    patient_accuracy,
)

# 10 images of 4 patients; P(malignant) chosen so that the 0.5 threshold gives 2 FP, 1 FN.
Y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
P = np.array([0.10, 0.40, 0.55, 0.70, 0.45, 0.60, 0.80, 0.90, 0.95, 0.65])
PATIENTS = ["b1", "b1", "b2", "b2", "m1", "m1", "m1", "m2", "m2", "m2"]


def test_binary_metrics_match_scikit_learn():
    m = classification_metrics(Y, P, PATIENTS)
    pred = (P >= 0.5).astype(int)
    assert m["n"] == 10
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(Y, pred)) == pytest.approx(0.7)
    assert m["precision"] == pytest.approx(skm.precision_score(Y, pred)) == pytest.approx(5 / 7)
    assert m["recall"] == pytest.approx(skm.recall_score(Y, pred)) == pytest.approx(5 / 6)
    assert m["f1"] == pytest.approx(skm.f1_score(Y, pred))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(Y, P))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(Y, pred))
    assert m["specificity"] == pytest.approx(2 / 4)  # tn / (tn + fp)
    assert m["confusion_matrix"] == skm.confusion_matrix(Y, pred).tolist() == [[2, 2], [1, 5]]
    # Patient recognition rate (mean over patients of each one's accuracy): b1 2/2 right, b2 0/2, m1 2/3, m2 3/3.
    assert m["patient_accuracy"] == pytest.approx((1.0 + 0.0 + 2 / 3 + 1.0) / 4)
    # Two-column probabilities give the same numbers as P(malignant).
    two = classification_metrics(Y, np.stack([1 - P, P], axis=1), PATIENTS)
    assert {k: two[k] for k in m if k != "confusion_matrix"} == pytest.approx(
        {k: m[k] for k in m if k != "confusion_matrix"}
    )


def test_threshold_moves_the_prediction():
    m = classification_metrics(Y, P, threshold=0.75)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(Y, (P >= 0.75).astype(int)))
    assert math.isnan(m["patient_accuracy"])  # no patient ids given


def test_multiclass_macro_metrics_match_scikit_learn():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(8), 5)
    logits = rng.normal(size=(40, 8)) + 2.0 * np.eye(8)[y] * (rng.random(40) > 0.3)[:, None]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    m = classification_metrics(y, probs)
    pred = probs.argmax(axis=1)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, average="macro", zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred, average="macro", zero_division=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, average="macro", zero_division=0))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, probs, multi_class="ovr"))
    cm = skm.confusion_matrix(y, pred)
    tnr = [(cm.sum() - cm[k].sum() - cm[:, k].sum() + cm[k, k]) / (cm.sum() - cm[k].sum()) for k in range(8)]
    assert m["specificity"] == pytest.approx(np.mean(tnr))


def test_expected_calibration_error_by_hand():
    # Two bins used (15 equal-width bins): confidences 0.9, 0.9 (one right) and 0.6, 0.6 (both right).
    y = np.array([1, 0, 1, 1])
    p = np.array([0.9, 0.9, 0.6, 0.6])  # P(malignant): the second is a confident mistake
    # bin of 0.9: accuracy 0.5, confidence 0.9 -> 0.4; bin of 0.6: accuracy 1.0, confidence 0.6 -> 0.4
    assert expected_calibration_error(y, p) == pytest.approx(0.5 * 0.4 + 0.5 * 0.4)
    assert expected_calibration_error(np.array([1, 0]), np.array([1.0, 0.0])) == pytest.approx(0.0)


def test_edge_cases_are_nan_not_errors():
    one_class = classification_metrics([1, 1, 1], [0.9, 0.2, 0.7], ["a", "a", "b"])
    assert math.isnan(one_class["roc_auc"]) and math.isnan(one_class["specificity"])
    assert one_class["recall"] == pytest.approx(2 / 3)
    empty = classification_metrics([], np.zeros((0, 2)))
    assert empty["n"] == 0 and math.isnan(empty["accuracy"])
    with pytest.raises(ValueError, match="3 labels but 2 predictions"):
        classification_metrics([0, 1, 1], [0.1, 0.9])
    assert patient_accuracy([], [], []) != patient_accuracy([], [], [])  # NaN


def test_quick_summary_and_aggregate():
    q = binary_or_multiclass_quick(Y, P)
    assert q == pytest.approx({"accuracy": 0.7, "roc_auc": skm.roc_auc_score(Y, P)})
    mean, std = aggregate(
        [{"accuracy": 0.8}, {"accuracy": 0.9}, {"accuracy": float("nan")}, {"accuracy": 1.0}], ["accuracy", "f1"]
    )
    assert mean["accuracy"] == pytest.approx(0.9)
    assert std["accuracy"] == pytest.approx(np.std([0.8, 0.9, 1.0], ddof=1))
    assert mean["f1"] is None and std["f1"] is None
    assert aggregate([{"accuracy": 0.8}], ["accuracy"])[1]["accuracy"] is None  # one fold: no std
