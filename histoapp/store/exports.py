"""Exports: every annotation as CSV or JSON (the JSON with the maps' ratings; those also as a CSV of their own), and the consensus labels as a dataset the trainer reads back
(``trainer.data.sources.index_dataset``), with a provenance file naming the annotations it was made from."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from sqlalchemy import func, select

from histoapp.store.errors import StoreError
from histoapp.store.fields import QUALITY_FLAGS
from histoapp.store.models import Adjudication, Annotation, AuditEntry, Image, MapRating, Prediction, row_dict, utcnow
from trainer.data.index import iter_image_files
from trainer.data.records import LABELS, Record
from trainer.data.sources import MANIFEST_NAME, export_folder, write_manifest

PROVENANCE = "provenance.json"
SNAPSHOT = "annotations_snapshot.db"
CSV_COLUMNS = (
    "annotation_id",
    "image_id",
    "sha256",
    "path",
    "dataset",
    "magnification",
    "patient_id",
    "annotator",
    "label",
    "subtype",
    "confidence",
    *QUALITY_FLAGS,
    "note",
    "created_at",
    "updated_at",
)
RATING_COLUMNS = (
    "rating_id",
    "image_id",
    "sha256",
    "path",
    "dataset",
    "magnification",
    "rater",
    "model",
    "method",
    "rating",
    "faithfulness",
    "note",
    "created_at",
    "updated_at",
)


def _atomic_text(path: Path, write) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        write(fh)
    os.replace(tmp, path)
    return path


def _write_csv(path, columns, rows) -> Path:
    """``rows`` (lists of cells) under the ``columns`` header, written atomically."""

    def write(fh):
        w = csv.writer(fh)
        w.writerow(columns)
        w.writerows(rows)

    return _atomic_text(path, write)


def _image_cells(img) -> list:
    """The image's columns of a CSV export (image_id, sha256, path, dataset, magnification)."""
    return [img.id, img.sha256, img.path, img.dataset, img.magnification or ""]


def _audit_position(s) -> int:
    """The newest audit-log id: with an append-only log this names the database state exactly."""
    return s.scalar(select(func.max(AuditEntry.id))) or 0


def _export_rows(store, path, model, columns, cells) -> Path:
    """A CSV of every ``model`` row (oldest first) joined with its image: ``cells(row, image)`` per line."""
    with store.read() as s:
        rows = s.execute(select(model, Image).join(Image, Image.id == model.image_id).order_by(model.id)).all()
    return _write_csv(path, columns, (cells(row, img) for row, img in rows))


def export_csv(store, path) -> Path:
    """One row per annotation, with its image's details."""

    def cells(a, img) -> list:
        return [
            a.id,
            *_image_cells(img),
            img.patient_id or "",
            a.annotator,
            LABELS[a.label],
            a.subtype or "",
            "" if a.confidence is None else a.confidence,
            *(int(getattr(a, flag)) for flag in QUALITY_FLAGS),
            a.note,
            *_times(a),
        ]

    return _export_rows(store, path, Annotation, CSV_COLUMNS, cells)


def export_ratings_csv(store, path) -> Path:
    """One row per rating of an explanation map, with its image's details."""

    def cells(r, img) -> list:
        score = "" if r.faithfulness is None else r.faithfulness
        return [r.id, *_image_cells(img), r.rater, r.model, r.method, r.rating, score, r.note, *_times(r)]

    return _export_rows(store, path, MapRating, RATING_COLUMNS, cells)


def _times(row) -> list[str]:
    return [row.created_at.isoformat(), row.updated_at.isoformat()]


def export_json(store, path) -> Path:
    """Every image with its annotations, predictions, adjudication and ratings of explanation maps."""
    with store.read() as s:
        images = {
            i.id: {**row_dict(i), "annotations": [], "predictions": [], "adjudication": None, "map_ratings": []}
            for i in s.scalars(select(Image).order_by(Image.id))
        }
        for a in s.scalars(select(Annotation).order_by(Annotation.id)):
            images[a.image_id]["annotations"].append(row_dict(a))
        for r in s.scalars(select(MapRating).order_by(MapRating.id)):
            images[r.image_id]["map_ratings"].append(row_dict(r))
        for p in s.scalars(select(Prediction).order_by(Prediction.id)):
            images[p.image_id]["predictions"].append(row_dict(p))
        for j in s.scalars(select(Adjudication)):
            images[j.image_id]["adjudication"] = row_dict(j)
        position = _audit_position(s)
    doc = {
        "exported_at": utcnow().isoformat(),
        "database": _db_name(store),
        "audit_log_position": position,
        "images": list(images.values()),
    }
    return _atomic_text(path, lambda fh: json.dump(doc, fh, indent=1))


def _db_name(store) -> str:
    return store.engine.url.render_as_string(hide_password=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def export_dataset(store, out_dir, *, min_annotators: int = 1, snapshot: bool = True, link: bool = False) -> Path:
    """Write the consensus labels (see ``agreement.consensus``) as ``out_dir/<benign|malignant>/<mag>/<file>``
    (a folder of class folders, via ``trainer.data.sources.export_folder``) plus ``manifest.csv`` (patient
    ids and subtypes kept; the trainer's ``auto`` source reads it), ``provenance.json`` (annotation and
    adjudication ids per file, the audit-log position) and, for SQLite, a snapshot of the database."""
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        raise StoreError(f"{out} is not empty; export into a new folder")
    chosen = store.consensus(min_annotators=min_annotators)
    with store.read() as s:
        position = _audit_position(s)
        images = {i.id: i for i in s.scalars(select(Image).where(Image.id.in_(list(chosen))))}
    records, by_hash, skipped = [], {}, []
    for image_id, c in chosen.items():
        img = images[image_id]
        if not Path(img.path).is_file():
            skipped.append({"image_id": image_id, "path": img.path, "reason": "file missing on disk"})
            continue
        records.append(
            Record(
                img.path,
                img.patient_id or f"image-{image_id}",
                c["label"],
                c["subtype"],
                img.magnification,
                img.dataset,
            )
        )
        by_hash[img.sha256] = (records[-1], image_id)
    if not records:
        raise StoreError("nothing to export: no image has a consensus label yet (label some, or adjudicate conflicts)")
    export_folder(records, out, link=link)
    # Map each copied file back to its image by content hash (export_folder may rename on a name clash).
    exported, files = [], []
    for path in iter_image_files(out):
        digest = _sha256(path)
        if digest not in by_hash:
            continue
        rec, image_id = by_hash[digest]
        exported.append(Record(str(path), rec.patient_id, rec.label, rec.subtype, rec.magnification, rec.dataset))
        files.append(
            {
                "file": path.relative_to(out).as_posix(),
                "image_id": image_id,
                "sha256": digest,
                "label": LABELS[rec.label],
                "subtype": rec.subtype,
                **{k: chosen[image_id][k] for k in ("rule", "annotation_ids", "adjudication_id")},
            }
        )
    write_manifest(exported, out / MANIFEST_NAME)
    prov = {
        "created": utcnow().isoformat(),
        "database": _db_name(store),
        "audit_log_position": position,
        "rule": f"adjudication, else the annotators' unanimous label (at least {max(1, min_annotators)})",
        "counts": {lab: sum(f["label"] == lab for f in files) for lab in LABELS},
        "files": files,
        "skipped": skipped,
        "snapshot": None,
    }
    if snapshot and store.engine.dialect.name == "sqlite":
        raw = store.engine.raw_connection()
        try:  # VACUUM INTO: a consistent copy even while others write
            raw.driver_connection.execute("VACUUM INTO ?", (str(out / SNAPSHOT),))
        finally:
            raw.close()
        with closing(
            sqlite3.connect(out / SNAPSHOT)
        ) as snap:  # the snapshot's own position (writes may have come since)
            snap_position = snap.execute("SELECT max(id) FROM audit_log").fetchone()[0] or 0
        prov["snapshot"] = {"file": SNAPSHOT, "sha256": _sha256(out / SNAPSHOT), "audit_log_position": snap_position}
    _atomic_text(out / PROVENANCE, lambda fh: json.dump(prov, fh, indent=1))
    return out
