"""Who is one patient for the folds (``data.patient_grouping``).

BreakHis names a patient by slide id, ``<YY>-<number><letters>``. Ids that share ``<YY>-<number>`` and differ only
in their letters (``14-22549AB``, ``14-22549CD``, ``14-22549G``) are sections filed under one accession number and
may come from one person, so the cautious rule, ``group`` (the default), keeps them in one fold; ``slide`` takes
every slide id as its own patient (the convention of the official count, 82 patients). Records keep their slide
ids (predictions, patient-level accuracy); only the folds see the groups (``make_splits(groups=...)``).

Only BreakHis records are grouped: other datasets' ids (IDC's patient numbers, manifests' ids) are taken as
they are."""

from __future__ import annotations

import re
from collections.abc import Iterable

from trainer.data.records import Record

PATIENT_GROUPINGS = ("group", "slide")
_SLIDE_ID = re.compile(r"^(?P<key>\d{2}-\d+)[A-Za-z]*$")


def group_key(slide_id: str) -> str:
    """``<YY>-<number>`` of a BreakHis slide id (``14-22549AB`` -> ``14-22549``); other ids unchanged."""
    m = _SLIDE_ID.match(slide_id)
    return m["key"] if m else slide_id


def _check(rule: str) -> None:
    if rule not in PATIENT_GROUPINGS:
        raise ValueError(f"patient grouping must be one of {', '.join(PATIENT_GROUPINGS)}, not {rule!r}")


def shared_numbers(records: Iterable[Record]) -> dict[str, list[str]]:
    """``<YY>-<number>`` -> its slide ids, for every number that two or more BreakHis slide ids share."""
    members: dict[str, set[str]] = {}
    for r in records:
        if r.dataset == "breakhis":
            members.setdefault(group_key(r.patient_id), set()).add(r.patient_id)
    return {k: sorted(v) for k, v in sorted(members.items()) if len(v) > 1}


def patient_groups(records: Iterable[Record], rule: str = "group") -> dict[str, str]:
    """Slide id -> group id for the slides the folds must keep together (``{}`` under ``slide``)."""
    _check(rule)
    if rule == "slide":
        return {}
    return {slide: key for key, slides in shared_numbers(records).items() for slide in slides}


def grouping_note(records: Iterable[Record], rule: str = "group") -> str | None:
    """One line for the data summary on how BreakHis slides become patients for the folds (None: no BreakHis)."""
    _check(rule)
    records = list(records)
    slides = {r.patient_id for r in records if r.dataset == "breakhis"}
    if not slides:
        return None
    shared = shared_numbers(records)
    listed = "; ".join(" + ".join(v) for v in shared.values())
    if rule == "slide":
        head = f"patient grouping `slide`: each of the {len(slides)} slide ids is its own patient for the folds"
        return head + (f"; these share <YY>-<number> and may be one person: {listed}" if shared else "")
    n = len(slides) - sum(len(v) - 1 for v in shared.values())
    head = (
        f"patient grouping `group` (cautious): slide ids that share <YY>-<number> may be one person and are kept "
        f"in one fold: {len(slides)} slide ids -> {n} patients for the folds"
    )
    return head + (f" ({listed})" if shared else " (no slide ids share a number here)")
