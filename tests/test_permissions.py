"""Who may do what: every command, by attendee, entry owner, organiser, another bot and a
direct message, each with the outcome product.md promises.

The table below is written from product.md's "Who may do what", not from the
registry, so that a command whose rights drift from the contract fails here;
a command missing from the table fails too. Each cell runs against a real
database (both backends) through the handler, and checks the database as
well as the answer: a refused or ignored command changes nothing, an accepted
change changes something, a listing changes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cafebot.bot.app import APOLOGY
from cafebot.commands.registry import REGISTRY
from cafebot.storage.models import AgendaItem, Base, OutgoingMessage, Person, ProcessedMessage
from tests.harness import ADA, BOB, CAFE, OLGA, OTHER_BOT, Answer, Harness, User

ANYONE, OWNER, ORGANISERS = "anyone", "owner", "organisers"

# product.md, "Who may do what" (itsme and use concern only the sender: anyone).
WHO_MAY = {
    "checkin": ANYONE,
    "intro": ANYONE,
    "shoutout": ANYONE,
    "agenda": ANYONE,
    "list": ANYONE,
    "next": ANYONE,
    "notes": ANYONE,
    "search": ANYONE,
    "insights": ANYONE,  # its `lapsed` list: organisers only (tests/test_insights.py)
    "now": ANYONE,
    "help": ANYONE,
    "note": ANYONE,
    "decision": ANYONE,
    "action": ANYONE,
    "itsme": ANYONE,
    "use": ANYONE,
    "edit": OWNER,
    "remove": OWNER,
    "move": OWNER,
    "defer": OWNER,
    "actions": ANYONE,
    "close": OWNER,
    "reopen": OWNER,
    "drop": OWNER,
    "assign": OWNER,
    "due": OWNER,
    "start": ORGANISERS,
    "goto": ORGANISERS,
    "done": ORGANISERS,
    "end": ORGANISERS,
    "cancel": ORGANISERS,
    "uncancel": ORGANISERS,
    "add": ORGANISERS,
    "publish": ORGANISERS,
}
# Commands that only show something: accepted, they change nothing.
READ_ONLY = {"list", "next", "notes", "search", "now", "help", "actions", "insights"}

ROLES = ("attendee", "owner", "organiser", "bot", "direct message")
# Ada owns every entry the cells act on; Bob and Dana attend (Dana by direct message);
# Olga organises (listed by email).
DANA = User(15, "Dana Attendee", "dana@example.org")
SENDERS = {
    "attendee": BOB,
    "owner": ADA,
    "organiser": OLGA,
    "bot": OTHER_BOT,
    "direct message": DANA,
}
ORGANISER_LAST = ("attendee", "owner", "direct message", "bot", "organiser")


def expected(command: str, role: str) -> str:
    """ "ok", "refused" or "ignored": what product.md promises."""
    if role == "bot":
        return "ignored"  # messages from bots are not commands at all
    rights = WHO_MAY[command]
    if rights == ANYONE or role == "organiser":
        return "ok"
    if rights == OWNER and role == "owner":
        return "ok"
    return "refused"


def test_the_table_covers_every_command() -> None:
    assert set(WHO_MAY) == {spec.name for spec in REGISTRY}


def snapshot(bot: Harness) -> dict[str, list[tuple[Any, ...]]]:
    """Every row the commands may change (not the bookkeeping of handled messages)."""
    skip = {ProcessedMessage.__tablename__, OutgoingMessage.__tablename__}
    rows = {}
    with bot.app.engine.connect() as connection:
        for table in Base.metadata.sorted_tables:
            if table.name in skip:
                continue
            found = connection.execute(select(table)).all()
            rows[table.name] = sorted((tuple(map(repr, row)) for row in found), key=str)
    return rows


def outcome(answer: Answer) -> str:
    if not answer.reactions and not answer.replies:
        return "ignored"
    text = answer.text
    assert APOLOGY not in text, text
    if "Only the organisers of" in text or "only its author" in text:
        return "refused"
    if "\nUsage: `" in text or "\nFor example: `" in text:
        return f"error: {text[:200]}"
    return "ok"


@dataclasses.dataclass
class Matrix:
    bot: Harness
    failures: list[str] = dataclasses.field(default_factory=list)

    def send(self, role: str, text: str) -> Answer:
        user = SENDERS[role]
        if role == "direct message":
            return self.bot.dm(text, user)
        return self.bot.send(text, user)

    def fresh_item(self, note: str = "") -> int:
        """Ada proposes an item: the reference the next cell acts on."""
        # (An hourglass joins the check once the items fill more than the slot.)
        assert self.bot.send(f"agenda 5m Item for {note}", ADA).reactions[0] == "check"
        with self.bot.app.unit_of_work() as session:
            return int(session.scalar(select(func.max(AgendaItem.ref))) or 0)

    def cell(self, command: str, role: str, text: str) -> None:
        before = snapshot(self.bot)
        answer = self.send(role, text)
        got = outcome(answer)
        after = snapshot(self.bot)
        want = expected(command, role)
        where = f"{text!r} by {role}"
        if got != want:
            self.failures.append(f"{where}: expected {want}, got {got}")
            return
        changed = before != after
        if want != "ok" and changed:
            self.failures.append(f"{where}: {got}, but the database changed")
        if want == "ok" and command in READ_ONLY and changed:
            self.failures.append(f"{where}: a listing changed the database")
        if want == "ok" and command not in READ_ONLY and not changed:
            self.failures.append(f"{where}: accepted, but nothing changed")
        if got == "refused" and "organiser" not in answer.text:
            self.failures.append(f"{where}: the refusal does not say who may: {answer.text}")


def namesake(bot: Harness, user: User) -> None:
    """Someone from the notes archive with ``user``'s name, for `itsme` to take over."""
    with bot.app.unit_of_work() as session:
        person = session.scalar(select(Person).where(Person.zulip_user_id == user.id))
        name = (person.name or person.zulip_name) if person is not None else user.name
        session.add(Person(name=name, created_at=bot.clock.now()))


# What each command says in its cell; ``ref`` is an agenda item Ada has just proposed, and
# ``n`` numbers the cell (so that no cell repeats an earlier one, which would change nothing).
ENTRY_COMMANDS = {
    "checkin": "checkin Someone {n} / @someone-{n} / Lab {n}",
    "intro": "intro I came to learn about release {n}.",
    "shoutout": "shoutout [Docs] Thanks for tutorial {n}!",
    "agenda": "agenda 10m Another topic {n}",
    "list": "list",
    "next": "next",
    "notes": "notes",
    "search": "search Item",
    "insights": "insights",
    "help": "help agenda",
    "use": "use cafe",
    "itsme": "itsme",
    "note": "note A{ref} A point",
    "decision": "decision A{ref} We ship",
    "action": "action A{ref} @**Ada Lovelace|11** write it up",
    "edit": "edit A{ref} 15m Changed topic",
    "remove": "remove A{ref}",
    "move": "move A{ref} 1",
    "defer": "defer A{ref}",
    "actions": "actions all",
    "close": "close A{ref}.1",
    "reopen": "reopen A{ref}.1",
    "drop": "drop A{ref}.1",
    "assign": "assign A{ref}.1 @**Bob Builder|12**",
    "due": "due A{ref}.1 2031-07-1{n}",
}
# What Ada does before a cell of these: an action of hers under the fresh item (A{ref}.1).
SETUP = {
    "close": ["action A{ref} Write it up"],
    "reopen": ["action A{ref} Write it up", "close A{ref}.1"],
    "drop": ["action A{ref} Write it up"],
    "assign": ["action A{ref} Write it up"],
    "due": ["action A{ref} Write it up"],
}
# Run live, in this order, each by everyone else first and by the organiser last.
LIFECYCLE = [
    ("add", "add meeting 2031-06-24 16:00"),
    ("cancel", "cancel 2031-06-24 Summer break"),
    ("uncancel", "uncancel 2031-06-24"),
    ("start", "start now"),  # days before the meeting: `start` alone is refused
    ("goto", "goto A{ref}"),
    ("now", "now"),
    ("done", "done"),
    ("end", "end"),
    ("publish", "publish"),
]


@pytest.fixture
def matrix(db_url: str, tmp_path: Path) -> Iterator[Matrix]:
    series = dataclasses.replace(CAFE, archive_dir=tmp_path / "notes")
    bot = Harness(db_url, series=(series,))
    for user in (ADA, BOB, OLGA, DANA):  # known before the cells: a listing then adds no one
        bot.send("help", user)
    try:
        yield Matrix(bot)
    finally:
        bot.close()


def test_permission_matrix(matrix: Matrix) -> None:
    bot = matrix.bot
    lifecycle = {command for command, _ in LIFECYCLE}
    for command, template in ENTRY_COMMANDS.items():
        for n, role in enumerate(ROLES):
            if command == "itsme" and role != "bot":
                namesake(bot, SENDERS[role])
            ref = matrix.fresh_item(f"{command} by {role}")
            for step in SETUP.get(command, []):
                assert bot.send(step.format(ref=ref), ADA).reactions[:1] == ["check"], step
            matrix.cell(command, role, template.format(ref=ref, n=n))
    ref = matrix.fresh_item("the live meeting")
    for command, template in LIFECYCLE:
        for role in ORGANISER_LAST:
            matrix.cell(command, role, template.format(ref=ref))
    assert not matrix.failures, "\n".join(matrix.failures)
    assert set(ENTRY_COMMANDS) | lifecycle == set(WHO_MAY)


def test_a_refusal_says_why_and_who_may(db_url: str) -> None:
    bot = Harness(db_url)
    try:
        assert bot.send("agenda 5m Ada's topic", ADA).acked
        refused = bot.send("remove A1", BOB).text
        assert "only its author (Ada Lovelace) or an organiser of Collaboration Cafe" in refused
        refused = bot.dm("start", BOB).text
        assert "Only the organisers of the Collaboration Cafe may use `start`" in refused
        assert bot.send("remove A1", OLGA).acked  # an organiser may
    finally:
        bot.close()
