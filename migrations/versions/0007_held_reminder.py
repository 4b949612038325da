"""held_reminder: a meeting's next reminder, held by Zulip as a scheduled message.

Where the server has scheduled messages (feature level 179), Zulip sends each
meeting's next reminder on time even when the bot is down; this table keeps the
scheduled message's id, the text Zulip holds and when it is due, so that the
bot's own timer leaves that reminder alone and it goes out once.

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "held_reminder",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("offset_seconds", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled_message_id", sa.BigInteger(), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("withdrawn", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_held_reminder_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_held_reminder")),
        sa.UniqueConstraint(
            "meeting_id",
            "offset_seconds",
            name=op.f("uq_held_reminder_meeting_id_offset_seconds"),
        ),
    )


def downgrade() -> None:
    op.drop_table("held_reminder")
