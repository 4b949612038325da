"""What the pages show, read from the database: plain data for the templates.

Every query here only reads (the series' row is the one thing made on first use). What a
meeting shows depends on its state: a published meeting (imported ones are) its notes;
any other only what ``list`` shows in the stream: its agenda, with estimates, and its
check-ins; a cancelled one that it was cancelled, and why.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from flask import current_app
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session, selectinload

from cafebot.bot.app import App
from cafebot.cafe import meetings
from cafebot.cafe.agenda import agenda_total, open_items
from cafebot.core.config import SeriesSettings
from cafebot.core.estimates import format_estimate
from cafebot.storage import db
from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    MeetingState,
    Series,
    ShoutOut,
    name_at,
)
from cafebot.web.notes import NotesHtml, meeting_html

EXTENSION = "cafebot.site"  # where create_app keeps the Site in the Flask application

# Meetings whose notes the site shows: published (an imported meeting is published).
SHOWN = (MeetingState.PUBLISHED,)


@dataclass(frozen=True)
class AgendaLine:
    ref: str
    estimate: str  # "10 min", "5-10 min" or ""
    topic: str
    proposer: str
    carried_from: dt.date | None
    done: bool


@dataclass(frozen=True)
class CheckinLine:
    ref: str
    text: str  # "Name / @handle / Affiliation"


@dataclass(frozen=True)
class Upcoming:
    """A meeting not published yet: what ``list`` shows of it in the stream."""

    date: dt.date
    starts_at: dt.datetime
    ends_at: dt.datetime
    status: meetings.Status
    agenda: tuple[AgendaLine, ...] = ()
    total: str = "0 min"
    slot_minutes: int = 60
    over: bool = False  # the agenda needs more time than the meeting has
    checkins: tuple[CheckinLine, ...] = ()
    cancel_reason: str | None = None


@dataclass(frozen=True)
class Published:
    date: dt.date
    starts_at: dt.datetime
    notes: NotesHtml
    imported: bool


@dataclass(frozen=True)
class ArchiveRow:
    date: dt.date
    cancelled: bool
    checkins: int = 0
    intros: int = 0
    shoutouts: int = 0
    items: int = 0
    reason: str | None = None


@dataclass
class Site:
    """The application the pages read from, and how this instance runs."""

    app: App
    leads: Callable[[], bool] = field(default=lambda: False)
    static: bool = False  # building static files: links and search as a static host needs

    @property
    def series(self) -> tuple[SeriesSettings, ...]:
        return self.app.settings.series

    def series_by_key(self, key: str) -> SeriesSettings | None:
        return self.app.settings.series_by_key(key)

    def now(self) -> dt.datetime:
        return self.app.clock.now()

    def __post_init__(self) -> None:
        self._readers = db.session_factory(self.app.engine, reader=True)
        # When this process first served each feed's content (by series and ETag).
        self._served: dict[tuple[str, str], dt.datetime] = {}
        self._served_lock = threading.Lock()

    def first_served(self, key: str, etag: str, now: dt.datetime) -> dt.datetime:
        """When content with ``etag`` of series ``key`` was first served (``now`` if never)."""
        with self._served_lock:
            return self._served.setdefault((key, etag), now)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A reading unit of work (on SQLite it takes no write lock from the bot)."""
        with db.unit_of_work(self._readers) as session:
            yield session

    # ------------------------------------------------------------ queries

    def row(self, session: Session, series: SeriesSettings) -> Series:
        return meetings.series_row(session, series)

    def upcoming(self, session: Session, series: SeriesSettings, count: int) -> list[Upcoming]:
        """The next ``count`` meetings (cancelled ones included), the current one first."""
        row = self.row(session, series)
        now = self.now()
        out = []
        for slot in meetings.upcoming(session, series, row, now, count):
            stored = meetings.by_date(session, series, row, slot.date, create=False)
            out.append(self._upcoming(series, stored, slot, now))
        return out

    def meeting(
        self, session: Session, series: SeriesSettings, date: dt.date
    ) -> Published | Upcoming | None:
        """The meeting on ``date``: stored, or on the schedule; None if there is none."""
        row = self.row(session, series)
        stored = session.scalar(
            select(Meeting)
            .where(Meeting.series_id == row.id, Meeting.date == date)
            .options(*_NOTES_LOAD)
        )
        now = self.now()
        if stored is not None and stored.state in SHOWN:
            notes = meeting_html(stored, series)
            return Published(stored.date, stored.starts_at, notes, stored.archive is not None)
        if stored is not None:
            return self._upcoming(series, stored, None, now)
        local = meetings.is_scheduled_date(series, date)
        if local is None:
            return None
        starts_at, ends_at = meetings.instants(series, local)
        if ends_at <= now:
            return None  # a date of the schedule that passed with nothing recorded
        slot = meetings.Slot(date, starts_at, ends_at)
        return self._upcoming(series, None, slot, now)

    def _upcoming(
        self,
        series: SeriesSettings,
        stored: Meeting | None,
        slot: meetings.Slot | None,
        now: dt.datetime,
    ) -> Upcoming:
        slot_minutes = int(series.duration.total_seconds() // 60)
        if stored is None:
            assert slot is not None  # noqa: S101 - one of the two is given
            status = meetings.Status.CANCELLED if slot.cancelled else meetings.Status.UPCOMING
            return Upcoming(
                slot.date,
                slot.starts_at,
                slot.ends_at,
                status,
                slot_minutes=slot_minutes,
                cancel_reason=slot.cancel_reason,
            )
        status = meetings.status(stored, now)
        items = open_items(stored)
        low, high = agenda_total(items)
        agenda = tuple(
            AgendaLine(
                f"A{i.ref}",
                format_estimate(i.estimate_min, i.estimate_max) if i.estimate_min else "",
                i.topic,
                name_at(stored, i.proposer) if i.proposer else "",
                i.carried_from,
                i.state.value == "done",
            )
            for i in items
        )
        checkins = tuple(
            CheckinLine(f"C{c.ref}", _checkin_text(c))
            for c in sorted(stored.checkins, key=lambda c: c.ref)
        )
        return Upcoming(
            stored.date,
            stored.starts_at,
            stored.ends_at,
            status,
            agenda,
            format_estimate(low, high if high != low else None) if low else "0 min",
            slot_minutes,
            low > slot_minutes,
            checkins,
            stored.cancel_reason,
        )

    def years(self, session: Session, series: SeriesSettings) -> list[int]:
        """The years of the archive, newest first: from its newest meeting's to its oldest's.

        Two lookups through the (series, date) index, whatever the number of meetings (a
        year between them without a meeting has a page that says so).
        """
        row = self.row(session, series)
        query = select(Meeting.date).where(Meeting.series_id == row.id, _in_archive(self.now()))
        newest = session.scalar(query.order_by(Meeting.date.desc()).limit(1))
        oldest = session.scalar(query.order_by(Meeting.date).limit(1))
        if newest is None or oldest is None:
            return []
        return list(range(newest.year, oldest.year - 1, -1))

    def archive_year(self, session: Session, series: SeriesSettings, year: int) -> list[ArchiveRow]:
        """The year's meetings in the archive, newest first, with their counts."""
        row = self.row(session, series)
        found = list(
            session.execute(
                select(Meeting.id, Meeting.date, Meeting.state, Meeting.cancel_reason)
                .where(
                    Meeting.series_id == row.id,
                    _in_archive(self.now()),
                    Meeting.date >= dt.date(year, 1, 1),
                    Meeting.date <= dt.date(year, 12, 31),
                )
                .order_by(Meeting.date.desc())
            )
        )
        ids = [r.id for r in found]
        counts = {
            name: _counts(session, model, ids)
            for name, model in (
                ("checkins", CheckIn),
                ("intros", Introduction),
                ("shoutouts", ShoutOut),
                ("items", AgendaItem),
            )
        }
        return [
            ArchiveRow(
                r.date,
                r.state is MeetingState.CANCELLED,
                counts["checkins"].get(r.id, 0),
                counts["intros"].get(r.id, 0),
                counts["shoutouts"].get(r.id, 0),
                counts["items"].get(r.id, 0),
                r.cancel_reason,
            )
            for r in found
        ]

    def published_dates(
        self, session: Session, series: SeriesSettings, limit: int | None = None
    ) -> list[dt.date]:
        """The published meetings' dates, newest first (``limit``: only that many)."""
        row = self.row(session, series)
        return list(
            session.scalars(
                select(Meeting.date)
                .where(Meeting.series_id == row.id, Meeting.state.in_(SHOWN))
                .order_by(Meeting.date.desc())
                .limit(limit)
            )
        )


def site() -> Site:
    """The :class:`Site` of the application handling the current request."""
    found = current_app.extensions[EXTENSION]
    assert isinstance(found, Site)  # noqa: S101 - create_app put it there
    return found


def _in_archive(now: dt.datetime) -> ColumnElement[bool]:
    """Published meetings, and cancelled ones whose date has passed."""
    return Meeting.state.in_(SHOWN) | (
        (Meeting.state == MeetingState.CANCELLED) & (Meeting.starts_at <= now)
    )


def _counts(
    session: Session,
    model: type[CheckIn | Introduction | ShoutOut | AgendaItem],
    ids: Sequence[int],
) -> dict[int, int]:
    if not ids:
        return {}
    rows = session.execute(
        select(model.meeting_id, func.count(model.id))
        .where(model.meeting_id.in_(ids))
        .group_by(model.meeting_id)
    )
    return {int(m): int(n) for m, n in rows}


def _checkin_text(c: CheckIn) -> str:
    fields = [c.name, f"@{c.github}" if c.github else "", c.affiliation or ""]
    return " / ".join(f for f in fields if f)


# What the notes renderer reads of a meeting, in a few queries rather than many.
_NOTES_LOAD = (
    selectinload(Meeting.archive),
    selectinload(Meeting.checkins),
    selectinload(Meeting.introductions).selectinload(Introduction.person),
    selectinload(Meeting.shoutouts).selectinload(ShoutOut.author),
    selectinload(Meeting.agenda_items).selectinload(AgendaItem.proposer),
    selectinload(Meeting.agenda_items).selectinload(AgendaItem.notes).selectinload(ItemNote.owner),
    selectinload(Meeting.archive_blocks),
)
