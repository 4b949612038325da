"""lifecycle: the schema of issue 4 (schedules, reminders, publishing).

Reserved slot in the revision chain, so that the features built side by side
keep one linear history; it changes nothing until its feature fills it in.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
