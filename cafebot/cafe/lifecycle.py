"""The meeting lifecycle: running a meeting live, ending it with roll-over, changing the schedule.

upcoming -> current (scheduled start, or ``start``) -> ended (``end`` or the
scheduled end) -> published. Organisers run a live meeting with ``start``,
``goto``, ``done`` and ``end``; anyone may ask ``now``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from cafebot.cafe import meetings
from cafebot.cafe.agenda import item_line, open_items, renumber
from cafebot.cafe.context import Context
from cafebot.cafe.entries import agenda_item_for, carry, next_ref
from cafebot.commands.converters import Keyword, MeetingDate, Ref, TimeOfDay, format_estimate
from cafebot.commands.errors import UserError
from cafebot.commands.registry import Outcome, Who, command
from cafebot.core.config import SeriesSettings
from cafebot.core.text import inline, one_line, zulip_time
from cafebot.storage.models import (
    AgendaItem,
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
) -> tuple[list[AgendaItem], Meeting | None]:
    """End ``meeting``. If it was run live, carry its unreached items to the next meeting.

    Returns the carried copies and the meeting they went to.
    """
    was_live = meeting.started_at is not None
    meeting.state = MeetingState.ENDED
    meeting.ended_at = min(now, meeting.ends_at)  # a late clean-up keeps the scheduled end
    set_current(meeting, None, now)
    if not was_live:
        return [], None
    unreached = [i for i in open_items(meeting) if i.state is ItemState.OPEN and not i.reached]
    if not unreached:
        return [], None
    later = meetings.following(session, series, row, meeting.starts_at)
    copies = []
    for item in unreached:
        copies.append(carry(item, later, session, now))
        item.state = ItemState.CARRIED_OVER
        item.moved_to = later.date
    return copies, later


def move_entries(session: Session, source: Meeting, target: Meeting, now: dt.datetime) -> int:
    """Move every entry of a cancelled meeting to ``target``; they get new references there."""
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
        entry.ref = next_ref(session, target, kind)
        entry.meeting = target
        moved += 1
    for item in open_items(source):
        item.ref = next_ref(session, target, "A")
        item.position = max((i.position for i in open_items(target)), default=0) + 1
        item.meeting = target
        if item.carried_from is None:
            item.carried_from = source.date
        moved += 1
    renumber(open_items(target))
    return moved


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


@command("start", who=Who.ORGANIZER, examples=("start",), group="Running a meeting")
def start(ctx: Context) -> Outcome:
    """Start the current (or next) meeting and run it live, item by item."""
    meeting = ctx.target_meeting()
    if meeting.state is MeetingState.LIVE:
        raise UserError(
            f"The meeting of {meeting.date} is already running.", show_usage=False, example="now"
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
    """The current item, the time it has taken against its estimate, and the time left."""
    meeting = _live(ctx)
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
    left = minutes(meeting.ends_at - ctx.now)
    remaining = [i for i in open_items(meeting) if i.state is ItemState.OPEN and i is not item]
    lines.append(
        f"{left} min left in the meeting; {len(remaining)} more open item"
        f"{'s' if len(remaining) != 1 else ''}."
        if ctx.now < meeting.ends_at
        else f"The meeting is {minutes(ctx.now - meeting.ends_at)} min over its end."
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
        refs = ", ".join(f"A{c.ref}" for c in copies)
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
    """Put a cancelled meeting back on the schedule."""
    meeting = _resolve(ctx, which)
    if meeting.state is not MeetingState.CANCELLED:
        raise UserError(f"The meeting of {meeting.date} is not cancelled.", show_usage=False)
    if meeting.ends_at <= ctx.now:
        raise UserError(f"The meeting of {meeting.date} is in the past.", show_usage=False)
    meeting.state = MeetingState.SCHEDULED
    meeting.cancel_reason = None
    from cafebot.cafe.reminders import send_back_on_notice

    meeting_id = meeting.id
    return Outcome(
        reply=(
            f"The {inline(ctx.series.name)} of {meeting.date} is back on, "
            f"{zulip_time(meeting.starts_at)}. Entries that moved to the following meeting "
            "stay there (`defer` and `edit` can move them)."
        ),
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
    return Outcome(
        reply=(
            f"Added a {inline(ctx.series.name)} on {which.date}, {zulip_time(starts_at)} "
            f"({at.value:%H:%M} {ctx.series.timezone})."
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
