"""Reminders and cancellation notices: each goes out once, decided from the database.

A reminder is due ``offset`` before a meeting's start. When several are due at
once (the bot was down), only the latest is sent, saying it is late; the
others are recorded as skipped. Nothing is sent for a meeting that has ended.
The :class:`~cafebot.storage.models.SentNotice` row is claimed in its own transaction
*before* the message is posted, so a restart can never post it twice.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session

from cafebot.cafe import meetings
from cafebot.cafe.agenda import agenda_total, item_line, open_actions_line, open_items
from cafebot.core.config import SeriesSettings, format_duration
from cafebot.core.text import inline, zulip_time
from cafebot.storage.models import (
    HeldReminder,
    Meeting,
    MeetingState,
    NoticeKind,
    NoticeStatus,
    SentNotice,
)

if TYPE_CHECKING:
    from cafebot.core.chat import Chat
    from cafebot.core.services import Services

log = logging.getLogger("cafebot.reminders")

# A reminder posted more than this after it was due says that it is late.
LATE_AFTER = dt.timedelta(minutes=2)


@dataclass(frozen=True)
class Due:
    offset: dt.timedelta
    due_at: dt.datetime
    late: bool


def _when(offset: dt.timedelta) -> str:
    if offset <= dt.timedelta(0):
        return "now"
    text = format_duration(offset)
    number, unit = int(text[:-1]), text[-1]
    word = {"s": "second", "m": "minute", "h": "hour", "d": "day"}[unit]
    return f"in {number} {word}{'s' if number != 1 else ''}"


#: How every reminder begins (the bot tells its own reminders from its other posts by it).
REMINDER_HEAD = "**The "


def looks_like_reminder(content: str) -> bool:
    return content.startswith(REMINDER_HEAD)


def reminder_text(
    series: SeriesSettings, meeting: Meeting, offset: dt.timedelta, now: dt.datetime, late: bool
) -> str:
    """Which meeting, when (in each reader's time zone), where, and the agenda so far."""
    name = inline(series.name)
    if offset <= dt.timedelta(0) or now >= meeting.starts_at:
        head = f"{REMINDER_HEAD}{name} is starting now** ({zulip_time(meeting.starts_at)})."
    else:
        head = f"{REMINDER_HEAD}{name} is {_when(offset)}**: {zulip_time(meeting.starts_at)}."
    lines = [head]
    if late:
        lines.append("_(This reminder is late: the bot was offline when it was due.)_")
    if series.link:
        lines.append(f"Join: {series.link}")
    items = open_items(meeting)
    slot = int(series.duration.total_seconds() // 60)
    if items:
        low, high = agenda_total(items)
        total = f"{low}-{high} min" if high != low else f"{low} min"
        lines += ["", f"**Agenda so far** ({total} of {slot} min):"]
        lines += [f"- {item_line(item)}" for item in items]
        if low > slot:
            lines.append(
                f":warning: The estimates add up to {low} min, more than the meeting's "
                f"{slot} min: consider moving an item (`defer A1`)."
            )
    else:
        lines += ["", "The agenda is empty so far."]
    session = object_session(meeting)
    still_open = open_actions_line(session, meeting) if session is not None else None
    if still_open:
        lines.append(still_open)
    lines.append("Add a topic: `agenda 10m Your topic` (check in with `checkin`).")
    if series.calendar_url:
        lines.append(f"Calendar (subscribe in your calendar app): {series.calendar_url}")
    return "\n".join(lines)


@dataclass(frozen=True)
class Preview:
    """The next reminder a series will post: when, where, and its exact text."""

    meeting: Meeting
    offset: dt.timedelta
    due_at: dt.datetime
    topic: str
    text: str


def next_reminder(session: Session, series: SeriesSettings, now: dt.datetime) -> Preview | None:
    """The next reminder due after ``now``, with the text it would have if sent on time
    (the agenda as it stands now). None when the series has no reminders."""
    if not series.reminders:
        return None
    row = meetings.series_row(session, series)
    meeting = meetings.target(session, series, row, now)
    for _ in range(2):  # the target's reminders may all be past: then the next meeting's
        ahead = [o for o in sorted(series.reminders, reverse=True) if meeting.starts_at - o > now]
        if ahead:
            due_at = meeting.starts_at - ahead[0]
            return Preview(
                meeting,
                ahead[0],
                due_at,
                series.topic_for(meeting.date),
                reminder_text(series, meeting, ahead[0], due_at, late=False),
            )
        meeting = meetings.following(session, series, row, meeting.starts_at)
    return None


def due_reminder(
    session: Session, series: SeriesSettings, meeting: Meeting, now: dt.datetime
) -> Due | None:
    """The reminder to send now, if any; earlier ones it overtakes are marked skipped."""
    if meetings.status(meeting, now) not in (meetings.Status.UPCOMING, meetings.Status.CURRENT):
        return None
    if meeting.state is MeetingState.LIVE or now >= meeting.ends_at:
        return None
    done = set(
        session.scalars(
            select(SentNotice.offset_seconds).where(
                SentNotice.meeting_id == meeting.id, SentNotice.kind == NoticeKind.REMINDER
            )
        )
    )
    # A reminder Zulip holds as a scheduled message is Zulip's to send (cafebot.cafe.held); once
    # its time has come it counts as sent (a later one held for the future does not).
    held = set(
        session.scalars(
            select(HeldReminder.offset_seconds).where(
                HeldReminder.meeting_id == meeting.id, HeldReminder.withdrawn.is_(False)
            )
        )
    )
    due = [
        o
        for o in sorted(series.reminders, reverse=True)
        if meeting.starts_at - o <= now and int(o.total_seconds()) not in done | held
    ]
    if not due:
        return None
    done |= {h for h in held if meeting.starts_at - dt.timedelta(seconds=h) <= now}
    # Only the latest of the due reminders goes out; a later one already sent overtakes all.
    latest: dt.timedelta | None = due[-1]
    if any(sent < int(due[-1].total_seconds()) for sent in done):
        latest = None
    for offset in due if latest is None else due[:-1]:
        session.add(
            SentNotice(
                meeting_id=meeting.id,
                kind=NoticeKind.REMINDER,
                offset_seconds=int(offset.total_seconds()),
                status=NoticeStatus.SKIPPED,
                due_at=meeting.starts_at - offset,
                sent_at=now,
            )
        )
    if latest is None:
        return None
    due_at = meeting.starts_at - latest
    return Due(latest, due_at, now - due_at > LATE_AFTER)


def _claim(
    session: Session,
    meeting: Meeting,
    kind: NoticeKind,
    offset: int,
    due_at: dt.datetime,
    now: dt.datetime,
    late: bool = False,
) -> SentNotice:
    notice = SentNotice(
        meeting_id=meeting.id,
        kind=kind,
        offset_seconds=offset,
        status=NoticeStatus.SENDING,
        due_at=due_at,
        sent_at=now,
        late=late,
    )
    session.add(notice)
    session.flush()
    return notice


def _post(app: Services, chat: Chat, notice_id: int, stream: str, topic: str, text: str) -> None:
    """Post a claimed notice and record it as sent (the claim is already committed)."""
    message_id = chat.send(stream, topic, text)
    with app.unit_of_work() as session:
        notice = session.get(SentNotice, notice_id)
        if notice is not None:
            notice.status = NoticeStatus.SENT
            notice.message_id = message_id


def send_due_reminders(app: Services, chat: Chat, series: SeriesSettings) -> int:
    """Send every reminder of ``series`` that is due now. Returns how many were sent."""
    if not series.stream:
        return 0
    now = app.clock.now()
    horizon = now + max(series.reminders, default=dt.timedelta(0))
    to_send = []
    with app.unit_of_work() as session:
        row = meetings.series_row(session, series)
        candidates = session.scalars(
            select(Meeting).where(
                Meeting.series_id == row.id,
                Meeting.state == MeetingState.SCHEDULED,
                Meeting.starts_at <= horizon,
                Meeting.ends_at > now,
            )
        )
        for meeting in candidates:
            due = due_reminder(session, series, meeting, now)
            if due is None:
                continue
            notice = _claim(
                session,
                meeting,
                NoticeKind.REMINDER,
                int(due.offset.total_seconds()),
                due.due_at,
                now,
                due.late,
            )
            text = reminder_text(series, meeting, due.offset, now, due.late)
            to_send.append((notice.id, series.topic_for(meeting.date), text))
    for notice_id, topic, text in to_send:
        _post(app, chat, notice_id, series.stream, topic, text)
        log.info("sent a reminder to %s > %s", series.stream, topic)
    return len(to_send)


def _series_of(app: Services, meeting: Meeting) -> SeriesSettings | None:
    return app.settings.series_by_key(meeting.series.key)


def send_cancellation_notice(app: Services, chat: Chat, meeting_id: int) -> bool:
    """Post the one cancellation notice of a cancelled meeting (if not posted yet)."""
    with app.unit_of_work() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or meeting.state is not MeetingState.CANCELLED:
            return False
        series = _series_of(app, meeting)
        now = app.clock.now()
        if series is None or not series.stream or meeting.ends_at <= now:
            return False
        exists = session.scalar(
            select(SentNotice.id).where(
                SentNotice.meeting_id == meeting.id, SentNotice.kind == NoticeKind.CANCELLATION
            )
        )
        if exists is not None:
            return False
        notice = _claim(session, meeting, NoticeKind.CANCELLATION, 0, now, now)
        reason = f" Reason: {inline(meeting.cancel_reason)}." if meeting.cancel_reason else ""
        later = meetings.following(session, series, meeting.series, meeting.starts_at)
        text = (
            f"**The {inline(series.name)} of {meeting.date} ({zulip_time(meeting.starts_at)}) "
            f"is cancelled.**{reason} The next one is {zulip_time(later.starts_at)}; "
            "entries for this meeting have moved there."
        )
        args = (notice.id, series.stream, series.topic_for(meeting.date), text)
    _post(app, chat, *args)
    return True


def send_back_on_notice(app: Services, chat: Chat, meeting_id: int) -> bool:
    """After ``uncancel``: if people were told of the cancellation, tell them it is back on."""
    with app.unit_of_work() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None or meeting.state is MeetingState.CANCELLED:
            return False
        series = _series_of(app, meeting)
        notice = session.scalar(
            select(SentNotice).where(
                SentNotice.meeting_id == meeting.id, SentNotice.kind == NoticeKind.CANCELLATION
            )
        )
        if series is None or not series.stream or notice is None:
            return False
        session.delete(notice)  # a later cancellation is announced again
        topic = series.topic_for(meeting.date)
        text = (
            f"**The {inline(series.name)} of {meeting.date} is back on**: "
            f"{zulip_time(meeting.starts_at)}."
        )
    chat.send(series.stream, topic, text)
    return True


def pending_cancellations(session: Session, now: dt.datetime) -> list[int]:
    """Cancelled meetings still ahead whose notice has not gone out (e.g. after a crash)."""
    sent = select(SentNotice.meeting_id).where(SentNotice.kind == NoticeKind.CANCELLATION)
    return list(
        session.scalars(
            select(Meeting.id).where(
                Meeting.state == MeetingState.CANCELLED,
                Meeting.ends_at > now,
                Meeting.id.not_in(sent),
            )
        )
    )
