"""Ratings of explanation maps (issue 27): a rater says, 1-5, whether a model's map of an image highlights the
diagnostic region, with a free note; the row keeps the model, the method and the map's faithfulness score as
shown. One row per (image, rater, model, method), the latest rating wins; each write is one ``upsert_audited``
(audit-logged, undoable like a label) in one write transaction, with the click's submission id so a retried
click applies once."""

from __future__ import annotations

import math

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from histoapp.store.audit import upsert_audited
from histoapp.store.errors import StoreError
from histoapp.store.fields import MAP_RATINGS, check_id, check_name, check_note, check_text
from histoapp.store.models import Image, MapRating, Submission, row_dict, utcnow


def _rating(value) -> int:
    try:
        number = int(value)
        whole = float(value).is_integer()
    except (TypeError, ValueError, OverflowError):
        number, whole = None, False
    if number is None or not whole or number not in MAP_RATINGS:
        raise StoreError(f"a map's rating is a whole number from 1 to 5, not {str(value)[:40]!r}")
    return number


def _score(value) -> float | None:
    if value is None:
        return None
    try:
        score = float(value)
    except (TypeError, ValueError):
        score = math.nan
    if not math.isfinite(score):
        raise StoreError(f"a faithfulness score is a finite number, not {str(value)[:40]!r}")
    return score


def rate_map(
    store,
    image_id: int,
    rater: str,
    *,
    model: str,
    method: str,
    rating,
    note: str = "",
    faithfulness: float | None = None,
    submission_id: str | None = None,
) -> dict:
    """Set ``rater``'s rating of ``model``'s ``method`` map of an image (creating or replacing it); the row with
    ``applied`` (False: nothing changed) and ``duplicate`` (the same ``submission_id`` was applied before)."""
    rater = check_name(rater, "rater")
    key = dict(
        image_id=check_id(image_id),
        rater=rater,
        model=check_text(model, "model name", 200).strip(),
        method=check_text(method, "map method", 64).strip(),
    )
    if not key["model"] or not key["method"]:
        raise StoreError("a rating needs the map's model and method: show a map first")
    values = dict(rating=_rating(rating), note=check_note(note), faithfulness=_score(faithfulness))
    if submission_id is not None and not check_text(submission_id, "submission id", 64):
        raise StoreError("submission id must be 1-64 characters")
    try:
        return _rate(store, key, values, submission_id)
    except IntegrityError:
        # Another server process committed the same submission or row first (no BEGIN IMMEDIATE there).
        if submission_id:
            with store.read() as s:
                if (done := _submitted(s, submission_id)) is not None:
                    return done
        raise


def _submitted(s, key: str) -> dict | None:
    sub = s.get(Submission, key)
    if sub is None:
        return None
    row = s.scalar(select(MapRating).where(MapRating.id == sub.annotation_id)) if sub.annotation_id else None
    return {**(row_dict(row) if row else {}), "applied": False, "duplicate": True}


def _rate(store, key: dict, values: dict, submission_id: str | None) -> dict:
    with store.write() as s:
        if submission_id and (done := _submitted(s, submission_id)) is not None:
            return done
        if s.get(Image, key["image_id"]) is None:
            raise StoreError(f"no image with id {key['image_id']}")
        now = utcnow()
        change = upsert_audited(
            s,
            key["rater"],
            MapRating,
            key,
            values,
            stamp=dict(updated_at=now),
            on_create=dict(created_at=now),
            if_changed=True,
        )
        entry = change.entry
        if submission_id:
            # annotation_id holds the rated row's id here (the submissions table serves every click).
            s.add(
                Submission(key=submission_id, annotation_id=change.row.id, audit_id=entry and entry.id, created_at=now)
            )
        return {**row_dict(change.row), "applied": entry is not None, "duplicate": False}


def ratings(store, *, image_id: int | None = None, rater: str | None = None) -> list[dict]:
    q = select(MapRating).order_by(MapRating.id)
    if image_id is not None:
        q = q.where(MapRating.image_id == check_id(image_id))
    if rater is not None:
        q = q.where(MapRating.rater == rater)
    with store.read() as s:
        return [row_dict(r) for r in s.scalars(q)]
