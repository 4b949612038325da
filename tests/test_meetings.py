"""The schedule and which meeting is current or next, on a fake clock."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from cafebot.cafe import meetings
from cafebot.storage.models import Meeting, MeetingState
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


def test_nearby_reads_in_one_statement_what_the_separate_queries_find(
    session_factory: sessionmaker[Session],
) -> None:
    """Nearby (one statement per command) answers as the single queries do, at every
    moment of a history with meetings in each state."""
    with session_factory.begin() as session:
        row = meetings.series_row(session, CAFE)
        states = [
            MeetingState.PUBLISHED,
            MeetingState.ENDED,
            MeetingState.SCHEDULED,  # never started: still unpublished
            MeetingState.CANCELLED,
            MeetingState.LIVE,
            MeetingState.SCHEDULED,
            MeetingState.SCHEDULED,
        ]
        for month, state in enumerate(states, start=1):
            local = meetings.is_scheduled_date(CAFE, meetings_day(month))
            assert local is not None
            start, end = meetings.instants(CAFE, local)
            session.add(
                Meeting(series=row, date=local.date(), starts_at=start, ends_at=end, state=state)
            )
        session.flush()
        moments = [
            at(2031, month, day, hour)
            for month in range(1, 9)
            for day in (1, 21)
            for hour in (0, 14)
        ]
        moments += [at(2031, 5, 20, 14, 30), at(2031, 6, 17, 14, 30)]  # within meetings
        for now in moments:
            nearby = meetings.Nearby.read(session, CAFE, row, now)
            assert nearby.current() is current(session, row.id, now), now
            assert nearby.recent_unpublished() is meetings.recent_unpublished(session, row, now), (
                now
            )
            assert meetings.following(session, CAFE, row, now, nearby=nearby) is (
                meetings.following(session, CAFE, row, now)
            ), now


def current(session: Session, series_id: int, now: dt.datetime) -> Meeting | None:
    """The meeting going on now, by two plain queries: the latest live one, else the
    latest scheduled one whose hour holds ``now``."""
    latest = select(Meeting).where(Meeting.series_id == series_id)
    latest = latest.order_by(Meeting.starts_at.desc()).limit(1)
    live = session.scalar(latest.where(Meeting.state == MeetingState.LIVE))
    return live or session.scalar(
        latest.where(
            Meeting.state == MeetingState.SCHEDULED,
            Meeting.starts_at <= now,
            Meeting.ends_at > now,
        )
    )


def meetings_day(month: int) -> dt.date:
    """The cafe's (third Tuesday) meeting date in ``month`` of 2031."""
    first = dt.date(2031, month, 1)
    return first + dt.timedelta(days=(1 - first.weekday()) % 7 + 14)


def test_the_query_every_command_runs_searches_an_index(
    session_factory: sessionmaker[Session],
) -> None:
    """With years of history, finding the meetings near now must not read them all."""
    with session_factory.begin() as session:
        if session.get_bind().dialect.name != "sqlite":
            pytest.skip("the plan is checked with SQLite's EXPLAIN QUERY PLAN")
        row = meetings.series_row(session, CAFE)
        seen: list[tuple[str, object]] = []

        def capture(conn: object, cursor: object, sql: str, params: object, *_: object) -> None:
            if "UNION ALL" in sql:
                seen.append((sql, params))

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", capture)
        try:
            meetings.Nearby.read(session, CAFE, row, at(2031, 6, 1))
        finally:
            event.remove(engine, "before_cursor_execute", capture)
        ((sql, params),) = seen
        plan = [
            r[-1] for r in session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", params)
        ]
        reads = [step for step in plan if step.startswith(("SCAN", "SEARCH")) and "meeting" in step]
        assert reads, plan
        # Each read of meeting is narrowed beyond the series (by state, date or id): a
        # read by series_id alone (or a SCAN) goes through the series' whole history.
        assert not [
            s for s in reads if s.startswith("SCAN meeting") or s.endswith("(series_id=?)")
        ], plan
