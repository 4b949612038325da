"""Per-command latency on a small database and on one with years of history.

Side by side, on SQLite and on PostgreSQL: a series with 10 past meetings (100
entries) against one with 10,000 past meetings and 100,000 entries (check-ins,
introductions, shout-outs and agenda items, 40,000 notes under the items, 5,000
people, 100,000 handled messages), written with bulk inserts into a fresh
database at the latest revision. Then the same commands (bench/live.py's
workload: what 50 people do during a meeting) go through the real handler
(:class:`cafebot.edge.handler.CafeHandler`, one transaction each), in process: the
latency is the handler's alone, without the HTTP around it, which would only
dilute the difference.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.common import median, percentile
from bench.live import Workload
from cafebot.core.config import SeriesSettings
from cafebot.storage import db
from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    ItemState,
    Meeting,
    MeetingState,
    NoteKind,
    Person,
    ProcessedMessage,
    Series,
    ShoutOut,
)
from tests.harness import Harness, User

NOW = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)  # the next meeting: 17 June 2031
SERIES = SeriesSettings(
    key="cafe",
    name="Collaboration Cafe",
    stream="jupyterhub",
    organizers=("user0@example.org",),
    reminders=(dt.timedelta(0),),
)
USERS = [User(100 + n, f"User {n}", f"user{n}@example.org") for n in range(50)]
FIRST_MESSAGE_ID = 10**7  # the workload's messages come after the history's


@dataclass(frozen=True)
class Size:
    label: str
    meetings: int
    people: int

    @property
    def entries(self) -> int:
        return self.meetings * 10


SMALL = Size("10 meetings", 10, 100)
LARGE = Size("10,000 meetings", 10_000, 5_000)


class _Mentions:
    """What the workload needs of a site: how to mention a user."""

    def mention(self, user: int) -> str:
        return f"@**User {user}|{100 + user}**"


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def fill(engine: sa.Engine, size: Size, now: dt.datetime = NOW) -> None:
    """Write ``size``'s history with bulk inserts (explicit ids; sequences moved on): one
    published meeting a day, up to the day before ``now``."""
    created = now - dt.timedelta(days=size.meetings + 1)
    people = []
    for n in range(size.people):
        user = USERS[n] if n < len(USERS) else None
        people.append(
            {
                "id": n + 1,
                "zulip_user_id": user.id if user else None,
                "zulip_name": user.name if user else None,
                "name": user.name if user else f"Person {n}",
                "github": f"person-{n}",
                "affiliation": f"Lab {n % 17}",
                "default_series_id": None,
                "created_at": created,
            }
        )
    meetings, checkins, intros, shoutouts, items, notes, processed = [], [], [], [], [], [], []
    message = 0

    def message_id() -> int:
        nonlocal message
        message += 1
        processed.append({"message_id": message, "processed_at": created})
        return message

    for m in range(size.meetings):
        day = now.date() - dt.timedelta(days=m + 1)
        starts = dt.datetime.combine(day, dt.time(16), tzinfo=dt.UTC)
        meeting_id = m + 1
        meetings.append(
            {
                "id": meeting_id,
                "series_id": 1,
                "date": day,
                "starts_at": starts,
                "ends_at": starts + dt.timedelta(hours=1),
                "state": MeetingState.PUBLISHED,
                "added": False,
                "published_at": starts + dt.timedelta(hours=2),
                "next_agenda_ref": 5,
                "next_shoutout_ref": 3,
                "next_intro_ref": 2,
                "next_checkin_ref": 4,
            }
        )
        at = starts - dt.timedelta(days=1)
        who = [(m * 7 + k) % size.people + 1 for k in range(10)]
        base = {"meeting_id": meeting_id, "created_at": at}
        for ref in range(1, 4):
            pid = who[ref - 1]
            checkins.append(
                {
                    **base,
                    "id": len(checkins) + 1,
                    "ref": ref,
                    "message_id": message_id(),
                    "person_id": pid,
                    "name": people[pid - 1]["name"],
                    "github": people[pid - 1]["github"],
                    "affiliation": people[pid - 1]["affiliation"],
                }
            )
        intros.append(
            {
                **base,
                "id": len(intros) + 1,
                "ref": 1,
                "message_id": message_id(),
                "person_id": who[3],
                "text": f"I work on project {m % 97} and came to learn about releases.",
            }
        )
        for ref in range(1, 3):
            shoutouts.append(
                {
                    **base,
                    "id": len(shoutouts) + 1,
                    "ref": ref,
                    "message_id": message_id(),
                    "author_id": who[3 + ref],
                    "project": f"Project {m % 13}",
                    "text": f"Thanks for the review of pull request {m * 3 + ref}!",
                }
            )
        for ref in range(1, 5):
            item_id = len(items) + 1
            items.append(
                {
                    **base,
                    "id": item_id,
                    "ref": ref,
                    "message_id": message_id(),
                    "proposer_id": who[5 + ref],
                    "topic": f"Topic {ref} of meeting {m}: release plans and docs",
                    "estimate_min": 10,
                    "estimate_max": None,
                    "position": ref,
                    "state": ItemState.DONE,
                    "carried_from": None,
                    "moved_to": None,
                    "reached": True,
                }
            )
            notes.append(
                {
                    "id": len(notes) + 1,
                    "item_id": item_id,
                    "kind": NoteKind.NOTE,
                    "text": f"We agreed to look at it again in meeting {m + 1}.",
                    "position": 1,
                    "author_id": who[5 + ref],
                    "owner_id": None,
                    "message_id": None,
                    "created_at": at,
                }
            )
    tables = [
        (Series, [{"id": 1, "key": SERIES.key, "name": SERIES.name}]),
        (Person, people),
        (Meeting, meetings),
        (CheckIn, checkins),
        (Introduction, intros),
        (ShoutOut, shoutouts),
        (AgendaItem, items),
        (ItemNote, notes),
        (ProcessedMessage, processed),
    ]
    with engine.begin() as connection:
        for model, rows in tables:
            table = model.__table__
            for chunk in _chunks(rows):
                connection.execute(sa.insert(table), chunk)
        if engine.dialect.name == "postgresql":
            for model, _ in tables:
                if model is ProcessedMessage:
                    continue
                name = model.__tablename__
                connection.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), "  # noqa: S608
                    f"(SELECT max(id) FROM {name}))"
                )
    if engine.dialect.name == "postgresql":
        # What autovacuum does soon after a bulk load (nobody runs ANALYZE on SQLite).
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql("ANALYZE")


@contextlib.contextmanager
def database(postgres: str | None, workdir: Path, name: str) -> Iterator[str]:
    """The URL of an empty database (a SQLite file, or a fresh PostgreSQL database)."""
    if postgres is None:
        yield f"sqlite:///{workdir / f'scale-{name}-{uuid.uuid4().hex[:8]}.db'}"
        return
    admin = db.make_engine(postgres).execution_options(isolation_level="AUTOCOMMIT")
    database_name = f"cafebot_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{database_name}"')
    try:
        yield admin.url.set(database=database_name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{database_name}" WITH (FORCE)')
        admin.dispose()


class Bench:
    """One database of a size, with the handler on it and the workload's state."""

    def __init__(self, url: str, size: Size) -> None:
        engine = db.make_engine(url)
        try:
            db.upgrade_database(engine)
            started = time.perf_counter()
            fill(engine, size)
            self.fill_seconds = time.perf_counter() - started
        finally:
            engine.dispose()
        self.harness = Harness(url, series=(SERIES,), now=NOW)
        self.harness.next_id = FIRST_MESSAGE_ID
        self.work = Workload(_Mentions(), len(USERS))
        for command in self.work.warm_up():
            self.harness.send(command.text, USERS[command.user])

    def measure(self, count: int) -> list[float]:
        times = []
        for command in self.work.take(count):
            started = time.perf_counter()
            answer = self.harness.send(command.text, USERS[command.user])
            times.append(time.perf_counter() - started)
            if not (answer.reactions or answer.replies):
                raise RuntimeError(f"no answer to {command.text!r}")
        return times

    def close(self) -> None:
        self.harness.close()


def scale(workdir: Path, postgres: str | None, runs: int, count: int) -> dict[str, float]:
    """Median over ``runs`` of the median per-command latency on each size, side by side."""
    with (
        database(postgres, workdir, "small") as small_url,
        database(postgres, workdir, "large") as large_url,
    ):
        small = Bench(small_url, SMALL)
        large = Bench(large_url, LARGE)
        try:
            p50s: dict[str, list[float]] = {"small": [], "large": []}
            p99s: dict[str, list[float]] = {"small": [], "large": []}
            for _ in range(runs):
                for label, bench in (("small", small), ("large", large)):
                    times = bench.measure(count)
                    p50s[label].append(percentile(times, 0.5))
                    p99s[label].append(percentile(times, 0.99))
        finally:
            small.close()
            large.close()
    result = {
        "small_p50": median(p50s["small"]),
        "large_p50": median(p50s["large"]),
        "small_p99": median(p99s["small"]),
        "large_p99": median(p99s["large"]),
        "fill_seconds": large.fill_seconds,
    }
    result["ratio"] = result["large_p50"] / result["small_p50"]
    result["ratio_p99"] = result["large_p99"] / result["small_p99"]
    return result
