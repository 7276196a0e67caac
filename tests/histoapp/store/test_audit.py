"""The store's write side (histoapp/store/audit.py): one audited upsert, and undo/redo entries that record what
they replaced, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from histoapp.store.audit import upsert_audited
from histoapp.store.models import Prediction, utcnow


def test_upsert_audited_logs_create_then_update_and_nothing_for_the_same_values(store, image_ids):
    key = dict(image_id=image_ids[0], model="m")
    values = dict(kind="cnn", prob_malignant=0.8, label=1)
    with store.write() as s:
        first = upsert_audited(s, "ana", Prediction, key, values, on_create=dict(created_at=utcnow()))
    with store.write() as s:
        same = upsert_audited(s, "ana", Prediction, key, values, if_changed=True)
    with store.write() as s:
        changed = upsert_audited(s, "bob", Prediction, key, dict(values, prob_malignant=0.3, label=0))
    assert first.before is None and same.entry is None and changed.row.id == first.row.id
    log = [(e["actor"], e["action"], e["row_id"]) for e in reversed(store.audit_log())]
    assert log[-2:] == [("ana", "create", first.row.id), ("bob", "update", first.row.id)]
    entry = store.audit_log(limit=1)[0]
    assert (entry["before"]["prob_malignant"], entry["after"]["prob_malignant"]) == (0.8, 0.3)
    assert entry["image_id"] == image_ids[0] and entry["table_name"] == "predictions"


def test_a_failed_write_keeps_neither_the_row_nor_its_log_entry(store, image_ids):
    n_log = len(store.audit_log())
    with pytest.raises(RuntimeError), store.write() as s:
        upsert_audited(
            s, "ana", Prediction, dict(image_id=image_ids[0], model="m"), dict(kind="cnn", prob_malignant=0.5, label=1)
        )
        raise RuntimeError("crash after the write, before the commit")
    assert store.predictions(image_ids[0]) == [] and len(store.audit_log()) == n_log


def test_an_undo_entry_records_the_label_it_replaced_and_the_one_it_restored(store, image_ids):
    store.annotate(image_ids[0], "ana", label="benign", note="first")
    store.annotate(image_ids[0], "ana", label="malignant", note="second")
    store.undo("ana")
    undo = store.audit_log(limit=1)[0]
    assert undo["action"] == "undo"
    assert (undo["before"]["note"], undo["after"]["note"]) == ("second", "first")
    store.redo("ana")
    redo = store.audit_log(limit=1)[0]
    assert (redo["action"], redo["before"]["note"], redo["after"]["note"]) == ("redo", "first", "second")


def test_an_action_outside_the_annotation_tables_is_logged_and_not_undoable(store):
    store.log_action("ana", "launch", "runs", {"run": "r1"})
    entry = store.audit_log(limit=1)[0]
    assert (entry["actor"], entry["action"], entry["table_name"], entry["after"]) == (
        "ana",
        "launch",
        "runs",
        {"run": "r1"},
    )
    assert store.undo("ana") is None
