"""What a client may send the store (issue 28): notes and names capped, control characters (NUL) and ids no row
can have refused with the same message on SQLite and PostgreSQL, and nothing written when refused; adjudication
by a third person (or an admin, logged)."""

from __future__ import annotations

import pytest

from histoapp.store import StoreError

MAX_NOTE = 2_000  # histoapp.store.fields.MAX_NOTE, as the README and docs/security.md state it


def _written(store) -> tuple[int, int]:
    return len(store.annotations()), len(store.audit_log())


def test_a_20_mb_note_is_refused_and_nothing_is_stored(store, image_ids):
    before = _written(store)
    with pytest.raises(StoreError, match=f"note is 20,000,000 characters long; the limit is {MAX_NOTE:,}"):
        store.annotate(image_ids[0], "ann", label=1, note="x" * 20_000_000)
    with pytest.raises(StoreError, match="the limit is"):
        store.adjudicate(image_ids[0], "chief", label=1, note="x" * (MAX_NOTE + 1))
    assert _written(store) == before
    saved = store.annotate(image_ids[0], "ann", label=1, note="n" * MAX_NOTE)  # the limit itself is fine
    assert len(saved["note"]) == MAX_NOTE


@pytest.mark.parametrize(
    "call",
    [
        lambda s, i: s.annotate(i, "ann", label=1, note="bad\x00note"),
        lambda s, i: s.annotate(i, "an\x00n", label=1),
        lambda s, i: s.adjudicate(i, "chief", label=1, note="\x00"),
        lambda s, i: s.add_prediction(i, model="cnn\x00", prob_malignant=0.5, label=1),
        lambda s, i: s.annotate(i, "ann", label=1, submission_id="k\x00"),
    ],
    ids=["note", "annotator", "adjudication-note", "model", "submission-id"],
)
def test_nul_bytes_are_refused_alike_on_every_backend(store, image_ids, call):
    """PostgreSQL cannot store NUL (it failed with a driver error) and SQLite stored it: both refuse it now."""
    before = _written(store)
    with pytest.raises(StoreError, match="control character"):
        call(store, image_ids[0])
    assert _written(store) == before


def test_a_dataset_name_with_nul_or_too_long_is_refused(store, patches):
    path = sorted(patches.rglob("*.png"))[0]
    with pytest.raises(StoreError, match="control character"):
        store.add_image(path, dataset="ds\x00")
    with pytest.raises(StoreError, match="dataset name is 65 characters long"):
        store.add_image(path, dataset="d" * 65)
    assert store.audit_log() == []


@pytest.mark.parametrize("bad", [10**30, 2**31, -1, 0, "abc", 1.5])
def test_ids_no_row_can_have_are_no_image_on_every_backend(store, image_ids, bad):
    """SQLite overflowed on 10**30 and PostgreSQL on 2**31 (its INTEGER is 32-bit): a driver error, shown as a bare
    "Error". Every entry point says there is no such image instead."""
    for call in (
        lambda: store.image(bad),
        lambda: store.annotate(bad, "ann", label=1),
        lambda: store.adjudicate(bad, "chief", label=1),
        lambda: store.add_prediction(bad, model="m", prob_malignant=0.5, label=1),
        lambda: store.predictions(bad),
        lambda: store.annotations(image_id=bad),
        lambda: store.queue("ann", exclude=[bad]),
    ):
        with pytest.raises(StoreError, match="no image with id"):
            call()


def test_an_annotator_cannot_settle_a_conflict_they_voted_on(store, image_ids):
    img = image_ids[0]
    store.annotate(img, "dr_a", label=1)
    store.annotate(img, "dr_b", label=0)
    with pytest.raises(StoreError, match="dr_a labelled image .*someone who did not vote on it"):
        store.adjudicate(img, "dr_a", label=1)
    assert store.conflicts()[0]["image_id"] == img  # still open
    store.adjudicate(img, "chief", label=1)  # a third person
    assert store.consensus()[img]["rule"] == "adjudicated"
    entry = store.audit_log(limit=1)[0]
    assert entry["actor"] == "chief" and "own_vote_override" not in entry["after"]


def test_an_admin_may_settle_their_own_conflict_and_the_log_says_so(store, image_ids):
    img = image_ids[1]
    store.annotate(img, "boss", label=1)
    store.annotate(img, "dr_b", label=0)
    saved = store.adjudicate(img, "boss", label=1, admin=True)
    entry = store.audit_log(limit=1)[0]
    assert entry["table_name"] == "adjudications" and entry["actor"] == "boss"
    assert entry["after"]["own_vote_override"] is True and entry["after"]["id"] == saved["id"]
    # Undo and redo replay the snapshot's columns: the record does not leak into the row.
    store.undo("boss")
    assert store.redo("boss")["state"]["label"] == 1
    assert store.consensus()[img]["rule"] == "adjudicated"
