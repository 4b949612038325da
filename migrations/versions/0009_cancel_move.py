"""cancel_move: what cancelling a meeting moved, so that uncancel can move it back.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cancel_move",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("target_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=1), nullable=False),
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("old_ref", sa.Integer(), nullable=False),
        sa.Column("new_ref", sa.Integer(), nullable=False),
        sa.Column("old_position", sa.Integer(), nullable=True),
        sa.Column("old_carried_from", sa.Date(), nullable=True),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("moved_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_cancel_move_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_id"],
            ["meeting.id"],
            name=op.f("fk_cancel_move_target_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cancel_move")),
    )
    with op.batch_alter_table("cancel_move") as batch:
        batch.create_index(batch.f("ix_cancel_move_meeting_id"), ["meeting_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cancel_move") as batch:
        batch.drop_index(batch.f("ix_cancel_move_meeting_id"))
    op.drop_table("cancel_move")
