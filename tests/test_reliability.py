"""Reliability of ``cafebot run`` as a real process (``CAFEBOT_RELIABILITY=1``; .ci/run sets it).

- SIGKILL at random moments during a 300-command replay, five times, the bot
  restarted each time: the database ends up as after an uninterrupted run
  (compared without surrogate ids), every command took effect exactly once, every
  reply went out exactly once and no acknowledgement twice;
- the server goes away for a few seconds while commands keep coming: the bot's
  requests during the outage stay few, and it resumes by itself.

The fake server's rate-limit window is shortened (200 requests per 2 s) so that
the replay runs at full speed and still meets the limit. The default run skips
these (about a minute); tests/test_zulip_run.py has the short versions.
"""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, select

from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    Person,
    ProcessedMessage,
    Series,
    ShoutOut,
)
from tests.fakezulip import FakeZulip, User

RELIABILITY = os.environ.get("CAFEBOT_RELIABILITY") == "1"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not RELIABILITY, reason="long reliability test: set CAFEBOT_RELIABILITY=1 (.ci/run does)"
    ),
]

ROOT = Path(__file__).resolve().parent.parent
STREAM, TOPIC = "cafe", "Collaboration Cafe"
RATE_LIMIT = (200, 2.0)


# ---------------------------------------------------------------- the organisation and the bot


@dataclass
class Site:
    fake: FakeZulip
    bot: User
    people: list[User]
    config: Path
    db: Path

    @classmethod
    def create(cls, directory: Path, users: int = 10) -> Site:
        directory.mkdir(parents=True, exist_ok=True)
        fake = FakeZulip(heartbeat=0.5, rate_limit=RATE_LIMIT).start()
        bot = fake.add_user("cafe", "cafe-bot@zulip.example.org", is_bot=True)
        people = [fake.add_user(f"User {n}", f"user{n}@example.org") for n in range(users)]
        fake.add_stream(STREAM, subscribers=people)
        db = directory / "cafe.db"
        config = directory / "config.ini"
        config.write_text(
            f"""[zulip]
site = {fake.url}
email = {bot.email}

[database]
url = sqlite:///{db}

[series:cafe]
stream = {STREAM}
schedule = FREQ=YEARLY;BYMONTH=1;BYMONTHDAY=1
reminders = 0m
organizers = {people[0].email}
""",
            encoding="utf-8",
        )
        return cls(fake, bot, people, config, db)

    def post(self, user: int, text: str) -> int:
        return self.fake.post(self.people[user], STREAM, TOPIC, f"@**cafe** {text}")

    def processed(self) -> int:
        engine = create_engine(f"sqlite:///{self.db}")
        try:
            with engine.connect() as connection:
                return len(connection.execute(select(ProcessedMessage.message_id)).all())
        except Exception:  # not created yet
            return 0
        finally:
            engine.dispose()


class Bot:
    """``python -m cafebot run`` in the background, its output in a file."""

    def __init__(self, site: Site, directory: Path) -> None:
        self.log = directory / f"run-{time.monotonic_ns()}.log"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "CAFEBOT_ZULIP_KEY": site.bot.api_key}
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cafebot", "run", "--config", str(site.config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=directory,
            )
        deadline = time.monotonic() + 30
        while "is live on Zulip" not in self.output():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.02)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(20)


# ---------------------------------------------------------------- the replay


@dataclass(frozen=True)
class Command:
    user: int
    text: str
    token: str | None = None  # a reply to it carries this word


def replay(users: int = 10, rounds: int = 3) -> list[Command]:
    """300 commands: each round, every user proposes an item, adds notes to it, checks
    in, gives a shout-out, rewrites their introduction, edits and moves their item,
    and searches for a word only this command uses (so its reply is known)."""
    commands = []
    ref = 0
    for r in range(rounds):
        own = {}
        for u in range(users):
            ref += 1
            own[u] = ref
            commands.append(Command(u, f"agenda Topic {u}.{r}"))  # estimates come by `edit`
        steps = [
            "note A{a} A point on {u}.{r}",
            "checkin User {u} / @user{u} / Lab {r}",
            "decision A{a} Agreed {u}.{r}",
            "shoutout [Project {p}] Thanks {u}.{r}",
            "intro I am user {u}, round {r}",
            "action A{a} @**User {v}** follow up {u}.{r}",
            "edit A{a} 15m Topic {u}.{r}, revised",
            "move A{a} 1",
        ]
        for step in steps:
            commands.extend(
                Command(u, step.format(u=u, a=own[u], r=r, p=u % 4, v=(u + 1) % users))
                for u in range(users)
            )
        for u in range(users):
            token = f"zq{u}x{r}"
            commands.append(Command(u, f"search {token}", token))
    return commands


def run(site: Site, directory: Path, commands: list[Command], kills: int) -> dict[int, int]:
    """Post ``commands`` a few milliseconds apart; kill the bot with SIGKILL ``kills`` times
    at random moments meanwhile, restarting it each time. Returns message id -> command."""
    posted: dict[int, int] = {}
    done = threading.Event()

    def post_all() -> None:
        for index, command in enumerate(commands):
            posted[site.post(command.user, command.text)] = index
            time.sleep(0.02)
        done.set()

    bot = Bot(site, directory)
    poster = threading.Thread(target=post_all)
    poster.start()
    rng = random.Random()
    try:
        for _ in range(kills):
            time.sleep(rng.uniform(0.2, 1.2))
            bot.kill()
            bot = Bot(site, directory)
        poster.join()
        deadline = time.monotonic() + 120
        while site.processed() < len(commands) + 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        settle(site)
    finally:
        code = bot.stop()
    assert code == 0, bot.output()
    return posted


def settle(site: Site, quiet: float = 1.5) -> None:
    """Wait until the bot has sent nothing but event polls for ``quiet`` seconds."""
    deadline = time.monotonic() + 60
    last = time.monotonic()
    seen = len(site.fake.requests)
    while time.monotonic() - last < quiet and time.monotonic() < deadline:
        time.sleep(0.1)
        now = [r for r in site.fake.requests[seen:] if not r.path.startswith("events")]
        seen = len(site.fake.requests)
        if now:
            last = time.monotonic()


# ---------------------------------------------------------------- the database, without ids


def content(db: Path, index: dict[int, int]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row that commands make, with surrogate ids replaced by what they stand for:
    a meeting by its date, a person by their Zulip id, an entry by its meeting and
    reference, a Zulip message by the number of the command it carried. Times of the
    clock (when a row was made) are left out; the schedule's are kept."""
    engine: Engine = create_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as c:
            series = {r.id: r.key for r in c.execute(select(Series.id, Series.key))}
            meeting = {
                r.id: (series[r.series_id], r.date.isoformat())
                for r in c.execute(select(Meeting.id, Meeting.series_id, Meeting.date))
            }
            person = {
                r.id: r.zulip_user_id or r.name
                for r in c.execute(select(Person.id, Person.zulip_user_id, Person.name))
            }
            item = {
                r.id: (meeting[r.meeting_id], r.ref)
                for r in c.execute(select(AgendaItem.id, AgendaItem.meeting_id, AgendaItem.ref))
            }

            def rows(model: Any, **keys: dict[Any, Any]) -> list[tuple[Any, ...]]:
                table = model.__table__
                columns = [
                    col
                    for col in table.columns
                    if col.name != "id" and not col.name.endswith(("created_at", "processed_at"))
                ]
                out = []
                for row in c.execute(select(*columns)):
                    values = []
                    for col, value in zip(columns, row, strict=True):
                        if col.name in keys:
                            value = keys[col.name].get(value, value)
                        elif col.name == "message_id":
                            value = index.get(value, value)
                        values.append((col.name, value))
                    out.append(tuple(values))
                return sorted(out, key=repr)

            return {
                "meeting": rows(Meeting, series_id=series),
                "person": rows(Person, default_series_id=series),
                "checkin": rows(CheckIn, meeting_id=meeting, person_id=person),
                "introduction": rows(Introduction, meeting_id=meeting, person_id=person),
                "shoutout": rows(ShoutOut, meeting_id=meeting, author_id=person),
                "agenda_item": rows(AgendaItem, meeting_id=meeting, proposer_id=person),
                "item_note": rows(ItemNote, item_id=item, author_id=person, owner_id=person),
                "processed_message": rows(ProcessedMessage),
            }
    finally:
        engine.dispose()


# ---------------------------------------------------------------- the tests


@pytest.fixture
def commands() -> list[Command]:
    return replay()


@dataclass
class Outcome:
    content: dict[str, list[tuple[Any, ...]]]
    replies: list[str]  # sorted; combined acknowledgements left out (they follow the pace)
    # (message path, emoji) of each reaction: a check per acknowledged message, and an
    # hourglass beside it where the agenda became longer than the meeting
    reacted: list[tuple[str, str]]
    combined: int  # acknowledgements folded into "Done, all N of them" replies


def outcome(site: Site, index: dict[int, int]) -> Outcome:
    replies, combined = [], 0
    for message in site.fake.sent_by(site.bot):
        found = re.search(r"Done, all (\d+) of them", message.content)
        if found:
            combined += int(found.group(1))
        else:
            replies.append(message.content)
    reacted = [
        (r.path, r.params.get("emoji_name", ""))
        for r in site.fake.requests
        if r.path.endswith("/reactions") and r.status == 200
    ]
    return Outcome(content(site.db, index), sorted(replies), reacted, combined)


@pytest.fixture
def uninterrupted(tmp_path: Path, commands: list[Command]) -> Iterator[Outcome]:
    site = Site.create(tmp_path / "calm")
    try:
        yield outcome(site, run(site, tmp_path / "calm", commands, kills=0))
    finally:
        site.fake.stop()


def test_sigkill_five_times_during_a_replay_changes_nothing_in_the_end(
    tmp_path: Path, commands: list[Command], uninterrupted: Outcome
) -> None:
    site = Site.create(tmp_path / "killed")
    try:
        index = run(site, tmp_path / "killed", commands, kills=5)
        killed = outcome(site, index)
    finally:
        site.fake.stop()
    assert killed.content == uninterrupted.content
    # Every command took effect once: its message is recorded as handled, once.
    assert len(killed.content["processed_message"]) == len(commands)
    assert sorted(index.values()) == list(range(len(commands)))
    # Every reply once, exactly the calm run's: a reply is stored with its command (one
    # transaction) and kept until Zulip has it; one in flight at the kill is looked for
    # before it is sent again.
    missing = Counter(uninterrupted.replies) - Counter(killed.replies)
    assert not Counter(killed.replies) - Counter(uninterrupted.replies), "a reply too many"
    assert not missing, missing
    for command in commands:
        if command.token is not None:
            assert sum(command.token in r for r in killed.replies) <= 1, command.text
    # No acknowledgement twice. Those still queued when the process dies are lost:
    # reactions are not kept across a crash as replies are (cafebot.edge.outbox).
    assert len(killed.reacted) == len(set(killed.reacted)), "an acknowledgement went twice"
    checks = {"calm": 0, "killed": 0}
    for run_name, result in (("calm", uninterrupted), ("killed", killed)):
        checks[run_name] = sum(emoji == "check" for _, emoji in result.reacted)
    expected = checks["calm"] + uninterrupted.combined
    assert expected == sum(c.token is None for c in commands)  # one each, calmly
    lost = expected - checks["killed"] - killed.combined
    assert lost >= 0
    print(  # to be seen with pytest -s
        f"\n5 SIGKILLs: {sum(missing.values())} of {len(uninterrupted.replies)} replies and "
        f"{lost} of {expected} acknowledgements lost"
    )


def test_an_outage_costs_few_requests_and_the_bot_comes_back_by_itself(tmp_path: Path) -> None:
    site = Site.create(tmp_path / "outage")
    bot = Bot(site, tmp_path / "outage")
    try:
        before = [site.post(u, f"agenda 5m Before {u}") for u in range(10)]
        start = len(site.fake.requests)
        site.fake.outage(4.0)
        ended = time.time() + 4.0
        during = []
        for u in range(10):
            during.append(site.post(u, f"agenda 5m During {u}"))
            time.sleep(0.3)
        everything = [*before, *during]
        site.fake.wait_for(
            lambda: all((site.bot.id, "check") in site.fake.reactions(m) for m in everything),
            40,
            "every command answered after the outage",
        )
        answered = time.time()
        cut = [r for r in site.fake.requests[start:] if r.status == "outage"]
        print(
            f"\n{len(cut)} requests during a 4 s outage; every command answered "
            f"{answered - ended:.1f} s after it"
        )
        assert len(cut) <= 12, [r.path for r in cut]  # backoff: 0.5, 1, 2 ... per thread
        assert answered - ended < 15
        assert site.processed() == len(everything)
    finally:
        assert bot.stop() == 0, bot.output()
        site.fake.stop()
