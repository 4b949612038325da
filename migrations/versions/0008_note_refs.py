"""agenda_item.next_note_ref: notes, decisions and actions get stable sub-references.

A note's position under its item is its sub-reference (A2.1 is the first note
under A2); the item's counter makes sure a removed note's number is not given
again. Existing items continue after their last note.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agenda_item") as batch:
        batch.add_column(
            sa.Column("next_note_ref", sa.Integer(), nullable=False, server_default="1")
        )
    op.execute(
        "UPDATE agenda_item SET next_note_ref = 1 + COALESCE("
        "(SELECT MAX(item_note.position) FROM item_note "
        "WHERE item_note.item_id = agenda_item.id), 0)"
    )
    with op.batch_alter_table("agenda_item") as batch:
        batch.alter_column("next_note_ref", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("agenda_item") as batch:
        batch.drop_column("next_note_ref")
