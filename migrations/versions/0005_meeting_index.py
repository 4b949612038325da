"""meeting: an index for the queries every command runs.

Each command looks for its series' live meeting, the one scheduled now and the
latest unpublished one. Without an index on (series_id, state, starts_at) those
read every meeting of the series, so with years of history a command took three
times as long (bench/RESULTS.md, "scale").

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_meeting_series_id_state_starts_at",
        "meeting",
        ["series_id", "state", "starts_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_meeting_series_id_state_starts_at", table_name="meeting")
