"""processed_message.edit_timestamp: the last edit of a command the bot has followed.

A command edited while the bot was stopped sends no event the bot can see; after a
restart the catch-up finds it by its ``last_edit_timestamp`` being later than this.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("processed_message") as batch:
        batch.add_column(sa.Column("edit_timestamp", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("processed_message") as batch:
        batch.drop_column("edit_timestamp")
