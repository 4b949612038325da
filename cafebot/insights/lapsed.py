"""The regulars who have not come back: for organisers' direct messages only.

A *regular* has checked in at :data:`REGULAR_MEETINGS` meetings of the series or more;
one has *lapsed* when none of those check-ins falls in the last N months (3 by default).
Unlike the rest of the insights this names people, so ``insights lapsed`` sends it to
the organiser who asked, in a direct message, and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlalchemy.orm import Session

from cafebot.core.config import SeriesSettings
from cafebot.insights.numbers import held_meetings, seen_at, series_id_of
from cafebot.storage.models import Person

REGULAR_MEETINGS = 3  # someone checked in at this many meetings or more is a regular
DEFAULT_LAPSED_MONTHS = 3


@dataclass(frozen=True)
class Lapsed:
    name: str
    github: str | None
    meetings: int
    last_seen: dt.date


def lapsed(
    session: Session,
    series: SeriesSettings,
    now: dt.datetime,
    months: int = DEFAULT_LAPSED_MONTHS,
) -> list[Lapsed]:
    """Regulars (checked in at :data:`REGULAR_MEETINGS` meetings or more) not checked in
    during the last ``months`` months; the most recently seen first. For organisers only."""
    series_id = series_id_of(session, series)
    if series_id is None:
        return []
    held = held_meetings(session, series_id, now)
    dates = seen_at(session, series_id, held)
    cutoff = now.date() - relativedelta(months=months)
    gone = {p: d for p, d in dates.items() if len(d) >= REGULAR_MEETINGS and d[-1] < cutoff}
    if not gone:
        return []
    names = {
        pid: (person_name, zulip_name, github)
        for pid, person_name, zulip_name, github in session.execute(
            select(Person.id, Person.name, Person.zulip_name, Person.github).where(
                Person.id.in_(gone)
            )
        )
    }
    found = [
        Lapsed(
            names[p][0] or names[p][1] or (f"@{names[p][2]}" if names[p][2] else f"#{p}"),
            names[p][2],
            len(d),
            d[-1],
        )
        for p, d in gone.items()
    ]
    found.sort(key=lambda x: (-x.last_seen.toordinal(), x.name.casefold()))
    return found
