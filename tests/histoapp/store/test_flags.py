"""Quality flags have one home (histoapp/store/fields.py): each is a column of the annotations table that
``Store.annotate`` sets, the CSV export writes and the Annotate tab offers."""

from __future__ import annotations

import csv

from sqlalchemy import Boolean

from histoapp.store import QUALITY_FLAGS
from histoapp.store.models import Annotation
from histoapp.ui.annotate_view import FLAG_CHOICES


def test_every_quality_flag_is_stored_exported_and_offered(store, image_ids, tmp_path):
    columns = Annotation.__table__.columns
    assert all(isinstance(columns[flag].type, Boolean) for flag in QUALITY_FLAGS)
    assert [value for _, value in FLAG_CHOICES] == list(QUALITY_FLAGS)
    for image_id, flag in zip(image_ids[: len(QUALITY_FLAGS)], QUALITY_FLAGS, strict=True):
        assert store.annotate(image_id, "ana", label="benign", **{flag: True})[flag] is True
    with open(store.export_csv(tmp_path / "a.csv"), newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [[flag for flag in QUALITY_FLAGS if row[flag] == "1"] for row in rows] == [[f] for f in QUALITY_FLAGS]
