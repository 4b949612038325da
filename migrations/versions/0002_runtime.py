"""runtime: what ``cafebot run`` keeps about Zulip (issue 3).

``zulip_cursor``: the last message the bot has read, per server and bot account,
where catch-up starts after a restart. ``outgoing_message``: replies and posts on
their way to Zulip, so that one whose response was lost is looked for rather than
posted twice, and one still pending at a crash is sent after the restart.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "zulip_cursor",
        sa.Column("account", sa.String(length=300), nullable=False),
        sa.Column("last_message_id", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("account", name=op.f("pk_zulip_cursor")),
    )
    op.create_table(
        "outgoing_message",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("account", sa.String(length=300), nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=True),
        sa.Column("topic", sa.String(length=200), nullable=True),
        sa.Column("recipient_ids", sa.String(length=1000), nullable=True),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("after_message_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "sent",
                "failed",
                name="outgoing_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("zulip_message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outgoing_message")),
    )
    with op.batch_alter_table("outgoing_message", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_outgoing_message_state"), ["state"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_outgoing_message_zulip_message_id"), ["zulip_message_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("outgoing_message", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outgoing_message_zulip_message_id"))
        batch_op.drop_index(batch_op.f("ix_outgoing_message_state"))
    op.drop_table("outgoing_message")
    op.drop_table("zulip_cursor")
