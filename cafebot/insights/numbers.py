"""The numbers of a series over a period: who comes, who comes back, what the cafe gets done.

:func:`compute` reads the series' held meetings (imported ones too) and returns
:class:`Insights`, plain frozen data that the chat summary, the command line and the
site all show. README, "Community insights", defines every number; in short:

- a meeting *held* in the period is one of the series, not cancelled, that has begun;
- *attendance* is the people checked in at it; a *first-timer* is someone checked in
  there for the first time at any meeting of the series (the archive's history
  included), everyone else checked in is *returning*;
- *retention*: of the people first seen in the period, those who checked in again
  within 3 (and 6) months of their first meeting, counted among those whose 3 (or 6)
  months have passed; the others are still *to tell*;
- *organisations*: the affiliations given at check-in in the period, the same name in
  any letter case (and spacing) one organisation, shown in its most used spelling;
- *agenda items*: proposed (new on a meeting's agenda, not carried in from an earlier
  one), discussed (closed with ``done``, reached in a live meeting, or given a note,
  decision or action) and rolled over (moved to a later meeting: by ``defer``, or
  carried over at the end of a live meeting);
- *actions*: opened at a meeting (recorded there, imported history included), and closed
  after it (marked done or dropped from its start until the next meeting held; an
  imported action the archive shows ticked is closed at the meeting it was recorded at);
  *still open*: the actions opened in the period that are open now.

Everything here is counts and organisations: names of regulars who have not come back
(:mod:`cafebot.insights.lapsed`) are for organisers' direct messages only.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from cafebot.core.config import SeriesSettings
from cafebot.storage.actions import CLOSED
from cafebot.storage.models import (
    Action,
    ActionStatus,
    AgendaItem,
    CheckIn,
    ItemNote,
    ItemState,
    Meeting,
    MeetingState,
    Series,
)

RETENTION_MONTHS = (3, 6)
DEFAULT_MONTHS = 12  # the default period: the last 12 months


@dataclass(frozen=True)
class Period:
    """The meetings from ``since`` to ``until``, both days included."""

    since: dt.date | None  # None: from the first meeting on
    until: dt.date | None  # None: to the latest meeting held
    label: str  # how a person asked for it: "the last 12 months", "2030", "since 2030-05-01"

    def holds(self, day: dt.date) -> bool:
        return (self.since is None or day >= self.since) and (
            self.until is None or day <= self.until
        )

    @classmethod
    def last_months(cls, today: dt.date, months: int = DEFAULT_MONTHS) -> Period:
        label = "the last month" if months == 1 else f"the last {months} months"
        return cls(today - relativedelta(months=months), today, label)


@dataclass(frozen=True)
class MeetingNumbers:
    date: dt.date
    attendance: int
    first_timers: int
    returning: int
    proposed: int
    discussed: int
    rolled_over: int
    actions_opened: int = 0
    actions_closed: int = 0


@dataclass(frozen=True)
class Retention:
    """Of the people first seen in the period, who came again within ``months``."""

    months: int
    returned: int  # checked in again within the months after their first meeting
    counted: int  # first seen at least ``months`` ago: whether they came back is known
    to_tell: int  # first seen more recently

    @property
    def share(self) -> float | None:
        return self.returned / self.counted if self.counted else None


@dataclass(frozen=True)
class Cohort:
    """The people first seen at one meeting, and how many came again (None: too soon)."""

    date: dt.date
    newcomers: int
    returned: dict[int, int | None]  # months -> how many came again within them


@dataclass(frozen=True)
class Organisation:
    name: str  # the spelling used most
    people: int
    check_ins: int


@dataclass(frozen=True)
class Insights:
    series_key: str
    series_name: str
    period: Period
    meetings: tuple[MeetingNumbers, ...]  # oldest first
    people: int  # different people checked in during the period
    retention: tuple[Retention, ...]
    cohorts: tuple[Cohort, ...]  # one per meeting with first-timers, oldest first
    organisations: tuple[Organisation, ...]  # most people first
    actions_open: int = 0  # of the actions opened in the period, those open now

    @property
    def check_ins(self) -> int:
        return sum(m.attendance for m in self.meetings)

    @property
    def first_timers(self) -> int:
        return sum(m.first_timers for m in self.meetings)

    def total(self, name: str) -> int:
        return sum(int(getattr(m, name)) for m in self.meetings)

    def as_dict(self) -> dict[str, Any]:
        """Everything, as JSON-ready data (``cafebot insights --format json``)."""
        return {
            "series": self.series_key,
            "name": self.series_name,
            "period": {
                "since": self.period.since.isoformat() if self.period.since else None,
                "until": self.period.until.isoformat() if self.period.until else None,
                "label": self.period.label,
            },
            "totals": {
                "meetings": len(self.meetings),
                "check_ins": self.check_ins,
                "people": self.people,
                "first_timers": self.first_timers,
                "proposed": self.total("proposed"),
                "discussed": self.total("discussed"),
                "rolled_over": self.total("rolled_over"),
                "actions_opened": self.total("actions_opened"),
                "actions_closed": self.total("actions_closed"),
                "actions_open": self.actions_open,
            },
            "meetings": [
                {
                    "date": m.date.isoformat(),
                    "attendance": m.attendance,
                    "first_timers": m.first_timers,
                    "returning": m.returning,
                    "proposed": m.proposed,
                    "discussed": m.discussed,
                    "rolled_over": m.rolled_over,
                    "actions_opened": m.actions_opened,
                    "actions_closed": m.actions_closed,
                }
                for m in self.meetings
            ],
            "retention": [
                {
                    "months": r.months,
                    "returned": r.returned,
                    "counted": r.counted,
                    "to_tell": r.to_tell,
                    "share": None if r.share is None else round(r.share, 4),
                }
                for r in self.retention
            ],
            "cohorts": [
                {
                    "date": c.date.isoformat(),
                    "newcomers": c.newcomers,
                    **{f"returned_{k}m": v for k, v in c.returned.items()},
                }
                for c in self.cohorts
            ],
            "organisations": [
                {"name": o.name, "people": o.people, "check_ins": o.check_ins}
                for o in self.organisations
            ],
        }


# ---------------------------------------------------------------- reading


@dataclass(frozen=True)
class Held:
    id: int
    date: dt.date
    starts_at: dt.datetime


def held_meetings(session: Session, series_id: int, now: dt.datetime) -> list[Held]:
    """(id, date) of the series' meetings held: not cancelled, and begun or ended (an
    imported meeting is published history, whatever its date), oldest first."""
    done = (MeetingState.LIVE, MeetingState.ENDED, MeetingState.PUBLISHED)
    rows = session.execute(
        select(Meeting.id, Meeting.date, Meeting.starts_at)
        .where(
            Meeting.series_id == series_id,
            Meeting.state != MeetingState.CANCELLED,
            or_(Meeting.starts_at <= now, Meeting.state.in_(done)),
        )
        .order_by(Meeting.date, Meeting.starts_at)
    )
    return [Held(mid, day, starts_at) for mid, day, starts_at in rows]


def _attendance(session: Session, series_id: int) -> Iterable[tuple[int, int, str | None]]:
    """(meeting id, person id, affiliation) of every check-in of the series."""
    rows = session.execute(
        select(CheckIn.meeting_id, CheckIn.person_id, CheckIn.affiliation)
        .join(Meeting, Meeting.id == CheckIn.meeting_id)
        .where(Meeting.series_id == series_id)
    )
    return ((mid, pid, affiliation) for mid, pid, affiliation in rows)


def series_id_of(session: Session, series: SeriesSettings) -> int | None:
    return session.scalar(select(Series.id).where(Series.key == series.key))


def _months_later(day: dt.date, months: int) -> dt.date:
    later: dt.date = day + relativedelta(months=months)
    return later


@dataclass
class _Seen:
    """Who was checked in where: meeting dates per person, people per meeting."""

    dates: dict[int, list[dt.date]]  # person -> dates of the meetings they were at, sorted
    present: dict[int, set[int]]  # meeting id -> people
    affiliations: dict[int, list[tuple[int, str]]]  # meeting id -> (person, affiliation)

    @classmethod
    def read(cls, session: Session, series_id: int, held: Sequence[Held]) -> _Seen:
        date_of = {h.id: h.date for h in held}
        dates: dict[int, set[dt.date]] = defaultdict(set)
        present: dict[int, set[int]] = defaultdict(set)
        affiliations: dict[int, list[tuple[int, str]]] = defaultdict(list)
        for meeting_id, person_id, affiliation in _attendance(session, series_id):
            day = date_of.get(meeting_id)
            if day is None:  # a meeting still to come, or cancelled
                continue
            dates[person_id].add(day)
            present[meeting_id].add(person_id)
            if affiliation and affiliation.strip():
                affiliations[meeting_id].append((person_id, affiliation))
        return cls({p: sorted(d) for p, d in dates.items()}, present, affiliations)

    def first_date(self, person_id: int) -> dt.date:
        return self.dates[person_id][0]


def compute(session: Session, series: SeriesSettings, period: Period, now: dt.datetime) -> Insights:
    """The series' numbers over ``period``, as they stand at ``now``."""
    series_id = series_id_of(session, series)
    held = held_meetings(session, series_id, now) if series_id is not None else []
    seen = _Seen.read(session, series_id, held) if series_id is not None else _Seen({}, {}, {})
    in_period = [h for h in held if period.holds(h.date)]
    ids = [h.id for h in in_period]
    agenda = _agenda(session, ids)
    actions = _actions(session, series_id, held, in_period) if series_id is not None else {}
    # Whether someone came back within some months is known once those months have
    # passed: by the clock, or (for history imported ahead of it) by the latest meeting.
    today = max([now.date(), *(h.date for h in held[-1:])])

    numbers = []
    people: set[int] = set()
    cohorts = []
    for h in in_period:
        present = seen.present.get(h.id, set())
        people |= present
        first = {p for p in present if seen.first_date(p) == h.date}
        proposed, discussed, rolled = agenda.get(h.id, (0, 0, 0))
        opened, closed = actions.get(h.id, (0, 0))
        numbers.append(
            MeetingNumbers(
                h.date,
                len(present),
                len(first),
                len(present) - len(first),
                proposed,
                discussed,
                rolled,
                opened,
                closed,
            )
        )
        if first:
            cohorts.append(
                Cohort(
                    h.date,
                    len(first),
                    {m: _came_back(seen, first, h.date, m, today) for m in RETENTION_MONTHS},
                )
            )
    retention = tuple(
        Retention(
            months,
            sum(c.returned[months] or 0 for c in cohorts),
            sum(c.newcomers for c in cohorts if c.returned[months] is not None),
            sum(c.newcomers for c in cohorts if c.returned[months] is None),
        )
        for months in RETENTION_MONTHS
    )
    still_open = (
        session.scalar(
            select(func.count(Action.id)).where(
                Action.meeting_id.in_(ids), Action.status == ActionStatus.OPEN
            )
        )
        if ids
        else 0
    )
    return Insights(
        series_key=series.key,
        series_name=series.name,
        period=period,
        meetings=tuple(numbers),
        people=len(people),
        retention=retention,
        cohorts=tuple(cohorts),
        organisations=_organisations(seen, ids),
        actions_open=int(still_open or 0),
    )


def _actions(
    session: Session, series_id: int, held: Sequence[Held], in_period: Sequence[Held]
) -> dict[int, tuple[int, int]]:
    """Per meeting: actions opened there, and closed from its start to the next meeting's."""
    if not in_period:
        return {}
    wanted = {h.id for h in in_period}
    following = {a.id: b.starts_at for a, b in itertools.pairwise(held)}
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    closed_at: list[dt.datetime] = []  # when the series' actions were closed
    rows = session.execute(
        select(Action.meeting_id, Action.status, Action.status_at, Action.imported).where(
            Action.series_id == series_id
        )
    )
    windows = sorted((h.starts_at, following.get(h.id), h.id) for h in in_period)
    for meeting_id, status, status_at, imported in rows:
        if meeting_id in wanted:
            counts[meeting_id][0] += 1
            if imported and status == ActionStatus.DONE:
                counts[meeting_id][1] += 1
        if not imported and status in CLOSED and status_at is not None:
            closed_at.append(status_at)
    for at in closed_at:
        for start, end, mid in windows:
            if start <= at and (end is None or at < end):
                counts[mid][1] += 1
                break
    return {mid: (c[0], c[1]) for mid, c in counts.items()}


def _came_back(
    seen: _Seen, newcomers: set[int], first: dt.date, months: int, today: dt.date
) -> int | None:
    """How many of ``newcomers`` (first seen on ``first``) came again within ``months``;
    None while those months have not passed."""
    end = _months_later(first, months)
    if end > today:
        return None
    return sum(1 for p in newcomers if any(first < d <= end for d in seen.dates[p]))


def _agenda(session: Session, meeting_ids: list[int]) -> dict[int, tuple[int, int, int]]:
    """Per meeting: agenda items proposed, discussed and rolled over."""
    if not meeting_ids:
        return {}
    noted = exists().where(ItemNote.item_id == AgendaItem.id)
    rows = session.execute(
        select(
            AgendaItem.meeting_id,
            AgendaItem.carried_from,
            AgendaItem.moved_to,
            AgendaItem.state,
            AgendaItem.reached,
            noted,
        ).where(AgendaItem.meeting_id.in_(meeting_ids))
    )
    counts: dict[int, list[int]] = defaultdict(lambda: [0, 0, 0])
    for mid, carried_from, moved_to, state, reached, has_notes in rows:
        c = counts[mid]
        c[0] += carried_from is None
        c[1] += bool(state == ItemState.DONE or reached or has_notes)
        c[2] += moved_to is not None
    return {mid: (c[0], c[1], c[2]) for mid, c in counts.items()}


def organisation_key(name: str) -> str:
    """One organisation whatever its letter case and spacing: ``open  atlas`` is ``Open Atlas``."""
    return " ".join(name.split()).casefold()


def _organisations(seen: _Seen, meeting_ids: list[int]) -> tuple[Organisation, ...]:
    spellings: dict[str, Counter[str]] = defaultdict(Counter)
    people: dict[str, set[int]] = defaultdict(set)
    check_ins: Counter[str] = Counter()
    for mid in meeting_ids:
        for person_id, affiliation in seen.affiliations.get(mid, []):
            key = organisation_key(affiliation)
            spellings[key][" ".join(affiliation.split())] += 1
            people[key].add(person_id)
            check_ins[key] += 1
    found = [
        Organisation(
            min(spellings[key].items(), key=lambda kv: (-kv[1], kv[0]))[0],
            len(people[key]),
            check_ins[key],
        )
        for key in people
    ]
    found.sort(key=lambda o: (-o.people, -o.check_ins, o.name.casefold()))
    return tuple(found)


def seen_at(session: Session, series_id: int, held: Sequence[Held]) -> dict[int, list[dt.date]]:
    """Per person: the dates of the held meetings they checked in at, oldest first."""
    return _Seen.read(session, series_id, held).dates
