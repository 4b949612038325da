"""A configured series' row, and the UTC instants of a meeting at a local time.

The two facts about a series that storing a meeting needs, whoever stores it:
the cafe's rules (:mod:`cafebot.cafe.meetings` re-exports both) and the
archive import (:mod:`cafebot.notes`), which may not import the rules.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cafebot.core.config import SeriesSettings
from cafebot.storage.models import Series


def instants(series: SeriesSettings, local: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """UTC start and end of a meeting starting at naive ``local`` time in the series' zone."""
    start = local.replace(tzinfo=series.tz).astimezone(dt.UTC)
    end = (local + series.duration).replace(tzinfo=series.tz).astimezone(dt.UTC)
    return start, end


_SERIES_BY_KEY = select(Series).where(Series.key == bindparam("key"))


def series_row(session: Session, series: SeriesSettings) -> Series:
    row = session.scalar(_SERIES_BY_KEY, {"key": series.key})
    if row is None:
        row = Series(key=series.key, name=series.name)
        session.add(row)
        session.flush()
    elif row.name != series.name:
        row.name = series.name
    return row
