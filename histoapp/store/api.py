"""``open_store(url) -> Store``: the one way the app (and scripts) read and write annotations.

``Store`` owns the engine and its sessions: ``read()``, and ``write()``, one write transaction in which a change
and its audit-log entry (and, for a click, its submission id) commit together, so a crash leaves all or none.
Its other methods are one line each into the module that owns the idea: images.py (intake by content hash),
labels.py (predictions, annotations, adjudications), ratings.py (ratings of explanation maps), audit.py (the log, undo/redo, ``upsert_audited``),
queue.py, agreement.py, imports.py, exports.py."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.orm import Session

from histoapp.store import agreement, audit, exports, images, imports, labels, queue, ratings
from histoapp.store.engine import make_engine, migrate, writer
from histoapp.store.fields import check_name
from histoapp.store.models import Submission, utcnow

__all__ = ["Store", "open_store"]


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

    # --- images (images.py) -------------------------------------------------------------------------
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
        """Add one image file; the same bytes return the existing id and are not queued twice (``add_images``)."""
        item = dict(
            path=path, dataset=dataset, magnification=magnification, patient_id=patient_id, label=label, subtype=subtype
        )
        return images.add_images(self, [item], copy_to=copy_to, verify=verify, actor=actor)[0][0]

    def add_images(self, items: list[dict], **kw) -> list[tuple[int, bool]]:
        return images.add_images(self, items, **kw)

    def send_to_queue(self, path: str | Path, **kw) -> int:
        return images.send_to_queue(self, path, **kw)

    def image(self, image_id: int) -> dict:
        return images.image(self, image_id)

    def load_image(self, image_id: int):
        return images.load_image(self, image_id)

    # --- predictions, annotations, adjudications (labels.py) ----------------------------------------
    def add_prediction(self, image_id: int, **kw) -> int:
        return labels.add_prediction(self, image_id, **kw)

    def predictions(self, image_id: int) -> list[dict]:
        return labels.predictions(self, image_id)

    def annotate(self, image_id: int, annotator: str, **kw) -> dict:
        return labels.annotate(self, image_id, annotator, **kw)

    def delete_annotation(self, image_id: int, annotator: str) -> bool:
        return labels.delete_annotation(self, image_id, annotator)

    def annotations(self, **kw) -> list[dict]:
        return labels.annotations(self, **kw)

    def recent(self, annotator: str, limit: int = 20) -> list[dict]:
        return labels.recent(self, annotator, limit)

    def adjudicate(self, image_id: int, adjudicator: str, **kw) -> dict:
        return labels.adjudicate(self, image_id, adjudicator, **kw)

    # --- ratings of explanation maps (ratings.py) -----------------------------------------------------
    def rate_map(self, image_id: int, rater: str, **kw) -> dict:
        return ratings.rate_map(self, image_id, rater, **kw)

    def map_ratings(self, **kw) -> list[dict]:
        return ratings.ratings(self, **kw)

    def rating_agreement(self) -> dict:
        return agreement.rating_agreement(self)

    # --- audit log, undo / redo (audit.py) ----------------------------------------------------------
    def undo(self, actor: str) -> dict | None:
        """Revert ``actor``'s latest change (annotation, adjudication or map rating); None when there is nothing
        to undo."""
        actor = check_name(actor)
        with self.write() as s:
            return audit.undo_redo(s, actor, "undo")

    def redo(self, actor: str) -> dict | None:
        actor = check_name(actor)
        with self.write() as s:
            return audit.undo_redo(s, actor, "redo")

    def log_action(self, actor: str, action: str, table: str, detail: dict) -> None:
        """Record who did something outside the annotation tables (a training run launched, stopped, deleted)."""
        with self.write() as s:
            audit.log(s, check_name(actor, "actor"), action, table, after=detail)

    def audit_log(self, *, image_id: int | None = None, limit: int | None = None) -> list[dict]:
        with self.read() as s:
            return audit.history(s, image_id=image_id, limit=limit)

    # --- queue, progress, agreement, import, export -------------------------------------------------
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

    def export_ratings_csv(self, path: str | Path) -> Path:
        return exports.export_ratings_csv(self, path)

    def export_dataset(self, out_dir: str | Path, **kw) -> Path:
        return exports.export_dataset(self, out_dir, **kw)


def open_store(url: str) -> Store:
    """Open (creating and migrating as needed) the annotation database at SQLAlchemy ``url``."""
    return Store(url)
