"""Map ratings: a rater's 1-5 rating of an explanation map (issue 27), with the map's faithfulness score.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "map_ratings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("image_id", sa.Integer, sa.ForeignKey("images.id", ondelete="RESTRICT"), nullable=False),
        sa.Column("rater", sa.String(64), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("method", sa.String(64), nullable=False),
        sa.Column("rating", sa.Integer, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("faithfulness", sa.Float),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("updated_at", sa.DateTime, nullable=False),
        sa.UniqueConstraint("image_id", "rater", "model", "method", name="uq_map_rating"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_map_ratings_image_id", "map_ratings", ["image_id"])
    op.create_index("ix_map_ratings_rater", "map_ratings", ["rater"])


def downgrade() -> None:
    op.drop_table("map_ratings")
