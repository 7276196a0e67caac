"""``open_store(url) -> Store``: the one way the app (and scripts) read and write annotations.

Every change runs in one write transaction together with its audit-log entry (and, for a click, its
submission id), so a crash leaves either all of it or none. Undo/redo replay the audit log's row snapshots."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

from sqlalchemy import DateTime, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from histoapp.store import agreement, exports, imports, queue
from histoapp.store.engine import make_engine, migrate, writer
from histoapp.store.errors import StoreError
from histoapp.store.fields import check_id, check_name, check_note, check_text
from histoapp.store.models import Adjudication, Annotation, AuditEntry, Image, Prediction, Submission, row_dict, utcnow
from trainer.data.images import ImageError, load_rgb, probe
from trainer.data.records import SUBTYPE_LABEL, normalise_magnification
from trainer.data.sources import parse_label, parse_subtype

QUALITY_FLAGS = ("blur", "fold", "pen_mark", "out_of_focus")
# Annotation-like tables an actor can undo/redo changes to.
UNDOABLE = {"annotations": Annotation, "adjudications": Adjudication}
_VLM_HINTS = ("vlm", "qwen", "smol", "idefics", "llava", "paligemma")


def _from_json(model, data: dict) -> dict:
    return {
        c.key: (datetime.fromisoformat(data[c.key]) if isinstance(c.type, DateTime) and data[c.key] else data[c.key])
        for c in model.__table__.columns
    }


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


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


class Store:
    def __init__(self, url: str):
        self.url = url
        self.engine = make_engine(url)
        migrate(self.engine)
        self._writer = writer(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    # --- sessions -----------------------------------------------------------------------------------
    @contextmanager
    def read(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as s:
            yield s

    @contextmanager
    def write(self) -> Iterator[Session]:
        """One write transaction: committed on success, rolled back on any error."""
        with Session(self._writer, expire_on_commit=False) as s, s.begin():
            yield s

    def check_writable(self) -> None:
        """Raise the database's own error unless it takes a write: a probe row, rolled back (start-up check)."""
        with Session(self._writer) as s:
            s.add(Submission(key=f"write-check-{uuid.uuid4().hex[:16]}", created_at=utcnow()))
            s.flush()
            s.rollback()

    @staticmethod
    def _audit(
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

    # --- images -------------------------------------------------------------------------------------
    def add_image(
        self,
        path: str | Path,
        *,
        dataset: str,
        magnification: str | None = None,
        patient_id: str | None = None,
        label=None,
        subtype=None,
        copy_to: str | Path | None = None,
        verify: bool = True,
        actor: str = "system",
    ) -> int:
        """Add an image file; the same bytes (content hash) return the existing id and are not queued twice.
        ``label``/``subtype`` are the source's labels (kept apart from annotations). ``copy_to``: copy the
        file there first (uploads whose temporary file will vanish)."""
        return self.add_images(
            [
                dict(
                    path=path,
                    dataset=dataset,
                    magnification=magnification,
                    patient_id=patient_id,
                    label=label,
                    subtype=subtype,
                )
            ],
            copy_to=copy_to,
            verify=verify,
            actor=actor,
        )[0][0]

    def add_images(
        self, items: list[dict], *, copy_to=None, verify: bool = True, actor: str = "system"
    ) -> list[tuple[int, bool]]:
        """Add many images in one transaction; returns ``(image_id, added)`` per item (False: a duplicate)."""
        prepared = []
        for it in items:
            path = Path(it["path"])
            if verify:
                try:
                    probe(path)
                except ImageError as exc:
                    raise StoreError(str(exc)) from None
            elif not path.is_file():
                raise StoreError(f"{path}: file not found")
            digest = file_sha256(path)
            if copy_to is not None:
                dest = Path(copy_to) / digest[:2] / f"{digest}{path.suffix.lower()}"
                if not dest.exists():
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(path, dest.with_suffix(".part"))
                    dest.with_suffix(".part").replace(dest)
                path = dest
            src_label = src_sub = None
            if it.get("label") is not None or it.get("subtype"):
                src_label, src_sub = label_and_subtype(it.get("label"), it.get("subtype"))
            try:
                mag = normalise_magnification(it.get("magnification"))
            except ValueError as exc:
                raise StoreError(str(exc)) from None
            prepared.append(
                (
                    digest,
                    dict(
                        path=str(path.resolve()),
                        dataset=check_text(it.get("dataset") or "upload", "dataset name", 64),
                        magnification=mag,
                        patient_id=None
                        if it.get("patient_id") is None
                        else check_text(it["patient_id"], "patient id", 128),
                        source_label=src_label,
                        source_subtype=src_sub,
                    ),
                )
            )
        out = []
        with self.write() as s:
            for digest, fields in prepared:
                img = s.scalar(select(Image).where(Image.sha256 == digest))
                if img is not None:
                    if img.path != fields["path"] and not Path(img.path).exists():
                        # The file moved (or was restored elsewhere): point at the copy that exists.
                        before = row_dict(img)
                        img.path = fields["path"]
                        self._audit(
                            s,
                            actor,
                            "update",
                            "images",
                            row_id=img.id,
                            image_id=img.id,
                            before=before,
                            after=row_dict(img),
                        )
                    out.append((img.id, False))
                    continue
                img = Image(sha256=digest, added_at=utcnow(), **fields)
                s.add(img)
                s.flush()
                self._audit(s, actor, "create", "images", row_id=img.id, image_id=img.id, after=row_dict(img))
                out.append((img.id, True))
        return out

    def send_to_queue(
        self,
        path: str | Path,
        *,
        uploads_dir: str | Path,
        predictions=(),
        dataset: str = "upload",
        magnification: str | None = None,
        actor: str = "system",
    ) -> int:
        """For the Predict tab: keep a copy of an uploaded image (its temporary file will vanish) under
        ``uploads_dir``, queue it, and attach the models' predictions (dicts with model, prob_malignant,
        label and optionally kind). The same bytes again return the same id."""
        image_id = self.add_image(path, dataset=dataset, magnification=magnification, copy_to=uploads_dir, actor=actor)
        for p in predictions:
            self.add_prediction(
                image_id,
                model=p["model"],
                prob_malignant=p["prob_malignant"],
                label=p["label"],
                kind=p.get("kind"),
                actor=actor,
            )
        return image_id

    def image(self, image_id: int) -> dict:
        image_id = check_id(image_id)
        with self.read() as s:
            img = s.get(Image, image_id)
            if img is None:
                raise StoreError(f"no image with id {image_id}")
            return row_dict(img)

    def load_image(self, image_id: int):
        """``(PIL image or None, message)``: a missing or unreadable file gives None and a message saying so
        (the image's annotations are untouched)."""
        info = self.image(image_id)
        try:
            return load_rgb(info["path"]), ""
        except ImageError as exc:
            return None, (
                f"Image #{image_id} cannot be shown: {exc.reason} ({info['path']}). Its annotations are kept; "
                "restore the file or import it again from its new place."
            )

    # --- predictions --------------------------------------------------------------------------------
    def add_prediction(
        self, image_id: int, *, model: str, prob_malignant: float, label, kind: str | None = None, actor: str = "system"
    ) -> int:
        """Attach (or replace) ``model``'s prediction for an image. ``kind``: "cnn"/"vlm" (guessed from the
        model name when not given) for the CNN/VLM disagreement queue."""
        image_id, model = check_id(image_id), check_text(model, "model name", 200)
        p = float(prob_malignant)
        if not 0.0 <= p <= 1.0:
            raise StoreError(f"prob_malignant must be in [0, 1], not {prob_malignant}")
        lab, _ = label_and_subtype(label, None)
        kind = kind or model_kind(model)
        if kind not in ("cnn", "vlm"):
            raise StoreError(f"prediction kind must be cnn or vlm, not {kind!r}")
        with self.write() as s:
            if s.get(Image, image_id) is None:
                raise StoreError(f"no image with id {image_id}")
            row = s.scalar(select(Prediction).where(Prediction.image_id == image_id, Prediction.model == model))
            before = row_dict(row) if row else None
            if row is None:
                row = Prediction(image_id=image_id, model=model)
                s.add(row)
            row.kind, row.prob_malignant, row.label, row.created_at = kind, p, lab, utcnow()
            s.flush()
            self._audit(
                s,
                actor,
                "update" if before else "create",
                "predictions",
                row_id=row.id,
                image_id=image_id,
                before=before,
                after=row_dict(row),
            )
            return row.id

    def predictions(self, image_id: int) -> list[dict]:
        image_id = check_id(image_id)
        with self.read() as s:
            return [
                row_dict(p)
                for p in s.scalars(select(Prediction).where(Prediction.image_id == image_id).order_by(Prediction.model))
            ]

    # --- annotations --------------------------------------------------------------------------------
    def annotate(
        self,
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
        """Set ``annotator``'s label for an image (creating or replacing it). ``submission_id``: a
        client-generated id for the click; the same id again changes nothing and returns the first result."""
        annotator = check_name(annotator)
        lab, sub = label_and_subtype(label, subtype)
        if confidence is not None and not 0.0 <= float(confidence) <= 1.0:
            raise StoreError(f"confidence must be in [0, 1], not {confidence}")
        if submission_id is not None and not check_text(submission_id, "submission id", 64):
            raise StoreError("submission id must be 1-64 characters")
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
        try:
            return self._annotate(check_id(image_id), annotator, fields, submission_id)
        except IntegrityError:
            # Another server process committed the same submission first (databases without BEGIN IMMEDIATE).
            if submission_id and (done := self._submitted(submission_id)) is not None:
                return done
            raise

    def _submitted(self, key: str, s: Session | None = None) -> dict | None:
        def look(s):
            sub = s.get(Submission, key)
            if sub is None:
                return None
            ann = s.get(Annotation, sub.annotation_id) if sub.annotation_id else None
            return {**(row_dict(ann) if ann else {}), "applied": False, "duplicate": True}

        if s is not None:
            return look(s)
        with self.read() as s2:
            return look(s2)

    def _annotate(self, image_id: int, annotator: str, fields: dict, key: str | None) -> dict:
        with self.write() as s:
            if key and (done := self._submitted(key, s)) is not None:
                return done
            if s.get(Image, image_id) is None:
                raise StoreError(f"no image with id {image_id}")
            row = s.scalar(select(Annotation).where(Annotation.image_id == image_id, Annotation.annotator == annotator))
            before = row_dict(row) if row else None
            audit_id = None
            if row is not None and all(getattr(row, k) == v for k, v in fields.items()):
                applied = False  # the same label again: nothing changes, nothing logged
            else:
                now = utcnow()
                if row is None:
                    row = Annotation(image_id=image_id, annotator=annotator, created_at=now, **fields)
                    s.add(row)
                else:
                    for k, v in fields.items():
                        setattr(row, k, v)
                row.updated_at = now
                s.flush()
                audit_id = self._audit(
                    s,
                    annotator,
                    "update" if before else "create",
                    "annotations",
                    row_id=row.id,
                    image_id=image_id,
                    before=before,
                    after=row_dict(row),
                ).id
                applied = True
            if key:
                s.add(Submission(key=key, annotation_id=row.id, audit_id=audit_id, created_at=utcnow()))
            return {**row_dict(row), "applied": applied, "duplicate": False}

    def delete_annotation(self, image_id: int, annotator: str) -> bool:
        annotator, image_id = check_name(annotator), check_id(image_id)
        with self.write() as s:
            row = s.scalar(select(Annotation).where(Annotation.image_id == image_id, Annotation.annotator == annotator))
            if row is None:
                return False
            before = row_dict(row)
            s.delete(row)
            s.flush()
            self._audit(s, annotator, "delete", "annotations", row_id=before["id"], image_id=image_id, before=before)
            return True

    def annotations(self, *, image_id: int | None = None, annotator: str | None = None) -> list[dict]:
        q = select(Annotation).order_by(Annotation.id)
        if image_id is not None:
            q = q.where(Annotation.image_id == check_id(image_id))
        if annotator is not None:
            q = q.where(Annotation.annotator == annotator)
        with self.read() as s:
            return [row_dict(a) for a in s.scalars(q)]

    def recent(self, annotator: str, limit: int = 20) -> list[dict]:
        """The annotator's latest labels, newest first, with the image's path."""
        q = (
            select(Annotation, Image.path)
            .join(Image, Image.id == Annotation.image_id)
            .where(Annotation.annotator == annotator)
            .order_by(Annotation.updated_at.desc(), Annotation.id.desc())
            .limit(limit)
        )
        with self.read() as s:
            return [{**row_dict(a), "path": p} for a, p in s.execute(q)]

    def adjudicate(
        self, image_id: int, adjudicator: str, *, label=None, subtype=None, note: str = "", admin: bool = False
    ) -> dict:
        """Set an image's final label. The adjudicator must be a third person: one who labelled the image is
        refused, unless ``admin`` (the caller checked the role), and the audit entry then says so
        (``after["own_vote_override"]``)."""
        adjudicator, image_id = check_name(adjudicator, "adjudicator"), check_id(image_id)
        lab, sub = label_and_subtype(label, subtype)
        note = check_note(note)
        with self.write() as s:
            if s.get(Image, image_id) is None:
                raise StoreError(f"no image with id {image_id}")
            voted = s.scalar(
                select(Annotation.id).where(Annotation.image_id == image_id, Annotation.annotator == adjudicator)
            )
            if voted is not None and not admin:
                raise StoreError(
                    f"{adjudicator} labelled image #{image_id}: a conflict is settled by someone who did not vote "
                    "on it (or an admin)"
                )
            row = s.scalar(select(Adjudication).where(Adjudication.image_id == image_id))
            before = row_dict(row) if row else None
            if row is None:
                row = Adjudication(image_id=image_id)
                s.add(row)
            row.adjudicator, row.label, row.subtype, row.note, row.created_at = adjudicator, lab, sub, note, utcnow()
            s.flush()
            after = row_dict(row)
            self._audit(
                s,
                adjudicator,
                "update" if before else "create",
                "adjudications",
                row_id=row.id,
                image_id=image_id,
                before=before,
                # Undo/redo restore only the table's columns, so the extra key stays a record, not a value.
                after={**after, "own_vote_override": True} if voted is not None else after,
            )
            return after

    # --- undo / redo (from the audit log) -----------------------------------------------------------
    @staticmethod
    def _stacks(s: Session, actor: str) -> tuple[list[AuditEntry], list[AuditEntry]]:
        """Replay ``actor``'s log: changes go on the undo stack (clearing redo), an undo moves one to redo."""
        entries = s.scalars(
            select(AuditEntry)
            .where(AuditEntry.actor == actor, AuditEntry.table_name.in_(UNDOABLE))
            .order_by(AuditEntry.id)
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

    def _apply(self, s: Session, table: str, row_id: int, state: dict | None) -> None:
        model = UNDOABLE[table]
        row = s.get(model, row_id)
        if state is None:
            if row is not None:
                s.delete(row)
        elif row is None:
            s.add(model(**_from_json(model, state)))
        else:
            for k, v in _from_json(model, state).items():
                setattr(row, k, v)
        s.flush()

    def _undo_redo(self, actor: str, action: str) -> dict | None:
        actor = check_name(actor)
        with self.write() as s:
            done, redo = self._stacks(s, actor)
            stack = done if action == "undo" else redo
            if not stack:
                return None
            target = stack[-1]
            model = UNDOABLE[target.table_name]
            current = s.get(model, target.row_id)
            state = target.before if action == "undo" else target.after
            self._apply(s, target.table_name, target.row_id, state)
            self._audit(
                s,
                actor,
                action,
                target.table_name,
                row_id=target.row_id,
                image_id=target.image_id,
                before=row_dict(current) if current else None,
                after=state,
                ref_id=target.id,
            )
            return {"image_id": target.image_id, "table": target.table_name, "state": state}

    def undo(self, actor: str) -> dict | None:
        """Revert ``actor``'s latest change (annotation or adjudication); None when there is nothing to undo."""
        return self._undo_redo(actor, "undo")

    def redo(self, actor: str) -> dict | None:
        return self._undo_redo(actor, "redo")

    def log_action(self, actor: str, action: str, table: str, detail: dict) -> None:
        """Record who did something outside the annotation tables (a training run launched, stopped, deleted)."""
        with self.write() as s:
            self._audit(s, check_name(actor, "actor"), action, table, after=detail)

    def audit_log(self, *, image_id: int | None = None, limit: int | None = None) -> list[dict]:
        q = select(AuditEntry).order_by(AuditEntry.id.desc())
        if image_id is not None:
            q = q.where(AuditEntry.image_id == image_id)
        if limit:
            q = q.limit(limit)
        with self.read() as s:
            return [row_dict(e) for e in s.scalars(q)]

    # --- queue, progress, agreement, import, export (in their own modules) ---------------------------
    def queue(self, annotator: str | None = None, **kw) -> list[int]:
        return queue.queue(self, annotator, **kw)

    def progress(self, annotator: str | None = None, **kw) -> dict:
        return queue.progress(self, annotator, **kw)

    def datasets(self) -> list[str]:
        return queue.datasets(self)

    def agreement(self) -> dict:
        return agreement.agreement(self)

    def conflicts(self, **kw) -> list[dict]:
        return agreement.conflicts(self, **kw)

    def consensus(self, **kw) -> dict[int, dict]:
        return agreement.consensus(self, **kw)

    def import_folder(self, root: str | Path, *, allowed_roots=None, source: str = "auto", actor: str = "system"):
        return imports.import_folder(self, root, allowed_roots=allowed_roots, source=source, actor=actor)

    def export_csv(self, path: str | Path) -> Path:
        return exports.export_csv(self, path)

    def export_json(self, path: str | Path) -> Path:
        return exports.export_json(self, path)

    def export_dataset(self, out_dir: str | Path, **kw) -> Path:
        return exports.export_dataset(self, out_dir, **kw)


def open_store(url: str) -> Store:
    """Open (creating and migrating as needed) the annotation database at SQLAlchemy ``url``."""
    return Store(url)
