"""Insights of meetings the bot ran: agenda items discussed and rolled over, actions opened
and closed, counted by hand.

June 17 (run live): Ada and Bob check in (both first-timers). Three items: A1 gets an
action (T1, Bob's) and is closed with `done`; A2 gets a note; A3 is never reached and
rolls over to July. T2 (Ada's) is recorded under A2. Bob closes T1 during the meeting.
July 15 (run live): Ada is back (returning), Cy is new; A3 is done; Ada closes T2.

    meeting     people first returning  proposed discussed rolled  opened closed
    2031-06-17     2     2       0          3        2       1       2      1
    2031-07-15     2     1       1          0        1       0       0      1
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from cafebot.insights import numbers
from cafebot.insights.numbers import Period
from tests.harness import ADA, BOB, OLGA, Harness, User

JUNE_17 = dt.datetime(2031, 6, 17, 14, 0, tzinfo=dt.UTC)  # 16:00 in Berlin
JULY_15 = dt.datetime(2031, 7, 15, 14, 0, tzinfo=dt.UTC)
CY = User(15, "Cy Young", "cy@example.org")
BOB_MENTION = "@**Bob Builder|12**"
ADA_MENTION = "@**Ada Lovelace|11**"


def ok(h: Harness, text: str, user: User = ADA) -> None:
    """Run a command that must succeed (the dispatcher's outcome: not refused, no error)."""
    h.stub.reset_transcript()
    outcome = h.handler.handle_message(h.message(text, user), h.stub)
    assert outcome not in ("refused", "error", "bug"), (text, outcome, h.stub.transcript)


@pytest.fixture
def h(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    try:
        ok(harness, "checkin Ada Lovelace / @ada / Engines")
        ok(harness, "agenda 10m Release plans")
        ok(harness, "agenda 5m Docs sprint")
        ok(harness, "agenda 5m Governance")
        harness.clock.set(JUNE_17)
        ok(harness, "start", OLGA)
        ok(harness, "checkin Bob Builder / @bob / engines", BOB)
        ok(harness, f"action A1 {BOB_MENTION} write the release notes")
        ok(harness, "done", OLGA)  # A1 closed; A2 is current
        ok(harness, "note A2 Two volunteers")
        ok(harness, f"action A2 {ADA_MENTION} book the sprint room")
        harness.clock.advance(dt.timedelta(minutes=20))
        ok(harness, "close T1", BOB)
        ok(harness, "end", OLGA)  # A3 was never reached: it rolls over to July
        harness.clock.set(JULY_15)
        ok(harness, "start", OLGA)
        ok(harness, "checkin Ada Lovelace / @ada / Engines")
        ok(harness, "checkin Cy Young / @cy", CY)
        ok(harness, "done", OLGA)  # A3, carried over, now done
        ok(harness, "close T2")
        ok(harness, "end", OLGA)
        harness.clock.set(JULY_15 + dt.timedelta(days=1))
        yield harness
    finally:
        harness.close()


def test_agenda_and_actions_of_meetings_run_live(h: Harness) -> None:
    with h.app.unit_of_work() as session:
        found = numbers.compute(
            session, h.settings.series[0], Period.last_months(h.clock.now().date()), h.clock.now()
        )
    rows = [
        (
            m.date.isoformat(),
            m.attendance,
            m.first_timers,
            m.returning,
            m.proposed,
            m.discussed,
            m.rolled_over,
            m.actions_opened,
            m.actions_closed,
        )
        for m in found.meetings
    ]
    assert rows == [
        ("2031-06-17", 2, 2, 0, 3, 2, 1, 2, 1),
        ("2031-07-15", 2, 1, 1, 0, 1, 0, 0, 1),
    ]
    assert found.actions_open == 0
    assert [(o.name, o.people, o.check_ins) for o in found.organisations] == [("Engines", 2, 3)]
    three, six = found.retention  # nobody's three months have passed yet
    assert (three.returned, three.counted, three.to_tell) == (0, 0, 3)
    assert (six.returned, six.counted, six.to_tell) == (0, 0, 3)


def test_the_chat_summary_counts_actions(h: Harness) -> None:
    (reply,) = h.send("insights").replies
    assert "- **Agenda**: 3 items proposed, 3 discussed, 1 rolled over" in reply
    assert "- **Actions**: 2 opened, 2 closed (0 of those opened still open)" in reply


def test_an_action_still_open_is_counted_so(h: Harness) -> None:
    ok(h, "reopen T2")
    (reply,) = h.send("insights").replies
    assert "- **Actions**: 2 opened, 1 closed (1 of those opened still open)" in reply
