"""The store's write side: every change to a row goes through here with its audit-log entry, in the caller's
write transaction, so a crash leaves both or neither; undo/redo replay the log's row snapshots.

One helper does the find / snapshot / write / log sequence (``upsert_audited``); each write of the store only
says which table, which key and which values (as TIAToolbox's stain normalisers share one ``fit``/``transform``
and each sets only its stain extractor)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import DateTime, select
from sqlalchemy.orm import Session

from histoapp.store.models import Adjudication, Annotation, AuditEntry, Image, MapRating, row_dict, utcnow

# Annotation-like tables an actor can undo/redo changes to (one stack: the latest change first, whichever table).
UNDOABLE = {"annotations": Annotation, "adjudications": Adjudication, "map_ratings": MapRating}


@dataclass
class Change:
    """The row after a write, its snapshot before (None: created) and its log entry (None: nothing changed)."""

    row: object
    before: dict | None
    entry: AuditEntry | None


def log(
    s: Session,
    actor: str,
    action: str,
    table: str,
    *,
    row_id=None,
    image_id=None,
    before=None,
    after=None,
    ref_id=None,
) -> AuditEntry:
    """Append one entry to the audit log (flushed, so its id is known)."""
    entry = AuditEntry(
        time=utcnow(),
        actor=actor,
        action=action,
        table_name=table,
        row_id=row_id,
        image_id=image_id,
        before=before,
        after=after,
        ref_id=ref_id,
    )
    s.add(entry)
    s.flush()
    return entry


def _log_row(s: Session, actor: str, action: str, row, before: dict | None, record: dict | None) -> AuditEntry:
    # ``record``: keys kept in the entry's ``after`` only (undo/redo restore just the table's columns).
    s.flush()
    return log(
        s,
        actor,
        action,
        row.__tablename__,
        row_id=row.id,
        image_id=row.id if isinstance(row, Image) else row.image_id,
        before=before,
        after={**row_dict(row), **(record or {})},
    )


def upsert_audited(
    s: Session,
    actor: str,
    model,
    key: dict,
    values: dict,
    *,
    stamp: dict | None = None,
    on_create: dict | None = None,
    if_changed: bool = False,
    record: dict | None = None,
) -> Change:
    """Create or update the ``model`` row found by ``key`` with ``values`` and log it (``create``/``update``).

    ``stamp``: columns set on every write but not compared (``updated_at``); ``on_create``: columns set only on a
    new row (``created_at``); ``if_changed``: when ``values`` equal the row's, write and log nothing."""
    row = s.scalar(select(model).filter_by(**key))
    if row is None:
        row = model(**key, **values, **(stamp or {}), **(on_create or {}))
        s.add(row)
        return Change(row, None, _log_row(s, actor, "create", row, None, record))
    return update_audited(s, actor, row, values, stamp=stamp, if_changed=if_changed, record=record)


def create_audited(s: Session, actor: str, row) -> Change:
    """Insert the new ORM ``row`` and log it."""
    s.add(row)
    return Change(row, None, _log_row(s, actor, "create", row, None, None))


def update_audited(
    s: Session,
    actor: str,
    row,
    values: dict,
    *,
    stamp: dict | None = None,
    if_changed: bool = False,
    record: dict | None = None,
) -> Change:
    """Set ``values`` (and ``stamp``) on the existing ORM ``row`` and log it; see ``upsert_audited``."""
    before = row_dict(row)
    if if_changed and all(getattr(row, k) == v for k, v in values.items()):
        return Change(row, before, None)
    for k, v in {**values, **(stamp or {})}.items():
        setattr(row, k, v)
    return Change(row, before, _log_row(s, actor, "update", row, before, record))


def delete_audited(s: Session, actor: str, row) -> Change:
    """Delete the ORM ``row`` and log it (its last state in ``before``)."""
    before = row_dict(row)
    s.delete(row)
    s.flush()
    entry = log(s, actor, "delete", row.__tablename__, row_id=before["id"], image_id=before["image_id"], before=before)
    return Change(None, before, entry)


# --- undo / redo (from the audit log) ---------------------------------------------------------------
def _from_json(model, data: dict) -> dict:
    return {
        c.key: (datetime.fromisoformat(data[c.key]) if isinstance(c.type, DateTime) and data[c.key] else data[c.key])
        for c in model.__table__.columns
    }


def _stacks(s: Session, actor: str) -> tuple[list[AuditEntry], list[AuditEntry]]:
    """Replay ``actor``'s log: changes go on the undo stack (clearing redo), an undo moves one to redo."""
    entries = s.scalars(
        select(AuditEntry).where(AuditEntry.actor == actor, AuditEntry.table_name.in_(UNDOABLE)).order_by(AuditEntry.id)
    ).all()
    by_id = {e.id: e for e in entries}
    done: list[AuditEntry] = []
    redo: list[AuditEntry] = []
    for e in entries:
        if e.action == "undo":
            redo.append(by_id[e.ref_id])
            done.pop()
        elif e.action == "redo":
            done.append(by_id[e.ref_id])
            redo.pop()
        else:
            done.append(e)
            redo.clear()
    return done, redo


def _restore(s: Session, model, row, state: dict | None) -> None:
    if state is None:
        if row is not None:
            s.delete(row)
    elif row is None:
        s.add(model(**_from_json(model, state)))
    else:
        for k, v in _from_json(model, state).items():
            setattr(row, k, v)
    s.flush()


def undo_redo(s: Session, actor: str, action: str) -> dict | None:
    """Revert (``undo``) or re-apply (``redo``) ``actor``'s latest change to an annotation, adjudication or map
    rating, and
    log that; None when there is nothing to do."""
    done, redo = _stacks(s, actor)
    stack = done if action == "undo" else redo
    if not stack:
        return None
    target = stack[-1]
    model = UNDOABLE[target.table_name]
    current = s.get(model, target.row_id)
    before = row_dict(current) if current else None  # taken before _restore changes ``current`` in place
    state = target.before if action == "undo" else target.after
    _restore(s, model, current, state)
    log(
        s,
        actor,
        action,
        target.table_name,
        row_id=target.row_id,
        image_id=target.image_id,
        before=before,
        after=state,
        ref_id=target.id,
    )
    return {"image_id": target.image_id, "table": target.table_name, "state": state}


def history(s: Session, *, image_id: int | None = None, limit: int | None = None) -> list[dict]:
    """The audit log, newest first (one image's entries when ``image_id`` is given)."""
    q = select(AuditEntry).order_by(AuditEntry.id.desc())
    if image_id is not None:
        q = q.where(AuditEntry.image_id == image_id)
    if limit:
        q = q.limit(limit)
    return [row_dict(e) for e in s.scalars(q)]
