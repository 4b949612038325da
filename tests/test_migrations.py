"""The Alembic revisions build exactly the schema of cafebot.storage.models, on every backend."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session, sessionmaker

from cafebot.storage import db
from cafebot.storage.models import Base, Meeting, MeetingState, Series

BERLIN = ZoneInfo("Europe/Berlin")


def autogenerate_diffs(engine: Engine) -> list[Any]:
    """What ``alembic revision --autogenerate`` would add, with env.py's own options.

    env.py configures the migration context (include_object, compare_type, ...), as in
    ``alembic check``; compare_metadata takes its options from that context.
    """
    diffs: list[Any] = []
    with engine.connect() as connection:
        config = db.alembic_config(connection)
        script = ScriptDirectory.from_config(config)

        def compare(rev: Any, context: MigrationContext) -> list[Any]:
            diffs.extend(compare_metadata(context, Base.metadata))
            return []

        with EnvironmentContext(config, script, fn=compare):
            script.run_env()
    return diffs


def table_names(engine: Engine) -> set[str]:
    return set(sa.inspect(engine).get_table_names())


def test_autogenerate_finds_no_difference(engine: Engine) -> None:
    assert autogenerate_diffs(engine) == []


def test_autogenerate_ignores_the_apscheduler_table(engine: Engine) -> None:
    # As APScheduler's SQLAlchemyJobStore creates it in our database.
    jobs = sa.Table(
        "apscheduler_jobs",
        sa.MetaData(),
        sa.Column("id", sa.Unicode(191), primary_key=True),
        sa.Column("next_run_time", sa.Float(25), index=True),
        sa.Column("job_state", sa.LargeBinary, nullable=False),
    )
    jobs.create(engine)
    assert autogenerate_diffs(engine) == []


def test_upgrade_downgrade_upgrade(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        assert db.current_revision(engine) is None
        db.upgrade_database(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert table_names(engine) >= set(Base.metadata.tables)

        db.downgrade_database(engine, "base")
        assert db.current_revision(engine) is None
        assert table_names(engine) <= {"alembic_version"}

        db.upgrade_database(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert autogenerate_diffs(engine) == []
    finally:
        engine.dispose()


def search_triggers(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        if engine.dialect.name == "sqlite":
            query = "SELECT name FROM sqlite_master WHERE type = 'trigger'"
        else:
            query = "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"
        return {n for n in connection.scalars(text(query)) if n.startswith("search_stale")}


def test_the_search_index_and_its_triggers_are_there_at_head(db_url: str) -> None:
    # SQLite drops a table's triggers when a batch migration rebuilds the table: this
    # fails until such a migration creates them again (migration 0012 lists them).
    by_meeting = ("checkin", "introduction", "shoutout", "agenda_item", "archive_block")
    if db_url.startswith("sqlite"):
        expected = {
            f"search_stale_{t}_{op}"
            for t in (*by_meeting, "item_note")
            for op in ("insert", "update", "delete")
        }
        expected |= {f"search_stale_{n}" for n in ("meeting_insert", "meeting_delete")}
    else:
        expected = {f"search_stale_{t}" for t in (*by_meeting, "item_note", "meeting")}
    expected |= {"search_stale_person_update", "search_stale_action_update"}
    expected |= {"search_stale_action_delete"}
    if not db_url.startswith("sqlite"):
        expected = (expected - {"search_stale_person_update"}) | {"search_stale_person"}
    engine = db.make_engine(db_url)
    try:
        db.upgrade_database(engine)
        assert search_triggers(engine) == expected
        assert {"search_text", "search_stale"} <= table_names(engine)
        db.downgrade_database(engine, "0011")
        assert search_triggers(engine) == set()
        assert not {n for n in table_names(engine) if n.startswith("search_")}
    finally:
        engine.dispose()


def test_every_revision_downgrades_and_upgrades_again(db_url: str) -> None:
    """The stairway: up one revision, down again, up again, for each revision in turn."""
    script = ScriptDirectory(str(db.migrations_path()))
    revisions = list(reversed(list(script.walk_revisions())))
    engine = db.make_engine(db_url)
    try:
        for revision in revisions:
            db.upgrade_database(engine, revision.revision)
            db.downgrade_database(engine, "-1")
            assert db.current_revision(engine) == revision.down_revision
            db.upgrade_database(engine, revision.revision)
            assert db.current_revision(engine) == revision.revision
    finally:
        engine.dispose()


def test_ensure_schema_upgrades_an_empty_database(db_url: str) -> None:
    engine = db.make_engine(db_url)
    try:
        db.ensure_schema(engine)
        assert db.current_revision(engine) == db.head_revision()
        assert table_names(engine) >= set(Base.metadata.tables)
    finally:
        engine.dispose()


def test_ensure_schema_at_head_is_a_no_op(
    engine: Engine, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    with db.unit_of_work(session_factory) as session:
        session.add(Series(key="cafe", name="Collaboration Cafe"))

    def no_upgrade(*args: object) -> None:
        raise AssertionError("ensure_schema ran the migrations of a database at head")

    monkeypatch.setattr(db, "upgrade_database", no_upgrade)
    db.ensure_schema(engine)

    assert db.current_revision(engine) == db.head_revision()
    with db.unit_of_work(session_factory) as session:
        assert session.scalars(select(Series.key)).all() == ["cafe"]


def test_ensure_schema_refuses_a_revision_it_does_not_know(engine: Engine) -> None:
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'from_the_future'"))
    with pytest.raises(RuntimeError, match=r"from_the_future.*newer version"):
        db.ensure_schema(engine)


def test_migrations_keep_rows_that_refer_to_a_rebuilt_table(
    engine: Engine, session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    """SQLite rebuilds a table to alter it; with foreign keys on, dropping the old copy
    would delete every row that refers to it (ON DELETE CASCADE). env.py turns them off."""
    scripts = tmp_path / "migrations"
    shutil.copytree(db.migrations_path(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    (scripts / "versions" / "9999_rebuild_series.py").write_text(
        f"""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = {db.head_revision()!r}
branch_labels = None
depends_on = None


def recreate() -> str:
    # Copy the table on SQLite (a real ALTER elsewhere).
    return "always" if op.get_context().dialect.name == "sqlite" else "auto"


def upgrade() -> None:
    with op.batch_alter_table("series", recreate=recreate()) as batch_op:
        batch_op.add_column(sa.Column("colour", sa.String(20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("series", recreate=recreate()) as batch_op:
        batch_op.drop_column("colour")
"""
    )
    with db.unit_of_work(session_factory) as session:
        series = Series(key="cafe", name="Collaboration Cafe")
        session.add(series)
        start = dt.datetime(2031, 6, 17, 16, 0, tzinfo=BERLIN)
        series.meetings.append(
            Meeting(date=start.date(), starts_at=start, ends_at=start + dt.timedelta(hours=1))
        )

    with engine.connect() as connection:
        config = db.alembic_config(connection)
        config.set_main_option("script_location", str(scripts))
        command.upgrade(config, "9999")
        assert "colour" in {c["name"] for c in sa.inspect(connection).get_columns("series")}
        command.downgrade(config, "-1")

    with db.unit_of_work(session_factory) as session:
        assert session.scalars(select(Meeting.date)).all() == [dt.date(2031, 6, 17)]
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1


# -------------------------------------------------------------- UTC instants


def test_instants_round_trip_as_aware_utc(session_factory: sessionmaker[Session]) -> None:
    starts = dt.datetime(2031, 6, 17, 16, 0, tzinfo=BERLIN)  # 14:00 UTC
    ends = starts + dt.timedelta(hours=1)
    with db.unit_of_work(session_factory) as session:
        series = Series(key="cafe", name="Collaboration Cafe")
        series.meetings.append(Meeting(date=starts.date(), starts_at=starts, ends_at=ends))
        session.add(series)

    with db.unit_of_work(session_factory) as session:
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            # The session's time zone must not matter.
            session.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        meeting = session.scalars(select(Meeting)).one()
        assert meeting.starts_at == starts
        assert meeting.starts_at.tzinfo is dt.UTC
        assert meeting.starts_at.hour == 14
        assert meeting.ends_at == ends
        assert meeting.ends_at.tzinfo is dt.UTC
        assert meeting.started_at is None
        assert meeting.state is MeetingState.SCHEDULED

        # Comparisons in SQL take aware values in any zone.
        new_york = ZoneInfo("America/New_York")
        just_before = dt.datetime(2031, 6, 17, 9, 59, tzinfo=new_york)  # 13:59 UTC
        just_after = dt.datetime(2031, 6, 17, 10, 1, tzinfo=new_york)
        assert session.scalars(select(Meeting.id).where(Meeting.starts_at > just_before)).all()
        assert not session.scalars(select(Meeting.id).where(Meeting.starts_at > just_after)).all()


def test_naive_instants_are_refused(session_factory: sessionmaker[Session]) -> None:
    naive = dt.datetime(2031, 6, 17, 16, 0)  # noqa: DTZ001 (the point of the test)
    with (
        pytest.raises(sa.exc.StatementError, match="naive datetime"),
        db.unit_of_work(session_factory) as session,
    ):
        series = Series(key="cafe", name="Collaboration Cafe")
        series.meetings.append(Meeting(date=naive.date(), starts_at=naive, ends_at=naive))
        session.add(series)
