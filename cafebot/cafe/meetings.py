"""Series and meetings: the schedule, and which meeting a command addresses."""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from dateutil.rrule import rrule, rrulestr
from sqlalchemy import Select, bindparam, select, union_all
from sqlalchemy.orm import Session

from cafebot.core.config import SeriesSettings
from cafebot.storage.models import Meeting, MeetingState, Series
from cafebot.storage.series import instants as instants
from cafebot.storage.series import series_row as series_row

# A bound on how much longer than its slot a meeting may last (for the index only).
_LONGEST_OVERRUN = dt.timedelta(days=1)

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
    return _parsed_rule(series.schedule, series.start)


@functools.lru_cache(maxsize=64)
def _parsed_rule(schedule: str, start: dt.time) -> rrule:
    """The schedule's rule, parsed once. It keeps the occurrences it has computed
    (``cache=True``, thread-safe in dateutil): every command asks where "now" falls,
    and iterating from the anchor each time was most of a command's cost."""
    rule = rrulestr(schedule, dtstart=dt.datetime.combine(_ANCHOR, start), cache=True)
    assert isinstance(rule, rrule)  # noqa: S101 - config.parse_rrule accepts single rules only
    return rule


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


# The queries every command runs, built once: on SQLite, building a statement like
# these costs more than running it.
_IS_LIVE = Meeting.state == MeetingState.LIVE
_IS_SCHEDULED_NOW = (
    (Meeting.state == MeetingState.SCHEDULED)
    & (Meeting.starts_at <= bindparam("now"))
    & (Meeting.ends_at > bindparam("now"))
)
# (Written out rather than IN (...): an IN list is expanded on every execution.)
_IS_UNPUBLISHED_BEGUN = (
    (Meeting.state == MeetingState.SCHEDULED)
    | (Meeting.state == MeetingState.LIVE)
    | (Meeting.state == MeetingState.ENDED)
) & ((Meeting.starts_at <= bindparam("now")) | (Meeting.state != MeetingState.SCHEDULED))


def _latest(condition: object) -> Select[Meeting]:
    return (
        select(Meeting)
        .where(Meeting.series_id == bindparam("series_id"), condition)  # type: ignore[arg-type]
        .order_by(Meeting.starts_at.desc())
        .limit(1)
    )


def _latest_id(condition: object) -> Select[int]:
    return select(_latest(condition).with_only_columns(Meeting.id).subquery().c.id)


_RECENT_UNPUBLISHED = _latest(_IS_UNPUBLISHED_BEGUN)
_FROM_DATE = select(Meeting).where(
    Meeting.series_id == bindparam("series_id"), Meeting.date >= bindparam("since")
)
# All of the above in one statement (each part through an index): what a command
# needs to know which meeting it addresses.
_NEARBY = select(Meeting).where(
    Meeting.id.in_(
        union_all(
            _latest_id(_IS_LIVE),
            _latest_id(_IS_SCHEDULED_NOW),
            _latest_id(_IS_UNPUBLISHED_BEGUN),
            _FROM_DATE.with_only_columns(Meeting.id),
        )
    )
)


def _since(series: SeriesSettings, after: dt.datetime) -> dt.date:
    """The first date whose meeting may start after ``after`` (time zones considered)."""
    return after.astimezone(series.tz).date() - dt.timedelta(days=1)


def _newest(candidates: Iterable[Meeting]) -> Meeting | None:
    return max(candidates, key=lambda m: m.starts_at, default=None)


@dataclass
class Nearby:
    """The meetings around ``now`` that decide which meeting a command addresses, read
    in one statement: the latest live one, the latest scheduled for this hour, the latest
    unpublished one that has begun, and every meeting from the day before ``now`` on."""

    now: dt.datetime
    since: dt.date
    meetings: list[Meeting]

    @classmethod
    def read(
        cls, session: Session, series: SeriesSettings, row: Series, now: dt.datetime
    ) -> Nearby:
        since = _since(series, now)
        found = session.scalars(_NEARBY, {"series_id": row.id, "now": now, "since": since})
        return cls(now, since, list(found))

    def current(self) -> Meeting | None:
        """The meeting going on now (live, or within its scheduled hour), if any."""
        live = _newest(m for m in self.meetings if m.state is MeetingState.LIVE)
        return live or _newest(
            m
            for m in self.meetings
            if m.state is MeetingState.SCHEDULED and m.starts_at <= self.now < m.ends_at
        )

    def recent_unpublished(self) -> Meeting | None:
        """As :func:`recent_unpublished` (meetings made since this was read count too)."""
        return _newest(
            m
            for m in self.meetings
            if m.state in (MeetingState.SCHEDULED, MeetingState.LIVE, MeetingState.ENDED)
            and (m.starts_at <= self.now or m.state is not MeetingState.SCHEDULED)
        )

    def covers(self, date: dt.date) -> bool:
        """Whether the meeting on ``date``, if any, is among those read."""
        return date >= self.since

    def on(self, date: dt.date) -> Meeting | None:
        """The meeting on ``date`` among those read (see :meth:`covers`)."""
        return next((m for m in self.meetings if m.date == date), None)

    def add(self, meeting: Meeting) -> None:
        """A meeting made (materialised) after this was read."""
        if meeting not in self.meetings:
            self.meetings.append(meeting)


def following(
    session: Session,
    series: SeriesSettings,
    row: Series,
    after: dt.datetime,
    *,
    nearby: Nearby | None = None,
) -> Meeting:
    """The first meeting to start strictly after ``after`` (made from the schedule if need be).

    Cancelled meetings are skipped; so are meetings already ended or published early.
    ``nearby``: the meetings read for ``after`` already.
    """
    since = _since(series, after)
    if nearby is not None and nearby.since <= since:
        found = [m for m in nearby.meetings if m.date >= since]
    else:
        found = list(session.scalars(_FROM_DATE, {"series_id": row.id, "since": since}))
    rows = {m.date: m for m in found}
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
            return _made(session, series, row, local, nearby)
        if existing.state is MeetingState.SCHEDULED and existing.starts_at > after:
            return existing
        if count > len(rows):  # every further date is taken: the rule cannot be exhausted
            break
    if stored is not None:  # a finite schedule that has run out, but a meeting was added
        return stored
    raise LookupError(f"the schedule of {series.name} has no meeting after {after:%Y-%m-%d}")


def _made(
    session: Session,
    series: SeriesSettings,
    row: Series,
    local: dt.datetime,
    nearby: Nearby | None,
) -> Meeting:
    meeting = _materialise(session, series, row, local)
    if nearby is not None:
        nearby.add(meeting)
    return meeting


def scheduled_now(
    session: Session,
    series: SeriesSettings,
    row: Series,
    now: dt.datetime,
    *,
    nearby: Nearby | None = None,
) -> Meeting | None:
    """The schedule's meeting whose hour contains ``now`` (made if need be), if any."""
    local_now = now.astimezone(series.tz).replace(tzinfo=None)
    local = _rule(series).before(local_now, inc=True)
    if local is None:
        return None
    starts_at, ends_at = instants(series, local)
    if not starts_at <= now < ends_at:
        return None
    if nearby is not None and nearby.covers(local.date()):
        meeting = nearby.on(local.date())
    else:
        meeting = by_date(session, series, row, local.date(), create=False)
    if meeting is None:
        return _made(session, series, row, local, nearby)
    return meeting if status(meeting, now) is Status.CURRENT else None


def target(
    session: Session,
    series: SeriesSettings,
    row: Series,
    now: dt.datetime,
    *,
    nearby: Nearby | None = None,
) -> Meeting:
    """The meeting that new entries go to: the current one, else the next.

    ``nearby``: the meetings read for ``now`` already (:meth:`Nearby.read`).
    """
    if nearby is None:
        nearby = Nearby.read(session, series, row, now)
    return (
        nearby.current()
        or scheduled_now(session, series, row, now, nearby=nearby)
        or following(session, series, row, now, nearby=nearby)
    )


def recent_unpublished(session: Session, row: Series, now: dt.datetime) -> Meeting | None:
    """The latest meeting that has begun and is not yet published (it may have ended)."""
    return session.scalar(_RECENT_UNPUBLISHED, {"series_id": row.id, "now": now})


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


@dataclass(frozen=True)
class Slot:
    """A meeting on the calendar, stored or only scheduled."""

    date: dt.date
    starts_at: dt.datetime
    ends_at: dt.datetime
    cancelled: bool = False
    added: bool = False
    cancel_reason: str | None = None


def upcoming(
    session: Session, series: SeriesSettings, row: Series, after: dt.datetime, count: int
) -> list[Slot]:
    """The next ``count`` meetings ending after ``after`` (cancelled ones included), read-only."""
    stored = {
        m.date: m
        for m in session.scalars(
            select(Meeting).where(
                Meeting.series_id == row.id,
                Meeting.ends_at > after,
                # The same rows, found through the (series, state, start) index rather than
                # by reading every meeting of the series: none ends a day past its length.
                Meeting.state.in_(list(MeetingState)),
                Meeting.starts_at > after - series.duration - _LONGEST_OVERRUN,
            )
        )
    }
    slots: dict[dt.date, Slot] = {}
    for meeting in stored.values():
        if meeting.state in (MeetingState.ENDED, MeetingState.PUBLISHED):
            continue
        slots[meeting.date] = Slot(
            meeting.date,
            meeting.starts_at,
            meeting.ends_at,
            cancelled=meeting.state is MeetingState.CANCELLED,
            added=meeting.added,
            cancel_reason=meeting.cancel_reason,
        )
    for local in occurrences(series, after - series.duration):
        if len(slots) >= count and local.date() > max(slots):
            break
        if local.date() in slots or local.date() in stored:
            continue
        starts_at, ends_at = instants(series, local)
        if ends_at > after:
            slots[local.date()] = Slot(local.date(), starts_at, ends_at)
    return [slots[d] for d in sorted(slots)][:count]
