"""runtime: the schema of issue 3 (cafebot run).

Reserved slot in the revision chain, so that the features built side by side
keep one linear history; it changes nothing until its feature fills it in.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
