"""Check-ins, introductions, shout-outs, agenda items and the notes under them."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from sqlalchemy import bindparam, func, inspect, select
from sqlalchemy.orm import Session, object_session

from cafebot.cafe import action_notes, people
from cafebot.cafe.agenda import listing, open_items, renumber
from cafebot.cafe.context import Context, Entry
from cafebot.commands.converters import (
    ConversionError,
    Estimate,
    InvalidValue,
    Mention,
    Position,
    Project,
    Ref,
)
from cafebot.commands.errors import UserError
from cafebot.commands.registry import ACK, OVER_SLOT, Outcome, Who, command
from cafebot.core.text import bullet_lines, clean, one_line
from cafebot.storage.counters import take_numbers
from cafebot.storage.models import (
    AgendaItem,
    Base,
    CheckIn,
    Introduction,
    ItemNote,
    ItemState,
    Meeting,
    MeetingState,
    NoteKind,
    Person,
    ShoutOut,
)

MAX_NAME = 100
MAX_AFFILIATION = 200
MAX_TOPIC = 300
GITHUB_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# A "/" separates fields, except inside a Markdown link's (address).
_FIELD_SPLIT_RE = re.compile(r"/(?![^(]*\))")
# A field separator as people write it between fields (an affiliation "Jupyter/Binder"
# has a slash of its own, without the spaces).
_SPACED_SPLIT_RE = re.compile(r"\s/\s(?![^(]*\))")
_EMPTY_PROJECT_RE = re.compile(r"^\s*\[\s*\]\s*")
_GITHUB_LINK_RE = re.compile(r"^\[@?([^\]]+)\]\(https?://github\.com/[^)]*\)$")


# ---------------------------------------------------------------- check-ins


@dataclass(frozen=True)
class CheckinFields:
    """What a check-in line gave; None means "not given: use what is remembered"."""

    name: str | None = None
    github: str | None = None
    affiliation: str | None = None


def _handle(raw: str) -> str:
    value = raw.strip()
    link = _GITHUB_LINK_RE.match(value)
    if link:
        value = link.group(1)
    value = value.removeprefix("@")
    if not GITHUB_RE.match(value):
        raise UserError(
            f"'{one_line(raw)[:60]}' is not a GitHub handle (letters, digits and single hyphens).",
            example="checkin Ada Lovelace / @ada / Analytical Engines",
        )
    return value


def parse_checkin(text: str | None) -> CheckinFields:
    """``Name / @handle / Affiliation``; any field may be left out or empty."""
    if text is None or not text.strip():
        return CheckinFields()
    parts = [one_line(p) for p in _FIELD_SPLIT_RE.split(text, maxsplit=2)]
    name = parts[0] or None
    github = affiliation = None
    if len(parts) == 2:
        second = parts[1]
        # Two fields: a handle when it looks like one, else an affiliation.
        if second.startswith("@") or (second and " " not in second and GITHUB_RE.match(second)):
            github = _handle(second)
        else:
            affiliation = second or None
    elif len(parts) == 3:
        github = _handle(parts[1]) if parts[1] else None
        affiliation = parts[2] or None
        if _SPACED_SPLIT_RE.search(_FIELD_SPLIT_RE.split(text, maxsplit=2)[2]):
            raise UserError(
                "A check-in has three fields: your name / GitHub handle / affiliation "
                "(any of them may be left out). This one has more.",
                example="checkin Ada Lovelace / @ada / Analytical Engines",
            )
    if name and len(name) > MAX_NAME:
        raise UserError(f"A name can be at most {MAX_NAME} characters.")
    if affiliation and len(affiliation) > MAX_AFFILIATION:
        raise UserError(f"An affiliation can be at most {MAX_AFFILIATION} characters.")
    return CheckinFields(name, github, affiliation)


def link(entry: Base, **parents: Base | None) -> None:
    """Set a new entry's links to its meeting, item or people.

    By id where the parent is stored and has not loaded its collection of such
    entries: then the flush need not visit the parent (with a dozen relationships
    on Meeting and Person, that visit cost as much as the rest of a command's
    flush), and the collection, read later, has the entry. Otherwise through the
    relationship, so that a loaded collection shows the entry at once.
    """
    relationships = inspect(type(entry)).relationships
    for name, parent in parents.items():
        relationship = relationships[name]
        back = relationship.back_populates
        if parent is None:
            continue
        if getattr(parent, "id", None) is None or (back and back in inspect(parent).dict):
            setattr(entry, name, parent)
        else:
            ((column, _),) = relationship.local_remote_pairs
            setattr(entry, str(column.key), parent.id)  # type: ignore[attr-defined]
            # The flush looks the parent up (the entry's meeting): keep it in the session,
            # whose identity map holds objects weakly, so that it is not read again.
            session = object_session(parent)
            if session is not None:
                session.info.setdefault("cafebot_linked", []).append(parent)


_COUNTERS = {
    "A": "next_agenda_ref",
    "S": "next_shoutout_ref",
    "I": "next_intro_ref",
    "C": "next_checkin_ref",
}


def next_ref(session: Session, meeting: Meeting, kind: str) -> int:
    """The meeting's next reference of ``kind``; no two transactions get the same."""
    return take_numbers(session, meeting, _COUNTERS[kind])


@command(
    "checkin",
    aliases=("check-in", "hi"),
    examples=("checkin Ada Lovelace / @ada / Analytical Engines", "checkin"),
    max_text=MAX_NAME + MAX_AFFILIATION + 60,
    more_lines="none",
)
def checkin(ctx: Context, fields: str | None) -> Outcome:
    """Check in to the meeting: your name, GitHub handle and affiliation.

    The fields are remembered, so next time `checkin` alone is enough. Checking
    in again updates your entry. Leave a field out to keep what you gave before.
    """
    given = parse_checkin(fields)
    person = ctx.person
    # Someone from the imported notes archive with this handle: that is this person.
    linked = people.link_by_handle(ctx.session, person, given.github or person.github)
    first_time = not people.has_checked_in(ctx.session, person)
    name = given.name or person.name or person.zulip_name or ctx.message.sender_name
    github = given.github if given.github is not None else person.github
    affiliation = given.affiliation if given.affiliation is not None else person.affiliation
    if not name:
        raise UserError("Tell me your name: `checkin Ada Lovelace`.")
    person.name = name
    person.github = github
    person.affiliation = affiliation

    meeting = ctx.target_meeting()
    entry = ctx.session.scalar(
        select(CheckIn).where(CheckIn.meeting_id == meeting.id, CheckIn.person_id == person.id)
    )
    if entry is None:
        entry = CheckIn(
            ref=next_ref(ctx.session, meeting, "C"),
            message_id=ctx.message.id,
            created_at=ctx.now,
            name=name,
        )
        link(entry, meeting=meeting, person=person)
        ctx.session.add(entry)
    entry.name, entry.github, entry.affiliation = name, github, affiliation
    if linked is not None:
        return Outcome(
            reply=(
                f"Welcome back to the {ctx.series.name}, {one_line(name)}! The notes archive "
                f"has you as @{github} ({linked.describe()}): that history is yours now."
            ),
            reactions=("check",),
        )
    offer = people.link_offer(ctx.session, person, name, github) if first_time else None
    if offer is not None:
        return Outcome(
            reply=f"Welcome to the {ctx.series.name}, {one_line(name)}! {offer}",
            reactions=("check",),
        )
    if first_time:
        return Outcome(
            reply=(
                f"Welcome to the {ctx.series.name}, {one_line(name)}! "
                "First time here? Introduce yourself to everyone with `intro`, "
                "for example: `intro I maintain a plotting library and came to learn`."
            ),
            reactions=("check",),
        )
    return ACK


# ---------------------------------------------------------------- introductions


@command("intro", aliases=("introduce",), examples=("intro I maintain a small plotting library.",))
def intro(ctx: Context, text: str) -> Outcome:
    """Introduce yourself: a few sentences about who you are and what brings you.

    Introducing yourself again in the same meeting replaces what you wrote.
    """
    meeting = ctx.target_meeting()
    entry = ctx.session.scalar(
        select(Introduction).where(
            Introduction.meeting_id == meeting.id, Introduction.person_id == ctx.person.id
        )
    )
    if entry is None:
        entry = Introduction(
            ref=next_ref(ctx.session, meeting, "I"),
            message_id=ctx.message.id,
            created_at=ctx.now,
            text="",
        )
        link(entry, meeting=meeting, person=ctx.person)
        ctx.session.add(entry)
    entry.text = clean(text)
    return ACK


# ---------------------------------------------------------------- shout-outs


@command(
    "shoutout",
    aliases=("kudos", "celebrate", "shout-out"),
    examples=("shoutout [Jupyter Book] Site footers landed!", "kudos Thanks for the reviews!"),
)
def shoutout(ctx: Context, project: Project | None, text: str) -> Outcome:
    """Celebrate something great, optionally grouped under a project in [brackets]."""
    # "[]" or "[ ]" names no project; with nothing after it, nothing is celebrated.
    text = _EMPTY_PROJECT_RE.sub("", text, count=1)
    if not text.strip():
        raise UserError(
            "What should the shout-out say? Write it after the project, if you give one.",
            example="shoutout [Jupyter Book] Site footers landed!",
        )
    meeting = ctx.target_meeting()
    shout = ShoutOut(
        ref=next_ref(ctx.session, meeting, "S"),
        project=project.value if project else None,
        text=clean(text),
        message_id=ctx.message.id,
        created_at=ctx.now,
    )
    link(shout, meeting=meeting, author=ctx.person)
    ctx.session.add(shout)
    return ACK


# ---------------------------------------------------------------- agenda


def note_lines(lines: list[str]) -> list[str]:
    """The notes the lines after an agenda item's first make: one a line, and a bullet
    indented under another goes under that note (rendered one level deeper)."""
    notes: list[str] = []
    for depth, line in bullet_lines(lines):
        if not line.strip():
            continue
        if depth and notes:
            notes[-1] += "\n" + clean(line)
        else:
            notes.append(clean(line))
    return notes


def add_notes(
    ctx: Context,
    item: AgendaItem,
    kind: NoteKind,
    texts: list[str],
    owner: Person | None = None,
) -> list[ItemNote]:
    """Add notes after the item's last one (a stored item's notes are not read for it).

    Each gets the item's next sub-reference (its position): a number never given twice.
    """
    if not texts:
        return []
    added = []
    start = _take_note_refs(ctx.session, item, len(texts)) - 1
    for offset, text in enumerate(texts, start=1):
        note = ItemNote(
            kind=kind,
            text=text,
            position=start + offset,
            message_id=ctx.message.id,
            created_at=ctx.now,
        )
        link(note, item=item, author=ctx.person, owner=owner)
        ctx.session.add(note)
        added.append(note)
    return added


_LAST_NOTE = select(func.max(ItemNote.position)).where(ItemNote.item_id == bindparam("item_id"))


def _take_note_refs(session: Session, item: AgendaItem, count: int) -> int:
    """The first of ``count`` new sub-references under ``item``; none is given twice.

    After the item's last note as well, should its counter lag (a row restored from a
    backup made before the counter existed).
    """

    def last_note() -> int:
        if item.id is None:
            return max((n.position for n in item.notes), default=0)
        return session.scalar(_LAST_NOTE, {"item_id": item.id}) or 0

    return take_numbers(session, item, "next_note_ref", count, in_use=last_note)


@command(
    "agenda",
    aliases=("propose",),
    examples=("agenda 10m Release plans", "agenda (5-10 mins) Docs sprint", "agenda"),
    more_lines="notes",
    max_text=MAX_TOPIC,
)
def agenda(ctx: Context, estimate: Estimate | None, topic: str | None) -> Outcome:
    """Propose an agenda item with a time estimate, or (alone) list the agenda.

    Estimates: `5m`, `5 min`, `(10 mins)`, `10-15m`, `1h`, `1.5h`, `~20 min`,
    `half an hour`. Further lines of your message become the item's first notes.
    The bot reacts with a check mark; an hourglass beside it means the agenda now
    needs more time than the meeting has (`list` shows the total against the slot).
    """
    if topic is None:
        if estimate is not None:
            raise UserError("What is the topic? Put it after the estimate.")
        return Outcome(reply=listing(ctx, ctx.target_meeting()))
    meeting = ctx.target_meeting()
    # The agenda's end and length so far, without reading every item.
    last, booked = ctx.session.execute(_AGENDA_SO_FAR, {"meeting_id": meeting.id}).one()
    item = AgendaItem(
        ref=next_ref(ctx.session, meeting, "A"),
        topic=one_line(topic),
        estimate_min=estimate.low if estimate else None,
        estimate_max=estimate.high if estimate else None,
        position=(last or 0) + 1,
        message_id=ctx.message.id,
        created_at=ctx.now,
    )
    link(item, meeting=meeting, proposer=ctx.person)
    ctx.session.add(item)
    add_notes(ctx, item, NoteKind.NOTE, note_lines(ctx.more))
    low = (booked or 0) + (item.estimate_min or 0)
    slot = int(ctx.series.duration.total_seconds() // 60)
    if low > slot:
        # No message for a small change (one per proposal would flood the topic): a second
        # reaction says the agenda is now longer than the meeting; `list` shows by how much.
        return Outcome(reactions=("check", OVER_SLOT))
    return ACK


# The open items' last position and their total low estimate (see agenda.agenda_total).
_AGENDA_SO_FAR = select(
    func.max(AgendaItem.position), func.coalesce(func.sum(AgendaItem.estimate_min), 0)
).where(AgendaItem.meeting_id == bindparam("meeting_id"), AgendaItem.moved_to.is_(None))


# ---------------------------------------------------------------- edit and remove


@command(
    "edit",
    who=Who.OWNER,
    examples=(
        "edit A2 15m Release plans for 5.0",
        "edit S1 [Jupyter Book] Site footers landed!",
        "edit C1 Ada / @ada / Engines",
        "edit A2.1 The release is planned for June",
    ),
)
def edit(ctx: Context, ref: Ref, text: str) -> Outcome:
    """Change an entry: give its reference and the new text in the entry's own form.

    Agenda items take `[estimate] topic` (leave out the estimate to keep it),
    shout-outs `[Project] text`, check-ins `Name / @handle / Affiliation`,
    introductions their text. A note, decision or action under an agenda item
    takes its sub-reference (`edit A2.1 Ship in June`, as `list` shows it) and
    its new text; an action may name a new owner first (`edit A2.3 @**Bob** …`).
    """
    if ref.note is not None:
        found = note_for(ctx, ref)
        ctx.require_owner(found, "edit")
        _edit_note(ctx, found, ref, text)
        return ACK
    entry = ctx.find(ref)
    ctx.require_owner(entry, "edit")
    update_entry(ctx, entry, text)
    return ACK


def update_entry(ctx: Context, entry: Entry, text: str, *, whole: bool = False) -> None:
    """Change ``entry`` in place from ``text`` in the entry's own form (what `edit` takes).

    With ``whole`` the text is the entry's complete new form (a user edited the
    message that made it): an agenda item's estimate and a shout-out's project
    that the text leaves out are cleared instead of kept.
    """
    if isinstance(entry, AgendaItem):
        try:
            estimate, rest = Estimate.consume(text)
        except InvalidValue as exc:
            # Read as `agenda` reads it: meant as an estimate, and not a usable one.
            raise UserError(f"{exc}.", example=f"edit A{entry.ref} 15m {entry.topic}") from None
        except ConversionError:
            estimate, rest = None, text
        if estimate is not None or whole:
            entry.estimate_min = estimate.low if estimate else None
            entry.estimate_max = estimate.high if estimate else None
        if rest.strip():
            if len(one_line(rest)) > MAX_TOPIC:
                raise UserError(f"A topic can be at most {MAX_TOPIC} characters.")
            entry.topic = one_line(rest.split("\n")[0])
        elif whole:
            raise UserError("What is the topic? Put it after the estimate.")
    elif isinstance(entry, ShoutOut):
        try:
            project, rest = Project.consume(text)
        except ConversionError:
            project, rest = None, _EMPTY_PROJECT_RE.sub("", text, count=1)
        if not rest.strip():
            raise UserError("What should the shout-out say?", example="edit S1 [Quill] New docs!")
        entry.project = project.value if project else (None if whole else entry.project)
        entry.text = clean(rest)
    elif isinstance(entry, Introduction):
        if not text.strip():
            raise UserError("What should your introduction say?")
        entry.text = clean(text)
    else:
        given = parse_checkin(text)
        entry.name = given.name or entry.name
        if given.github is not None:
            entry.github = given.github
        if given.affiliation is not None:
            entry.affiliation = given.affiliation
        if entry.person_id == ctx.person.id:  # your own check-in: remember the new fields
            ctx.person.name = entry.name
            ctx.person.github = entry.github
            ctx.person.affiliation = entry.affiliation


def note_for(ctx: Context, ref: Ref) -> ItemNote:
    """The note, decision or action a sub-reference (``A2.1``) names, or a clear error."""
    item = agenda_item_for(ctx, ref.item)
    found = next((n for n in item.notes if n.position == ref.note), None)
    if found is None:
        have = ", ".join(f"A{item.ref}.{n.position}" for n in item.notes) or "none yet"
        raise UserError(
            f"There is no {ref.label} under A{item.ref} of {item.meeting.date} "
            f"(its notes: {have}). `list` shows the references.",
            show_usage=False,
            example="list",
        )
    return found


def _edit_note(ctx: Context, note: ItemNote, ref: Ref, text: str) -> None:
    owner: Mention | None = None
    if note.kind is NoteKind.ACTION:
        try:
            owner, text = Mention.consume(text)
        except ConversionError:
            owner = None
    new = clean(text)
    if not new:
        raise UserError(
            f"What should the {note.kind.value} say? {ref.label} stays as it was.",
            example=f"edit {ref.label} The release is planned for June",
        )
    note.text = new
    if owner is not None:
        note.owner = people.for_mention(ctx.session, owner, ctx.now)
    if note.action is not None:
        action_notes.follow_note(note)


@command("remove", aliases=("delete", "rm"), who=Who.OWNER, examples=("remove A2", "remove A2.1"))
def remove(ctx: Context, ref: Ref) -> Outcome:
    """Delete an entry, or a note, decision or action by its sub-reference (`A2.1`).

    Its reference is not given to another entry.
    """
    if ref.note is not None:
        found = note_for(ctx, ref)
        ctx.require_owner(found, "remove")
        gone = found.action
        found.item.notes.remove(found)
        if gone is not None:
            ctx.session.delete(gone)  # and, with it, its notes in every meeting
        return ACK
    entry: Entry = ctx.find(ref)
    ctx.require_owner(entry, "remove")
    meeting = entry.meeting
    ctx.session.delete(entry)
    # An agenda item's neighbours keep their positions: only their order counts.
    if isinstance(entry, AgendaItem) and meeting.current_item_ref == entry.ref:
        meeting.current_item_ref = None
    return ACK


# ---------------------------------------------------------------- order and deferral


def agenda_item_for(ctx: Context, ref: Ref) -> AgendaItem:
    if ref.kind != "A":
        raise UserError(f"{ref} is not an agenda item; agenda items are A1, A2 …")
    entry = ctx.find(ref)
    assert isinstance(entry, AgendaItem)  # noqa: S101 - find() returns the model of the kind
    return entry


@command("move", who=Who.OWNER, examples=("move A3 1", "move A1 last"))
def move(ctx: Context, ref: Ref, position: Position) -> Outcome:
    """Move an agenda item to a position in the agenda (1 is the top)."""
    item = agenda_item_for(ctx, ref)
    ctx.require_owner(item, "move")
    if item.moved_to is not None:
        raise UserError(f"{ref} has moved to the meeting of {item.moved_to}; move it there.")
    items = [i for i in open_items(item.meeting) if i is not item]
    index = min(position.value, len(items) + 1) - 1
    items.insert(index, item)
    renumber(items)
    return ACK


@command("defer", aliases=("postpone",), who=Who.OWNER, examples=("defer A2",))
def defer(ctx: Context, ref: Ref) -> Outcome:
    """Push an agenda item to the following meeting, with its estimate and notes."""
    from cafebot.cafe import meetings

    item = agenda_item_for(ctx, ref)
    ctx.require_owner(item, "defer")
    if item.moved_to is not None:
        raise UserError(f"{ref} has already moved to the meeting of {item.moved_to}.")
    source = item.meeting
    later = meetings.following(ctx.session, ctx.series, ctx.series_row, source.starts_at)
    copy = carry(item, later, ctx.session, ctx.now)
    item.state = ItemState.DEFERRED
    item.moved_to = later.date
    if source.current_item_ref == item.ref:
        source.current_item_ref = None
    renumber(open_items(source))
    return Outcome(
        reply=f"Moved {ref.label} to the meeting of {later.date.isoformat()} as A{copy.ref}.",
        reactions=("check",),
    )


def carry(item: AgendaItem, meeting: Meeting, session: Session, now: dt.datetime) -> AgendaItem:
    """Copy ``item`` with its notes into ``meeting``, marked as carried over."""
    copy = AgendaItem(
        meeting=meeting,
        proposer=item.proposer,
        ref=next_ref(session, meeting, "A"),
        topic=item.topic,
        estimate_min=item.estimate_min,
        estimate_max=item.estimate_max,
        position=max((i.position for i in open_items(meeting)), default=0) + 1,
        carried_from=item.meeting.date,
        next_note_ref=item.next_note_ref,  # the notes keep their sub-references
        message_id=None,
        created_at=now,
    )
    session.add(copy)
    for note in item.notes:
        copy.notes.append(
            ItemNote(
                kind=note.kind,
                text=note.text,
                position=note.position,
                author_id=note.author_id,
                owner_id=note.owner_id,
                action_id=note.action_id,  # the same action (its T reference) follows
                message_id=None,
                created_at=note.created_at,
            )
        )
    return copy


# ---------------------------------------------------------------- notes under an item


def note_target(ctx: Context, ref: Ref | None, word: str) -> AgendaItem:
    if ref is not None:
        return agenda_item_for(ctx, ref)
    for meeting in ctx.working_meetings():
        if meeting.state is MeetingState.LIVE and meeting.current_item_ref is not None:
            entry = ctx.session.scalar(
                select(AgendaItem).where(
                    AgendaItem.meeting_id == meeting.id,
                    AgendaItem.ref == meeting.current_item_ref,
                )
            )
            if entry is not None:
                return entry
    raise UserError(
        f"Which agenda item is this for? Give its reference: `{word} A1 …` (`list` shows them).",
        example=f"{word} A1 We agreed to try it for a month",
    )


def _record(
    ctx: Context, ref: Ref | None, kind: NoteKind, text: str, owner: Mention | None
) -> Outcome:
    item = note_target(ctx, ref, kind.value)
    note_text = clean(text)
    if not note_text:
        raise UserError(f"What should the {kind.value} say?")
    who = people.for_mention(ctx.session, owner, ctx.now) if owner is not None else None
    add_notes(ctx, item, kind, [note_text], owner=who)
    if item.meeting.state is MeetingState.LIVE:
        item.reached = True
    return ACK


@command("note", examples=("note A2 The release is planned for May",))
def note(ctx: Context, ref: Ref | None, text: str) -> Outcome:
    """Record a note under an agenda item (in a live meeting: the current item by default)."""
    return _record(ctx, ref, NoteKind.NOTE, text, None)


@command("decision", aliases=("decide", "decided"), examples=("decision A2 Ship 5.0 on 1 May",))
def decision(ctx: Context, ref: Ref | None, text: str) -> Outcome:
    """Record a decision under an agenda item."""
    return _record(ctx, ref, NoteKind.DECISION, text, None)
