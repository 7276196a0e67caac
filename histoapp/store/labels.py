"""What people and models say about an image: models' predictions, annotators' labels (with the click's
submission id) and adjudications. Each write checks its input, then is one ``upsert_audited`` in one write
transaction of the store; the reads of these tables used by the Annotate tab are here too."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from histoapp.store.audit import delete_audited, upsert_audited
from histoapp.store.errors import StoreError
from histoapp.store.fields import check_id, check_name, check_note, check_text
from histoapp.store.models import Adjudication, Annotation, Image, Prediction, Submission, row_dict, utcnow
from trainer.data.records import SUBTYPE_LABEL
from trainer.data.sources import parse_label, parse_subtype

_VLM_HINTS = ("vlm", "qwen", "smol", "idefics", "llava", "paligemma")


def model_kind(model: str) -> str:
    return "vlm" if any(h in model.lower() for h in _VLM_HINTS) else "cnn"


def label_and_subtype(label, subtype) -> tuple[int, str | None]:
    """Validated ``(label, subtype)``: label benign/malignant or 0/1 (or implied by the subtype)."""
    try:
        sub = parse_subtype(subtype)
        lab = parse_label(label) if label is not None and str(label).strip() != "" else None
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    if lab is None:
        if sub is None:
            raise StoreError("give a label (benign/malignant) or a subtype")
        lab = SUBTYPE_LABEL[sub]
    if sub is not None and SUBTYPE_LABEL[sub] != lab:
        raise StoreError(
            f"subtype {sub} is {'malignant' if SUBTYPE_LABEL[sub] else 'benign'}, not {'malignant' if lab else 'benign'}"
        )
    return lab, sub


def _need_image(s: Session, image_id: int) -> None:
    if s.get(Image, image_id) is None:
        raise StoreError(f"no image with id {image_id}")


# --- predictions ------------------------------------------------------------------------------------
def add_prediction(
    store, image_id: int, *, model: str, prob_malignant: float, label, kind: str | None = None, actor: str = "system"
) -> int:
    """Attach (or replace) ``model``'s prediction for an image. ``kind``: "cnn"/"vlm" (guessed from the model name
    when not given) for the CNN/VLM disagreement queue."""
    image_id, model = check_id(image_id), check_text(model, "model name", 200)
    p = float(prob_malignant)
    if not 0.0 <= p <= 1.0:
        raise StoreError(f"prob_malignant must be in [0, 1], not {prob_malignant}")
    lab, _ = label_and_subtype(label, None)
    kind = kind or model_kind(model)
    if kind not in ("cnn", "vlm"):
        raise StoreError(f"prediction kind must be cnn or vlm, not {kind!r}")
    with store.write() as s:
        _need_image(s, image_id)
        values = dict(kind=kind, prob_malignant=p, label=lab, created_at=utcnow())
        return upsert_audited(s, actor, Prediction, dict(image_id=image_id, model=model), values).row.id


def predictions(store, image_id: int) -> list[dict]:
    image_id = check_id(image_id)
    q = select(Prediction).where(Prediction.image_id == image_id).order_by(Prediction.model)
    with store.read() as s:
        return [row_dict(p) for p in s.scalars(q)]


# --- annotations ------------------------------------------------------------------------------------
def annotate(
    store,
    image_id: int,
    annotator: str,
    *,
    label=None,
    subtype=None,
    confidence: float | None = None,
    blur: bool = False,
    fold: bool = False,
    pen_mark: bool = False,
    out_of_focus: bool = False,
    note: str = "",
    submission_id: str | None = None,
) -> dict:
    """Set ``annotator``'s label for an image (creating or replacing it). ``submission_id``: a client-generated id
    for the click; the same id again changes nothing and returns the first result."""
    annotator = check_name(annotator)
    lab, sub = label_and_subtype(label, subtype)
    if confidence is not None and not 0.0 <= float(confidence) <= 1.0:
        raise StoreError(f"confidence must be in [0, 1], not {confidence}")
    fields = dict(
        label=lab,
        subtype=sub,
        confidence=None if confidence is None else float(confidence),
        blur=bool(blur),
        fold=bool(fold),
        pen_mark=bool(pen_mark),
        out_of_focus=bool(out_of_focus),
        note=check_note(note),
    )
    return submit(
        store, annotator, Annotation, dict(image_id=check_id(image_id), annotator=annotator), fields, submission_id
    )


def submit(store, actor: str, model, key: dict, values: dict, submission_id: str | None) -> dict:
    """One click's write of an annotation-like row (``model``: a table with ``image_id``, ``created_at``,
    ``updated_at``), found by ``key``: created or replaced with ``values``, audit-logged (nothing changes and nothing
    is logged when the values are the row's), with the click's ``submission_id`` recorded in the same transaction;
    the same id again changes nothing and returns the row with ``duplicate``."""
    if submission_id is not None and not check_text(submission_id, "submission id", 64):
        raise StoreError("submission id must be 1-64 characters")
    try:
        return _submit(store, actor, model, key, values, submission_id)
    except IntegrityError:
        # Another server process committed the same submission first (databases without BEGIN IMMEDIATE).
        if submission_id:
            with store.read() as s:
                if (done := _submitted(s, model, submission_id)) is not None:
                    return done
        raise


def _submitted(s: Session, model, key: str) -> dict | None:
    sub = s.get(Submission, key)
    if sub is None:
        return None
    row = s.get(model, sub.annotation_id) if sub.annotation_id else None  # annotation_id: the row the click wrote
    return {**(row_dict(row) if row else {}), "applied": False, "duplicate": True}


def _submit(store, actor: str, model, key: dict, values: dict, submission_id: str | None) -> dict:
    with store.write() as s:
        if submission_id and (done := _submitted(s, model, submission_id)) is not None:
            return done
        _need_image(s, key["image_id"])
        now = utcnow()
        change = upsert_audited(
            s, actor, model, key, values, stamp=dict(updated_at=now), on_create=dict(created_at=now), if_changed=True
        )
        entry = change.entry
        if submission_id:
            s.add(
                Submission(key=submission_id, annotation_id=change.row.id, audit_id=entry and entry.id, created_at=now)
            )
        return {**row_dict(change.row), "applied": entry is not None, "duplicate": False}


def rows_of(store, model, *, image_id: int | None = None, **equal) -> list[dict]:
    """``model``'s rows (of one image, and whose columns equal ``equal``'s values that are not None), oldest first."""
    q = select(model).order_by(model.id)
    if image_id is not None:
        q = q.where(model.image_id == check_id(image_id))
    for column, value in equal.items():
        if value is not None:
            q = q.where(getattr(model, column) == value)
    with store.read() as s:
        return [row_dict(r) for r in s.scalars(q)]


def delete_annotation(store, image_id: int, annotator: str) -> bool:
    annotator, image_id = check_name(annotator), check_id(image_id)
    with store.write() as s:
        row = s.scalar(select(Annotation).where(Annotation.image_id == image_id, Annotation.annotator == annotator))
        if row is None:
            return False
        delete_audited(s, annotator, row)
        return True


def annotations(store, *, image_id: int | None = None, annotator: str | None = None) -> list[dict]:
    return rows_of(store, Annotation, image_id=image_id, annotator=annotator)


def recent(store, annotator: str, limit: int = 20) -> list[dict]:
    """The annotator's latest labels, newest first, with the image's path."""
    q = (
        select(Annotation, Image.path)
        .join(Image, Image.id == Annotation.image_id)
        .where(Annotation.annotator == annotator)
        .order_by(Annotation.updated_at.desc(), Annotation.id.desc())
        .limit(limit)
    )
    with store.read() as s:
        return [{**row_dict(a), "path": p} for a, p in s.execute(q)]


# --- adjudications ----------------------------------------------------------------------------------
def adjudicate(
    store, image_id: int, adjudicator: str, *, label=None, subtype=None, note: str = "", admin: bool = False
) -> dict:
    """Set an image's final label. The adjudicator must be a third person: one who labelled the image is refused,
    unless ``admin`` (the caller checked the role), and the audit entry then says so
    (``after["own_vote_override"]``)."""
    adjudicator, image_id = check_name(adjudicator, "adjudicator"), check_id(image_id)
    lab, sub = label_and_subtype(label, subtype)
    note = check_note(note)
    with store.write() as s:
        _need_image(s, image_id)
        voted = s.scalar(
            select(Annotation.id).where(Annotation.image_id == image_id, Annotation.annotator == adjudicator)
        )
        if voted is not None and not admin:
            raise StoreError(
                f"{adjudicator} labelled image #{image_id}: a conflict is settled by someone who did not vote "
                "on it (or an admin)"
            )
        change = upsert_audited(
            s,
            adjudicator,
            Adjudication,
            dict(image_id=image_id),
            dict(adjudicator=adjudicator, label=lab, subtype=sub, note=note, created_at=utcnow()),
            record={"own_vote_override": True} if voted is not None else None,
        )
        return row_dict(change.row)
