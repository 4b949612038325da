"""Backup and restore: everything in the database, as one JSON document.

A backup holds every table of :data:`cafebot.storage.models.Base.metadata` (in
foreign-key order, so tables added later are included without a change here),
read in one consistent snapshot, with the Alembic revision of the schema::

    {"format": "cafebot-backup", "version": 1, "alembic_revision": "0005",
     "created_at": "2031-06-01T10:00:00+00:00", "cafebot_version": "0.1.0",
     "source_backend": "sqlite",
     "tables": {"series": {"columns": ["id", "key", "name"],
                           "types": ["int", "str", "str"],
                           "rows": [[1, "cafe", "Collaboration Cafe"]]}, ...}}

Values keep their exact meaning across backends: instants as ISO 8601 with
their UTC offset (microseconds kept), dates as ISO dates, enums by their stored
value, binary data in base64.  ``types`` names how each column is encoded.

A restore goes into an *empty* database only, on either backend: one never
migrated (it is brought to the latest revision first) or one at the latest
revision whose tables are all empty.  The rows are inserted in one transaction
with their ids, and PostgreSQL's sequences are moved past them.  A backup made
at an older revision is restored at that revision and then migrated, exactly as
the database it came from would have been.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import sqlalchemy as sa
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, select
from sqlalchemy.types import TypeDecorator, TypeEngine

import cafebot
from cafebot.core.clock import Clock, SystemClock
from cafebot.core.text import counted
from cafebot.storage import db
from cafebot.storage.models import Base

FORMAT = "cafebot-backup"
FORMAT_VERSION = 1

#: Tables in our database that are not ours to back up (derived from the database).
_NOT_OURS = frozenset({"alembic_version", "apscheduler_jobs"})
# The search index (migration 0012): derived from the rest, rebuilt after a restore.
_DERIVED_PREFIX = "search_"

_INSERT_BATCH = 1000


class BackupError(Exception):
    """A backup or restore that cannot be done, said so that an operator can act on it."""


@dataclass(frozen=True)
class Summary:
    """What a backup or restore covered: rows per table, and the schema revision."""

    revision: str
    rows: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.rows.values())

    def describe(self) -> str:
        tables = ", ".join(f"{name} {count}" for name, count in self.rows.items() if count)
        rows, in_tables = counted(self.total, "row"), counted(len(self.rows), "table")
        return f"{rows} in {in_tables} at revision {self.revision}" + (
            f" ({tables})" if tables else ""
        )


# ------------------------------------------------------------------ value codecs


def column_kind(type_: TypeEngine[Any]) -> str:
    """How values of a column type are written into a backup (``"datetime"``, ``"enum"``…).

    Raises :class:`BackupError` for a type that backups cannot carry yet (a test
    checks every column of the models has a kind).
    """
    if isinstance(type_, sa.Interval):
        return "interval"
    if isinstance(type_, TypeDecorator):
        return column_kind(type_.impl_instance)
    for cls, kind in _KINDS:
        if isinstance(type_, cls):
            return kind
    raise BackupError(f"backups cannot store values of column type {type_!r} yet")


_KINDS: tuple[tuple[type[TypeEngine[Any]], str], ...] = (
    (sa.Enum, "enum"),  # before String: Enum is a String
    (sa.Boolean, "bool"),
    (sa.DateTime, "datetime"),
    (sa.Date, "date"),
    (sa.Time, "time"),
    (sa.Integer, "int"),
    (sa.Float, "float"),  # before Numeric: Float is a Numeric
    (sa.Numeric, "decimal"),
    (sa.String, "str"),
    (sa.LargeBinary, "bytes"),
    (sa.JSON, "json"),
    (sa.Uuid, "uuid"),
)


def _encode(kind: str, value: Any) -> Any:
    if value is None:
        return None
    match kind:
        case "enum":
            return value.value if isinstance(value, enum.Enum) else str(value)
        case "datetime" | "date" | "time":
            return value.isoformat()
        case "interval":
            return [value.days, value.seconds, value.microseconds]
        case "decimal" | "uuid":
            return str(value)
        case "bytes":
            return base64.b64encode(bytes(value)).decode("ascii")
        case _:
            return value


_DECODERS: dict[str, Callable[[Any], Any]] = {
    "datetime": dt.datetime.fromisoformat,
    "date": dt.date.fromisoformat,
    "time": dt.time.fromisoformat,
    "interval": lambda v: dt.timedelta(days=v[0], seconds=v[1], microseconds=v[2]),
    "decimal": decimal.Decimal,
    "uuid": uuid.UUID,
    "bytes": base64.b64decode,
    "int": int,
    "float": float,
    "bool": bool,
    "str": str,
    "enum": str,
}


def _decoder(kind: str, target: TypeEngine[Any]) -> Callable[[Any], Any]:
    if kind == "enum":
        enum_class = getattr(target, "enum_class", None)
        if enum_class is not None:
            return enum_class  # type: ignore[no-any-return]
    if kind == "json":
        return lambda v: v
    try:
        return _DECODERS[kind]
    except KeyError:
        raise BackupError(f"unknown column encoding '{kind}'") from None


# ------------------------------------------------------------------ backup


def dump(engine: Engine, clock: Clock | None = None) -> dict[str, Any]:
    """Everything in the database, as a JSON-ready dict (one consistent snapshot)."""
    now = (clock or SystemClock()).now()
    head = db.head_revision()
    tables: dict[str, Any] = {}
    with _connect(engine) as connection, connection.begin():
        revision = _revision(connection)
        if revision is None:
            raise BackupError(
                "the database has no cafebot schema (it was never migrated): nothing to "
                "back up. Check the database URL (--db, or [database] url in the config)."
            )
        if revision != head:
            raise BackupError(
                f"the database is at revision {revision}, but this cafebot's schema is at "
                f"{head}: back it up with the cafebot version that runs it, or upgrade it "
                "first (`cafebot db upgrade`)"
            )
        for table in Base.metadata.sorted_tables:
            kinds = [column_kind(column.type) for column in table.columns]
            order = list(table.primary_key.columns) or list(table.columns)
            rows = connection.execute(select(table).order_by(*order))
            tables[table.name] = {
                "columns": [column.name for column in table.columns],
                "types": kinds,
                "rows": [
                    [_encode(kind, value) for kind, value in zip(kinds, row, strict=True)]
                    for row in rows
                ],
            }
    return {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "alembic_revision": revision,
        "created_at": now.isoformat(),
        "cafebot_version": cafebot.__version__,
        "source_backend": engine.dialect.name,
        "tables": tables,
    }


def write_backup(engine: Engine, target: Path | IO[str], clock: Clock | None = None) -> Summary:
    """Write the backup to ``target``: a path (written whole or not at all, mode 0600)
    or an open text stream."""
    data = dump(engine, clock)
    summary = Summary(
        data["alembic_revision"], {name: len(t["rows"]) for name, t in data["tables"].items()}
    )
    if not isinstance(target, Path):
        _write_json(data, target)
        return summary
    target.parent.mkdir(parents=True, exist_ok=True)
    # The backup holds people's names and handles: readable by its owner only.
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            _write_json(data, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return summary


def _write_json(data: Mapping[str, Any], fh: IO[str]) -> None:
    """One table row per line: readable, diffable, and still plain JSON."""
    header = {k: v for k, v in data.items() if k != "tables"}
    fh.write("{\n")
    for key, value in header.items():
        fh.write(f"{json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},\n")
    fh.write('"tables": {')
    for t, (name, table) in enumerate(data["tables"].items()):
        fh.write("," if t else "")
        fh.write(f"\n{json.dumps(name)}: {{")
        fh.write(f'"columns": {json.dumps(table["columns"])}, ')
        fh.write(f'"types": {json.dumps(table["types"])}, "rows": [')
        for r, row in enumerate(table["rows"]):
            fh.write(",\n  " if r else "\n  ")
            fh.write(json.dumps(row, ensure_ascii=False))
        fh.write("]}")
    fh.write("\n}}\n")


# ------------------------------------------------------------------ restore


def read_backup(source: Path | IO[str]) -> dict[str, Any]:
    """Read and check a backup file (or stream); BackupError says what is wrong with it."""
    name = str(source) if isinstance(source, Path) else "the input"
    try:
        if isinstance(source, Path):
            with source.open(encoding="utf-8") as fh:
                data = json.load(fh)
        else:
            data = json.load(source)
    except FileNotFoundError:
        raise BackupError(f"no backup file at {name}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackupError(f"cannot read {name}: {exc}") from None
    except json.JSONDecodeError as exc:
        raise BackupError(
            f"{name} is not a cafebot backup: not JSON (line {exc.lineno}: {exc.msg})"
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BackupError(f"{name} is not a cafebot backup (made by `cafebot backup FILE`)")
    if data.get("version") != FORMAT_VERSION:
        raise BackupError(
            f"{name} is a cafebot backup of format version {data.get('version')}; this "
            f"cafebot reads version {FORMAT_VERSION}: restore it with a matching cafebot"
        )
    tables = data.get("tables")
    if not isinstance(data.get("alembic_revision"), str) or not isinstance(tables, dict):
        raise BackupError(f"{name} is damaged: no schema revision or no tables")
    for table_name, table in tables.items():
        ok = (
            isinstance(table, dict)
            and isinstance(table.get("columns"), list)
            and isinstance(table.get("types"), list)
            and isinstance(table.get("rows"), list)
            and len(table["columns"]) == len(table["types"])
            and all(
                isinstance(row, list) and len(row) == len(table["columns"]) for row in table["rows"]
            )
        )
        if not ok:
            raise BackupError(f"{name} is damaged: table {table_name} is malformed")
    return data


def restore(engine: Engine, data: Mapping[str, Any]) -> Summary:
    """Restore a backup (from :func:`read_backup`) into the empty database of ``engine``."""
    revision: str = data["alembic_revision"]
    head = db.head_revision()
    known = {rev.revision for rev in ScriptDirectory(str(db.migrations_path())).walk_revisions()}
    if revision not in known:
        raise BackupError(
            f"the backup is at schema revision {revision}, which this cafebot does not know "
            "(it was made by a newer version): restore it with that version or a later one"
        )
    _prepare_empty_database(engine, head)

    if revision == head:
        tables = list(Base.metadata.sorted_tables)
        _insert_all(engine, tables, data["tables"])
    else:
        # Restore at the backup's own schema, then migrate as its database would have been.
        db.downgrade_database(engine, revision)  # every table is empty: nothing is lost
        try:
            with engine.connect() as connection:
                reflected = sa.MetaData()
                reflected.reflect(bind=connection)
            tables = [
                t
                for t in reflected.sorted_tables
                if t.name not in _NOT_OURS and not t.name.startswith(_DERIVED_PREFIX)
            ]
            _insert_all(engine, tables, data["tables"])
        finally:
            db.upgrade_database(engine)
    return Summary(revision, {name: len(t["rows"]) for name, t in data["tables"].items()})


def _prepare_empty_database(engine: Engine, head: str) -> None:
    """Bring a never-migrated database to the head; refuse anything that is not empty."""
    current = db.current_revision(engine)
    if current is None:
        ours = set(sa.inspect(engine).get_table_names()) & set(Base.metadata.tables)
        if ours:
            raise BackupError(
                "the database has cafebot's tables but no schema revision "
                f"({', '.join(sorted(ours))}): restore into a new, empty database"
            )
        db.ensure_schema(engine)
    elif current != head:
        raise BackupError(
            f"the database is at schema revision {current}, not at this cafebot's {head}: "
            "restore into a new, empty database (or run `cafebot db upgrade` on this one "
            "first, if it is empty)"
        )
    with engine.connect() as connection, connection.begin():
        filled = {
            table.name: count
            for table in Base.metadata.sorted_tables
            if (count := connection.scalar(select(sa.func.count()).select_from(table)))
        }
    if filled:
        listed = ", ".join(
            f"{name} ({count} row{'' if count == 1 else 's'})" for name, count in filled.items()
        )
        raise BackupError(
            f"the database is not empty: {listed}. A restore only goes into an empty "
            "database, so that nothing is mixed or lost: create a new one (e.g. "
            "`createdb cafebot_restored`, or a new SQLite file) and restore into it."
        )


def _insert_all(
    engine: Engine, tables: Iterable[sa.Table], backup: Mapping[str, Mapping[str, Any]]
) -> None:
    tables = list(tables)
    unknown = set(backup) - {t.name for t in tables}
    if unknown:
        raise BackupError(
            f"the backup has tables that this database's schema lacks: {', '.join(sorted(unknown))}"
        )
    with engine.connect() as connection, connection.begin():
        for table in tables:
            content = backup.get(table.name)
            if not content or not content["rows"]:
                continue
            columns = content["columns"]
            missing = [c for c in columns if c not in table.columns]
            if missing:
                raise BackupError(
                    f"the backup's table {table.name} has columns that this database's "
                    f"schema lacks: {', '.join(missing)}"
                )
            decoders = [
                _decoder(kind, table.columns[name].type)
                for name, kind in zip(columns, content["types"], strict=True)
            ]
            rows = []
            for number, row in enumerate(content["rows"], start=1):
                try:
                    rows.append(
                        {
                            name: None if value is None else decode(value)
                            for name, decode, value in zip(columns, decoders, row, strict=True)
                        }
                    )
                except (ValueError, TypeError, KeyError) as exc:
                    raise BackupError(
                        f"the backup's table {table.name}, row {number}, has a bad value: {exc}"
                    ) from None
            for start in range(0, len(rows), _INSERT_BATCH):
                connection.execute(table.insert(), rows[start : start + _INSERT_BATCH])
        if connection.dialect.name == "postgresql":
            _reset_sequences(connection, tables)


def _reset_sequences(connection: Connection, tables: Iterable[sa.Table]) -> None:
    """Move each serial/identity sequence past the ids that were inserted explicitly."""
    quote = connection.dialect.identifier_preparer
    for table in tables:
        for column in table.columns:
            if not isinstance(column.type, sa.Integer):
                continue
            sequence = connection.scalar(
                sa.text("SELECT pg_get_serial_sequence(:table, :column)"),
                {"table": quote.format_table(table), "column": column.name},
            )
            if sequence is None:
                continue
            name, col = quote.format_table(table), quote.quote(column.name)
            connection.execute(
                sa.text(
                    f"SELECT setval(CAST(:sequence AS regclass), "  # noqa: S608 - quoted names
                    f"COALESCE((SELECT MAX({col}) FROM {name}), 1), "
                    f"(SELECT MAX({col}) FROM {name}) IS NOT NULL)"
                ),
                {"sequence": sequence},
            )


# ------------------------------------------------------------------ helpers


def _connect(engine: Engine) -> Connection:
    """A connection whose transaction sees one snapshot of the whole database."""
    connection = engine.connect()
    if engine.dialect.name == "postgresql":
        return connection.execution_options(
            isolation_level="REPEATABLE READ", postgresql_readonly=True
        )
    return connection  # SQLite: cafebot.storage.db begins with BEGIN IMMEDIATE, a snapshot too


def _revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()
