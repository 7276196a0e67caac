"""Store API: images deduplicated by content, validation, idempotent clicks, undo/redo, missing files."""

from __future__ import annotations

import shutil
import threading

import pytest

from histoapp.store import StoreError


def _snapshot(store):
    """Everything undo/redo may touch, every column."""
    return store.annotations(), [a for a in store.conflicts(include_resolved=True)]


def test_same_bytes_are_one_image_and_not_queued_twice(store, patches, tmp_path):
    first = sorted(patches.rglob("*.png"))[0]
    copy = tmp_path / "renamed_copy.png"
    shutil.copy(first, copy)
    a = store.add_image(first, dataset="breakhis")
    assert store.add_image(copy, dataset="upload") == a
    result = store.import_folder(patches)
    assert result.added == 31 and result.duplicates == 1
    again = store.import_folder(patches)
    assert again.added == 0 and again.duplicates == 32
    queue = store.queue("ann", mode="unlabelled", limit=None)
    assert len(queue) == len(set(queue)) == 32


def test_bad_input_is_refused_with_a_clear_message(store, image_ids, tmp_path):
    bad = tmp_path / "not_an_image.png"
    bad.write_bytes(b"hello")
    with pytest.raises(StoreError, match="not an image"):
        store.add_image(bad, dataset="x")
    with pytest.raises(StoreError, match="annotator name"):
        store.annotate(image_ids[0], "  ", label=1)
    with pytest.raises(StoreError, match="invalid label"):
        store.annotate(image_ids[0], "ann", label="maybe")
    with pytest.raises(StoreError, match="subtype DC is malignant"):
        store.annotate(image_ids[0], "ann", label="benign", subtype="DC")
    with pytest.raises(StoreError, match="no image"):
        store.annotate(99999, "ann", label=1)
    with pytest.raises(StoreError, match=r"\[0, 1\]"):
        store.add_prediction(image_ids[0], model="m", prob_malignant=1.5, label=1)
    assert store.annotations() == []


def test_subtype_implies_label(store, image_ids):
    row = store.annotate(image_ids[0], "ann", subtype="lobular carcinoma")
    assert (row["label"], row["subtype"]) == (1, "LC")


def test_double_submission_of_one_click_is_idempotent(store, image_ids):
    first = store.annotate(image_ids[0], "ann", label=1, note="n", submission_id="click-1")
    again = store.annotate(image_ids[0], "ann", label=1, note="n", submission_id="click-1")
    assert first["applied"] and again["duplicate"] and not again["applied"]
    # Even a retry whose form changed in between changes nothing: the click was already applied.
    store.annotate(image_ids[0], "ann", label=0, submission_id="click-1")
    assert [(a["label"], a["note"]) for a in store.annotations()] == [(1, "n")]
    assert len([e for e in store.audit_log() if e["table_name"] == "annotations"]) == 1


def test_concurrent_double_submission_applies_once(store, image_ids):
    barrier = threading.Barrier(6)

    def click():
        barrier.wait()
        store.annotate(image_ids[1], "ann", label=0, submission_id="same-click")

    threads = [threading.Thread(target=click) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(store.annotations()) == 1
    assert len([e for e in store.audit_log() if e["table_name"] == "annotations"]) == 1


def test_undo_redo_restore_exact_prior_state(store, image_ids):
    a, b = image_ids[:2]
    states = [_snapshot(store)]
    store.annotate(a, "ann", label=1, subtype="DC", confidence=0.7, blur=True, note="first")
    states.append(_snapshot(store))
    store.annotate(a, "ann", label=0, subtype="F", confidence=0.2, fold=True, note="changed my mind")
    states.append(_snapshot(store))
    store.annotate(b, "ann", label=1)
    states.append(_snapshot(store))
    store.delete_annotation(b, "ann")
    states.append(_snapshot(store))
    store.annotate(b, "other", label=0)  # another annotator's work is not theirs to undo
    other = store.annotations(annotator="other")
    for i in range(len(states) - 1, 0, -1):
        assert store.undo("ann")["image_id"] in (a, b)
        assert [r for r in store.annotations() if r["annotator"] == "ann"] == states[i - 1][0]
    assert store.undo("ann") is None
    for i in range(1, len(states)):
        store.redo("ann")
        assert [r for r in store.annotations() if r["annotator"] == "ann"] == states[i][0]
    assert store.redo("ann") is None
    assert store.annotations(annotator="other") == other
    # A new change after an undo clears what could be redone.
    store.undo("ann")
    store.annotate(a, "ann", label=1)
    assert store.redo("ann") is None


def test_audit_log_is_append_only(store, image_ids, db_url):
    import sqlite3

    store.annotate(image_ids[0], "ann", label=1)
    with sqlite3.connect(db_url.removeprefix("sqlite:///")) as raw:
        for sql in ("UPDATE audit_log SET actor='x'", "DELETE FROM audit_log"):
            with pytest.raises(sqlite3.IntegrityError, match="append-only"):
                raw.execute(sql)


def test_deleted_file_shows_clear_message_and_keeps_annotations(store, tmp_path, patches):
    src = sorted(patches.rglob("*.png"))[0]
    path = tmp_path / "will_vanish.png"
    shutil.copy(src, path)
    image_id = store.add_image(path, dataset="upload")
    store.annotate(image_id, "ann", label=1, note="keep me")
    img, msg = store.load_image(image_id)
    assert img is not None and msg == ""
    path.unlink()
    img, msg = store.load_image(image_id)
    assert img is None and "file not found" in msg and "annotations are kept" in msg and str(path) in msg
    assert [a["note"] for a in store.annotations(image_id=image_id)] == ["keep me"]
    # Importing the same bytes from where they now live points the image there again.
    assert store.add_image(src, dataset="breakhis") == image_id
    assert store.load_image(image_id)[0] is not None


def test_predictions_replace_per_model_and_guess_kind(store, image_ids):
    store.add_prediction(image_ids[0], model="resnet34", prob_malignant=0.2, label=0)
    store.add_prediction(image_ids[0], model="resnet34", prob_malignant=0.8, label="malignant")
    store.add_prediction(image_ids[0], model="qwen2-vl-2b-lora", prob_malignant=0.1, label=0)
    preds = {p["model"]: p for p in store.predictions(image_ids[0])}
    assert preds["resnet34"]["prob_malignant"] == 0.8 and preds["resnet34"]["kind"] == "cnn"
    assert preds["qwen2-vl-2b-lora"]["kind"] == "vlm"


def test_send_to_queue_keeps_a_copy_and_the_predictions(store, patches, tmp_path):
    upload = tmp_path / "gradio_tmp_upload.png"
    shutil.copy(sorted(patches.rglob("*.png"))[0], upload)
    preds = [
        dict(model="resnet34", prob_malignant=0.7, label=1),
        dict(model="smolvlm-lora", prob_malignant=0.3, label=0),
    ]
    image_id = store.send_to_queue(upload, uploads_dir=tmp_path / "uploads", predictions=preds)
    upload.unlink()  # the temporary upload goes away; the queued copy stays
    assert store.load_image(image_id)[0] is not None
    assert str(tmp_path / "uploads") in store.image(image_id)["path"]
    assert {p["kind"] for p in store.predictions(image_id)} == {"cnn", "vlm"}
    assert store.queue("ann", mode="disagreement") == [image_id]


def test_import_writes_no_progress_bars_to_the_server_log(store, patches, tmp_path, capfd):
    plain = tmp_path / "plain"
    plain.mkdir()
    for p in sorted(patches.rglob("*.png"))[:3]:
        shutil.copy(p, plain / f"x_{p.name}")
    capfd.readouterr()
    store.import_folder(patches)  # a BreakHis root
    store.import_folder(plain)  # a folder of unlabelled images
    out, err = capfd.readouterr()
    assert out == "" and err == "", (out, err)
