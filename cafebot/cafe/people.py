"""People: found by Zulip user id (never by sender email), remembered between meetings.

People from an imported notes archive become one with Zulip users (``itsme``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import bindparam, distinct, func, select, update
from sqlalchemy.orm import Session

from cafebot.cafe.context import Context
from cafebot.commands.converters import Mention
from cafebot.commands.errors import UserError
from cafebot.commands.registry import Outcome, command
from cafebot.core.chat import Message
from cafebot.core.text import inline
from cafebot.storage.models import Base, CheckIn, Meeting, Person

# Built once: every command looks up its sender.
_BY_ZULIP_ID = select(Person).where(Person.zulip_user_id == bindparam("user_id"))


def for_sender(session: Session, message: Message, now: dt.datetime) -> Person:
    """The person who sent ``message``, made on first contact; their Zulip name kept fresh."""
    person = session.scalar(_BY_ZULIP_ID, {"user_id": message.sender_id})
    if person is None:
        person = Person(
            zulip_user_id=message.sender_id, zulip_name=message.sender_name or None, created_at=now
        )
        session.add(person)
        session.flush()
    elif message.sender_name and person.zulip_name != message.sender_name:
        person.zulip_name = message.sender_name
    return person


def for_mention(session: Session, mention: Mention, now: dt.datetime) -> Person:
    """The person a mention names: by user id when the mention carries one, else by name."""
    if mention.user_id is not None:
        person = session.scalar(_BY_ZULIP_ID, {"user_id": mention.user_id})
        if person is None:
            person = Person(
                zulip_user_id=mention.user_id, zulip_name=mention.full_name, created_at=now
            )
            session.add(person)
            session.flush()
        return person
    name = mention.full_name.lower()
    person = session.scalar(
        select(Person)
        .where((func.lower(Person.zulip_name) == name) | (func.lower(Person.name) == name))
        .order_by(Person.zulip_user_id.is_(None), Person.id)
    )
    if person is None:
        person = Person(name=mention.full_name, created_at=now)
        session.add(person)
        session.flush()
    return person


_ANY_CHECKIN = select(CheckIn.id).where(CheckIn.person_id == bindparam("person_id")).limit(1)


def has_checked_in(session: Session, person: Person) -> bool:
    return session.scalar(_ANY_CHECKIN, {"person_id": person.id}) is not None


# ---------------------------------------------------------------- people from the notes archive
# People read from an imported archive (cafebot.notes.archive) have no Zulip account. The first
# time a Zulip user checks in with the GitHub handle of such a person, the two become one
# person; failing a handle, `checkin` offers it for exactly their name and `itsme` does it.


@dataclass(frozen=True)
class History:
    """Someone's check-ins so far: how many meetings, and the date of the last."""

    meetings: int
    last: dt.date | None

    def describe(self) -> str:
        if not self.meetings or self.last is None:
            return "no check-ins yet"
        if self.meetings == 1:
            return f"1 meeting, on {self.last.isoformat()}"
        return f"{self.meetings} meetings, the last on {self.last.isoformat()}"


def history(session: Session, person: Person) -> History:
    count, last = session.execute(
        select(func.count(distinct(CheckIn.meeting_id)), func.max(Meeting.date))
        .join(Meeting, Meeting.id == CheckIn.meeting_id)
        .where(CheckIn.person_id == person.id)
    ).one()
    return History(int(count or 0), last)


_UNLINKED_WITH_HANDLE = (
    select(Person)
    .where(Person.zulip_user_id.is_(None), func.lower(Person.github) == bindparam("github"))
    .order_by(Person.id)
    .limit(1)
)


def unlinked_with_handle(session: Session, github: str) -> Person | None:
    """Someone without a Zulip account (from the archive) who has this GitHub handle."""
    return session.scalar(_UNLINKED_WITH_HANDLE, {"github": github.lower()})


def unlinked_named(session: Session, name: str, github: str | None = None) -> list[Person]:
    """People without a Zulip account called exactly ``name`` (letter case aside).

    Someone whose known handle differs from ``github`` is someone else.
    """
    wanted = " ".join(name.split()).casefold()
    if not wanted:
        return []
    found = session.scalars(
        select(Person)
        .where(Person.zulip_user_id.is_(None), func.lower(Person.name) == wanted.lower())
        .order_by(Person.id)
    )
    return [
        p
        for p in found
        if " ".join((p.name or "").split()).casefold() == wanted
        and not (github and p.github and p.github.lower() != github.lower())
    ]


def merge(session: Session, keep: Person, gone: Person) -> None:
    """Make ``gone`` one with ``keep``: every record that names ``gone`` names ``keep``.

    Every foreign key to a person is followed, whatever table it is in; the fields
    ``keep`` lacks are taken from ``gone``, which is then deleted.
    """
    if keep.id == gone.id:
        return
    session.flush()
    person_id = Person.__table__.c.id
    for table in Base.metadata.sorted_tables:
        for fk in table.foreign_keys:
            if fk.column is person_id:
                session.execute(
                    update(table).where(fk.parent == gone.id).values({fk.parent.name: keep.id})
                )
    keep.name = keep.name or gone.name
    keep.github = keep.github or gone.github
    keep.affiliation = keep.affiliation or gone.affiliation
    session.delete(gone)
    session.flush()
    session.expire_all()  # the updates went past the objects the session holds


def link_by_handle(session: Session, person: Person, github: str | None) -> History | None:
    """If someone from the archive has ``github``, they become ``person``; their history."""
    if not github or person.zulip_user_id is None:
        return None
    found = unlinked_with_handle(session, github)
    if found is None or found.id == person.id:
        return None
    past = history(session, found)
    merge(session, person, found)
    return past


def _candidate(session: Session, person: Person) -> str:
    fields = [f"@{person.github}" if person.github else "", person.affiliation or ""]
    details = ", ".join(inline(f) for f in fields if f)
    who = inline(person.name or "someone") + (f" ({details})" if details else "")
    return f"{who}: {history(session, person).describe()}"


def link_offer(session: Session, person: Person, name: str, github: str | None) -> str | None:
    """What to say when the archive has someone of ``name`` who may be ``person``."""
    found = [p for p in unlinked_named(session, name, github) if p.id != person.id]
    if not found:
        return None
    if len(found) == 1:
        return (
            f"The notes archive has {_candidate(session, found[0])}. If that's you, say "
            "`itsme` and that history becomes yours (I won't take you for a newcomer again). "
            "If not, introduce yourself with `intro …`."
        )
    lines = [f"The notes archive has {len(found)} people called {inline(name)}:"]
    lines += [f"{n}. {_candidate(session, p)}" for n, p in enumerate(found, start=1)]
    lines.append("If one of them is you, say `itsme 1` (or its number); if not, say `intro …`.")
    return "\n".join(lines)


@command(
    "itsme",
    aliases=("thatsme",),
    examples=("itsme", "itsme 2"),
    group="Entries",
)
def itsme(ctx: Context, number: str | None) -> Outcome:
    """Take over your history from the imported notes archive (after `checkin` found it).

    Check in with your name as the archive has it (`checkin Ines`); if the archive
    has someone of that name, `itsme` makes their meetings, check-ins and agenda
    items yours. When several people have that name, give the number `checkin` showed.
    """
    person = ctx.person
    name = person.name or person.zulip_name or ""
    found = [p for p in unlinked_named(ctx.session, name, person.github) if p.id != person.id]
    if not found:
        raise UserError(
            f"The notes archive has nobody called {inline(name) or 'that'} waiting to be "
            "linked. Check in with your name as the archive has it, then say `itsme`.",
            show_usage=False,
            example="checkin Ines / @ines-r",
        )
    if number is None and len(found) > 1:
        raise UserError(
            link_offer(ctx.session, person, name, person.github) or "", show_usage=False
        )
    choice = 1 if number is None else _number(number, len(found))
    chosen = found[choice - 1]
    past = history(ctx.session, chosen)
    merge(ctx.session, person, chosen)
    return Outcome(
        reply=f"Done: the notes archive's {inline(name)} ({past.describe()}) is you now.",
        reactions=("check",),
    )


def _number(text: str, count: int) -> int:
    value = text.strip()
    if not value.isdigit() or not 1 <= int(value) <= count:
        raise UserError(
            f"Give the number of the person from the list: 1 to {count}.",
            show_usage=False,
            example="itsme 2",
        )
    return int(value)
