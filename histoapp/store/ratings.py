"""Ratings of explanation maps (issue 27): a rater says, 1-5, whether a model's map of an image highlights the
diagnostic region, with a free note; the row keeps the model, the method and the map's faithfulness score as
shown. One row per (image, rater, model, method), the latest rating wins; each write is a click's write as a
label's is (``labels.submit``: one ``upsert_audited``, audit-logged, undoable like a label, with the click's
submission id so a retried click applies once)."""

from __future__ import annotations

import math

from histoapp.store.errors import StoreError
from histoapp.store.fields import MAP_RATINGS, check_id, check_name, check_note, check_text
from histoapp.store.labels import rows_of, submit
from histoapp.store.models import MapRating


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
    return submit(store, rater, MapRating, key, values, submission_id)


def ratings(store, *, image_id: int | None = None, rater: str | None = None) -> list[dict]:
    return rows_of(store, MapRating, image_id=image_id, rater=rater)
