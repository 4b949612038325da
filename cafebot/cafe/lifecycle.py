"""The meeting lifecycle: running a meeting live, ending it with roll-over, changing the schedule.

upcoming -> current (scheduled start, or ``start``) -> ended (``end`` or the
scheduled end) -> published. Organisers run a live meeting with ``start``,
``goto``, ``done`` and ``end``; anyone may ask ``now``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import re
import typing
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, Self

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cafebot.cafe import actions, meetings
from cafebot.cafe.agenda import item_line, open_items, renumber
from cafebot.cafe.context import ENTRY_TYPES, Context, Entry
from cafebot.cafe.entries import agenda_item_for, carry, next_ref
from cafebot.commands.converters import (
    ConversionError,
    Keyword,
    MeetingDate,
    Ref,
    TimeOfDay,
    format_estimate,
)
from cafebot.commands.errors import UserError
from cafebot.commands.registry import Outcome, Who, command
from cafebot.core.config import SeriesSettings
from cafebot.core.text import inline, one_line, zulip_time
from cafebot.storage.models import (
    AgendaItem,
    CancelMove,
    CheckIn,
    Introduction,
    ItemState,
    Meeting,
    MeetingState,
    Series,
    ShoutOut,
)

if TYPE_CHECKING:
    from cafebot.core.chat import Chat
    from cafebot.core.services import Services

log = logging.getLogger("cafebot.lifecycle")


def minutes(delta: dt.timedelta) -> int:
    return max(0, round(delta.total_seconds() / 60))


def effective_end(meeting: Meeting) -> dt.datetime:
    """When the meeting ended (or ends): an organiser's ``end``, else its scheduled end."""
    return meeting.ended_at or meeting.ends_at


def live_end(meeting: Meeting) -> dt.datetime:
    """When a live meeting's time is up: a meeting started early keeps its slot's length,
    counted from its actual start; one started late still ends at its scheduled end."""
    if meeting.started_at is None:
        return meeting.ends_at
    return min(meeting.ends_at, meeting.started_at + (meeting.ends_at - meeting.starts_at))


def until(delta: dt.timedelta) -> str:
    """A wait in words: ``9 days``, ``3 h 20 min``, ``45 min``."""
    if delta >= dt.timedelta(days=2):
        return f"{delta.days} days"
    hours, mins = divmod(minutes(delta), 60)
    return f"{hours} h {mins} min" if hours else f"{mins} min"


# ---------------------------------------------------------------- domain


def current_item(meeting: Meeting) -> AgendaItem | None:
    if meeting.current_item_ref is None:
        return None
    return next((i for i in meeting.agenda_items if i.ref == meeting.current_item_ref), None)


def next_open_item(meeting: Meeting, after: AgendaItem | None) -> AgendaItem | None:
    """The next open item after ``after`` in agenda order, else the first open one before it."""
    items = [i for i in open_items(meeting) if i.state is ItemState.OPEN and i is not after]
    if after is not None:
        later = [i for i in items if (i.position, i.ref) > (after.position, after.ref)]
        if later:
            return later[0]
    return items[0] if items else None


def set_current(meeting: Meeting, item: AgendaItem | None, now: dt.datetime) -> None:
    meeting.current_item_ref = item.ref if item is not None else None
    meeting.current_item_since = now if item is not None else None


def end_meeting(
    session: Session, series: SeriesSettings, row: Series, meeting: Meeting, now: dt.datetime
) -> tuple[list[tuple[AgendaItem, AgendaItem]], Meeting | None]:
    """End ``meeting``. If it was run live, carry its unreached items to the next meeting.

    Returns each carried item with its copy, and the meeting the copies went to.
    """
    was_live = meeting.started_at is not None
    meeting.state = MeetingState.ENDED
    meeting.ended_at = min(now, live_end(meeting))  # a late clean-up keeps the scheduled end
    set_current(meeting, None, now)
    if not was_live:
        return [], None
    unreached = [i for i in open_items(meeting) if i.state is ItemState.OPEN and not i.reached]
    if not unreached:
        return [], None
    later = meetings.following(session, series, row, meeting.starts_at)
    copies = []
    for item in unreached:
        copies.append((item, carry(item, later, session, now)))
        item.state = ItemState.CARRIED_OVER
        item.moved_to = later.date
    return copies, later


def fingerprint(entry: Entry) -> str:
    """What an entry says (and, for an agenda item, its state and notes), as a digest:
    an entry whose digest has changed since a cancel moved it was touched since."""
    if isinstance(entry, AgendaItem):
        notes = [(n.position, n.kind.value, n.text, n.owner_id) for n in entry.notes]
        content: list[object] = [
            entry.topic,
            entry.estimate_min,
            entry.estimate_max,
            entry.state.value,
            str(entry.moved_to),
            entry.reached,
            notes,
        ]
    elif isinstance(entry, ShoutOut):
        content = [entry.project, entry.text]
    elif isinstance(entry, Introduction):
        content = [entry.text]
    else:
        content = [entry.name, entry.github, entry.affiliation]
    return hashlib.sha256(json.dumps(content).encode()).hexdigest()


def _record_move(
    session: Session,
    kind: str,
    entry: Entry,
    source: Meeting,
    target: Meeting,
    old_ref: int,
    now: dt.datetime,
    old_position: int | None = None,
    old_carried_from: dt.date | None = None,
) -> None:
    session.flush()  # the entry's new place and the target meeting have their ids
    session.add(
        CancelMove(
            meeting_id=source.id,
            target_id=target.id,
            kind=kind,
            entry_id=entry.id,
            old_ref=old_ref,
            new_ref=entry.ref,
            old_position=old_position,
            old_carried_from=old_carried_from,
            fingerprint=fingerprint(entry),
            moved_at=now,
        )
    )


def move_entries(session: Session, source: Meeting, target: Meeting, now: dt.datetime) -> int:
    """Move every entry of a cancelled meeting to ``target``; they get new references there.

    Each move is recorded (:class:`CancelMove`), so that ``uncancel`` can undo it.
    """
    moved = 0
    entries: list[CheckIn | Introduction | ShoutOut] = [
        *source.checkins,
        *source.introductions,
        *source.shoutouts,
    ]
    for entry in entries:
        kind = (
            "C" if isinstance(entry, CheckIn) else "I" if isinstance(entry, Introduction) else "S"
        )
        duplicate = None
        if isinstance(entry, CheckIn | Introduction):
            model = type(entry)
            duplicate = session.scalar(
                select(model).where(
                    model.meeting_id == target.id, model.person_id == entry.person_id
                )
            )
        if duplicate is not None:  # already there: the later entry stands
            session.delete(entry)
            continue
        old_ref = entry.ref
        entry.ref = next_ref(session, target, kind)
        entry.meeting = target
        _record_move(session, kind, entry, source, target, old_ref, now)
        moved += 1
    for item in open_items(source):
        old_ref, old_position, old_carried_from = item.ref, item.position, item.carried_from
        # Both read the target (a query flushes): before the item changes, so that no
        # flush sees it with the target's next reference still in the cancelled meeting.
        ref = next_ref(session, target, "A")
        position = max((i.position for i in open_items(target)), default=0) + 1
        item.meeting = target
        item.ref, item.position = ref, position
        if item.carried_from is None:
            item.carried_from = source.date
        _record_move(
            session, "A", item, source, target, old_ref, now, old_position, old_carried_from
        )
        moved += 1
    renumber(open_items(target))
    return moved


def move_back(session: Session, meeting: Meeting) -> tuple[list[str], list[str]]:
    """Undo what cancelling ``meeting`` moved, for each entry still untouched.

    An entry is untouched while it is in the meeting it was moved to, under the
    reference it got there, saying what it said then. Returns what moved back
    (``D/A3 → A1``) and what stayed because it was touched since.
    """
    back: list[str] = []
    stayed: list[str] = []
    records = session.scalars(
        select(CancelMove)
        .where(CancelMove.meeting_id == meeting.id)
        .order_by(CancelMove.kind, CancelMove.old_ref)
    ).all()
    targets: set[Meeting] = set()
    for record in records:
        target = session.get(Meeting, record.target_id)
        model = ENTRY_TYPES[record.kind]
        entry = typing.cast(Entry | None, session.get(model, record.entry_id))
        where = f"{target.date}/{record.kind}{record.new_ref}" if target else "?"
        if (
            target is None
            or entry is None
            or entry.meeting_id != record.target_id
            or entry.ref != record.new_ref
            or fingerprint(entry) != record.fingerprint
        ):
            if entry is not None:
                stayed.append(f"{where} (was {record.kind}{record.old_ref})")
            continue
        taken = session.scalar(
            select(model).where(model.meeting_id == meeting.id, model.ref == record.old_ref)
        )
        ref = record.old_ref if taken is None else next_ref(session, meeting, record.kind)
        entry.meeting = meeting
        entry.ref = ref
        if isinstance(entry, AgendaItem):
            entry.position = record.old_position or 0
            entry.carried_from = record.old_carried_from
        targets.add(target)
        back.append(f"{where} → {record.kind}{ref}")
    session.execute(delete(CancelMove).where(CancelMove.meeting_id == meeting.id))
    session.flush()
    for changed in (meeting, *targets):
        session.refresh(changed)
        renumber(open_items(changed))
    return back, stayed


# ---------------------------------------------------------------- the live meeting


def _live(ctx: Context) -> Meeting:
    for meeting in ctx.working_meetings():
        if meeting.state is MeetingState.LIVE:
            return meeting
    raise UserError(
        f"No {ctx.series.name} is running live. An organiser starts it with `start`.",
        show_usage=False,
        example="start",
    )


def _current_line(ctx: Context, meeting: Meeting) -> str:
    item = current_item(meeting)
    if item is None:
        return "There is no current item: every agenda item is closed."
    return f"Now: **{item_line(item)}**"


@dataclass(frozen=True)
class StartWhen:
    """``now`` (whenever the meeting is scheduled), or the date of the meeting to start."""

    date: dt.date | None = None

    name: ClassVar[str] = "now|date"
    example: ClassVar[str] = "now"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, _, rest = text.strip().partition(" ")
        if word.lower() == "now":
            return cls(), rest.lstrip()
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", word):
            raise ConversionError(
                f"'{word[:40]}' is not `now` or a meeting's date: write `start now` "
                "or `start 2031-06-17`"
            )
        return cls(MeetingDate.consume(word)[0].date), rest.lstrip()


@command(
    "start",
    who=Who.ORGANIZER,
    examples=("start", "start now", "start 2031-06-17"),
    group="Running a meeting",
)
def start(ctx: Context, when: StartWhen | None) -> Outcome:
    """Start the current (or next) meeting and run it live, item by item.

    Plain `start` works from `start_margin` (30 min by default) before the
    scheduled start; earlier, `start now` or `start <date of the meeting>`
    starts it anyway. A meeting started early keeps its length: `now` counts
    the time left from the actual start.
    """
    meeting = ctx.target_meeting()
    if meeting.state is MeetingState.LIVE:
        raise UserError(
            f"The meeting of {meeting.date} is already running.", show_usage=False, example="now"
        )
    if when is not None and when.date is not None and when.date != meeting.date:
        raise UserError(
            f"`start` starts the current or next meeting, which is that of {meeting.date}, "
            f"not {when.date}.",
            show_usage=False,
            example=f"start {meeting.date}",
        )
    early = meeting.starts_at - ctx.now
    if when is None and early > ctx.series.start_margin:
        raise UserError(
            f"The next {inline(ctx.series.name)} is on {meeting.date}, "
            f"{zulip_time(meeting.starts_at)}: in {until(early)}. `start` starts a meeting "
            f"from {minutes(ctx.series.start_margin)} min before its start; to start it now "
            f"anyway, say `start now` (or `start {meeting.date}`).",
            show_usage=False,
            example="start now",
        )
    meeting.state = MeetingState.LIVE
    meeting.started_at = ctx.now
    meeting.ended_at = None
    first = next_open_item(meeting, None)
    set_current(meeting, first, ctx.now)
    lines = [f"The {inline(ctx.series.name)} of {meeting.date} has started."]
    if first is not None:
        lines.append(f"First item: **{item_line(first)}**")
        lines.append("`done` closes it and moves on; `note`, `decision` and `action` go under it.")
    else:
        lines.append("The agenda is empty: add items with `agenda 10m Topic`.")
    review = actions.review(ctx, meeting)
    if review:
        lines += ["", *review]
    return Outcome(reply="\n".join(lines), replan=True)


@command(
    "goto", aliases=("go",), who=Who.ORGANIZER, examples=("goto A3",), group="Running a meeting"
)
def goto(ctx: Context, ref: Ref) -> Outcome:
    """Jump to an agenda item of the live meeting."""
    meeting = _live(ctx)
    item = agenda_item_for(ctx, ref)
    if item.meeting_id != meeting.id:
        raise UserError(f"{ref} is not on the agenda of the running meeting ({meeting.date}).")
    if item.moved_to is not None:
        raise UserError(f"{ref} has moved to the meeting of {item.moved_to}.")
    if item.state is ItemState.DONE:
        item.state = ItemState.OPEN  # reopened
    set_current(meeting, item, ctx.now)
    return Outcome(reply=_current_line(ctx, meeting))


@command(
    "done", aliases=("next-item",), who=Who.ORGANIZER, examples=("done",), group="Running a meeting"
)
def done(ctx: Context) -> Outcome:
    """Close the current agenda item and move to the next open one."""
    meeting = _live(ctx)
    item = current_item(meeting)
    if item is None:
        raise UserError(
            "There is no current item to close. `goto A1` picks one.",
            show_usage=False,
            example="goto A1",
        )
    item.state = ItemState.DONE
    item.reached = True
    used = minutes(ctx.now - (meeting.current_item_since or ctx.now))
    estimate = (
        f", estimate {format_estimate(item.estimate_min, item.estimate_max)}"
        if item.estimate_min
        else ""
    )
    following = next_open_item(meeting, item)
    set_current(meeting, following, ctx.now)
    lines = [f"Closed A{item.ref} after {used} min{estimate}."]
    if following is None:
        lines.append("That was the last open item. `end` ends the meeting.")
    else:
        lines.append(_current_line(ctx, meeting))
    return Outcome(reply="\n".join(lines), reactions=("check",))


@command("now", aliases=("status",), examples=("now",), group="Running a meeting")
def now_command(ctx: Context) -> Outcome:
    """The current item, the time it has taken against its estimate, and the time left.

    The time left runs to the scheduled end, or, for a meeting started early,
    to the end of a slot of the scheduled length from its actual start.
    """
    meeting = _live(ctx)
    ends = live_end(meeting)
    lines = [_current_line(ctx, meeting)]
    item = current_item(meeting)
    if item is not None:
        used = minutes(ctx.now - (meeting.current_item_since or ctx.now))
        if item.estimate_min:
            estimate = format_estimate(item.estimate_min, item.estimate_max)
            over = (item.estimate_max or item.estimate_min) < used
            lines.append(f"{used} min so far, estimate {estimate}{' — over time' if over else ''}.")
        else:
            lines.append(f"{used} min so far (no estimate).")
    left = minutes(ends - ctx.now)
    remaining = [i for i in open_items(meeting) if i.state is ItemState.OPEN and i is not item]
    lines.append(
        f"{left} min left in the meeting; {len(remaining)} more open item"
        f"{'s' if len(remaining) != 1 else ''}."
        if ctx.now < ends
        else f"The meeting is {minutes(ctx.now - ends)} min over its end."
    )
    return Outcome(reply="\n".join(lines))


@command(
    "end", aliases=("finish",), who=Who.ORGANIZER, examples=("end",), group="Running a meeting"
)
def end(ctx: Context) -> Outcome:
    """End the meeting; items never reached in a live meeting move to the next one."""
    meeting = next(
        (
            m
            for m in ctx.working_meetings()
            if meetings.status(m, ctx.now) is meetings.Status.CURRENT
        ),
        None,
    )
    if meeting is None:
        raise UserError(f"No {ctx.series.name} is going on now.", show_usage=False, example="next")
    copies, later = end_meeting(ctx.session, ctx.series, ctx.series_row, meeting, ctx.now)
    lines = [f"The {inline(ctx.series.name)} of {meeting.date} has ended. Thank you all!"]
    if copies and later is not None:
        # The ended meeting's references, and where each item went.
        refs = ", ".join(f"A{item.ref} → {later.date}/A{copy.ref}" for item, copy in copies)
        lines.append(
            f"{len(copies)} item{'s' if len(copies) != 1 else ''} not reached "
            f"{'were' if len(copies) != 1 else 'was'} carried over to {later.date}: {refs}."
        )
    delay = minutes(ctx.series.publish_delay)
    lines.append(
        f"The notes will be published in {delay} min; until then `note A1 …` still adds to them."
        if delay
        else "The notes will be published now."
    )
    return Outcome(reply="\n".join(lines), replan=True)


# ---------------------------------------------------------------- the schedule


def _ignore(_: object) -> None:
    """Follow-up work whose result the command does not need."""


def _resolve(ctx: Context, which: MeetingDate | None) -> Meeting:
    if which is None or which.relative == "next":
        return ctx.target_meeting()
    if which.relative == "last":
        found = meetings.last(ctx.session, ctx.series_row, ctx.now)
        if found is None:
            raise UserError(f"The {ctx.series.name} has not met yet.", show_usage=False)
        return found
    assert which.date is not None  # noqa: S101 - a MeetingDate has a date or a relative
    return ctx.meeting_on(which.date)


@command(
    "cancel",
    who=Who.ORGANIZER,
    examples=("cancel 2031-07-15 Summer break", "cancel"),
    group="Schedule",
)
def cancel(ctx: Context, which: MeetingDate | None, reason: str | None) -> Outcome:
    """Cancel a meeting (the next one by default); its entries move to the following meeting."""
    meeting = _resolve(ctx, which)
    state = meetings.status(meeting, ctx.now)
    if state is meetings.Status.CANCELLED:
        raise UserError(f"The meeting of {meeting.date} is already cancelled.", show_usage=False)
    if state in (meetings.Status.ENDED, meetings.Status.PUBLISHED):
        raise UserError(f"The meeting of {meeting.date} has already taken place.", show_usage=False)
    meeting.state = MeetingState.CANCELLED
    meeting.cancel_reason = one_line(reason) if reason else None
    set_current(meeting, None, ctx.now)
    later = meetings.following(ctx.session, ctx.series, ctx.series_row, meeting.starts_at)
    moved = move_entries(ctx.session, meeting, later, ctx.now)
    lines = [f"Cancelled the {inline(ctx.series.name)} of {meeting.date}."]
    if moved:
        lines.append(f"{moved} entr{'ies' if moved != 1 else 'y'} moved to {later.date}.")
    from cafebot.cafe.reminders import send_cancellation_notice

    meeting_id = meeting.id
    return Outcome(
        reply=" ".join(lines),
        replan=True,
        after=lambda app, chat: _ignore(send_cancellation_notice(app, chat, meeting_id)),
    )


@command("uncancel", who=Who.ORGANIZER, examples=("uncancel 2031-07-15",), group="Schedule")
def uncancel(ctx: Context, which: MeetingDate) -> Outcome:
    """Put a cancelled meeting back on the schedule, with the entries its cancel moved.

    Each entry that the cancel moved to the following meeting comes back under
    its old reference, unless it was changed, moved on or closed since: those
    stay, and the reply names them.
    """
    meeting = _resolve(ctx, which)
    if meeting.state is not MeetingState.CANCELLED:
        raise UserError(f"The meeting of {meeting.date} is not cancelled.", show_usage=False)
    if meeting.ends_at <= ctx.now:
        raise UserError(f"The meeting of {meeting.date} is in the past.", show_usage=False)
    meeting.state = MeetingState.SCHEDULED
    meeting.cancel_reason = None
    back, stayed = move_back(ctx.session, meeting)
    lines = [
        f"The {inline(ctx.series.name)} of {meeting.date} is back on, "
        f"{zulip_time(meeting.starts_at)}."
    ]
    if back:
        lines.append(
            f"Moved back to {meeting.date} what the cancel had moved and nobody has "
            f"changed since: {', '.join(back)}."
        )
    if stayed:
        lines.append(
            f"Changed or moved since, so left where they are: {', '.join(stayed)} "
            "(`defer` moves an item on, `remove` deletes an entry)."
        )
    if not back and not stayed:
        lines.append("The cancel had moved no entries that are still there to move back.")
    from cafebot.cafe.reminders import send_back_on_notice

    meeting_id = meeting.id
    return Outcome(
        reply="\n".join(lines),
        replan=True,
        after=lambda app, chat: _ignore(send_back_on_notice(app, chat, meeting_id)),
    )


@command(
    "add",
    who=Who.ORGANIZER,
    examples=("add meeting 2031-06-24 16:00",),
    group="Schedule",
)
def add_meeting(ctx: Context, what: Keyword, which: MeetingDate, at: TimeOfDay) -> Outcome:
    """Add a one-off meeting on a date, at a time in the series' time zone."""
    if what.word != "meeting":
        raise UserError("Only meetings can be added: `add meeting 2031-06-24 16:00`.")
    if which.date is None:
        raise UserError("Give the date as 2031-06-24.", example="add meeting 2031-06-24 16:00")
    existing = meetings.by_date(ctx.session, ctx.series, ctx.series_row, which.date, create=False)
    if existing is not None or meetings.is_scheduled_date(ctx.series, which.date):
        hint = (
            " (it is cancelled: `uncancel` puts it back)"
            if (existing is not None and existing.state is MeetingState.CANCELLED)
            else ""
        )
        raise UserError(f"There is already a meeting on {which.date}{hint}.", show_usage=False)
    local = dt.datetime.combine(which.date, at.value)
    starts_at, ends_at = meetings.instants(ctx.series, local)
    if starts_at <= ctx.now:
        raise UserError("That time has passed; give a future date and time.")
    meeting = Meeting(
        series=ctx.series_row,
        date=which.date,
        starts_at=starts_at,
        ends_at=ends_at,
        state=MeetingState.SCHEDULED,
        added=True,
    )
    ctx.session.add(meeting)
    # The time as given, in the series' zone, where it differs from how Zulip shows it.
    utc = ctx.series.timezone.upper() in {"UTC", "ETC/UTC", "GMT", "ETC/GMT", "Z"}
    local_time = "" if utc else f" ({at.value:%H:%M} {ctx.series.timezone})"
    return Outcome(
        reply=(
            f"Added a {inline(ctx.series.name)} on {which.date}, {zulip_time(starts_at)}"
            f"{local_time}."
        ),
        replan=True,
    )


def publishable(
    session: Session,
    series: SeriesSettings,
    row: Series,
    now: dt.datetime,
    meeting: Meeting | None = None,
) -> Meeting:
    """The meeting to publish: ``meeting``, else the latest that has ended; it must have ended."""
    if meeting is None:
        meeting = meetings.recent_unpublished(session, row, now)
        if meeting is None or meetings.status(meeting, now) is not meetings.Status.ENDED:
            meeting = meetings.last(session, row, now)
    if meeting is None:
        raise UserError(f"The {series.name} has not met yet.", show_usage=False)
    state = meetings.status(meeting, now)
    if state in (meetings.Status.UPCOMING, meetings.Status.CURRENT, meetings.Status.CANCELLED):
        raise UserError(
            f"The meeting of {meeting.date} is {state.value}: only a meeting that has ended "
            "can be published (`end` ends a running one).",
            show_usage=False,
        )
    return meeting


@command(
    "publish",
    who=Who.ORGANIZER,
    examples=("publish", "publish 2031-06-17"),
    group="Running a meeting",
)
def publish_command(ctx: Context, which: MeetingDate | None) -> Outcome:
    """Publish (or re-publish) a meeting's notes now: to its topic, the archive and git."""
    meeting = publishable(
        ctx.session, ctx.series, ctx.series_row, ctx.now, _resolve(ctx, which) if which else None
    )
    from cafebot.publishing.publish import publish

    meeting_id, message = meeting.id, ctx.message

    def after(app: Services, chat: Chat) -> None:
        report = publish(app, chat, meeting_id)
        chat.reply(message, report.summary())

    return Outcome(reactions=("check",), after=after, replan=True)
