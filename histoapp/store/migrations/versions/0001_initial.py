"""Initial schema: images, annotations, predictions, adjudications, audit log, submissions.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "images",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("sha256", sa.String(64), nullable=False, unique=True),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("dataset", sa.String(64), nullable=False),
        sa.Column("magnification", sa.String(8)),
        sa.Column("patient_id", sa.String(128)),
        sa.Column("source_label", sa.Integer),
        sa.Column("source_subtype", sa.String(4)),
        sa.Column("added_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_images_dataset", "images", ["dataset"])
    op.create_index("ix_images_magnification", "images", ["magnification"])
    op.create_table(
        "annotations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("annotator", sa.String(64), nullable=False),
        sa.Column("label", sa.Integer, nullable=False),
        sa.Column("subtype", sa.String(4)),
        sa.Column("confidence", sa.Float),
        sa.Column("blur", sa.Boolean, nullable=False),
        sa.Column("fold", sa.Boolean, nullable=False),
        sa.Column("pen_mark", sa.Boolean, nullable=False),
        sa.Column("out_of_focus", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("image_id", "annotator", name="uq_annotation_image_annotator"),
        sqlite_autoincrement=True,  # undone rows' ids are never reused (redo restores them)
    )
    op.create_index("ix_annotations_image_id", "annotations", ["image_id"])
    op.create_index("ix_annotations_annotator", "annotations", ["annotator"])
    op.create_table(
        "predictions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="CASCADE"), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("prob_malignant", sa.Float, nullable=False),
        sa.Column("label", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("image_id", "model", name="uq_prediction_image_model"),
    )
    op.create_index("ix_predictions_image_id", "predictions", ["image_id"])
    op.create_table(
        "adjudications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="RESTRICT"), nullable=False, unique=True),
        sa.Column("adjudicator", sa.String(64), nullable=False),
        sa.Column("label", sa.Integer, nullable=False),
        sa.Column("subtype", sa.String(4)),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("time", sa.DateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("table_name", sa.String(32), nullable=False),
        sa.Column("row_id", sa.Integer),
        sa.Column("image_id", sa.Integer),
        sa.Column("ref_id", sa.Integer),
        sa.Column("before", sa.JSON),
        sa.Column("after", sa.JSON),
    )
    op.create_index("ix_audit_log_actor", "audit_log", ["actor"])
    op.create_index("ix_audit_log_image_id", "audit_log", ["image_id"])
    op.create_table(
        "submissions",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("annotation_id", sa.Integer),
        sa.Column("audit_id", sa.Integer),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    if op.get_bind().dialect.name == "sqlite":
        # The audit log is append-only: the database itself refuses edits, not just the app's code.
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_log_no_{verb.lower()} BEFORE {verb} ON audit_log "
                       "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END")


def downgrade() -> None:
    for name in ("submissions", "audit_log", "adjudications", "predictions", "annotations", "images"):
        op.drop_table(name)
