"""archive: imported meetings keep their source and free text; archive files their title.

Tables for issue 5 (``cafebot archive import`` / ``export``): ``archive_meeting``
(an imported meeting's source and digest), ``archive_block`` (text that is no
record, kept where it stood) and ``archive_file`` (a year file's title and the
lines before its first meeting).

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "archive_meeting",
        sa.Column("meeting_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("source", sa.Text(), nullable=True),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_archive_meeting_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("meeting_id", name=op.f("pk_archive_meeting")),
    )
    op.create_table(
        "archive_block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("section", sa.String(length=16), nullable=False),
        sa.Column("after_entries", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_archive_block_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_block")),
    )
    op.create_index(
        op.f("ix_archive_block_meeting_id"), "archive_block", ["meeting_id"], unique=False
    )
    op.create_table(
        "archive_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=True),
        sa.Column("head", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_archive_file_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_archive_file")),
        sa.UniqueConstraint("series_id", "year", name=op.f("uq_archive_file_series_id_year")),
    )


def downgrade() -> None:
    op.drop_table("archive_file")
    op.drop_index(op.f("ix_archive_block_meeting_id"), table_name="archive_block")
    op.drop_table("archive_block")
    op.drop_table("archive_meeting")
