"""The database: engines, sessions, and the schema's Alembic revisions.

There is no module-level engine: the app (or a test) makes one with
:func:`make_engine`, brings the schema to the latest revision with
:func:`upgrade_database` or :func:`ensure_schema`, and runs every command or
job in one :func:`unit_of_work`.  The schema changes only through the revisions
in ``migrations/``; nothing here calls ``create_all()``.

SQLite is set up for a bot with a few threads: write-ahead logging, a busy
timeout, foreign keys enforced, and real transactions.  Python's ``sqlite3``
(before 3.16) only begins a transaction at the first INSERT/UPDATE/DELETE, so
the SELECTs of a read-modify-write unit of work would see no snapshot and DDL
would commit statement by statement; we let SQLAlchemy emit ``BEGIN
IMMEDIATE`` instead, which takes the write lock up front (waiting up to the
busy timeout) so that two units of work never interleave.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

import cafebot

if TYPE_CHECKING:
    from alembic.config import Config
    from alembic.script import ScriptDirectory
    from sqlalchemy.pool import ConnectionPoolEntry

SQLITE_BUSY_TIMEOUT_MS = 5000
READER = "cafebot_reader"  # the execution option of session_factory(reader=True)

#: PostgreSQL URLs without a driver (and Heroku-style ``postgres://``) get psycopg 3.
_POSTGRES_DRIVERS = {"postgresql": "postgresql+psycopg", "postgres": "postgresql+psycopg"}


# ------------------------------------------------------------------- engines


def make_engine(url: str) -> Engine:
    """An engine for ``url``, set up for the backend (see the module docstring)."""
    parsed = make_url(url)
    if parsed.drivername in _POSTGRES_DRIVERS:
        parsed = parsed.set(drivername=_POSTGRES_DRIVERS[parsed.drivername])
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)

    if _is_sqlite_memory(parsed):
        # One connection shared by every thread, or each would see its own empty database.
        engine = create_engine(
            parsed, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
    else:
        database = parsed.database or ""
        if not _is_sqlite_uri(parsed):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
    _setup_sqlite(engine, wal=not _is_sqlite_memory(parsed))
    return engine


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite database URL; None for another backend, memory or a ``file:`` URI."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or _is_sqlite_memory(parsed) or _is_sqlite_uri(parsed):
        return None
    return Path(parsed.database or "").expanduser()


def _is_sqlite_uri(url: URL) -> bool:
    return (url.database or "").startswith("file:") and url.query.get("uri") == "true"


def _is_sqlite_memory(url: URL) -> bool:
    database = url.database or ""
    if database in ("", ":memory:"):
        return True
    return _is_sqlite_uri(url) and url.query.get("mode") == "memory"


def _setup_sqlite(engine: Engine, *, wal: bool) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(
        dbapi_connection: sqlite3.Connection, connection_record: ConnectionPoolEntry
    ) -> None:
        # Keep sqlite3 from issuing BEGIN (and COMMIT before DDL) by itself: see on_begin.
        dbapi_connection.isolation_level = None
        if wal:
            dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        dbapi_connection.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(READER):
            # A reader (the site) takes no lock up front: in WAL mode it never blocks the bot.
            connection.exec_driver_sql("BEGIN")
            return
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    # Threads of this process take turns with the database: one waiting for another's
    # transaction wakes as soon as it ends. (SQLite's own busy handler sleeps 1, 2, 5,
    # 10 ms ... between tries, which made a command wait for the sender's bookkeeping.)
    turns = _Turns(SQLITE_BUSY_TIMEOUT_MS / 1000)

    @event.listens_for(engine, "checkout")
    def on_checkout(
        dbapi_connection: sqlite3.Connection, record: ConnectionPoolEntry, proxy: object
    ) -> None:
        record.info["cafebot_turn"] = turns.acquire()

    @event.listens_for(engine, "checkin")
    def on_checkin(
        dbapi_connection: sqlite3.Connection | None, record: ConnectionPoolEntry
    ) -> None:
        if record.info.pop("cafebot_turn", False):
            turns.release()


class _Turns:
    """A lock that one thread may take again while it holds it, that any thread may give
    back, and that gives up waiting after ``timeout`` seconds (SQLite then decides)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._cond = threading.Condition()
        self._owner: int | None = None
        self._depth = 0

    def acquire(self) -> bool:
        me = threading.get_ident()
        with self._cond:
            if self._owner == me:
                self._depth += 1
                return True
            if not self._cond.wait_for(lambda: self._owner is None, self.timeout):
                return False
            self._owner, self._depth = me, 1
            return True

    def release(self) -> None:
        with self._cond:
            self._depth -= 1
            if self._depth <= 0:
                self._owner, self._depth = None, 0
                self._cond.notify()


# ------------------------------------------------------------------- sessions


def session_factory(engine: Engine, *, reader: bool = False) -> sessionmaker[Session]:
    """Sessions bound to ``engine``; objects stay readable after their unit of work commits.

    ``reader``: for transactions that (almost) only read, like the site's pages: on
    SQLite they begin without taking the write lock (a write in them still may).
    """
    bind = engine.execution_options(**{READER: True}) if reader else engine
    return sessionmaker(bind=bind, expire_on_commit=False)


@contextlib.contextmanager
def unit_of_work(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with factory() as session, session.begin():
        yield session


# ------------------------------------------------------------------- migrations


def migrations_path() -> Path:
    """The Alembic script directory: inside the installed package, else in the checkout."""
    package_dir = Path(cafebot.__file__).resolve().parent
    for candidate in (package_dir / "migrations", package_dir.parent / "migrations"):
        if (candidate / "env.py").is_file():
            return candidate
    raise FileNotFoundError(
        f"cafebot's migrations are missing: neither {package_dir / 'migrations'} "
        f"nor {package_dir.parent / 'migrations'} has an env.py"
    )


def alembic_config(bind: Engine | Connection) -> Config:
    """An Alembic config for ``bind``, without any alembic.ini.

    ``migrations/env.py`` runs the migrations on ``config.attributes["connection"]``.
    """
    from alembic.config import Config

    config = Config()
    # The value goes through ConfigParser interpolation: a literal % must be doubled.
    config.set_main_option("script_location", str(migrations_path()).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = bind
    return config


def head_revision() -> str:
    """The latest revision that this version of cafebot knows."""
    head = _script_directory().get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions in {migrations_path()}")
    return head


def current_revision(engine: Engine) -> str | None:
    """The database's revision, or None for a database that was never migrated."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade_database(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``."""
    from alembic import command

    # env.py begins and commits the transaction itself (SQLite needs a moment outside one).
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), revision)


def downgrade_database(engine: Engine, revision: str) -> None:
    """Revert the migrations down to ``revision`` (``"base"`` for an empty database)."""
    from alembic import command

    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), revision)


def ensure_schema(engine: Engine) -> None:
    """Upgrade the database to the latest revision, unless it is there already (cheap then).

    On PostgreSQL the upgrade runs under the leader lock, so that two processes
    never migrate at once (:func:`run_migrations_locked`).
    """
    if engine.dialect.name == "postgresql":
        run_migrations_locked(engine)
    else:
        upgrade_if_behind(engine)


def run_migrations_locked(engine: Engine) -> None:
    """Bring the schema to the latest revision, under the leader lock on PostgreSQL.

    Cheap when the database is at the latest revision already (no lock is taken,
    so a new process starts while the old leader still runs).  Otherwise it waits
    for the lock, then checks again: another process may have migrated meanwhile.
    """
    from alembic.script import ScriptDirectory

    from cafebot.storage.leader import run_locked

    current = current_revision(engine)
    if current == head_revision():
        return
    known = {rev.revision for rev in ScriptDirectory(str(migrations_path())).walk_revisions()}
    if current is not None and current not in known:
        upgrade_if_behind(engine)  # refuses a newer schema at once, without waiting
        return
    run_locked(engine, lambda: upgrade_if_behind(engine))


def upgrade_if_behind(engine: Engine) -> None:
    """Upgrade to the latest revision unless the database is there; refuse unknown revisions."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        current = set(MigrationContext.configure(connection).get_current_heads())
    script = _script_directory()
    heads = set(script.get_heads())
    if current == heads:
        return
    known = {rev.revision for rev in script.walk_revisions()}
    if unknown := current - known:
        raise RuntimeError(
            f"the database is at revision {', '.join(sorted(unknown))}, which this version "
            "of cafebot does not know: was it migrated by a newer version?"
        )
    upgrade_database(engine)


def _script_directory() -> ScriptDirectory:
    from alembic.script import ScriptDirectory

    return ScriptDirectory(str(migrations_path()))
