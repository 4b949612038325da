"""archive: the schema of issue 5 (archive import and export).

Reserved slot in the revision chain, so that the features built side by side
keep one linear history; it changes nothing until its feature fills it in.

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

# revision identifiers, used by Alembic.
revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
