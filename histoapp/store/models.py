"""The annotation database's tables (SQLAlchemy 2.0 ORM). The schema is created by the alembic migrations in
``migrations/versions``; these classes must match them (``tests/histoapp/store/test_migrations.py`` checks)."""

from __future__ import annotations

from datetime import datetime, timezone

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    # Naive UTC: SQLite has no time zones, and naive values compare equal after a JSON round trip (undo/redo).
    return datetime.now(timezone.utc).replace(tzinfo=None)


def row_dict(obj) -> dict:
    """All columns of an ORM row as JSON-ready values (datetimes as ISO strings)."""
    out = {}
    for col in obj.__table__.columns:
        v = getattr(obj, col.key)
        out[col.key] = v.isoformat() if isinstance(v, datetime) else v
    return out


class Base(DeclarativeBase):
    pass


class Image(Base):
    """One image patch, known by its content hash: the same bytes imported twice are one image."""

    __tablename__ = "images"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    path: Mapped[str] = mapped_column(Text, nullable=False)
    dataset: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    magnification: Mapped[str | None] = mapped_column(String(8), index=True)
    patient_id: Mapped[str | None] = mapped_column(String(128))
    # The label the source gave (e.g. a BreakHis file name), kept apart from pathologists' annotations.
    source_label: Mapped[int | None] = mapped_column(Integer)
    source_subtype: Mapped[str | None] = mapped_column(String(4))
    added_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Annotation(Base):
    """One annotator's current label for one image (changes are kept in the audit log)."""

    __tablename__ = "annotations"
    # AUTOINCREMENT: an undone (deleted) row's id is never reused, so redo can put it back under the same id.
    __table_args__ = (
        UniqueConstraint("image_id", "annotator", name="uq_annotation_image_annotator"),
        {"sqlite_autoincrement": True},
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), nullable=False, index=True)
    annotator: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    label: Mapped[int] = mapped_column(Integer, nullable=False)  # 0 benign, 1 malignant
    subtype: Mapped[str | None] = mapped_column(String(4))  # one of the 8 BreakHis codes
    confidence: Mapped[float | None] = mapped_column(Float)  # 0..1, the annotator's own
    blur: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    fold: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    pen_mark: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    out_of_focus: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Prediction(Base):
    """A model's output for an image; one row per (image, model), the latest wins."""

    __tablename__ = "predictions"
    __table_args__ = (UniqueConstraint("image_id", "model", name="uq_prediction_image_model"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), nullable=False, index=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    kind: Mapped[str] = mapped_column(String(8), nullable=False)  # "cnn" | "vlm" (for the disagreement queue)
    prob_malignant: Mapped[float] = mapped_column(Float, nullable=False)
    label: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class Adjudication(Base):
    """The final label for an image whose annotators disagree, set by an adjudicator."""

    __tablename__ = "adjudications"
    __table_args__ = {"sqlite_autoincrement": True}
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), nullable=False, unique=True)
    adjudicator: Mapped[str] = mapped_column(String(64), nullable=False)
    label: Mapped[int] = mapped_column(Integer, nullable=False)
    subtype: Mapped[str | None] = mapped_column(String(4))
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class MapRating(Base):
    """One rater's rating of one explanation map (a model's ``method`` map of an image): does it highlight the
    diagnostic region, 1-5, a free note, and the map's faithfulness score when it was shown (None: not measured)."""

    __tablename__ = "map_ratings"
    __table_args__ = (
        UniqueConstraint("image_id", "rater", "model", "method", name="uq_map_rating"),
        {"sqlite_autoincrement": True},  # undone rows' ids are never reused (redo restores them)
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_id: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="RESTRICT"), nullable=False, index=True)
    rater: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    model: Mapped[str] = mapped_column(String(200), nullable=False)
    method: Mapped[str] = mapped_column(String(64), nullable=False)  # "Grad-CAM", ..., "attention"
    rating: Mapped[int] = mapped_column(Integer, nullable=False)  # 1 (misses it) .. 5 (on the diagnostic region)
    note: Mapped[str] = mapped_column(Text, nullable=False, default="")
    faithfulness: Mapped[float | None] = mapped_column(Float)  # the map's ROAD combined score (trainer.explain)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)


class AuditEntry(Base):
    """Append-only log of every change (SQLite triggers refuse UPDATE and DELETE on it). ``before``/``after``
    are full row snapshots (JSON, None for absent), so undo/redo restore rows exactly."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    time: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64), nullable=False, index=True)
    action: Mapped[str] = mapped_column(String(16), nullable=False)  # create|update|delete|undo|redo|import|...
    table_name: Mapped[str] = mapped_column(String(32), nullable=False)
    row_id: Mapped[int | None] = mapped_column(Integer)
    image_id: Mapped[int | None] = mapped_column(Integer, index=True)
    ref_id: Mapped[int | None] = mapped_column(Integer)  # the entry an undo/redo applies to
    before: Mapped[dict | None] = mapped_column(JSON)
    after: Mapped[dict | None] = mapped_column(JSON)


class Submission(Base):
    """Client-generated ids of annotation clicks already applied: a repeated click (double click, network
    retry) finds its id here and changes nothing."""

    __tablename__ = "submissions"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    annotation_id: Mapped[int | None] = mapped_column(Integer)
    audit_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
