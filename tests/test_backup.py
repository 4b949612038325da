"""Backup and restore: everything in the database, as JSON, into either backend.

The data is made the way users make it: commands through the real handler.
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.script import ScriptDirectory

from cafebot.core.clock import FakeClock
from cafebot.storage import db
from cafebot.storage.backup import (
    FORMAT,
    BackupError,
    column_kind,
    dump,
    read_backup,
    restore,
    write_backup,
)
from cafebot.storage.models import (
    AgendaItem,
    Base,
    ItemState,
    Meeting,
    MeetingState,
    ProcessedMessage,
)
from tests.harness import ADA, BOB, OLGA, Harness

ROOT = Path(__file__).resolve().parent.parent
# Microseconds on the clock: instants must survive to the microsecond.
START = dt.datetime(2031, 6, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)


def make_meeting_data(url: str) -> None:
    """A month of a meeting series, as people make it in chat."""
    bot = Harness(url, now=START)
    try:
        assert bot.send("checkin Ada Lovelace / @ada / Analytical Engines").reactions == ["check"]
        assert bot.send("intro I design engines.").acked
        assert bot.send("checkin Bob / @bob", BOB).reactions
        assert bot.send("shoutout [Jupyter Book] Site footers landed! 🎉", BOB).acked
        assert bot.send("agenda 10-15m Release plans\nfirst thoughts").acked
        assert bot.send("agenda 5m Docs sprint", BOB).acked
        assert bot.send("agenda Hiring").acked
        assert bot.send("defer A3").replies  # a date on the moved item and its copy
        assert bot.send("note A1 The release is planned for May", BOB).acked
        assert bot.send("decision A1 Ship 5.0 on 1 May").acked
        assert bot.send("action A1 @**Bob Builder|12** write the release notes").acked
        bot.clock.set(dt.datetime(2031, 6, 17, 14, 0, 5, 654321, tzinfo=dt.UTC))
        assert bot.send("start", OLGA).replies  # a live meeting: enum state, instants
        assert bot.send("done", OLGA).replies
        assert bot.send("unknown-command").replies  # a refused message is recorded too
    finally:
        bot.close()


@pytest.fixture
def source_url(tmp_path: Path) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'source' / 'cafe.db'}"
    make_meeting_data(url)
    yield url


def backup_json(url: str) -> dict[str, Any]:
    engine = db.make_engine(url)
    try:
        out = io.StringIO()
        write_backup(engine, out, FakeClock(START))
        return json.loads(out.getvalue())  # type: ignore[no-any-return]
    finally:
        engine.dispose()


def comparable(backup: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in backup.items() if k != "source_backend"}


def test_backup_holds_every_table_and_the_revision(source_url: str) -> None:
    backup = backup_json(source_url)
    assert backup["format"] == FORMAT and backup["version"] == 1
    assert backup["alembic_revision"] == db.head_revision()
    assert backup["created_at"] == START.isoformat()
    # Generic over the models: a table added later is in the backup without a change.
    assert list(backup["tables"]) == [t.name for t in Base.metadata.sorted_tables]
    for table in Base.metadata.sorted_tables:
        assert backup["tables"][table.name]["columns"] == [c.name for c in table.columns]
    tables = backup["tables"]
    for name in ("series", "meeting", "person", "checkin", "introduction", "shoutout"):
        assert tables[name]["rows"], f"no {name} rows: the data did not reach every table"
    assert len(tables["agenda_item"]["rows"]) == 4  # three, plus the deferred copy
    assert len(tables["item_note"]["rows"]) == 4
    assert len(tables["processed_message"]["rows"]) == 14


def test_values_are_encoded_losslessly(source_url: str) -> None:
    tables = backup_json(source_url)["tables"]

    def column(table: str, name: str) -> list[Any]:
        index = tables[table]["columns"].index(name)
        assert tables[table]["types"][index]
        return [row[index] for row in tables[table]["rows"]]

    assert "2031-06-17T14:00:05.654321+00:00" in column("meeting", "started_at")
    assert set(column("meeting", "state")) == {"live", "scheduled"}  # enum values
    assert "2031-07-15" in column("agenda_item", "moved_to")  # dates as ISO dates
    assert set(column("agenda_item", "state")) >= {"done", "deferred", "open"}
    assert "Site footers landed! 🎉" in column("shoutout", "text")
    assert (10, 15) in zip(
        column("agenda_item", "estimate_min"), column("agenda_item", "estimate_max"), strict=True
    )
    assert all(at.endswith("+00:00") for at in column("processed_message", "processed_at"))


def test_every_column_type_of_the_models_can_be_backed_up() -> None:
    for table in Base.metadata.sorted_tables:
        for col in table.columns:
            assert column_kind(col.type), f"{table.name}.{col.name}"


def test_round_trip_sqlite_to_json_to_another_backend_and_back(
    source_url: str, db_url: str
) -> None:
    """SQLite → JSON → (SQLite | PostgreSQL) → JSON: the same document."""
    first = backup_json(source_url)
    target = db.make_engine(db_url)
    try:
        summary = restore(target, read_backup(io.StringIO(json.dumps(first))))
        assert summary.revision == db.head_revision()
        assert summary.rows["agenda_item"] == 4
        assert db.current_revision(target) == db.head_revision()
    finally:
        target.dispose()
    second = backup_json(db_url)
    assert second["source_backend"] == sa.make_url(db_url).get_backend_name()
    assert comparable(second) == comparable(first)


def test_restored_database_works_and_new_ids_follow_the_old(source_url: str, db_url: str) -> None:
    target = db.make_engine(db_url)
    try:
        restore(target, backup_json(source_url))
    finally:
        target.dispose()
    bot = Harness(db_url, now=dt.datetime(2031, 6, 17, 14, 30, tzinfo=dt.UTC))
    bot.next_id = 5000  # new messages (the restored ones are recorded as handled)
    try:
        listing = bot.send("list").text
        assert "Release plans" in listing and "Docs sprint" in listing
        # New rows need new ids: PostgreSQL's sequences were moved past the restored ones.
        assert bot.send("agenda 5m After the restore", ADA).acked
        assert bot.send("note A2 noted after the restore", BOB).acked
        items = bot.rows(AgendaItem)
        new = next(i for i in items if i.topic == "After the restore")
        assert new.id == max(i.id for i in items) and new.id > 4
        assert new.ref == 4  # references go on from the restored counter
        meeting = bot.rows(Meeting, date=dt.date(2031, 6, 17))[0]
        assert meeting.state is MeetingState.LIVE
        assert meeting.started_at == dt.datetime(2031, 6, 17, 14, 0, 5, 654321, tzinfo=dt.UTC)
        assert {i.state for i in items} >= {ItemState.DONE, ItemState.DEFERRED}
        # A message handled before the backup is not handled again after the restore.
        seen = min(m.message_id for m in bot.rows(ProcessedMessage))
        assert bot.deliver(bot.message("agenda 1m Twice?", msg_id=seen)).replies == []
        assert not bot.rows(AgendaItem, topic="Twice?")
    finally:
        bot.close()


def test_restore_refuses_a_database_that_is_not_empty(source_url: str, tmp_path: Path) -> None:
    backup = backup_json(source_url)
    engine = db.make_engine(source_url)
    try:
        with pytest.raises(
            BackupError, match=r"the database is not empty: .*series \(1 row\), meeting \(2 rows\)"
        ):
            restore(engine, backup)
    finally:
        engine.dispose()
    assert backup_json(source_url)["tables"] == backup["tables"]  # nothing was touched


def test_restore_refuses_a_database_at_another_revision(source_url: str, tmp_path: Path) -> None:
    script = ScriptDirectory(str(db.migrations_path()))
    previous = script.get_revision(db.head_revision()).down_revision
    assert isinstance(previous, str)
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    try:
        db.upgrade_database(engine, previous)
        with pytest.raises(BackupError, match=f"at schema revision {previous}, not at"):
            restore(engine, backup_json(source_url))
        assert db.current_revision(engine) == previous
    finally:
        engine.dispose()


def test_restore_refuses_a_backup_from_a_newer_cafebot(source_url: str, tmp_path: Path) -> None:
    backup = backup_json(source_url)
    backup["alembic_revision"] = "9999"
    engine = db.make_engine(f"sqlite:///{tmp_path / 'new.db'}")
    try:
        with pytest.raises(BackupError, match="revision 9999, which this cafebot does not know"):
            restore(engine, backup)
        assert db.current_revision(engine) is None  # untouched
    finally:
        engine.dispose()


def test_a_failed_restore_leaves_no_row(source_url: str, db_url: str) -> None:
    backup = backup_json(source_url)
    broken = copy.deepcopy(backup)
    notes = broken["tables"]["item_note"]
    notes["rows"][-1][notes["columns"].index("created_at")] = "yesterday"
    engine = db.make_engine(db_url)
    try:
        with pytest.raises(BackupError, match="item_note, row 4, has a bad value"):
            restore(engine, broken)
        with engine.connect() as connection:
            for table in Base.metadata.sorted_tables:
                assert connection.scalar(sa.select(sa.func.count()).select_from(table)) == 0
        summary = restore(engine, backup)  # and the database is still good for a restore
        assert summary.total == sum(len(t["rows"]) for t in backup["tables"].values())
    finally:
        engine.dispose()


def test_backup_from_an_older_revision_is_restored_then_migrated(
    source_url: str, db_url: str, tmp_path: Path
) -> None:
    """As if an older cafebot had made the backup: its schema, then today's migrations."""
    script = ScriptDirectory(str(db.migrations_path()))
    previous = script.get_revision(db.head_revision()).down_revision
    assert isinstance(previous, str)
    scratch = db.make_engine(f"sqlite:///{tmp_path / 'scratch.db'}")
    try:
        db.upgrade_database(scratch, previous)
        inspector = sa.inspect(scratch)
        then = {
            t: {c["name"] for c in inspector.get_columns(t)} for t in inspector.get_table_names()
        }
    finally:
        scratch.dispose()
    backup = backup_json(source_url)
    old: dict[str, Any] = {**backup, "alembic_revision": previous, "tables": {}}
    for name, table in backup["tables"].items():
        if name not in then:
            continue
        keep = [i for i, c in enumerate(table["columns"]) if c in then[name]]
        old["tables"][name] = {
            "columns": [table["columns"][i] for i in keep],
            "types": [table["types"][i] for i in keep],
            "rows": [[row[i] for i in keep] for row in table["rows"]],
        }
    engine = db.make_engine(db_url)
    try:
        summary = restore(engine, old)
        assert summary.revision == previous
        assert db.current_revision(engine) == db.head_revision()
    finally:
        engine.dispose()
    restored = backup_json(db_url)["tables"]
    for name in ("series", "meeting", "person", "agenda_item", "item_note", "processed_message"):
        # Columns added since hold their defaults now, not the newer database's values.
        assert restored[name]["columns"] == backup["tables"][name]["columns"], name
        kept = old["tables"][name]["columns"]
        index = [restored[name]["columns"].index(c) for c in kept]
        assert [[row[i] for i in index] for row in restored[name]["rows"]] == old["tables"][name][
            "rows"
        ], name


def test_backup_refuses_a_database_that_was_never_migrated(tmp_path: Path) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(BackupError, match="never migrated"):
            dump(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param("not json", "not JSON (line 1", id="not-json"),
        pytest.param('{"format": "other"}', "is not a cafebot backup", id="other-format"),
        pytest.param(
            '{"format": "cafebot-backup", "version": 99}', "format version 99", id="version"
        ),
        pytest.param(
            '{"format": "cafebot-backup", "version": 1, "alembic_revision": "0001", '
            '"tables": {"series": {"columns": ["id"], "types": ["int"], "rows": [[1, 2]]}}}',
            "table series is malformed",
            id="damaged-row",
        ),
    ],
)
def test_read_backup_explains_a_bad_file(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BackupError) as raised:
        read_backup(path)
    assert problem in str(raised.value) and str(path) in str(raised.value)


def test_read_backup_of_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match="no backup file at"):
        read_backup(tmp_path / "nope.json")


# ------------------------------------------------------------------ the command line


def cafebot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cafebot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=120,
        check=False,
    )


def test_cli_backup_and_restore(source_url: str, tmp_path: Path) -> None:
    path = tmp_path / "backups" / "cafe.json"
    made = cafebot("backup", "--db", source_url, str(path))
    assert made.returncode == 0, made.stderr
    assert made.stderr.startswith("Backed up ") and str(path) in made.stderr
    assert path.stat().st_mode & 0o777 == 0o600  # people's data: the owner's only
    assert json.loads(path.read_text())["format"] == FORMAT

    target = tmp_path / "restored.db"
    restored = cafebot("restore", "--db", f"sqlite:///{target}", str(path))
    assert restored.returncode == 0, restored.stderr
    assert "Restored " in restored.stderr
    with sqlite3.connect(target) as conn:
        assert conn.execute("select count(*) from agenda_item").fetchone() == (4,)

    again = cafebot("restore", "--db", f"sqlite:///{target}", str(path))
    assert again.returncode == 1
    assert again.stderr.startswith("cafebot restore: the database is not empty")

    # Through a pipe: `cafebot backup -` and `cafebot restore -`.
    piped = cafebot("backup", "--db", source_url, "-")
    assert piped.returncode == 0 and json.loads(piped.stdout)["format"] == FORMAT
    other = tmp_path / "piped.db"
    from_stdin = cafebot("restore", "--db", f"sqlite:///{other}", "-", stdin=piped.stdout)
    assert from_stdin.returncode == 0, from_stdin.stderr

    missing = cafebot("restore", "--db", f"sqlite:///{tmp_path / 'x.db'}", str(tmp_path / "no"))
    assert missing.returncode == 1 and "no backup file at" in missing.stderr
    assert "Traceback" not in missing.stderr
