"""Leadership: one leader per database, taken over when it dies; SQLite allows one instance.

The PostgreSQL tests use real processes and real connections: the holder is a
child process, killed with SIGKILL as a crash would kill it.
"""

from __future__ import annotations

import logging
import os
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from cafebot.storage import db
from cafebot.storage.leader import (
    AnotherInstanceRunning,
    Leadership,
    LeaderWatch,
    claim_instance,
    lock_key,
    run_locked,
    sqlite_lock_path,
)

ROOT = Path(__file__).resolve().parent.parent

ON_POSTGRES = pytest.mark.parametrize(
    "db_url", [pytest.param("postgresql", marks=pytest.mark.postgres)], indirect=True
)
ON_SQLITE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)

# Bounded waits for the real processes (they are not asserted timings).
TAKEOVER_LIMIT = 15.0

CHILD = """
import sys
from cafebot.storage import db
from cafebot.storage.leader import Leadership, LeaderWatch, claim_instance, AnotherInstanceRunning

engine = db.make_engine(sys.argv[1])
if sys.argv[2] == "hold":
    try:
        leadership = claim_instance(engine)
    except AnotherInstanceRunning as exc:
        print(f"refused: {exc}", flush=True)
        sys.exit(3)
    print("leader" if leadership.is_leader else "follower", flush=True)
else:
    watch = LeaderWatch(
        Leadership(engine),
        on_elected=lambda: print("elected", flush=True),
        on_deposed=lambda: print("deposed", flush=True),
        interval=0.2,
    )
    watch.start()
    print("watching", flush=True)
sys.stdin.read()  # until the test closes stdin (or kills us)
"""


class Child:
    """A real process holding or watching the lock; its stdout read line by line."""

    def __init__(self, url: str, mode: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, url, mode],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        self.selector = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)

    def line(self, timeout: float = TAKEOVER_LIMIT) -> str:
        assert self.proc.stdout is not None
        if not self.selector.select(timeout):
            raise AssertionError(f"no output from the child in {timeout} s")
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError(f"the child ended: {self.proc.wait()} {self.stderr()}")
        return line.strip()

    def stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read() if self.proc.poll() is not None else ""

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                stream.close()
        self.selector.close()


@pytest.fixture
def children() -> Iterator[list[Child]]:
    started: list[Child] = []
    yield started
    for child in started:
        child.close()


@pytest.fixture
def plain_engine(db_url: str) -> Iterator[Engine]:
    """An engine on an empty database (the lock needs no schema)."""
    engine = db.make_engine(db_url)
    yield engine
    engine.dispose()


def test_lock_key_is_stable_and_fits_a_signed_bigint() -> None:
    assert lock_key("cafebot.leader") == lock_key("cafebot.leader")
    assert lock_key("cafebot.leader") != lock_key("cafebot.other")
    assert 0 <= lock_key("cafebot.leader") < 2**63


# ------------------------------------------------------------------ PostgreSQL


@ON_POSTGRES
def test_one_holds_the_other_is_refused_until_released(plain_engine: Engine) -> None:
    first, second = Leadership(plain_engine), Leadership(plain_engine)
    try:
        assert first.try_acquire() and first.is_leader
        assert first.acquired_at is not None
        assert not second.try_acquire() and not second.is_leader
        holder = second.holder()
        assert holder is not None and f"cafebot pid {os.getpid()}" in holder
        assert first.try_acquire()  # asking again keeps it (and does not stack the lock)
        first.release()
        assert not first.is_leader
        assert second.try_acquire()
        assert not first.try_acquire()
    finally:
        first.release()
        second.release()
    assert Leadership(plain_engine).holder() is None


@ON_POSTGRES
def test_killed_holder_process_is_replaced_in_bounded_time(
    db_url: str, plain_engine: Engine, children: list[Child]
) -> None:
    holder = Child(db_url, "hold")
    children.append(holder)
    assert holder.line() == "leader"
    mine = Leadership(plain_engine)
    try:
        assert not mine.try_acquire()
        assert f"cafebot pid {holder.proc.pid}" in (mine.holder() or "")
        holder.kill()
        killed = time.monotonic()
        while not mine.try_acquire():
            assert time.monotonic() - killed < TAKEOVER_LIMIT, "the lock was never freed"
            time.sleep(0.05)
        assert mine.is_leader
    finally:
        mine.release()


@ON_POSTGRES
def test_leader_watch_takes_over_when_the_leader_is_killed(
    db_url: str, children: list[Child]
) -> None:
    first = Child(db_url, "watch")
    children.append(first)
    assert first.line() == "watching"
    assert first.line() == "elected"
    second = Child(db_url, "watch")
    children.append(second)
    assert second.line() == "watching"
    engine = db.make_engine(db_url)
    try:
        # The second keeps retrying but the first still leads.
        for _ in range(3):
            assert f"cafebot pid {first.proc.pid}" in (Leadership(engine).holder() or "")
            time.sleep(0.2)
        first.kill()
        assert second.line() == "elected"
        assert f"cafebot pid {second.proc.pid}" in (Leadership(engine).holder() or "")
    finally:
        engine.dispose()


@ON_POSTGRES
def test_a_lost_session_is_noticed_and_the_lock_taken_again(plain_engine: Engine) -> None:
    leadership = Leadership(plain_engine)
    try:
        assert leadership.try_acquire()
        with plain_engine.connect() as admin:
            admin.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
                    " AND database = (SELECT oid FROM pg_database"
                    "                 WHERE datname = current_database())"
                )
            )
            admin.commit()
        assert not leadership.verify()
        assert not leadership.is_leader
        assert leadership.try_acquire()  # a new session
    finally:
        leadership.release()


@ON_POSTGRES
def test_run_locked_waits_for_the_holder(
    plain_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    holder = Leadership(plain_engine)
    assert holder.try_acquire()
    ran = threading.Event()
    errors: list[BaseException] = []

    def migrate() -> None:
        try:
            run_locked(plain_engine, ran.set, report_every=0)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=migrate)
    with caplog.at_level(logging.WARNING, logger="cafebot.leader"):
        thread.start()
        deadline = time.monotonic() + TAKEOVER_LIMIT
        while not any("waiting for the leader lock" in r.getMessage() for r in caplog.records):
            assert time.monotonic() < deadline, "run_locked never said it was waiting"
            time.sleep(0.05)
        assert not ran.is_set()
        waiting = next(r for r in caplog.records if "waiting for the leader" in r.getMessage())
        assert f"cafebot pid {os.getpid()}" in waiting.getMessage()
        holder.release()
        thread.join(TAKEOVER_LIMIT)
    assert ran.is_set() and not errors
    assert Leadership(plain_engine).holder() is None  # run_locked let go


@ON_POSTGRES
def test_schema_at_head_starts_without_waiting_for_the_leader(plain_engine: Engine) -> None:
    db.upgrade_database(plain_engine)
    leader = Leadership(plain_engine)
    assert leader.try_acquire()
    try:
        thread = threading.Thread(target=db.ensure_schema, args=(plain_engine,))
        thread.start()
        thread.join(TAKEOVER_LIMIT)
        assert not thread.is_alive(), "ensure_schema waited for the lock with nothing to do"
    finally:
        leader.release()


@ON_POSTGRES
def test_a_newer_schema_is_refused_at_once_even_while_the_lock_is_held(
    plain_engine: Engine,
) -> None:
    db.upgrade_database(plain_engine)
    with plain_engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999'"))
    leader = Leadership(plain_engine)
    assert leader.try_acquire()
    errors: list[BaseException] = []

    def start() -> None:
        try:
            db.ensure_schema(plain_engine)
        except RuntimeError as exc:
            errors.append(exc)

    try:
        thread = threading.Thread(target=start)
        thread.start()
        thread.join(TAKEOVER_LIMIT)
        assert not thread.is_alive(), "waited for the lock before refusing"
    finally:
        leader.release()
    assert len(errors) == 1 and "migrated by a newer version" in str(errors[0])


@ON_POSTGRES
def test_two_processes_migrating_at_once_both_succeed(db_url: str, plain_engine: Engine) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "cafebot", "db", "upgrade", "--db", db_url]
    procs = [
        subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True
        )
        for _ in range(3)
    ]
    results = [(p.wait(120), *p.communicate()) for p in procs]
    for code, _, err in results:
        assert code == 0, err
    assert db.current_revision(plain_engine) == db.head_revision()


# ------------------------------------------------------------------ SQLite


@ON_SQLITE
def test_sqlite_second_instance_refuses_to_start(
    db_url: str, plain_engine: Engine, children: list[Child]
) -> None:
    first = Child(db_url, "hold")
    children.append(first)
    assert first.line() == "leader"
    lock = sqlite_lock_path(plain_engine)
    assert lock is not None and lock.name == "cafebot.db.lock" and lock.exists()

    second = Child(db_url, "hold")
    children.append(second)
    refusal = second.line()
    assert second.proc.wait(30) == 3
    assert refusal.startswith("refused: another cafebot is already running on this SQLite")
    assert f"cafebot pid {first.proc.pid}" in refusal and str(lock) in refusal
    assert "stop the other one first" in refusal and "PostgreSQL" in refusal

    with pytest.raises(AnotherInstanceRunning):  # this process is refused too
        claim_instance(plain_engine)
    first.kill()  # a crash: the kernel releases the lock with the process
    leadership = claim_instance(plain_engine)
    try:
        assert leadership.is_leader
        assert f"cafebot pid {os.getpid()}" in lock.read_text()
    finally:
        leadership.release()
    assert lock.read_text() == ""  # released: no holder named any more


@ON_SQLITE
def test_sqlite_release_lets_the_next_instance_start(plain_engine: Engine) -> None:
    with claim_instance(plain_engine) as first:
        assert first.is_leader
        with pytest.raises(AnotherInstanceRunning):
            claim_instance(plain_engine)
    second = claim_instance(plain_engine)
    assert second.is_leader
    second.release()


@ON_SQLITE
def test_leader_watch_retries_when_starting_the_work_fails(
    plain_engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[str] = []
    elected = threading.Event()

    def on_elected() -> None:
        events.append("elected")
        if events.count("elected") == 1:
            raise RuntimeError("the scheduler could not start")
        elected.set()

    leadership = Leadership(plain_engine)
    watch = LeaderWatch(
        leadership,
        on_elected=on_elected,
        on_deposed=lambda: events.append("deposed"),
        interval=0.05,
    )
    with caplog.at_level(logging.ERROR, logger="cafebot.leader"):
        watch.start()
        assert elected.wait(TAKEOVER_LIMIT)
    # The failed start was undone and the lock given up, then taken again.
    assert events[:3] == ["elected", "deposed", "elected"]
    assert any("giving up the leadership" in r.getMessage() for r in caplog.records)
    assert watch.is_leader and leadership.is_leader
    watch.stop()
    assert events[-1] == "deposed" and not leadership.is_leader
    with claim_instance(plain_engine) as again:  # the lock is free again
        assert again.is_leader


def test_in_memory_sqlite_needs_no_lock_file(tmp_path: Path) -> None:
    engine = db.make_engine("sqlite://")
    try:
        assert sqlite_lock_path(engine) is None
        leadership = claim_instance(engine)
        assert leadership.is_leader
        leadership.release()
    finally:
        engine.dispose()
