"""The schedule and which meeting is current or next, on a fake clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

from sqlalchemy.orm import Session, sessionmaker

from cafebot import meetings
from cafebot.models import Meeting, MeetingState
from tests.harness import BOOK, CAFE

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_third_tuesdays_keep_local_time_across_daylight_saving() -> None:
    starts = [
        meetings.instants(CAFE, local)[0]
        for local, _ in zip(meetings.occurrences(CAFE, at(2031, 1, 1)), range(12), strict=False)
    ]
    assert [s.date().isoformat() for s in starts] == [
        "2031-01-21", "2031-02-18", "2031-03-18", "2031-04-15", "2031-05-20", "2031-06-17",
        "2031-07-15", "2031-08-19", "2031-09-16", "2031-10-21", "2031-11-18", "2031-12-16",
    ]  # fmt: skip
    # 16:00 in Berlin is 15:00 UTC in winter and 14:00 UTC in summer (DST: 30 Mar - 26 Oct).
    assert [s.hour for s in starts] == [15, 15, 15, 14, 14, 14, 14, 14, 14, 14, 15, 15]
    new_york = [
        meetings.instants(BOOK, local)[0]
        for local, _ in zip(meetings.occurrences(BOOK, at(2031, 3, 1)), range(2), strict=False)
    ]
    # 09:00 in New York: EST (UTC-5) on 6 March, EDT (UTC-4) on 3 April (DST from 9 March).
    assert new_york == [at(2031, 3, 6, 14, 0), at(2031, 4, 3, 13, 0)]


def test_next_meeting_skips_cancelled_and_prefers_added(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        row = meetings.series_row(session, CAFE)
        june = meetings.target(session, CAFE, row, at(2031, 6, 1))
        assert june.date == dt.date(2031, 6, 17)
        june.state = MeetingState.CANCELLED
        session.flush()
        assert meetings.target(session, CAFE, row, at(2031, 6, 1)).date == dt.date(2031, 7, 15)
        start, end = meetings.instants(CAFE, dt.datetime(2031, 6, 24, 16, 0))  # noqa: DTZ001
        session.add(
            Meeting(series=row, date=dt.date(2031, 6, 24), starts_at=start, ends_at=end, added=True)
        )
        session.flush()
        assert meetings.target(session, CAFE, row, at(2031, 6, 1)).date == dt.date(2031, 6, 24)


def test_current_during_the_hour_and_live_until_ended(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        row = meetings.series_row(session, CAFE)
        during = at(2031, 6, 17, 14, 30)
        june = meetings.target(session, CAFE, row, during)
        assert (june.date, meetings.status(june, during)) == (
            dt.date(2031, 6, 17),
            meetings.Status.CURRENT,
        )
        after = at(2031, 6, 17, 15, 0)
        assert meetings.status(june, after) is meetings.Status.ENDED
        assert meetings.target(session, CAFE, row, after).date == dt.date(2031, 7, 15)
        assert meetings.recent_unpublished(session, row, after) is june
        assert meetings.last(session, row, after) is june
        june.state = MeetingState.LIVE  # an organiser started it; it runs over
        session.flush()
        assert meetings.target(session, CAFE, row, after) is june
        june.state = MeetingState.PUBLISHED
        session.flush()
        assert meetings.recent_unpublished(session, row, after) is None


def test_other_schedules() -> None:
    weekly = replace(CAFE, schedule="RRULE:FREQ=WEEKLY;BYDAY=MO,TH", timezone="Asia/Kolkata")
    firsts = [
        local
        for local, _ in zip(meetings.occurrences(weekly, at(2031, 6, 1)), range(3), strict=False)
    ]
    assert [d.strftime("%a %d") for d in firsts] == ["Mon 02", "Thu 05", "Mon 09"]
    assert meetings.instants(weekly, firsts[0])[0] == at(2031, 6, 2, 10, 30)
    assert meetings.is_scheduled_date(CAFE, dt.date(2031, 6, 17)) is not None
    assert meetings.is_scheduled_date(CAFE, dt.date(2031, 6, 18)) is None
