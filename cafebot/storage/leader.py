"""Leadership: which of the bot processes on one database runs the scheduler.

During a rolling restart two ``cafebot run`` processes may share one database.
Both may handle commands (each command takes effect once: ``ProcessedMessage``
is recorded in the command's transaction), but only one of them, the *leader*,
may run the scheduler and publish.

- **PostgreSQL**: the leader holds a session-level advisory lock
  (``pg_try_advisory_lock``) on a connection of its own, kept out of any
  transaction.  The lock lives exactly as long as that database session: when
  the leader's process exits or is killed, the kernel closes its socket, the
  server ends the session and the lock is free; a non-leader that retries
  (:class:`LeaderWatch`) takes it over.  Server-side TCP keepalives are set on
  that session, so a leader whose whole host vanishes loses the lock within
  about a minute too.  Schema migrations at start-up run under the same lock
  (:func:`cafebot.storage.db.run_migrations_locked`), so a new version never migrates while
  another process migrates.
- **SQLite** has no advisory locks and allows only one bot on a database file:
  the leader holds an exclusive ``flock`` on ``<database>.lock`` beside the
  file, and a second instance must refuse to start (:func:`claim_instance`).

Typical use by the long-running bot::

    leadership = claim_instance(engine)          # SQLite: raises AnotherInstanceRunning
    watch = LeaderWatch(leadership, on_elected=start_scheduler, on_deposed=stop_scheduler)
    watch.start()
    ...
    watch.stop()                                 # also releases the lock
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TypeVar

from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import DBAPIError, OperationalError

from cafebot.core.clock import Clock, SystemClock

log = logging.getLogger("cafebot.leader")

T = TypeVar("T")

#: The name of the lock every cafebot process on one database competes for.
LEADER_LOCK_NAME = "cafebot.leader"

#: How often a :class:`LeaderWatch` checks (or retries) the lock, in seconds.
DEFAULT_INTERVAL = 5.0

#: Server-side TCP keepalives on the leader's session: a vanished host frees the lock
#: after about idle + interval * count seconds.
_KEEPALIVES = {"tcp_keepalives_idle": 30, "tcp_keepalives_interval": 10, "tcp_keepalives_count": 3}


def lock_key(name: str = LEADER_LOCK_NAME) -> int:
    """The advisory-lock key for ``name``: a stable, non-negative 63-bit integer."""
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") & 0x7FFF_FFFF_FFFF_FFFF


class AnotherInstanceRunning(RuntimeError):
    """A second bot on a SQLite database: the message says what to do."""


def sqlite_lock_path(engine: Engine) -> Path | None:
    """``<database>.lock`` beside a SQLite database file; None for an in-memory database."""
    url = engine.url
    database = url.database or ""
    if database in ("", ":memory:") or url.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    # Resolved: two paths to one database file (a symlink) must meet at one lock.
    return Path(str(Path(database).expanduser().resolve()) + ".lock")


def _describe_self() -> str:
    return f"cafebot pid {os.getpid()} on {socket.gethostname()}"[:63]


class Leadership:
    """The leader lock of one database, for one process.

    ``try_acquire()`` makes one attempt and never blocks; ``is_leader`` says whether
    this process holds the lock (as last checked); ``verify()`` checks again that
    the lock is still held (on PostgreSQL the session could have been lost);
    ``release()`` gives it up.  Not thread-safe: use it from one thread, as
    :class:`LeaderWatch` does.
    """

    def __init__(
        self, engine: Engine, clock: Clock | None = None, *, name: str = LEADER_LOCK_NAME
    ) -> None:
        self.engine = engine
        self.clock: Clock = clock or SystemClock()
        self.name = name
        self.key = lock_key(name)
        self.backend = engine.dialect.name
        #: When this process last became the leader (None while it is not).
        self.acquired_at: dt.datetime | None = None
        self._connection: Connection | None = None  # PostgreSQL: the session holding the lock
        self._lock_file: IO[bytes] | None = None  # SQLite: the flock-ed file
        if self.backend not in ("postgresql", "sqlite"):
            raise ValueError(f"no leader lock for the {self.backend} backend")

    @property
    def is_leader(self) -> bool:
        return self.acquired_at is not None

    # ------------------------------------------------------------ the public steps

    def try_acquire(self) -> bool:
        """Take the lock if it is free; True if this process holds it afterwards."""
        if self.is_leader:
            return self.verify()
        try:
            won = self._acquire_postgres() if self.backend == "postgresql" else self._acquire_file()
        except (DBAPIError, OSError) as exc:
            log.warning("could not try the leader lock: %s", _brief(exc))
            self._drop()
            return False
        if won:
            self.acquired_at = self.clock.now()
            log.info("this process is now the leader (%s)", self.name)
        return won

    def verify(self) -> bool:
        """Whether the lock is still held; if it was lost, this process is no longer leader."""
        if not self.is_leader:
            return False
        if self.backend == "sqlite":
            return True  # an flock lasts as long as the open file
        held = False
        try:
            held = self._connection is not None and bool(
                self._connection.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
                        " AND pid = pg_backend_pid() AND database = ("
                        "  SELECT oid FROM pg_database WHERE datname = current_database())"
                        " AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
                    ),
                    {"hi": self.key >> 32, "lo": self.key & 0xFFFF_FFFF},
                ).scalar_one()
            )
        except DBAPIError as exc:
            log.warning("lost the leader's database session: %s", _brief(exc))
        if not held:
            log.warning("this process is no longer the leader (%s)", self.name)
            self._drop()
        return held

    def release(self) -> None:
        """Give up the lock (nothing happens when this process does not hold it)."""
        if not self.is_leader:
            self._drop()
            return
        if self._connection is not None:
            with contextlib.suppress(DBAPIError):
                self._connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": self.key})
        log.info("gave up the leadership (%s)", self.name)
        self._drop()

    def holder(self) -> str | None:
        """Who holds the lock now, as far as can be told (for messages); None if nobody."""
        if self.backend == "sqlite":
            path = sqlite_lock_path(self.engine)
            if path is None or not path.exists():
                return None
            with contextlib.suppress(OSError):
                return path.read_text(encoding="utf-8").strip() or "another process"
            return "another process"
        try:
            with self.engine.connect() as connection:
                row = connection.execute(
                    text(
                        "SELECT l.pid, a.application_name, a.client_addr FROM pg_locks l"
                        " LEFT JOIN pg_stat_activity a ON a.pid = l.pid"
                        " WHERE l.locktype = 'advisory' AND l.granted"
                        " AND l.database = ("
                        "  SELECT oid FROM pg_database WHERE datname = current_database())"
                        " AND l.classid::bigint = :hi AND l.objid::bigint = :lo"
                        " AND l.objsubid = 1"
                    ),
                    {"hi": self.key >> 32, "lo": self.key & 0xFFFF_FFFF},
                ).first()
        except DBAPIError:
            return None
        if row is None:
            return None
        pid, application, address = row
        where = f" from {address}" if address else ""
        return f"{application or 'a client'} (server process {pid}{where})"

    def __enter__(self) -> Leadership:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    # ------------------------------------------------------------ the backends

    def _acquire_postgres(self) -> bool:
        if self._connection is None:
            self._connection = _session_connection(self.engine)
        # A failed try keeps the session for the next one.
        return bool(
            self._connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": self.key}
            ).scalar_one()
        )

    def _acquire_file(self) -> bool:
        import fcntl  # POSIX only, like the rest of `cafebot run`

        path = sqlite_lock_path(self.engine)
        if path is None:
            return True  # an in-memory database: no other process can see it
        path.parent.mkdir(parents=True, exist_ok=True)
        # Opened without truncating: the holder's description must survive a failed try.
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        handle = os.fdopen(fd, "r+b")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        except BaseException:
            handle.close()
            raise
        handle.seek(0)
        handle.truncate()
        handle.write(_describe_self().encode("utf-8") + b"\n")
        handle.flush()
        self._lock_file = handle
        return True

    def _drop(self) -> None:
        """Forget the lock: close its session (which frees it on the server) or its file."""
        self.acquired_at = None
        if self._connection is not None:
            connection, self._connection = self._connection, None
            with contextlib.suppress(Exception):
                # Never back into the pool: a pooled session would keep the lock.
                connection.invalidate()
            with contextlib.suppress(Exception):
                connection.close()
        if self._lock_file is not None:
            handle, self._lock_file = self._lock_file, None
            with contextlib.suppress(OSError):
                handle.seek(0)
                handle.truncate()
            handle.close()  # closing the file releases the flock


def claim_instance(engine: Engine, clock: Clock | None = None) -> Leadership:
    """The :class:`Leadership` of a bot process that is starting.

    On SQLite, takes the instance lock or raises :class:`AnotherInstanceRunning`
    with a message for the operator.  On PostgreSQL, makes a first attempt at the
    leader lock; a process that is not the leader may still run (and a
    :class:`LeaderWatch` keeps retrying).
    """
    leadership = Leadership(engine, clock)
    if leadership.try_acquire() or leadership.backend != "sqlite":
        return leadership
    path = sqlite_lock_path(engine)
    holder = leadership.holder() or "another process"
    raise AnotherInstanceRunning(
        f"another cafebot is already running on this SQLite database ({holder} holds "
        f"{path}). SQLite allows one bot per database: stop the other one first "
        "(e.g. `systemctl stop cafebot`), or move to PostgreSQL to run two during a "
        "rolling restart."
    )


class LeaderWatch:
    """A background thread that keeps trying to be the leader, and notices losing it.

    Every ``interval`` seconds a non-leader retries the lock and the leader checks
    that it still holds it; ``on_elected`` and ``on_deposed`` are called (in the
    watch thread) when that changes.  An exception in a callback or a database
    error is logged and the loop goes on; if ``on_elected`` fails, the lock is
    given up (after ``on_deposed``) and tried again at the next step.
    ``stop()`` ends the thread, calls ``on_deposed`` if this process was leading,
    and releases the lock.
    """

    def __init__(
        self,
        leadership: Leadership,
        *,
        on_elected: Callable[[], object] = lambda: None,
        on_deposed: Callable[[], object] = lambda: None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        self.leadership = leadership
        self.on_elected = on_elected
        self.on_deposed = on_deposed
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cafebot-leader", daemon=True)
        self._leading = False

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def is_leader(self) -> bool:
        return self._leading

    def _run(self) -> None:
        while True:
            try:
                self._step()
            except Exception:
                log.exception("the leader watch failed; trying again in %.0f s", self.interval)
            if self._stop.wait(self.interval):
                break
        try:
            if self._leading:
                self._leading = False
                self.on_deposed()
        except Exception:
            log.exception("stopping the leader's work failed")
        finally:
            self.leadership.release()

    def _step(self) -> None:
        leading = self.leadership.try_acquire()  # a leader's try_acquire is verify()
        if leading and not self._leading:
            try:
                self.on_elected()
            except Exception:
                # Half-started leader work: undo it and let another process (or a retry) lead.
                log.exception("starting the leader's work failed; giving up the leadership")
                with contextlib.suppress(Exception):
                    self.on_deposed()
                self.leadership.release()
                return
            self._leading = True
        elif not leading and self._leading:
            self._leading = False
            self.on_deposed()


# ------------------------------------------------------------------ migrations


def run_locked(
    engine: Engine,
    func: Callable[[], T],
    *,
    name: str = LEADER_LOCK_NAME,
    report_every: float = 30.0,
) -> T:
    """Run ``func`` while holding the leader lock, waiting for it as long as it takes.

    On PostgreSQL the lock is taken on a session of its own and given up when
    ``func`` returns; while another process holds it, a line saying who is logged
    every ``report_every`` seconds.  Must not be called by a process that already
    holds the lock through a :class:`Leadership` (it would wait for itself).  On
    SQLite, ``func`` just runs: there, migrations already run in one
    ``BEGIN IMMEDIATE`` transaction, which excludes every other writer.
    """
    if engine.dialect.name != "postgresql":
        return func()
    key = lock_key(name)
    connection = _session_connection(engine)
    try:
        connection.execute(text("SELECT set_config('lock_timeout', :t, false)"), {"t": "1s"})
        waited_since: float | None = None
        last_report = 0.0
        while True:
            try:
                connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
                break
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != "55P03":  # lock_not_available
                    raise
            now = time.monotonic()
            if waited_since is None:
                waited_since = now
            if now - last_report >= report_every:
                last_report = now
                holder = Leadership(engine, name=name).holder() or "another process"
                log.warning(
                    "waiting for the leader lock to migrate the database: %s holds it "
                    "(waiting %.0f s); it is freed when that cafebot stops",
                    holder,
                    now - waited_since,
                )
        try:
            return func()
        finally:
            with contextlib.suppress(DBAPIError):
                connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        with contextlib.suppress(Exception):
            connection.invalidate()
        connection.close()


# ------------------------------------------------------------------ helpers


def _session_connection(engine: Engine) -> Connection:
    """A PostgreSQL connection for a session-level lock: autocommit, named, kept alive."""
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        settings = {"application_name": _describe_self(), **_KEEPALIVES}
        # A global idle_session_timeout would end the leader's idle session (PostgreSQL 14+).
        if (connection.dialect.server_version_info or (0,)) >= (14,):
            settings["idle_session_timeout"] = 0
        for setting, value in settings.items():
            connection.execute(
                text("SELECT set_config(:name, :value, false)"),
                {"name": setting, "value": str(value)},
            )
    except BaseException:
        connection.invalidate()
        connection.close()
        raise
    return connection


def _brief(exc: BaseException) -> str:
    """The first line of a database error, without SQLAlchemy's long tail."""
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
