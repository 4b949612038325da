"""meeting.schedule_changed_at: when a cancel, uncancel or add last changed the schedule.

The site's calendar feed reads its ``Last-Modified`` from it (with the moment the
feed's window last moved), so that every instance and restart gives the same time.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("meeting") as batch:
        batch.add_column(
            sa.Column("schedule_changed_at", sa.DateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("meeting") as batch:
        batch.drop_column("schedule_changed_at")
