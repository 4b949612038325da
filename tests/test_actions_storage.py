"""The action record at the storage level (cafebot.storage.actions), on every backend."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cafebot.storage import actions
from cafebot.storage.models import ActionStatus, Meeting, Person, Series

T0 = dt.datetime(2031, 6, 17, 16, 0, tzinfo=dt.UTC)


def _setup(session: Session) -> tuple[Series, Meeting, Person]:
    series = Series(key="cafe", name="Collaboration Cafe")
    meeting = Meeting(
        series=series, date=T0.date(), starts_at=T0, ends_at=T0 + dt.timedelta(hours=1)
    )
    bob = Person(zulip_user_id=12, zulip_name="Bob Builder", created_at=T0)
    session.add_all([series, meeting, bob])
    session.flush()
    return series, meeting, bob


def test_numbers_are_the_series_own_and_never_reused(
    session_factory: sessionmaker[Session],
) -> None:
    with session_factory.begin() as session:
        series, meeting, bob = _setup(session)
        first = actions.create(session, series, meeting, "Write notes", created_at=T0)
        second = actions.create(
            session, series, meeting, "Ship", created_at=T0, owner_id=bob.id, item_ref=1
        )
        session.flush()
        assert (first.label, second.label) == ("T1", "T2")
        session.delete(second)
        session.flush()
        third = actions.create(session, series, meeting, "Again", created_at=T0)
        session.flush()
        assert third.number == 3


def test_listing_filters_and_status_history(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        series, meeting, bob = _setup(session)
        a = actions.create(session, series, meeting, "A", created_at=T0, owner_id=bob.id)
        b = actions.create(session, series, meeting, "B", created_at=T0 + dt.timedelta(1))
        actions.create(
            session,
            series,
            meeting,
            "Old",
            created_at=T0,
            status=ActionStatus.UNKNOWN,
            imported=True,
        )
        session.flush()
        assert [x.text for x in actions.listing(session, series.id)] == ["A", "B"]
        assert [x.text for x in actions.listing(session, series.id, owner_id=bob.id)] == ["A"]
        assert len(actions.listing(session, series.id, statuses=None)) == 3
        assert actions.count_open(session, series.id) == 2
        later = T0 + dt.timedelta(days=3)
        assert actions.set_status(a, ActionStatus.DONE, by_id=bob.id, at=later)
        assert not actions.set_status(a, ActionStatus.DONE, by_id=bob.id, at=later)
        assert (a.status_by_id, a.status_at) == (bob.id, later)
        assert actions.count_open(session, series.id) == 1
        day = dt.timedelta(days=1)
        assert actions.opened_between(session, series.id, T0, T0 + 5 * day) == 2
        assert actions.closed_between(session, series.id, T0, T0 + 5 * day) == 1
        assert actions.closed_between(session, series.id, T0 + 4 * day, T0 + 5 * day) == 0
        assert b.is_open and not a.is_open


def test_imported_actions_are_never_open(session_factory: sessionmaker[Session]) -> None:
    with session_factory.begin() as session:
        series, meeting, _ = _setup(session)
        with pytest.raises(ValueError, match="never OPEN"):
            actions.create(session, series, meeting, "x", created_at=T0, imported=True)


def test_an_unknown_status_is_refused_by_the_database(
    session_factory: sessionmaker[Session],
) -> None:
    session = session_factory()
    try:
        series, meeting, _ = _setup(session)
        session.commit()
        with pytest.raises(IntegrityError):
            session.execute(
                text(
                    "INSERT INTO action (series_id, number, meeting_id, text, status, "
                    "created_at, imported) VALUES (:s, 9, :m, 'x', 'later', :t, false)"
                ),
                {"s": series.id, "m": meeting.id, "t": T0},
            )
    finally:
        session.rollback()
        session.close()
