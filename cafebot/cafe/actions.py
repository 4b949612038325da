"""Action items that follow up across meetings: record, list, close, reopen, drop, assign.

An action is recorded under an agenda item (``action A2 @**Bob** write the notes``)
as a note of kind action *and* a record of its own (:class:`Action`), with the
series' reference ``T<number>``. The note shows it in the meeting's notes (and moves
with its item); the record carries its owner, status and due date from meeting to
meeting. The storage side is :mod:`cafebot.storage.actions`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import ClassVar, Self

from sqlalchemy.orm import Session

from cafebot.cafe import meetings, people
from cafebot.cafe.action_notes import EXAMPLE, parse_due
from cafebot.cafe.context import Context
from cafebot.cafe.entries import add_notes, note_for, note_target
from cafebot.commands.converters import ConversionError, InvalidValue, MeetingDate, Mention, Ref
from cafebot.commands.errors import PermissionDenied, UserError
from cafebot.commands.registry import ACK, Outcome, Who, command
from cafebot.core.config import SeriesSettings
from cafebot.core.text import clean, fragment, one_line
from cafebot.storage import actions as store
from cafebot.storage.models import (
    Action,
    ActionStatus,
    Meeting,
    MeetingState,
    NoteKind,
    Person,
    Series,
)

GROUP = "Actions"
_ACTION_REF_RE = re.compile(r"^#?T(?P<num>\d{1,9})$", re.I)
# ---------------------------------------------------------------- references


@dataclass(frozen=True)
class ActionRef:
    """An action: its series reference ``T3``, or the sub-reference of its note (``A2.3``,
    ``2031-06-17/A2.3`` for another meeting's)."""

    number: int | None = None
    note: Ref | None = None

    name: ClassVar[str] = "action"
    example: ClassVar[str] = "T3"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, _, rest = text.strip().partition(" ")
        if m := _ACTION_REF_RE.match(word):
            return cls(number=int(m.group("num"))), rest.lstrip()
        try:
            ref, rest = Ref.consume(text)
        except ConversionError:
            raise ConversionError(
                f"'{one_line(word)[:40]}' is not an action: give its reference, like `T3` "
                "(`actions` lists them), or its place under an agenda item, like `A2.3`"
            ) from None
        if ref.note is None:
            raise InvalidValue(
                f"{ref} is an agenda item, not an action: give the action's reference, "
                "like `T3` (`actions` lists them), or its sub-reference, like `A2.3`"
            )
        return cls(note=ref), rest

    def __str__(self) -> str:
        return f"T{self.number}" if self.number is not None else str(self.note)


def find(ctx: Context, ref: ActionRef) -> Action:
    """The action a reference names, or a clear error."""
    if ref.note is not None:
        note = note_for(ctx, ref.note)
        if note.action is None:
            raise UserError(
                f"{ref.note.label} is a {note.kind.value}, not an action.",
                show_usage=False,
                example="actions",
            )
        return note.action
    assert ref.number is not None  # noqa: S101 - one of the two is always set
    action = store.by_number(ctx.session, ctx.series_row.id, ref.number)
    if action is None:
        raise UserError(
            f"{ctx.series.name} has no action T{ref.number}. `actions all` lists them all.",
            show_usage=False,
            example="actions all",
        )
    return action


def may_change(ctx: Context, action: Action) -> bool:
    return ctx.is_organizer or ctx.person.id in (action.owner_id, action.author_id)


def require_may_change(ctx: Context, action: Action, verb: str) -> None:
    """Refuse unless the sender owns or wrote ``action``, or organises the series."""
    if may_change(ctx, action):
        return
    who = []
    if action.owner is not None and action.owner_id == action.author_id:
        who.append(f"its author ({action.owner.display_name}), who owns it,")
    elif action.owner is not None:
        who.append(f"its owner ({action.owner.display_name})")
    if action.author is not None and action.author_id != action.owner_id:
        who.append(f"its author ({action.author.display_name})")
    organiser = f"an organiser of {ctx.series.name}"
    allowed = f"{', '.join(who)} or {organiser}" if who else organiser
    raise PermissionDenied(f"You can't {verb} {action.label}: only {allowed} may.")


# ---------------------------------------------------------------- recording


@command(
    "action",
    aliases=("todo",),
    examples=(
        "action A2 @**Ada Lovelace** write the release notes",
        "action A2 Book the room by 2031-07-01",
    ),
    group=GROUP,
)
def action(ctx: Context, ref: Ref | None, owner: Mention | None, text: str) -> Outcome:
    """Record an action item under an agenda item: who will do it, and what.

    The owner is the person you mention first, else you. It is due at the next
    meeting, or by the date you end it with (`by 2031-07-01`). The action gets a
    reference of its own, `T1`, `T2` …, that stays with it from meeting to meeting:
    `close T1` when it is done (see `help close`), and `actions` lists the open ones.
    """
    item = note_target(ctx, ref, "action")
    body, due = parse_due(clean(text))
    if not body:
        raise UserError("What should the action say?", example=EXAMPLE)
    who = people.for_mention(ctx.session, owner, ctx.now) if owner is not None else None
    (note,) = add_notes(ctx, item, NoteKind.ACTION, [clean(text)], owner=who)
    if item.meeting.state is MeetingState.LIVE:
        item.reached = True
    record = store.create(
        ctx.session,
        ctx.series_row,
        item.meeting,
        body,
        created_at=ctx.now,
        owner_id=(who or ctx.person).id,
        author_id=ctx.person.id,
        message_id=ctx.message.id,
        item_ref=item.ref,
        note_ref=note.position,
        due_on=due,
    )
    note.action = record
    return ACK


# ---------------------------------------------------------------- changing status


def _change(ctx: Context, ref: ActionRef, status: ActionStatus, verb: str) -> Outcome:
    action = find(ctx, ref)
    require_may_change(ctx, action, verb)
    if action.status is status:
        when = f" on {action.status_at.date()}" if action.status_at else ""
        by = f" by {action.status_by.display_name}" if action.status_by else ""
        raise UserError(
            f"{action.label} is already {status.value}{by}{when}.",
            show_usage=False,
            example="actions all",
        )
    store.set_status(action, status, by_id=ctx.person.id, at=ctx.now)
    return ACK


@command(
    "close",
    aliases=("complete", "finished"),
    who=Who.OWNER,
    examples=("close T3", "close A2.3"),
    group=GROUP,
)
def close(ctx: Context, ref: ActionRef) -> Outcome:
    """Mark an action done (by its reference `T3`, or its sub-reference `A2.3`).

    Its owner, its author or an organiser may. (`done`, in a live meeting, closes the
    current agenda item instead.) `reopen T3` undoes it.
    """
    return _change(ctx, ref, ActionStatus.DONE, "close")


@command("reopen", who=Who.OWNER, examples=("reopen T3",), group=GROUP)
def reopen(ctx: Context, ref: ActionRef) -> Outcome:
    """Open a closed or dropped action again: it is followed up as before."""
    return _change(ctx, ref, ActionStatus.OPEN, "reopen")


@command("drop", aliases=("abandon",), who=Who.OWNER, examples=("drop T3",), group=GROUP)
def drop(ctx: Context, ref: ActionRef) -> Outcome:
    """Drop an action that will not be done: it is no longer followed up (`reopen` undoes it)."""
    return _change(ctx, ref, ActionStatus.DROPPED, "drop")


@command(
    "assign",
    aliases=("reassign",),
    who=Who.OWNER,
    examples=("assign T3 @**Bob Builder**",),
    group=GROUP,
)
def assign(ctx: Context, ref: ActionRef, owner: Mention) -> Outcome:
    """Give an action to someone else: they are followed up from now on."""
    action = find(ctx, ref)
    require_may_change(ctx, action, "reassign")
    person = people.for_mention(ctx.session, owner, ctx.now)
    action.owner = person
    for note in action.notes:
        note.owner = person
    return Outcome(
        reply=f"{action.label} is now {fragment(person.display_name)}'s.", reactions=("check",)
    )


@dataclass(frozen=True)
class DueDate:
    """A due date (``2031-07-01``), or ``next`` for the next meeting."""

    date: dt.date | None

    name: ClassVar[str] = "date|next"
    example: ClassVar[str] = "2031-07-01"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, _, rest = text.strip().partition(" ")
        if word.lower() in ("next", "none", "meeting"):
            return cls(None), rest.lstrip()
        value, rest = MeetingDate.consume(text)
        return cls(value.date), rest


@command("due", who=Who.OWNER, examples=("due T3 2031-07-01", "due T3 next"), group=GROUP)
def due(ctx: Context, ref: ActionRef, when: DueDate) -> Outcome:
    """Set when an action is due: a date, or `next` for the next meeting after its own."""
    action = find(ctx, ref)
    require_may_change(ctx, action, "change the due date of")
    action.due_on = when.date
    return Outcome(reply=f"{action.label} is {_due_words(ctx, action)}.", reactions=("check",))


# ---------------------------------------------------------------- reading


@dataclass
class Dues:
    """When actions are due, with the meeting after each action's own found once."""

    session: Session
    series: SeriesSettings
    row: Series
    _after: dict[int, Meeting | None] = field(default_factory=dict)

    @classmethod
    def of(cls, ctx: Context) -> Dues:
        return cls(ctx.session, ctx.series, ctx.series_row)

    def meeting_after(self, action: Action) -> Meeting | None:
        if action.meeting_id not in self._after:
            try:
                found: Meeting | None = meetings.following(
                    self.session, self.series, self.row, action.meeting.starts_at
                )
            except LookupError:
                found = None
            self._after[action.meeting_id] = found
        return self._after[action.meeting_id]

    def overdue(self, action: Action, now: dt.datetime) -> bool:
        if not action.is_open:
            return False
        if action.due_on is not None:
            return now.astimezone(self.series.tz).date() > action.due_on
        after = self.meeting_after(action)
        return after is not None and now >= (after.ended_at or after.ends_at)

    def words(self, action: Action) -> str:
        if action.due_on is not None:
            return f"due by {action.due_on.isoformat()}"
        after = self.meeting_after(action)
        return f"due at the meeting of {after.date}" if after else "due at the next meeting"


def _due_words(ctx: Context, action: Action) -> str:
    return Dues.of(ctx).words(action)


def age(created: dt.datetime, now: dt.datetime) -> str:
    days = (now - created).days
    if days < 1:
        return "new today"
    if days < 14:
        return f"{days} day{'s' if days != 1 else ''} old"
    if days < 61:
        return f"{days // 7} weeks old"
    return f"{days // 30} months old"


def describe(ctx: Context, action: Action, dues: Dues, *, commands: bool = True) -> str:
    """One line about an action: reference, text, owner, origin, age and whether overdue."""
    owner = action.owner.display_name if action.owner else "nobody"
    origin = f"from {action.meeting.date}"
    if action.item_ref is not None and action.note_ref is not None:
        origin += f" (A{action.item_ref}.{action.note_ref})"
    parts = [f"**{action.label}** {_short(action.text)} — {fragment(owner)}", origin]
    if action.is_open:
        parts.append(age(action.created_at, ctx.now))
        overdue = dues.overdue(action, ctx.now)
        parts.append(("**overdue**, " if overdue else "") + dues.words(action))
        if commands:
            parts.append(f"`close {action.label}`")
    else:
        by = f" by {fragment(action.status_by.display_name)}" if action.status_by else ""
        when = f" on {action.status_at.date()}" if action.status_at else ""
        parts.append(f"{action.status.value}{by}{when}")
    return " · ".join(parts)


def _short(text: str, limit: int = 160) -> str:
    flat = one_line(text)
    return fragment(flat if len(flat) <= limit else flat[: limit - 1] + "…")


@command(
    "actions",
    aliases=("todos",),
    examples=("actions", "actions mine", "actions @**Bob Builder**", "actions all"),
    group=GROUP,
)
def actions(ctx: Context, which: str | None) -> Outcome:
    """List the open actions of every meeting of the series, oldest first.

    Each shows the meeting it comes from, its owner, its age and whether it is
    overdue. `actions mine` shows yours, `actions @**Bob Builder**` someone's, and
    `actions all` closed and dropped ones too (`actions all mine` combines them).
    """
    show_all, owner = _filters(ctx, which or "")
    statuses = None if show_all else (ActionStatus.OPEN,)
    found = store.listing(
        ctx.session,
        ctx.series_row.id,
        statuses=statuses,
        owner_id=owner.id if owner is not None else None,
    )
    whose = f" of {fragment(owner.display_name)}" if owner is not None else ""
    kind = "Actions" if show_all else "Open actions"
    if not found:
        none = "no actions" if show_all else "no open actions"
        return Outcome(
            reply=f"{ctx.series.name} has {none}{whose}. Record one under an agenda "
            f"item: `{EXAMPLE}`"
        )
    dues = Dues.of(ctx)
    lines = [f"**{kind}{whose} · {fragment(ctx.series.name)}** ({len(found)}, oldest first)"]
    lines += [f"- {describe(ctx, a, dues)}" for a in found]
    return Outcome(reply="\n".join(lines))


def _filters(ctx: Context, text: str) -> tuple[bool, Person | None]:
    show_all, owner, rest = False, None, text.strip()
    while rest:
        word, _, after = rest.partition(" ")
        if word.lower() == "all":
            show_all, rest = True, after.strip()
        elif word.lower() in ("mine", "my", "me"):
            owner, rest = ctx.person, after.strip()
        elif rest.startswith("@"):
            try:
                mention, rest = Mention.consume(rest)
            except ConversionError as exc:
                raise UserError(f"{exc}.", example="actions @**Bob Builder**") from None
            owner = people.for_mention(ctx.session, mention, ctx.now)
        else:
            raise UserError(
                f"`actions` takes `mine`, `all` or a mention, not '{one_line(word)[:40]}'.",
                example="actions mine",
            )
    return show_all, owner


def earlier_open(session: Session, row: Series, meeting: Meeting) -> list[Action]:
    """The open actions recorded at meetings before ``meeting``, oldest first."""
    return [
        a
        for a in store.listing(session, row.id)
        if a.meeting_id != meeting.id and a.meeting.starts_at < meeting.starts_at
    ]


REVIEW_SHOWN = 15


def review(ctx: Context, meeting: Meeting) -> list[str]:
    """What `start` says about the actions still open from earlier meetings."""
    found = earlier_open(ctx.session, ctx.series_row, meeting)
    if not found:
        return []
    dues = Dues.of(ctx)
    lines = [f"**Open actions from earlier meetings** ({len(found)}):"]
    lines += [f"- {describe(ctx, a, dues)}" for a in found[:REVIEW_SHOWN]]
    if len(found) > REVIEW_SHOWN:
        lines.append(f"- … and {len(found) - REVIEW_SHOWN} more: `actions` lists them all.")
    return lines
