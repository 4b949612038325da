"""action: action items as records of their own, followed up across meetings.

Also their follow-up direct messages, the Zulip to-do widgets that list them, the
series' action counter and the link from an item's note to its action.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("open", "done", "dropped", "unknown")


def upgrade() -> None:
    with op.batch_alter_table("series") as batch:
        batch.add_column(
            sa.Column("next_action_ref", sa.Integer(), server_default="1", nullable=False)
        )
    op.create_table(
        "action",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("series_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("item_ref", sa.Integer(), nullable=True),
        sa.Column("note_ref", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=True),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                *_STATUSES,
                name="action_status",
                native_enum=False,
                length=16,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("status_by_id", sa.Integer(), nullable=True),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("imported", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_id"],
            ["series.id"],
            name=op.f("fk_action_series_id_series"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_action_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["person.id"], name=op.f("fk_action_owner_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["author_id"], ["person.id"], name=op.f("fk_action_author_id_person")
        ),
        sa.ForeignKeyConstraint(
            ["status_by_id"], ["person.id"], name=op.f("fk_action_status_by_id_person")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action")),
        sa.UniqueConstraint("series_id", "number", name=op.f("uq_action_series_id_number")),
    )
    with op.batch_alter_table("action") as batch:
        batch.create_index(batch.f("ix_action_meeting_id"), ["meeting_id"], unique=False)
        batch.create_index(batch.f("ix_action_owner_id"), ["owner_id"], unique=False)
        batch.create_index(batch.f("ix_action_message_id"), ["message_id"], unique=False)
        batch.create_index(
            "ix_action_series_id_status_created_at",
            ["series_id", "status", "created_at"],
            unique=False,
        )
    with op.batch_alter_table("item_note") as batch:
        batch.add_column(sa.Column("action_id", sa.Integer(), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_item_note_action_id_action"),
            "action",
            ["action_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch.create_index(batch.f("ix_item_note_action_id"), ["action_id"], unique=False)
    op.create_table(
        "action_followup",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("actions", sa.Integer(), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_action_followup_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
            name=op.f("fk_action_followup_person_id_person"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_action_followup")),
        sa.UniqueConstraint(
            "meeting_id", "person_id", name=op.f("uq_action_followup_meeting_id_person_id")
        ),
    )
    op.create_table(
        "todo_widget",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
        sa.Column("outgoing_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("posted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_submessage_id", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["meeting_id"],
            ["meeting.id"],
            name=op.f("fk_todo_widget_meeting_id_meeting"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_todo_widget")),
        sa.UniqueConstraint("message_id", name=op.f("uq_todo_widget_message_id")),
    )
    with op.batch_alter_table("todo_widget") as batch:
        batch.create_index(batch.f("ix_todo_widget_meeting_id"), ["meeting_id"], unique=False)
        batch.create_index(batch.f("ix_todo_widget_outgoing_id"), ["outgoing_id"], unique=False)
    op.create_table(
        "todo_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("widget_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("action_id", sa.Integer(), nullable=False),
        sa.Column("ticked", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["widget_id"],
            ["todo_widget.id"],
            name=op.f("fk_todo_item_widget_id_todo_widget"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["action_id"],
            ["action.id"],
            name=op.f("fk_todo_item_action_id_action"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_todo_item")),
        sa.UniqueConstraint("widget_id", "key", name=op.f("uq_todo_item_widget_id_key")),
    )
    with op.batch_alter_table("todo_item") as batch:
        batch.create_index(batch.f("ix_todo_item_action_id"), ["action_id"], unique=False)


def downgrade() -> None:
    op.drop_table("todo_item")
    op.drop_table("todo_widget")
    op.drop_table("action_followup")
    with op.batch_alter_table("item_note") as batch:
        batch.drop_index(batch.f("ix_item_note_action_id"))
        batch.drop_constraint(batch.f("fk_item_note_action_id_action"), type_="foreignkey")
        batch.drop_column("action_id")
    op.drop_table("action")
    with op.batch_alter_table("series") as batch:
        batch.drop_column("next_action_ref")
