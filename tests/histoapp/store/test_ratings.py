"""Ratings of explanation maps (issue 27): saved with the model, method and faithfulness score, audit-logged,
undone and redone with the labels, exported, refused when malformed, agreed on (weighted kappa)."""

from __future__ import annotations

import csv
import json
import threading

import pytest

from histoapp.store import StoreError

MAP = dict(model="demo-cnn", method="Grad-CAM")


def test_rating_is_saved_with_model_method_and_score(store, image_ids):
    row = store.rate_map(image_ids[0], "rater", **MAP, rating=4, note="on the nests", faithfulness=0.38)
    assert row["applied"] and not row["duplicate"]
    (saved,) = store.map_ratings()
    assert (saved["image_id"], saved["rater"], saved["model"], saved["method"]) == (
        image_ids[0],
        "rater",
        *MAP.values(),
    )
    assert (saved["rating"], saved["note"], saved["faithfulness"]) == (4, "on the nests", pytest.approx(0.38))
    # A second rating of the same map replaces it; another method's map is another row.
    store.rate_map(image_ids[0], "rater", **MAP, rating=2, faithfulness=0.38)
    store.rate_map(image_ids[0], "rater", model="demo-vlm", method="attention", rating=5)
    rows = store.map_ratings(image_id=image_ids[0])
    assert [(r["method"], r["rating"], r["faithfulness"]) for r in rows] == [
        ("Grad-CAM", 2, pytest.approx(0.38)),
        ("attention", 5, None),
    ]


def test_rating_is_audit_logged(store, image_ids):
    store.rate_map(image_ids[0], "rater", **MAP, rating=3, faithfulness=0.1)
    store.rate_map(image_ids[0], "rater", **MAP, rating=5, faithfulness=0.1)
    store.rate_map(image_ids[0], "rater", **MAP, rating=5, faithfulness=0.1)  # unchanged: nothing logged
    entries = [e for e in store.audit_log(image_id=image_ids[0]) if e["table_name"] == "map_ratings"]
    assert [(e["action"], e["actor"]) for e in entries] == [("update", "rater"), ("create", "rater")]
    assert entries[0]["before"]["rating"] == 3 and entries[0]["after"]["rating"] == 5


def test_undo_and_redo_cover_ratings_and_labels_in_order(store, image_ids):
    a = image_ids[0]
    store.annotate(a, "rater", label=1)
    store.rate_map(a, "rater", **MAP, rating=2)
    store.rate_map(a, "rater", **MAP, rating=4)
    assert store.undo("rater")["table"] == "map_ratings"
    assert [r["rating"] for r in store.map_ratings()] == [2]
    assert store.undo("rater")["state"] is None  # the rating is gone, the label stays
    assert store.map_ratings() == [] and len(store.annotations()) == 1
    assert store.undo("rater")["table"] == "annotations"
    assert store.annotations() == []
    store.redo("rater")
    store.redo("rater")
    assert [r["rating"] for r in store.map_ratings()] == [2]


def test_bad_ratings_are_refused_with_a_clear_message(store, image_ids):
    for bad in (0, 6, 2.5, "five", None):
        with pytest.raises(StoreError, match="whole number from 1 to 5"):
            store.rate_map(image_ids[0], "rater", **MAP, rating=bad)
    with pytest.raises(StoreError, match="show a map first"):
        store.rate_map(image_ids[0], "rater", model="demo-cnn", method="", rating=3)
    with pytest.raises(StoreError, match="finite number"):
        store.rate_map(image_ids[0], "rater", **MAP, rating=3, faithfulness=float("nan"))
    with pytest.raises(StoreError, match="no image with id 999999"):
        store.rate_map(999999, "rater", **MAP, rating=3)
    with pytest.raises(StoreError, match="rater name"):
        store.rate_map(image_ids[0], "", **MAP, rating=3)
    assert store.map_ratings() == []


def test_a_retried_rating_click_applies_once(store, image_ids):
    barrier = threading.Barrier(4)
    results = []

    def click():
        barrier.wait()
        results.append(store.rate_map(image_ids[1], "rater", **MAP, rating=4, submission_id="rate-click"))

    threads = [threading.Thread(target=click) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r["duplicate"] for r in results) == [False, True, True, True]
    assert len(store.map_ratings()) == 1
    assert len([e for e in store.audit_log() if e["table_name"] == "map_ratings"]) == 1


def test_ratings_are_exported_as_json_and_csv(store, image_ids, tmp_path):
    store.annotate(image_ids[0], "rater", label=1)
    store.rate_map(image_ids[0], "rater", **MAP, rating=4, note='says "tumour"', faithfulness=0.25)
    doc = json.loads(store.export_json(tmp_path / "a.json").read_text())
    (img,) = [i for i in doc["images"] if i["id"] == image_ids[0]]
    assert [(r["rater"], r["method"], r["rating"], r["faithfulness"]) for r in img["map_ratings"]] == [
        ("rater", "Grad-CAM", 4, 0.25)
    ]
    assert all(i["map_ratings"] == [] for i in doc["images"] if i["id"] != image_ids[0])
    with open(store.export_ratings_csv(tmp_path / "r.csv"), newline="") as fh:
        (row,) = list(csv.DictReader(fh))
    assert (row["image_id"], row["model"], row["rating"], row["faithfulness"], row["note"]) == (
        str(image_ids[0]),
        "demo-cnn",
        "4",
        "0.25",
        'says "tumour"',
    )


def test_two_raters_agreement_is_a_weighted_kappa(store, image_ids):
    a = [1, 2, 3, 4, 5, 5, 2, 1]
    near = [1, 2, 4, 4, 5, 4, 2, 2]  # off by one at most
    far = [5, 4, 1, 2, 1, 1, 5, 4]  # the scale reversed, roughly
    for who, values in (("a", a), ("near", near), ("far", far)):
        for image_id, r in zip(image_ids, values, strict=False):
            store.rate_map(image_id, who, **MAP, rating=r)
    res = store.rating_agreement()
    by = {(p["a"], p["b"]): p for p in res["pairs"]}
    assert res["raters"] == ["a", "far", "near"] and res["ratings"] == 24
    assert by[("a", "near")]["n"] == 8 and by[("a", "near")]["kappa"] > 0.8
    assert by[("a", "far")]["kappa"] < -0.5
    assert by[("a", "near")]["agreement"] == pytest.approx(5 / 8)
    # Quadratic weights: a near miss counts partly, so the weighted kappa beats the unweighted one.
    from sklearn.metrics import cohen_kappa_score

    assert by[("a", "near")]["kappa"] > cohen_kappa_score(a, near)
