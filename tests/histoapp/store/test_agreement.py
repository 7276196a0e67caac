"""Agreement statistics come from scikit-learn / statsmodels on the right images; consensus and conflicts."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import cohen_kappa_score
from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

A = [1, 1, 0, 0, 1, 0, 1, 0]
B = [1, 0, 0, 0, 1, 0, 1, 1]
C = [1, 1, 0, 1, 1, 0, 0, 0]


def test_cohen_and_fleiss_kappa(store, image_ids):
    for who, labels in (("a", A), ("b", B), ("c", C)):
        for i, lab in zip(image_ids, labels, strict=False):
            store.annotate(i, who, label=lab)
    store.annotate(image_ids[20], "a", label=1)  # labelled by one annotator only: not in the pairs
    res = store.agreement()
    pairs = {(p["a"], p["b"]): p for p in res["pairs"]}
    assert pairs[("a", "b")]["n"] == 8
    assert pairs[("a", "b")]["kappa"] == pytest.approx(cohen_kappa_score(A, B))
    assert pairs[("b", "c")]["kappa"] == pytest.approx(cohen_kappa_score(B, C))
    table, _ = aggregate_raters(np.array([A, B, C]).T, n_cat=2)
    assert res["fleiss"]["kappa"] == pytest.approx(fleiss_kappa(table)) and res["fleiss"]["raters"] == 3


def test_annotator_vs_models_and_source_labels(store, image_ids):
    for i, lab in zip(image_ids, A, strict=False):
        store.annotate(i, "a", label=lab)
        store.add_prediction(i, model="resnet34", prob_malignant=0.9 if lab else 0.1, label=lab)
    rows = {r["b"]: r for r in store.agreement()["models"]}
    assert rows["model: resnet34"]["kappa"] == pytest.approx(1.0)
    truth = [store.image(i)["source_label"] for i in image_ids[:8]]
    assert rows["source label"]["kappa"] == pytest.approx(cohen_kappa_score(A, truth))


def test_undefined_kappa_is_none_not_nan(store, image_ids):
    store.annotate(image_ids[0], "a", label=1)
    store.annotate(image_ids[0], "b", label=1)
    assert store.agreement()["pairs"][0]["kappa"] is None


def test_conflicts_consensus_and_adjudication(store, image_ids):
    x, y, z = image_ids[:3]
    store.annotate(x, "a", label=1, subtype="DC")
    store.annotate(x, "b", label=0)
    store.annotate(y, "a", subtype="LC")
    store.annotate(y, "b", subtype="MC")
    store.annotate(z, "a", label=0)
    store.annotate(z, "b", label=0, subtype="A")
    kinds = {c["image_id"]: c["kind"] for c in store.conflicts()}
    assert kinds == {x: "label", y: "subtype"}
    cons = store.consensus()
    assert x not in cons and cons[y] == {**cons[y], "label": 1, "subtype": None}
    assert cons[z]["label"] == 0 and cons[z]["subtype"] == "A" and cons[z]["rule"] == "unanimous"
    store.adjudicate(x, "chief", label=1, subtype="DC", note="invasive")
    assert store.consensus()[x]["rule"] == "adjudicated" and x not in {c["image_id"] for c in store.conflicts()}
    assert store.undo("chief")["image_id"] == x
    assert x not in store.consensus()
