"""Series and meetings: the schedule, and which meeting a command addresses."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Iterator

from dateutil.rrule import rrule, rrulestr
from sqlalchemy import select
from sqlalchemy.orm import Session

from cafebot.config import SeriesSettings
from cafebot.models import Meeting, MeetingState, Series

# Recurrences are computed from this local anchor onwards.
_ANCHOR = dt.date(2020, 1, 1)


class Status(enum.StrEnum):
    """Where a meeting is in its lifecycle at a given instant."""

    UPCOMING = "upcoming"
    CURRENT = "current"  # started (by the clock or an organiser) and not ended
    ENDED = "ended"  # ended, notes not yet published
    PUBLISHED = "published"
    CANCELLED = "cancelled"


def status(meeting: Meeting, now: dt.datetime) -> Status:
    state = meeting.state
    if state is MeetingState.CANCELLED:
        return Status.CANCELLED
    if state is MeetingState.PUBLISHED:
        return Status.PUBLISHED
    if state is MeetingState.ENDED:
        return Status.ENDED
    if state is MeetingState.LIVE:
        return Status.CURRENT
    if now < meeting.starts_at:
        return Status.UPCOMING
    if now < meeting.ends_at:
        return Status.CURRENT
    return Status.ENDED


def _rule(series: SeriesSettings) -> rrule:
    start = dt.datetime.combine(_ANCHOR, series.start)
    rule = rrulestr(series.schedule, dtstart=start)
    assert isinstance(rule, rrule)  # noqa: S101 - config.parse_rrule accepts single rules only
    return rule


def instants(series: SeriesSettings, local: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of a meeting starting at naive ``local`` time in the series' zone."""
    start = local.replace(tzinfo=series.tz).astimezone(dt.UTC)
    end = (local + series.duration).replace(tzinfo=series.tz).astimezone(dt.UTC)
    return start, end


def occurrences(series: SeriesSettings, after: dt.datetime) -> Iterator[dt.datetime]:
    """Scheduled local start times strictly after the instant ``after``, in order."""
    local_after = after.astimezone(series.tz).replace(tzinfo=None)
    rule = _rule(series)
    current = rule.after(local_after)
    while current is not None:
        yield current
        current = rule.after(current)


def is_scheduled_date(series: SeriesSettings, date: dt.date) -> dt.datetime | None:
    """The local start time if the schedule has a meeting on ``date``."""
    day_start = dt.datetime.combine(date, dt.time(0))
    hit = _rule(series).after(day_start, inc=True)
    if hit is not None and hit.date() == date:
        return hit
    return None


def series_row(session: Session, series: SeriesSettings) -> Series:
    row = session.scalar(select(Series).where(Series.key == series.key))
    if row is None:
        row = Series(key=series.key, name=series.name)
        session.add(row)
        session.flush()
    elif row.name != series.name:
        row.name = series.name
    return row


def _materialise(
    session: Session, series: SeriesSettings, row: Series, local: dt.datetime
) -> Meeting:
    starts_at, ends_at = instants(series, local)
    meeting = Meeting(
        series=row,
        date=local.date(),
        starts_at=starts_at,
        ends_at=ends_at,
        state=MeetingState.SCHEDULED,
    )
    session.add(meeting)
    session.flush()
    return meeting


def by_date(
    session: Session, series: SeriesSettings, row: Series, date: dt.date, *, create: bool = True
) -> Meeting | None:
    """The meeting on ``date``: a stored one, or (``create``) the schedule's, made on demand."""
    meeting = session.scalar(
        select(Meeting).where(Meeting.series_id == row.id, Meeting.date == date)
    )
    if meeting is None and create:
        local = is_scheduled_date(series, date)
        if local is not None:
            meeting = _materialise(session, series, row, local)
    return meeting


def current(session: Session, row: Series, now: dt.datetime) -> Meeting | None:
    """The meeting going on now (live, or within its scheduled hour), if any."""
    live = session.scalar(
        select(Meeting)
        .where(Meeting.series_id == row.id, Meeting.state == MeetingState.LIVE)
        .order_by(Meeting.starts_at.desc())
    )
    if live is not None:
        return live
    return session.scalar(
        select(Meeting)
        .where(
            Meeting.series_id == row.id,
            Meeting.state == MeetingState.SCHEDULED,
            Meeting.starts_at <= now,
            Meeting.ends_at > now,
        )
        .order_by(Meeting.starts_at.desc())
    )


def following(session: Session, series: SeriesSettings, row: Series, after: dt.datetime) -> Meeting:
    """The first meeting to start strictly after ``after`` (made from the schedule if need be).

    Cancelled meetings are skipped; so are meetings already ended or published early.
    """
    since = after.astimezone(series.tz).date() - dt.timedelta(days=1)
    rows = {
        m.date: m
        for m in session.scalars(
            select(Meeting).where(Meeting.series_id == row.id, Meeting.date >= since)
        )
    }
    upcoming = sorted(
        (m for m in rows.values() if m.state is MeetingState.SCHEDULED and m.starts_at > after),
        key=lambda m: m.starts_at,
    )
    stored = upcoming[0] if upcoming else None
    for count, local in enumerate(occurrences(series, after)):
        if stored is not None and stored.starts_at <= instants(series, local)[0]:
            return stored
        existing = rows.get(local.date())
        if existing is None:
            return _materialise(session, series, row, local)
        if existing.state is MeetingState.SCHEDULED and existing.starts_at > after:
            return existing
        if count > len(rows):  # every further date is taken: the rule cannot be exhausted
            break
    if stored is not None:  # a finite schedule that has run out, but a meeting was added
        return stored
    raise LookupError(f"the schedule of {series.name} has no meeting after {after:%Y-%m-%d}")


def scheduled_now(
    session: Session, series: SeriesSettings, row: Series, now: dt.datetime
) -> Meeting | None:
    """The schedule's meeting whose hour contains ``now`` (made if need be), if any."""
    local_now = now.astimezone(series.tz).replace(tzinfo=None)
    local = _rule(series).before(local_now, inc=True)
    if local is None:
        return None
    starts_at, ends_at = instants(series, local)
    if not starts_at <= now < ends_at:
        return None
    meeting = by_date(session, series, row, local.date(), create=False)
    if meeting is None:
        return _materialise(session, series, row, local)
    return meeting if status(meeting, now) is Status.CURRENT else None


def target(session: Session, series: SeriesSettings, row: Series, now: dt.datetime) -> Meeting:
    """The meeting that new entries go to: the current one, else the next."""
    return (
        current(session, row, now)
        or scheduled_now(session, series, row, now)
        or following(session, series, row, now)
    )


def recent_unpublished(session: Session, row: Series, now: dt.datetime) -> Meeting | None:
    """The latest meeting that has begun and is not yet published (it may have ended)."""
    return session.scalar(
        select(Meeting)
        .where(
            Meeting.series_id == row.id,
            Meeting.state.in_([MeetingState.SCHEDULED, MeetingState.LIVE, MeetingState.ENDED]),
            (Meeting.starts_at <= now) | (Meeting.state != MeetingState.SCHEDULED),
        )
        .order_by(Meeting.starts_at.desc())
    )


def last(session: Session, row: Series, now: dt.datetime) -> Meeting | None:
    """The latest meeting that has begun (not cancelled)."""
    return session.scalar(
        select(Meeting)
        .where(
            Meeting.series_id == row.id,
            Meeting.state != MeetingState.CANCELLED,
            (Meeting.starts_at <= now) | (Meeting.state != MeetingState.SCHEDULED),
        )
        .order_by(Meeting.starts_at.desc())
    )
