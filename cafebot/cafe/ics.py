"""The schedule as an iCalendar feed: one recurring event per series.

The series' RRULE in its own time zone (with a VTIMEZONE), EXDATE for
cancelled meetings and RDATE for meetings added by hand, so calendar apps
show what the bot will actually do.
"""

from __future__ import annotations

import datetime as dt

from icalendar import Calendar, Event, vRecur
from sqlalchemy import select
from sqlalchemy.orm import Session

from cafebot.cafe import meetings
from cafebot.core.config import SeriesSettings
from cafebot.storage.models import Meeting, MeetingState

PRODID = "-//cafebot//meeting schedule//EN"
# The feed starts with the first meeting after this long ago.
HISTORY = dt.timedelta(days=90)
YEARS_OF_TIMEZONE = 15


def series_event(
    session: Session, series: SeriesSettings, now: dt.datetime, stamp: dt.datetime | None = None
) -> Event | None:
    """The series as one recurring VEVENT (None if its schedule has no meeting left).

    ``stamp``: its DTSTAMP (default ``now``), the time its information last changed.
    """
    row = meetings.series_row(session, series)
    first = next(meetings.occurrences(series, now - HISTORY), None)
    tz = series.tz
    event = Event()
    event.add("uid", f"{series.key}@cafebot")
    event.add("summary", series.name)
    event.add("dtstamp", (stamp or now).astimezone(dt.UTC))
    event.add("duration", series.duration)
    if series.link:
        event.add("url", series.link)
        event.add("location", series.link)
    description = f"The {series.name}"
    if series.stream:
        description += f", in the Zulip stream #{series.stream}"
    event.add("description", description + ".")
    # Only cancellations and additions change the recurrence, and only those since the
    # feed's first meeting matter: found through the (series, state, start) index, not by
    # reading years of history.
    stored = list(
        session.scalars(
            select(Meeting).where(
                Meeting.series_id == row.id,
                Meeting.state.in_(list(MeetingState)),
                Meeting.starts_at > now - HISTORY - dt.timedelta(days=1),
                (Meeting.state == MeetingState.CANCELLED) | Meeting.added,
            )
        )
    )
    added = [m for m in stored if m.added and m.state is not MeetingState.CANCELLED]
    if first is None and not added:
        return None
    start = first.replace(tzinfo=tz) if first is not None else added[0].starts_at.astimezone(tz)
    event.add("dtstart", start)
    if first is not None:
        event.add("rrule", vRecur.from_ical(series.schedule))
        cancelled = [
            dt.datetime.combine(m.date, series.start, tzinfo=tz)
            for m in stored
            if m.state is MeetingState.CANCELLED
            and not m.added
            and meetings.is_scheduled_date(series, m.date) is not None
        ]
        if cancelled:
            event.add("exdate", sorted(cancelled))
    extra = [m.starts_at.astimezone(tz) for m in added if m.starts_at != start]
    if extra:
        event.add("rdate", sorted(extra))
    return event


def feed(
    session: Session,
    series: list[SeriesSettings],
    now: dt.datetime,
    stamp: dt.datetime | None = None,
) -> bytes:
    calendar = Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    if len(series) == 1:
        calendar.add("x-wr-calname", series[0].name)
    for s in series:
        event = series_event(session, s, now, stamp)
        if event is not None:
            calendar.add_component(event)
    first = (now - HISTORY).date()
    calendar.add_missing_timezones(
        first_date=first, last_date=first.replace(year=first.year + YEARS_OF_TIMEZONE)
    )
    return bytes(calendar.to_ical())
