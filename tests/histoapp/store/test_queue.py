"""Queue modes and filters, and progress counts."""

from __future__ import annotations

import pytest

from histoapp.store import StoreError


def test_unlabelled_and_mine(store, image_ids):
    store.annotate(image_ids[0], "ann", label=1)
    store.annotate(image_ids[1], "bob", label=0)
    assert store.queue("ann", mode="unlabelled", limit=None) == image_ids[2:]
    assert store.queue("ann", mode="mine", limit=None) == image_ids[1:]
    assert store.queue("ann", mode="mine", exclude=[image_ids[1]], limit=3) == image_ids[2:5]
    assert store.queue("ann", mode="all", limit=None) == image_ids


def test_filters_by_magnification_and_dataset(store, image_ids, tmp_path, patches):
    ids_40 = store.queue("ann", magnification="40X", limit=None)
    assert len(ids_40) == 8 and all(store.image(i)["magnification"] == "40X" for i in ids_40)
    assert store.datasets() == ["breakhis"]
    assert store.queue("ann", dataset="nothing") == []


def test_disagreement_and_uncertainty_orders(store, image_ids):
    a, b, c, d = image_ids[:4]
    store.add_prediction(a, model="resnet34", prob_malignant=0.9, label=1)
    store.add_prediction(a, model="qwen2-vl", prob_malignant=0.4, label=0)  # gap 0.5
    store.add_prediction(b, model="resnet34", prob_malignant=0.95, label=1)
    store.add_prediction(b, model="qwen2-vl", prob_malignant=0.05, label=0)  # gap 0.9
    store.add_prediction(c, model="resnet34", prob_malignant=0.8, label=1)
    store.add_prediction(c, model="qwen2-vl", prob_malignant=0.7, label=1)  # agree
    store.add_prediction(d, model="alexnet", prob_malignant=0.52, label=1)
    assert store.queue("ann", mode="disagreement") == [b, a]
    # mean probability nearest 0.5 first: b 0.5, d 0.52, a 0.65, c 0.75
    assert store.queue("ann", mode="uncertain") == [b, d, a, c]
    store.annotate(b, "ann", label=1)
    assert store.queue("ann", mode="uncertain") == [d, a, c]


def test_most_uncertain_first_is_the_abstention_rules_score(store, image_ids):
    """The queue sorts by trainer.trust.abstain.uncertainty, the score the uncertain band bounds."""
    from trainer.trust.abstain import uncertainty

    probs = dict(zip(image_ids[:5], (0.97, 0.58, 0.30, 0.49, 0.02), strict=True))
    for image_id, p in probs.items():
        store.add_prediction(image_id, model="resnet34", prob_malignant=p, label=int(p >= 0.5))
    expected = sorted(probs, key=lambda i: (-uncertainty(probs[i]), i))
    assert store.queue("ann", mode="uncertain") == expected


def test_conflicts_queue_and_progress(store, image_ids):
    store.annotate(image_ids[0], "ann", label=1)
    store.annotate(image_ids[0], "bob", label=0)
    store.annotate(image_ids[1], "ann", label=1)
    assert store.queue("ann", mode="conflicts") == [image_ids[0]]
    p = store.progress("ann")
    assert p == {"images": 32, "labelled": 2, "annotations": 3, "mine": 2, "left": 30, "conflicts": 1}
    assert store.progress("ann", magnification="40X")["images"] == 8
    store.adjudicate(image_ids[0], "chief", label=0)
    assert store.queue("ann", mode="conflicts") == [] and store.progress()["conflicts"] == 0


def test_unknown_mode(store):
    with pytest.raises(StoreError, match="unknown queue"):
        store.queue("ann", mode="random")
