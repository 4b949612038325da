"""``cafebot run`` as a real process against the fake Zulip server, on loopback.

The fake server (tests/fakezulip.py) runs in this process; the bot is
``python -m cafebot run --config FILE``, as an operator starts it. Users post
through the server's own code (as Zulip would, delivering events); the
server records every request, and when each message was first handed to the
bot's event queue, so latencies are taken on the server's side: from the
moment a command's event leaves the server to the moment the bot's reaction
or reply reaches it.

- :func:`floor`: the least a command can cost here, one SQLite insert and
  commit plus one HTTP POST with ``requests`` to the same server;
- :func:`command_path`: a realistic mix of commands from 50 users, first all at
  once (throughput, API calls per command), then one at a time (latency);
- :func:`footprint`: the bot's resident memory after 1,000 and 20,000 commands;
- :func:`outage`: the server cuts every connection for a while;
- :func:`help_time`: the wall time of ``cafebot --help``.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests

from bench.common import ROOT, median, percentile, rss_kib
from tests.fakezulip import FakeZulip, Request

STREAM = "cafe"
TOPIC = "Collaboration Cafe"
UNLIMITED = (10**9, 60.0)


class Recorded(list[Request]):
    """The fake server's request log, which wakes up whoever waits for a new request."""

    def __init__(self) -> None:
        super().__init__()
        self.cond = threading.Condition()

    def append(self, item: Request) -> None:
        super().append(item)
        with self.cond:
            self.cond.notify_all()

    def wait(self, check: Callable[[], Any], timeout: float) -> Any:
        with self.cond:
            return self.cond.wait_for(check, timeout)


def meeting_day(days_ahead: int = 60) -> dt.date:
    """A date for the series' only yearly meeting: far enough that no reminder comes due."""
    day = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=days_ahead)
    return day.replace(day=min(day.day, 28))


class Site:
    """A fake Zulip organisation: the bot, ``users`` people, the meeting's stream, a config."""

    def __init__(
        self,
        workdir: Path,
        *,
        users: int = 50,
        rate_limit: tuple[int, float] = UNLIMITED,
        db_url: str | None = None,
        heartbeat: float = 1.0,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.workdir = workdir
        self.fake = FakeZulip(heartbeat=heartbeat, rate_limit=rate_limit).start()
        self.log: Recorded = Recorded()
        self.fake.requests = self.log
        self.bot = self.fake.add_user("cafe", "cafe-bot@zulip.example.org", is_bot=True)
        self.people = [
            self.fake.add_user(f"User {n}", f"user{n}@example.org") for n in range(users)
        ]
        self.fake.add_stream(STREAM, subscribers=self.people)
        # The floor posts in a stream of its own: no event reaches the bot.
        self.floor_user = self.fake.add_user("Floor", "floor@example.org")
        self.fake.add_stream("floor", subscribers=[self.floor_user])
        self.db_url = db_url or f"sqlite:///{workdir / 'cafe.db'}"
        day = meeting_day()
        self.config = workdir / "config.ini"
        self.config.write_text(
            f"""[zulip]
site = {self.fake.url}
email = {self.bot.email}

[database]
url = {self.db_url}

[logging]
level = INFO

[series:cafe]
stream = {STREAM}
topic = {TOPIC}
schedule = FREQ=YEARLY;BYMONTH={day.month};BYMONTHDAY={day.day}
start = 16:00
timezone = UTC
reminders = 0m
organizers = {self.people[0].email}
""",
            encoding="utf-8",
        )

    def close(self) -> None:
        self.fake.stop()

    def post(self, user: int, text: str) -> int:
        """User number ``user`` mentions the bot in the meeting's stream."""
        return self.fake.post(self.people[user], STREAM, TOPIC, f"@**cafe** {text}")

    def mention(self, user: int) -> str:
        person = self.people[user]
        return f"@**{person.full_name}|{person.id}**"

    def bot_calls(self, start: int, end: int | None = None) -> list[Request]:
        """The bot's requests in the log from ``start``, event polls left out."""
        return [
            r
            for r in self.log[start:end]
            if r.user_id == self.bot.id and not r.path.startswith("events")
        ]

    @staticmethod
    def is_answer(request: Request) -> bool:
        """A reaction, or a post (a reply)."""
        return request.method == "POST" and (
            request.path == "messages" or request.path.endswith("/reactions")
        )


class BotProcess:
    """``python -m cafebot run --config FILE``, its output in a file."""

    def __init__(
        self,
        site: Site,
        name: str = "bot",
        argv: list[str] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.site = site
        self.output_path = site.workdir / f"{name}-{time.monotonic_ns()}.log"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "CAFEBOT_ZULIP_KEY": site.bot.api_key,
            **(env or {}),
        }
        command = argv or [sys.executable, "-m", "cafebot", "run", "--config", str(site.config)]
        with self.output_path.open("w") as out:
            self.proc = subprocess.Popen(  # noqa: S603 - our own interpreter and package
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=site.workdir
            )

    def wait_live(self, marker: str = "is live on Zulip", timeout: float = 60) -> BotProcess:
        return self.wait_until(lambda: marker in self.output(), timeout)

    def wait_until(self, check: Callable[[], Any], timeout: float = 60) -> BotProcess:
        deadline = time.monotonic() + timeout
        while not check():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the bot did not start:\n{self.output()[-3000:]}")
            time.sleep(0.05)
        return self

    def output(self) -> str:
        return self.output_path.read_text(errors="replace")

    def rss_kib(self) -> int:
        return rss_kib(self.proc.pid)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


# ====================================================================== the workload


@dataclass(frozen=True)
class Command:
    user: int
    text: str
    reply: bool = False  # answered by a reply (else by a reaction)
    answers: int = 1  # a first check-in is answered twice: a reaction and a welcome


class Mentions(Protocol):
    def mention(self, user: int) -> str: ...


@dataclass
class Workload:
    """The commands of a meeting's busy hour, from ``users`` people, round by round.

    Each round, every user proposes an agenda item, adds a note, a decision and an
    action under it, checks in again, gives a shout-out, rewrites their
    introduction, edits their item, asks when the next meeting is, and removes
    their item. The agenda stays the size of a real one however long it runs;
    references are predicted (commands are handled in order), and a wrong one
    would show as an error reply.
    """

    site: Mentions  # a Site, or anything that can write a mention of user number n
    users: int
    next_agenda_ref: int = 1
    rounds_done: int = 0
    _own: dict[int, int] = field(default_factory=dict)

    def warm_up(self) -> list[Command]:
        """Everyone checks in once (a first check-in is welcomed with a reply, too)."""
        return [
            Command(u, f"checkin User {u} / @user{u} / Lab {u % 7}", answers=2)
            for u in range(self.users)
        ]

    STEPS = 10

    def rounds(self, count: int) -> Iterator[Command]:
        for _ in range(count):
            r = self.rounds_done
            self.rounds_done += 1
            for step in range(self.STEPS):
                for u in range(self.users):
                    yield self._step(step, u, r)

    def _step(self, step: int, u: int, r: int) -> Command:
        if step == 0:
            self._own[u] = self.next_agenda_ref
            self.next_agenda_ref += 1
            # One in five gives an estimate: the agenda stays within the hour (else
            # the bot warns in a reply, as it should).
            estimate = "5m " if u % 5 == 0 else ""
            return Command(u, f"agenda {estimate}Topic {u} of round {r}")
        ref = self._own[u]
        other = self.site.mention((u + 1) % self.users)
        return [
            None,
            Command(u, f"note A{ref} A point about topic {u}, round {r}"),
            Command(u, f"checkin User {u} / @user{u} / Lab {(u + r) % 7}"),
            Command(u, f"decision A{ref} We agree on {u}.{r}"),
            Command(u, f"shoutout [Project {u % 5}] Thanks for round {r}!"),
            Command(u, f"intro I am user {u}; this is round {r}."),
            Command(u, f"action A{ref} {other} follow up on {u}.{r}"),
            Command(u, f"edit A{ref} 15m Topic {u} of round {r}, revised"),
            Command(u, "next", reply=True),
            Command(u, f"remove A{ref}"),
        ][step] or Command(u, "next", reply=True)

    def take(self, count: int) -> list[Command]:
        per_round = self.STEPS * self.users
        rounds = -(-count // per_round)
        return list(self.rounds(rounds))[:count]


class Answers:
    """The bot's answers in the request log from an index on, read incrementally:
    reactions by the message they are on, and replies (posts) by count."""

    def __init__(self, site: Site, start: int) -> None:
        self.site = site
        self.cursor = start
        self.reactions: dict[int, Request] = {}
        self.replies: list[Request] = []

    def scan(self) -> None:
        log, bot = self.site.log, self.site.bot.id
        end = len(log)
        for request in log[self.cursor : end]:
            if request.user_id != bot or request.method != "POST":
                continue
            if request.path == "messages":
                self.replies.append(request)
            elif request.path.endswith("/reactions"):
                self.reactions.setdefault(int(request.path.split("/")[1]), request)
        self.cursor = end

    def has(self, expected: list[tuple[int, Command]]) -> bool:
        self.scan()
        wanted_replies = sum(c.answers - (not c.reply) for _, c in expected)
        return len(self.replies) >= wanted_replies and all(
            message_id in self.reactions for message_id, c in expected if not c.reply
        )

    def wait(
        self, expected: list[tuple[int, Command]], timeout: float, *, poll: float | None = None
    ) -> float:
        """Until every command in ``expected`` (message id, command) is answered: woken
        by every request, or (``poll``) every so often, which keeps this thread from
        competing with the server's. Returns when the last answer arrived (server time)."""
        deadline = time.monotonic() + timeout
        if poll is None:
            self.site.log.wait(lambda: self.has(expected), timeout)
        else:
            while not self.has(expected) and time.monotonic() < deadline:
                time.sleep(poll)
        if not self.has(expected):
            unanswered = [c.text for i, c in expected if not c.reply and i not in self.reactions]
            raise RuntimeError(
                f"the bot did not answer {len(expected)} commands in {timeout} s: "
                f"{len(self.replies)} replies; no reaction to {len(unanswered)}, like "
                f"{unanswered[:3]}"
            )
        reacted = [self.reactions[i].at for i, c in expected if not c.reply]
        return max([*reacted, *(r.at for r in self.replies)])


def replay(site: Site, commands: list[Command], timeout: float = 600) -> float:
    """Post every command at once; the seconds until the last answer arrived."""
    answers = Answers(site, len(site.log))
    began = time.time()
    posted = [(site.post(c.user, c.text), c) for c in commands]
    return answers.wait(posted, timeout, poll=0.05) - began


# ====================================================================== the floor


def floor_times(site: Site, count: int) -> list[float]:
    """The floor: one SQLite insert and commit (WAL, as cafebot sets it up) plus one POST
    with ``requests`` to the same server, ``count`` times in a row; the seconds each took."""
    path = site.workdir / "floor.db"
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE IF NOT EXISTS t (id INTEGER PRIMARY KEY, body TEXT)")
    session = requests.Session()
    session.auth = (site.floor_user.email, site.floor_user.api_key)
    url = f"{site.fake.url}/api/v1/messages"
    times = []
    try:
        for n in range(count):
            started = time.perf_counter()
            connection.execute("BEGIN IMMEDIATE")
            connection.execute("INSERT INTO t (body) VALUES (?)", (f"row {n}",))
            connection.execute("COMMIT")
            answer = session.post(
                url, data={"type": "stream", "to": "floor", "topic": "t", "content": f"m {n}"}
            )
            answer.raise_for_status()
            times.append(time.perf_counter() - started)
    finally:
        connection.close()
        session.close()
    return times


# ====================================================================== the command path


def command_path(workdir: Path, count: int, floor_count: int, slices: int = 4) -> dict[str, float]:
    """``count`` commands through a fresh ``cafebot run``; the floor measured alongside.

    The floor is taken in ``slices`` parts interleaved with the bot's measurements
    (before and after the throughput run, and between parts of the latency run), so
    that both see the same machine: on a shared machine its speed drifts within a run.
    """
    site = Site(workdir)
    bot = BotProcess(site).wait_live()
    base: list[float] = []
    per_slice = max(1, floor_count // slices)
    try:
        work = Workload(site, len(site.people))
        replay(site, work.warm_up())

        # Throughput: everything at once, between two parts of the floor.
        base += floor_times(site, per_slice // 2)
        commands = work.take(count)
        start = len(site.log)
        took = replay(site, commands)
        time.sleep(0.5)  # anything more the bot sends counts too
        calls = site.bot_calls(start)
        extra = len(calls) - sum(c.answers for c in commands)  # error replies, look-ups ...
        floor_around = floor_times(site, per_slice - per_slice // 2)
        base += floor_around

        # Latency: one at a time, from the event's delivery to the answer's arrival.
        latencies = []
        timed = work.take(count)
        chunk = -(-len(timed) // (slices - 1)) if slices > 1 else len(timed)
        for begin in range(0, len(timed), chunk):
            for command in timed[begin : begin + chunk]:
                answers = Answers(site, len(site.log))
                message_id = site.post(command.user, command.text)
                answered = answers.wait([(message_id, command)], 30)
                latencies.append(answered - site.fake.delivered[message_id])
            base += floor_times(site, per_slice)
    finally:
        bot.stop()
        site.close()
    throughput_floor = floor_around + base[: per_slice // 2]
    return {
        "floor_per_second": len(throughput_floor) / sum(throughput_floor),
        "floor_p50": percentile(base, 0.5),
        "floor_p99": percentile(base, 0.99),
        "per_second": count / took,
        "p50": percentile(latencies, 0.5),
        "p99": percentile(latencies, 0.99),
        "calls_per_command": len(calls) / count,
        "extra_calls": extra,
    }


def median_of(runs: list[dict[str, float]]) -> dict[str, float]:
    return {key: median([r[key] for r in runs]) for key in runs[0]}


# ====================================================================== footprint


def footprint(
    workdir: Path, total: int, marks: tuple[int, ...], chunk: int = 1000
) -> dict[str, float]:
    """The bot's resident memory (VmRSS) after ``marks`` commands of the workload."""
    site = Site(workdir)
    bot = BotProcess(site).wait_live()
    samples: dict[int, int] = {}
    try:
        work = Workload(site, len(site.people))
        replay(site, work.warm_up())
        done = 0
        while done < total:
            count = min(chunk, total - done, *(m - done for m in marks if m > done))
            replay(site, work.take(count))
            done += count
            if done in marks:
                time.sleep(0.5)  # whatever it does after the last answer
                samples[done] = bot.rss_kib()
    finally:
        bot.stop()
        site.close()
    first, last = samples[marks[0]], samples[marks[-1]]
    return {"rss_first": first, "rss_last": last, "growth": last / first - 1}


# ====================================================================== an outage


def outage(workdir: Path, seconds: float, commands: int = 10) -> dict[str, float]:
    """The server cuts every connection for ``seconds``; commands are posted meanwhile.

    How many requests the bot made during the outage, when its first request got
    through after it, and when every command posted during it was answered.
    """
    site = Site(workdir)
    bot = BotProcess(site).wait_live()
    try:
        work = Workload(site, len(site.people))
        replay(site, work.warm_up())
        start = len(site.log)
        answers = Answers(site, start)
        began = time.time()
        site.fake.outage(seconds)
        posted = [(site.post(c.user, c.text), c) for c in work.take(commands)]
        ended = began + seconds
        answered = answers.wait(posted, seconds + 300, poll=0.2)
        during = [r for r in site.log[start:] if r.status == "outage"]
        back = min(r.at for r in site.log[start:] if r.status != "outage" and r.at >= ended)
    finally:
        bot.stop()
        site.close()
    return {
        "requests": len(during),
        "resumed": back - ended,
        "answered": answered - ended,
    }


# ====================================================================== start-up


def help_time(runs: int) -> dict[str, float]:
    """Wall time of ``cafebot --help`` (a whole process), and of a bare interpreter."""
    script = Path(sys.executable).parent / "cafebot"
    argv = (
        [str(script), "--help"] if script.exists() else [sys.executable, "-m", "cafebot", "--help"]
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def timed(command: list[str]) -> float:
        started = time.perf_counter()
        subprocess.run(command, env=env, stdout=subprocess.DEVNULL, check=True)  # noqa: S603
        return time.perf_counter() - started

    timed(argv)  # the first run reads the files from disk
    return {
        "help": median([timed(argv) for _ in range(runs)]),
        "python": median([timed([sys.executable, "-c", "pass"]) for _ in range(runs)]),
    }
