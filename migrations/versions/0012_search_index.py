"""The search index: each meeting's text in one indexed document, and stale marks.

``search_text`` holds one document per meeting (cafebot.cafe.textindex writes it): on
SQLite an FTS5 table with the trigram tokenizer (rowid = the meeting's id), on
PostgreSQL a table with a pg_trgm GIN index. Where pg_trgm cannot be installed (it
needs the CREATE privilege on the database), the table has no index: search still
works, reading every document.

``search_stale`` marks meetings whose document may be out of date. Triggers mark a
meeting whenever anything search reads in it changes, whoever writes it; every
meeting is marked here, so the first refresh writes every document.

SQLite drops a table's triggers with the table: a later migration that rebuilds one of
these tables (batch mode) must create its triggers again (tests/test_migrations.py
checks that they are all there).

Revision ID: 0012
Revises: 0011
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Tables with a meeting_id whose rows search reads.
BY_MEETING = ("checkin", "introduction", "shoutout", "agenda_item", "archive_block")
MARK = "INSERT INTO search_stale (meeting_id)"
# The meetings where a person's name is read: introductions, shout-outs, agenda items,
# and notes of actions they own.
PERSON_MEETINGS = (
    "SELECT meeting_id FROM introduction WHERE person_id = {p}"
    " UNION SELECT meeting_id FROM shoutout WHERE author_id = {p}"
    " UNION SELECT meeting_id FROM agenda_item WHERE proposer_id = {p}"
    " UNION SELECT i.meeting_id FROM item_note n JOIN action a ON a.id = n.action_id"
    " JOIN agenda_item i ON i.id = n.item_id WHERE a.owner_id = {p}"
)
ACTION_MEETINGS = (
    "SELECT i.meeting_id FROM item_note n JOIN agenda_item i ON i.id = n.item_id"
    " WHERE n.action_id = {a}"
)
ITEM_MEETING = "SELECT meeting_id FROM agenda_item WHERE id = {i}"


def _sqlite_triggers() -> list[str]:
    made = []
    for table in BY_MEETING:
        made += [
            f"CREATE TRIGGER search_stale_{table}_insert AFTER INSERT ON {table} "
            f"BEGIN {MARK} VALUES (NEW.meeting_id); END",
            f"CREATE TRIGGER search_stale_{table}_update AFTER UPDATE ON {table} "
            f"BEGIN {MARK} VALUES (NEW.meeting_id); "
            f"{MARK} SELECT OLD.meeting_id WHERE OLD.meeting_id IS NOT NEW.meeting_id; END",
            f"CREATE TRIGGER search_stale_{table}_delete AFTER DELETE ON {table} "
            f"BEGIN {MARK} VALUES (OLD.meeting_id); END",
        ]
    made += [
        "CREATE TRIGGER search_stale_item_note_insert AFTER INSERT ON item_note "
        f"BEGIN {MARK} {ITEM_MEETING.format(i='NEW.item_id')}; END",
        "CREATE TRIGGER search_stale_item_note_update AFTER UPDATE ON item_note "
        f"BEGIN {MARK} {ITEM_MEETING.format(i='NEW.item_id')}; "
        f"{MARK} {ITEM_MEETING.format(i='OLD.item_id')} AND OLD.item_id IS NOT NEW.item_id; END",
        "CREATE TRIGGER search_stale_item_note_delete AFTER DELETE ON item_note "
        f"BEGIN {MARK} {ITEM_MEETING.format(i='OLD.item_id')}; END",
        "CREATE TRIGGER search_stale_meeting_insert AFTER INSERT ON meeting "
        f"BEGIN {MARK} VALUES (NEW.id); END",
        "CREATE TRIGGER search_stale_meeting_delete AFTER DELETE ON meeting "
        f"BEGIN {MARK} VALUES (OLD.id); END",
        "CREATE TRIGGER search_stale_person_update AFTER UPDATE OF name, zulip_name, github "
        "ON person WHEN OLD.name IS NOT NEW.name OR OLD.zulip_name IS NOT NEW.zulip_name "
        "OR OLD.github IS NOT NEW.github "
        f"BEGIN {MARK} {PERSON_MEETINGS.format(p='NEW.id')}; END",
        "CREATE TRIGGER search_stale_action_update AFTER UPDATE OF owner_id ON action "
        "WHEN OLD.owner_id IS NOT NEW.owner_id "
        f"BEGIN {MARK} {ACTION_MEETINGS.format(a='NEW.id')}; END",
        "CREATE TRIGGER search_stale_action_delete BEFORE DELETE ON action "
        f"BEGIN {MARK} {ACTION_MEETINGS.format(a='OLD.id')}; END",
    ]
    return made


def _postgresql_triggers() -> list[str]:
    def function(name: str, body: str) -> str:
        return (
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            f"BEGIN\n{body}\nRETURN NULL;\nEND\n$$"
        )

    made = [
        function(
            "search_stale_by_meeting",
            f"IF TG_OP <> 'DELETE' THEN {MARK} VALUES (NEW.meeting_id); END IF;\n"
            "IF TG_OP = 'DELETE' THEN "
            f"{MARK} VALUES (OLD.meeting_id);\n"
            "ELSIF TG_OP = 'UPDATE' THEN\n"
            "  IF OLD.meeting_id IS DISTINCT FROM NEW.meeting_id THEN "
            f"{MARK} VALUES (OLD.meeting_id); END IF;\n"
            "END IF;",
        ),
        function(
            "search_stale_by_item",
            f"IF TG_OP <> 'DELETE' THEN {MARK} {ITEM_MEETING.format(i='NEW.item_id')}; END IF;\n"
            "IF TG_OP = 'DELETE' THEN "
            f"{MARK} {ITEM_MEETING.format(i='OLD.item_id')};\n"
            "ELSIF TG_OP = 'UPDATE' THEN\n"
            "  IF OLD.item_id IS DISTINCT FROM NEW.item_id THEN "
            f"{MARK} {ITEM_MEETING.format(i='OLD.item_id')}; END IF;\n"
            "END IF;",
        ),
        function(
            "search_stale_meeting",
            f"IF TG_OP = 'DELETE' THEN {MARK} VALUES (OLD.id); "
            f"ELSE {MARK} VALUES (NEW.id); END IF;",
        ),
        function("search_stale_by_person", f"{MARK} {PERSON_MEETINGS.format(p='NEW.id')};"),
        function(
            "search_stale_by_action",
            f"IF TG_OP = 'DELETE' THEN {MARK} {ACTION_MEETINGS.format(a='OLD.id')}; "
            f"ELSE {MARK} {ACTION_MEETINGS.format(a='NEW.id')}; END IF;\n"
            "IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;",
        ),
    ]
    every_change = "AFTER INSERT OR UPDATE OR DELETE"
    for table in BY_MEETING:
        made.append(
            f"CREATE TRIGGER search_stale_{table} {every_change} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION search_stale_by_meeting()"
        )
    made += [
        f"CREATE TRIGGER search_stale_item_note {every_change} ON item_note "
        "FOR EACH ROW EXECUTE FUNCTION search_stale_by_item()",
        "CREATE TRIGGER search_stale_meeting AFTER INSERT OR DELETE ON meeting "
        "FOR EACH ROW EXECUTE FUNCTION search_stale_meeting()",
        "CREATE TRIGGER search_stale_person AFTER UPDATE OF name, zulip_name, github ON person "
        "FOR EACH ROW WHEN (OLD.name IS DISTINCT FROM NEW.name "
        "OR OLD.zulip_name IS DISTINCT FROM NEW.zulip_name "
        "OR OLD.github IS DISTINCT FROM NEW.github) "
        "EXECUTE FUNCTION search_stale_by_person()",
        "CREATE TRIGGER search_stale_action_update AFTER UPDATE OF owner_id ON action "
        "FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id) "
        "EXECUTE FUNCTION search_stale_by_action()",
        "CREATE TRIGGER search_stale_action_delete BEFORE DELETE ON action "
        "FOR EACH ROW EXECUTE FUNCTION search_stale_by_action()",
    ]
    return made


def upgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    op.create_table(
        "search_stale",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), primary_key=True),
        sa.Column("meeting_id", sa.Integer(), nullable=False),
    )
    op.create_index("ix_search_stale_meeting_id", "search_stale", ["meeting_id"])
    if sqlite:
        op.execute("CREATE VIRTUAL TABLE search_text USING fts5(text, tokenize = 'trigram')")
    else:
        op.create_table(
            "search_text",
            sa.Column("meeting_id", sa.Integer(), primary_key=True, autoincrement=False),
            sa.Column("text", sa.Text(), nullable=False),
        )
        _trigram_index()
    for statement in _sqlite_triggers() if sqlite else _postgresql_triggers():
        op.execute(statement)
    op.execute(f"{MARK} SELECT id FROM meeting")


def _trigram_index() -> None:
    bind = op.get_bind()
    try:
        with bind.begin_nested():
            bind.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            bind.exec_driver_sql(
                "CREATE INDEX ix_search_text_trgm ON search_text USING gin (text gin_trgm_ops)"
                # Written through at once: a pending list would be read by every search
                # until vacuum merges it (and the planner shuns the index meanwhile).
                " WITH (fastupdate = off)"
            )
    except sa.exc.DBAPIError as exc:
        import logging

        logging.getLogger("alembic.runtime.migration").warning(
            "no pg_trgm index for search (%s): search reads every meeting's document",
            str(exc.orig).strip().splitlines()[0] if exc.orig else exc,
        )


def downgrade() -> None:
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        names = [
            f"{t}_{w}" for t in (*BY_MEETING, "item_note") for w in ("insert", "update", "delete")
        ]
        names += ["meeting_insert", "meeting_delete", "person_update"]
        names += ["action_update", "action_delete"]
        for name in names:
            op.execute(f"DROP TRIGGER IF EXISTS search_stale_{name}")
    else:
        tables = {t: t for t in (*BY_MEETING, "item_note", "meeting", "person")}
        for name, table in tables.items():
            op.execute(f"DROP TRIGGER IF EXISTS search_stale_{name} ON {table}")
        op.execute("DROP TRIGGER IF EXISTS search_stale_action_update ON action")
        op.execute("DROP TRIGGER IF EXISTS search_stale_action_delete ON action")
        for function in ("by_meeting", "by_item", "meeting", "by_person", "by_action"):
            op.execute(f"DROP FUNCTION IF EXISTS search_stale_{function}()")
    op.drop_table("search_text")
    op.drop_index("ix_search_stale_meeting_id", table_name="search_stale")
    op.drop_table("search_stale")
