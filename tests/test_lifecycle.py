"""The meeting lifecycle on a fake clock: reminders, the live meeting, roll-over, the schedule."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest

from cafebot.cafe.scheduler import Lifecycle
from cafebot.storage.models import (
    AgendaItem,
    ItemState,
    Meeting,
    MeetingState,
    NoticeStatus,
    SentNotice,
)
from tests.harness import ADA, BOB, BOOK, CAFE, OLGA, Harness, RecordingChat

UTC = dt.UTC


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def bot(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    yield harness
    harness.close()


def run_until(lifecycle: Lifecycle, bot: Harness, end: dt.datetime) -> None:
    """Advance the fake clock from planned instant to planned instant, sweeping at each."""
    while True:
        plan = lifecycle.plan()
        upcoming = sorted(t for t in plan.values() if t > bot.clock.now())
        if not upcoming or upcoming[0] > end:
            bot.clock.set(end)
            lifecycle.sweep()
            return
        bot.clock.set(upcoming[0])
        lifecycle.sweep()


def third_tuesdays(year: int, tz: str, hour: int) -> list[dt.datetime]:
    """Independently of the code under test: the third Tuesday of each month, local time."""
    starts = []
    for month in range(1, 13):
        first = dt.date(year, month, 1)
        tuesday = first + dt.timedelta(days=(1 - first.weekday()) % 7 + 14)
        starts.append(dt.datetime(year, month, tuesday.day, hour, tzinfo=ZoneInfo(tz)))
    return starts


# ---------------------------------------------------------------- reminders


@pytest.mark.parametrize(
    ("tz", "hour"),
    [
        pytest.param("Europe/Berlin", 16, id="berlin"),
        pytest.param("America/New_York", 9, id="new-york"),
    ],
)
def test_a_year_of_reminders_across_daylight_saving(db_url: str, tz: str, hour: int) -> None:
    series = replace(CAFE, timezone=tz, start=dt.time(hour, 0))
    bot = Harness(db_url, series=(series,), now=at(2030, 12, 31, 12))
    chat = RecordingChat()
    try:
        run_until(Lifecycle(bot.app, chat), bot, at(2031, 12, 31))
        expected = []
        for start in third_tuesdays(2031, tz, hour):
            for offset in (dt.timedelta(days=7), dt.timedelta(days=1), dt.timedelta(hours=1)):
                expected.append((start - offset).astimezone(UTC))
            expected.append(start.astimezone(UTC))
        sent = [
            (n.due_at, n.sent_at, n.status)
            for n in sorted(bot.rows(SentNotice), key=lambda n: n.due_at)
        ]
        assert [d for d, _, _ in sent] == expected
        assert all(s == d and st is NoticeStatus.SENT for d, s, st in sent)  # on time, once
        assert len(chat.posted) == 48
        first = chat.posted[0]
        start = third_tuesdays(2031, tz, hour)[0].astimezone(UTC)
        assert first.topic == "Collaboration Cafe 2031-01-21"
        assert f"<time:{start:%Y-%m-%dT%H:%M:%SZ}>" in first.text
        assert "is in 7 days" in first.text and "https://meet.example.org/cafe" in first.text
        assert "starting now" in chat.posted[3].text
        # Meetings nobody used are not published (no empty notes posted).
        assert all("### Agenda" not in p.text for p in chat.posted)
    finally:
        bot.close()


def test_reminder_shows_agenda_and_warns_on_overflow(bot: Harness) -> None:
    bot.send("agenda 45m Big topic")
    bot.send("agenda 20-30m Another", BOB)
    chat = RecordingChat()
    bot.clock.set(at(2031, 6, 16, 14))  # one day before
    Lifecycle(bot.app, chat).sweep()
    (posted,) = chat.posted
    assert posted.stream == "jupyterhub" and posted.topic == "Collaboration Cafe 2031-06-17"
    assert "**The Collaboration Cafe is in 1 day**: <time:2031-06-17T14:00:00Z>." in posted.text
    assert "**Agenda so far** (65-75 min of 60 min):" in posted.text
    assert "- A1 (45 min) Big topic — Ada Lovelace" in posted.text
    assert ":warning: The estimates add up to 65 min" in posted.text


def test_restart_in_the_reminder_window_sends_nothing_twice(bot: Harness) -> None:
    chat = RecordingChat()
    bot.clock.set(at(2031, 6, 16, 14, 0, 30))
    Lifecycle(bot.app, chat).sweep()
    assert len(chat.posted) == 1
    # A restarted bot (a new scheduler on the same database) in the same window:
    Lifecycle(bot.app, chat).sweep()
    bot.clock.advance(dt.timedelta(minutes=30))
    Lifecycle(bot.app, chat).sweep()
    assert len(chat.posted) == 1
    # A crash after claiming the 1h reminder but before posting it: never posted twice.
    bot.clock.set(at(2031, 6, 17, 13))
    with bot.app.unit_of_work() as session:
        meeting = session.query(Meeting).one()
        session.add(
            SentNotice(
                meeting_id=meeting.id,
                kind="reminder",
                offset_seconds=3600,
                status=NoticeStatus.SENDING,
                due_at=at(2031, 6, 17, 13),
                sent_at=at(2031, 6, 17, 13),
            )
        )
    Lifecycle(bot.app, chat).sweep()
    assert len(chat.posted) == 1


def test_downtime_sends_only_the_latest_reminder_late_once(bot: Harness) -> None:
    chat = RecordingChat()
    bot.send("agenda 10m Release plans")  # the meeting of 17 June exists
    bot.clock.set(at(2031, 6, 17, 13, 30))  # down since before the 7-day reminder
    lifecycle = Lifecycle(bot.app, chat)
    lifecycle.sweep()
    (late,) = chat.posted
    assert "is in 1 hour" in late.text and "This reminder is late" in late.text
    statuses = {n.offset_seconds: (n.status, n.late) for n in bot.rows(SentNotice)}
    assert statuses == {
        604800: (NoticeStatus.SKIPPED, False),
        86400: (NoticeStatus.SKIPPED, False),
        3600: (NoticeStatus.SENT, True),
    }
    lifecycle.sweep()
    assert len(chat.posted) == 1
    bot.clock.set(at(2031, 6, 17, 14))  # the start: on time again
    lifecycle.sweep()
    assert len(chat.posted) == 2 and "late" not in chat.posted[1].text


def test_nothing_is_sent_for_a_meeting_that_has_ended(bot: Harness) -> None:
    chat = RecordingChat()
    bot.send("agenda 10m Release plans")
    bot.clock.set(at(2031, 6, 17, 15, 1))  # down through the whole meeting
    Lifecycle(bot.app, chat).sweep()
    assert [p for p in chat.posted if "is in" in p.text or "starting now" in p.text] == []


# ---------------------------------------------------------------- cancellations


def test_cancel_sends_one_notice_moves_entries_and_no_reminders(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send("shoutout Thanks!", BOB)
    refused = bot.send("cancel", BOB)
    assert "Only the organisers of the Collaboration Cafe may use `cancel`" in refused.text
    answer = bot.send("cancel 2031-06-17 Summer break", OLGA)
    assert "Cancelled the Collaboration Cafe of 2031-06-17. 2 entries moved to 2031-07-15." in (
        answer.text
    )
    ((stream, topic, notice),) = answer.sent
    assert (stream, topic) == ("jupyterhub", "Collaboration Cafe 2031-06-17")
    assert "is cancelled.** Reason: Summer break." in notice
    (item,) = bot.rows(AgendaItem)
    july = next(m for m in bot.rows(Meeting) if m.date == dt.date(2031, 7, 15))
    assert (item.meeting_id, item.ref, item.carried_from) == (july.id, 1, dt.date(2031, 6, 17))
    chat = RecordingChat()
    run_until(Lifecycle(bot.app, chat), bot, at(2031, 6, 30))
    assert chat.posted == []  # no reminders and no second notice
    assert "already cancelled" in bot.send("cancel 2031-06-17", OLGA).text
    back = bot.send("uncancel 2031-06-17", OLGA)
    assert "is in the past" in back.text


def test_uncancel_announces_the_meeting_is_back_on(bot: Harness) -> None:
    bot.send("cancel 2031-06-17", OLGA)
    answer = bot.send("uncancel 2031-06-17", OLGA)
    assert "is back on" in answer.text
    assert [t for _, _, t in answer.sent] == [
        "**The Collaboration Cafe of 2031-06-17 is back on**: <time:2031-06-17T14:00:00Z>."
    ]
    chat = RecordingChat()
    bot.clock.set(at(2031, 6, 16, 14))
    Lifecycle(bot.app, chat).sweep()
    assert len(chat.posted) == 1  # reminders again


def test_add_meeting(bot: Harness) -> None:
    answer = bot.send("add meeting 2031-06-10 17:30", OLGA)
    assert "Added a Collaboration Cafe on 2031-06-10, <time:2031-06-10T15:30:00Z>" in answer.text
    assert bot.send("agenda 5m Early topic").acked
    (item,) = bot.rows(AgendaItem)
    added = next(m for m in bot.rows(Meeting) if m.id == item.meeting_id)
    assert (added.date, added.added) == (dt.date(2031, 6, 10), True)
    assert "already a meeting on 2031-06-17" in bot.send("add meeting 2031-06-17 10:00", OLGA).text
    assert "not a time of day" in bot.send("add meeting 2031-06-11 25:00", OLGA).text
    assert "has passed" in bot.send("add meeting 2031-05-01 10:00", OLGA).text
    assert bot.send("help add").text.startswith("**`add meeting <date> <time>`**")


# ---------------------------------------------------------------- the live meeting


def test_a_live_meeting_with_roll_over(bot: Harness) -> None:
    for topic in ("Welcome", "Release plans", "Docs sprint", "Funding"):
        bot.send(f"agenda 10m {topic}")
    bot.clock.set(at(2031, 6, 17, 13, 58))  # two minutes early
    assert "Only the organisers" in bot.send("start").text
    started = bot.send("start", OLGA)
    assert "has started" in started.text and "First item: **A1 (10 min) Welcome" in started.text
    bot.clock.advance(dt.timedelta(minutes=12))
    answer = bot.send("done", OLGA)
    assert "Closed A1 after 12 min, estimate 10 min." in answer.text
    assert "Now: **A2 (10 min) Release plans" in answer.text
    assert bot.send("note Ship in May").acked  # no reference: the current item
    assert "Now: **A4 (10 min) Funding" in bot.send("goto A4", OLGA).text
    bot.clock.advance(dt.timedelta(minutes=3))
    now = bot.send("now", BOB).text
    assert "3 min so far, estimate 10 min." in now
    # Started two minutes early, it keeps its 60 minutes from then: 13:58 to 14:58.
    assert "45 min left in the meeting; 2 more open items." in now
    ended = bot.send("end", OLGA)
    # Funding was current but neither closed nor given a note: not reached, so it moves too.
    assert (
        "2 items not reached were carried over to 2031-07-15: "
        "A3 → 2031-07-15/A1, A4 → 2031-07-15/A2." in ended.text
    )
    assert "published in 15 min" in ended.text
    items = {(i.meeting_id, i.ref): i for i in bot.rows(AgendaItem)}
    june = next(m for m in bot.rows(Meeting) if m.date == dt.date(2031, 6, 17))
    july = next(m for m in bot.rows(Meeting) if m.date == dt.date(2031, 7, 15))
    assert items[(june.id, 1)].state is ItemState.DONE
    assert items[(june.id, 2)].state is ItemState.OPEN  # discussed: it has a note
    assert (items[(june.id, 3)].state, items[(june.id, 3)].moved_to) == (
        ItemState.CARRIED_OVER,
        dt.date(2031, 7, 15),
    )
    assert [items[(july.id, r)].topic for r in (1, 2)] == ["Docs sprint", "Funding"]
    assert items[(july.id, 1)].carried_from == dt.date(2031, 6, 17)
    assert (june.state, june.ended_at) == (MeetingState.ENDED, at(2031, 6, 17, 14, 13))
    notes = bot.send("notes 2031-06-17").text
    assert "Docs sprint *(moved to 2031-07-15)*" in notes
    assert "Funding *(moved to 2031-07-15)*" in notes and "Ship in May" in notes
    # After the end, new entries go to the next meeting; notes still reach this one.
    assert bot.send("note A4 Follow-up by mail").acked
    assert "No Collaboration Cafe is running live" in bot.send("now").text


def test_a_meeting_not_run_live_rolls_nothing_over(bot: Harness) -> None:
    bot.send("agenda 10m Welcome")
    bot.clock.set(at(2031, 6, 17, 14, 30))
    assert "has ended" in bot.send("end", OLGA).text
    assert [(i.ref, i.state) for i in bot.rows(AgendaItem)] == [(1, ItemState.OPEN)]


def test_a_live_meeting_ends_at_its_scheduled_end(bot: Harness) -> None:
    bot.send("agenda 10m Welcome")
    bot.send("agenda 10m Never reached")
    bot.clock.set(at(2031, 6, 17, 14))
    bot.send("start", OLGA)
    bot.send("done", OLGA)
    chat = RecordingChat()
    run_until(Lifecycle(bot.app, chat), bot, at(2031, 6, 17, 15, 0, 1))
    june = next(m for m in bot.rows(Meeting) if m.date == dt.date(2031, 6, 17))
    assert (june.state, june.ended_at) == (MeetingState.ENDED, at(2031, 6, 17, 15))
    carried = [i for i in bot.rows(AgendaItem) if i.carried_from == dt.date(2031, 6, 17)]
    assert [i.topic for i in carried] == ["Never reached"]


def test_a_meeting_started_days_early_is_published_after_its_end(bot: Harness) -> None:
    bot.send("agenda 10m Welcome")
    bot.clock.set(at(2031, 6, 8, 10))  # nine days before the meeting of 17 June
    assert "in 9 days" in bot.send("start", OLGA).text
    assert "has started" in bot.send("start now", OLGA).text
    bot.clock.advance(dt.timedelta(minutes=20))
    assert "40 min left in the meeting" in bot.send("now").text
    bot.send("done", OLGA)
    assert "has ended" in bot.send("end", OLGA).text
    chat = RecordingChat()
    bot.clock.advance(dt.timedelta(minutes=16))  # past the publish delay of 15 minutes
    Lifecycle(bot.app, chat).sweep()
    june = next(m for m in bot.rows(Meeting) if m.date == dt.date(2031, 6, 17))
    assert (june.state, june.ended_at) == (MeetingState.PUBLISHED, at(2031, 6, 8, 10, 20))
    assert any("Welcome" in p.text for p in chat.posted)


def test_newcomers_are_invited_once(bot: Harness) -> None:
    assert "intro" in bot.send("checkin Ada").text
    bot.clock.set(at(2031, 7, 1))
    assert bot.send("checkin").replies == []
    assert re.search(r"Welcome to the Collaboration Cafe, Bob", bot.send("checkin", BOB).text)


def test_organiser_commands_say_who_may(bot: Harness) -> None:
    for command in ("start", "end", "goto A1", "done", "publish", "uncancel 2031-06-17"):
        answer = bot.send(command, ADA)
        assert "Only the organisers of the Collaboration Cafe may use" in answer.text, command


def test_two_series_keep_their_own_meetings(db_url: str) -> None:
    bot = Harness(db_url, series=(CAFE, BOOK))
    try:
        bot.send("agenda 5m Cafe topic")
        bot.send("agenda 5m Book topic", stream="jupyterbook")
        chat = RecordingChat()
        bot.clock.set(at(2031, 6, 4, 13, 30))  # one day before the book club's 5 June, 09:00 EDT
        Lifecycle(bot.app, chat).sweep()
        (posted,) = [p for p in chat.posted if "in 1 day" in p.text]
        assert posted.stream == "jupyterbook"
        assert "Book topic" in posted.text and "Cafe topic" not in posted.text
    finally:
        bot.close()
