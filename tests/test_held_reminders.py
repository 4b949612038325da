"""Reminders on Zulip's clock: each meeting's next reminder held as a scheduled message.

The bot runs on the fake Zulip with a fake clock (June 2031); the fake's delivery
worker is driven by the test at the fake clock's instants (``deliver_scheduled``),
so nothing here waits for real time to pass. Only Zulip and the clock are fake.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from cafebot.bot.app import App
from cafebot.cafe.held import MAX_WAIT, QUIET, Debounce
from cafebot.cafe.scheduler import Lifecycle
from cafebot.core.clock import FakeClock
from cafebot.storage.models import HeldReminder, Meeting, NoticeKind, NoticeStatus, SentNotice
from tests import fakezulip
from tests.fakezulip import FakeZulip, Org, StoredMessage
from tests.harness import CAFE, JUNE_1
from tests.test_zulip_transport import Running, make_app

# The cafe meets on Tuesday 17 June 2031 at 16:00 in Berlin (14:00 UTC); the clock says
# 1 June, so its next reminder is the one a week ahead, on 10 June.
START = dt.datetime(2031, 6, 17, 14, 0, tzinfo=dt.UTC)
WEEK_BEFORE = START - dt.timedelta(days=7)
DAY_BEFORE = START - dt.timedelta(days=1)
TOPIC = CAFE.topic_for(START.date())


class Bot:
    """The Zulip transport and the scheduler on one app, as ``cafebot run`` wires them."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.running = Running(app).wait_ready()
        self.lifecycle = Lifecycle(app, self.running.bot.chat)
        self.lifecycle.start()

    def stop(self) -> None:
        self.lifecycle.stop()
        self.running.stop()


@pytest.fixture
def app(db_url: str, org: Org) -> Iterator[App]:
    app = make_app(db_url, org)
    yield app
    app.close()


@pytest.fixture
def bot(app: App) -> Iterator[Bot]:
    running = Bot(app)
    yield running
    running.stop()


def clock(app: App) -> FakeClock:
    assert isinstance(app.clock, FakeClock)
    return app.clock


def in_topic(org: Org) -> list[StoredMessage]:
    return [m for m in org.replies() if m.stream == "jupyterhub" and m.topic == TOPIC]


def notices(app: App) -> list[SentNotice]:
    with app.unit_of_work() as session:
        return list(
            session.scalars(
                select(SentNotice)
                .where(SentNotice.kind == NoticeKind.REMINDER)
                .order_by(SentNotice.offset_seconds.desc())
            )
        )


def held(app: App) -> list[HeldReminder]:
    with app.unit_of_work() as session:
        return list(session.scalars(select(HeldReminder).order_by(HeldReminder.due_at)))


def requests(fake: FakeZulip, method: str) -> list[Any]:
    return [r for r in fake.requests_to("scheduled_messages", method) if r.status == 200]


def test_the_next_reminder_is_held_at_zulip_and_recorded_when_zulip_posts_it(
    bot: Bot, app: App, org: Org
) -> None:
    fake = org.fake
    (record,) = fake.scheduled_of(org.bot)
    assert record.timestamp == int(WEEK_BEFORE.timestamp())
    assert record.topic == TOPIC
    assert record.stream_id == fake.streams["jupyterhub"].id
    assert record.content.startswith("**The Collaboration Cafe is in 7 days**")
    (row,) = held(app)
    assert row.scheduled_message_id == record.id and row.offset_seconds == 7 * 86400
    # Its time comes: the bot's own timer leaves it to Zulip, and holds the next one.
    clock(app).set(WEEK_BEFORE)
    assert bot.lifecycle.sweep().reminders == 0
    assert in_topic(org) == []
    assert [r.timestamp for r in fake.scheduled_of(org.bot)] == [
        int(WEEK_BEFORE.timestamp()),
        int(DAY_BEFORE.timestamp()),
    ]
    # Zulip's worker posts it (a minute late, as it looks once a minute); the bot sees it.
    fake.deliver_scheduled(WEEK_BEFORE.timestamp() + 60)
    (posted,) = in_topic(org)
    assert posted.content == record.content
    fake.wait_for(lambda: notices(app), what="the reminder recorded as sent")
    (notice,) = notices(app)
    assert (notice.offset_seconds, notice.status, notice.late) == (
        7 * 86400,
        NoticeStatus.SENT,
        False,
    )
    assert notice.message_id == posted.id
    assert [r.offset_seconds for r in held(app)] == [86400]  # only the next one is held
    # Later sweeps do not send it again.
    clock(app).advance(dt.timedelta(hours=1))
    assert bot.lifecycle.sweep().reminders == 0
    assert len(in_topic(org)) == 1


def test_a_reminder_due_while_the_bot_is_down_goes_out_on_time_once(app: App, org: Org) -> None:
    fake = org.fake
    first = Bot(app)
    first.stop()  # the bot is down from 1 June on
    # Zulip posts the week-before reminder on time, while nobody listens.
    fake.deliver_scheduled(WEEK_BEFORE.timestamp() + 30)
    (posted,) = in_topic(org)
    # Out of the catch-up's reach (a real server's unnarrowed fetch does not return a
    # bot's own channel messages anyway): only Zulip's list of scheduled messages tells.
    fake.age(posted.id, 2 * 86400)
    # The bot comes back three days later: Zulip's list no longer has it.
    clock(app).set(WEEK_BEFORE + dt.timedelta(days=3))
    again = Bot(app)
    try:
        assert fake.requests_to("scheduled_messages", "GET")
        (notice,) = notices(app)
        assert notice.offset_seconds == 7 * 86400 and notice.status is NoticeStatus.SENT
        assert notice.message_id is None  # recorded from the list, not from seeing it
        assert again.lifecycle.sweep().reminders == 0
        assert len(in_topic(org)) == 1  # not sent a second time by the bot's own timer
        # The next reminder is held in its place.
        (record,) = fake.scheduled_of(org.bot)
        assert record.timestamp == int(DAY_BEFORE.timestamp())
    finally:
        again.stop()


def test_one_zulip_could_not_send_is_sent_late_by_the_bot_once(app: App, org: Org) -> None:
    fake = org.fake
    Bot(app).stop()
    fake.fail_scheduled_delivery = "Message could not be sent at the scheduled time."
    fake.deliver_scheduled(WEEK_BEFORE.timestamp() + 30)
    (failed,) = fake.scheduled_of(org.bot)
    assert failed.failed and in_topic(org) == []
    fake.fail_scheduled_delivery = None
    clock(app).set(WEEK_BEFORE + dt.timedelta(hours=2))
    again = Bot(app)
    try:
        # The failed one is deleted at Zulip, and the bot sent the reminder itself, late.
        (posted,) = in_topic(org)
        assert "This reminder is late" in posted.content
        assert all(r.id != failed.id for r in fake.scheduled_of(org.bot))
        (notice,) = notices(app)
        assert notice.late and notice.status is NoticeStatus.SENT
        assert again.lifecycle.sweep().reminders == 0
        assert len(in_topic(org)) == 1
    finally:
        again.stop()


def test_a_burst_of_agenda_changes_gives_one_edit_after_a_quiet_moment(
    bot: Bot, app: App, org: Org
) -> None:
    fake = org.fake
    before = len(requests(fake, "PATCH"))
    posted = [org.command(f"agenda 5m Topic {n}") for n in range(8)]
    fake.wait_for(lambda: all(org.acked(m) for m in posted), what="eight acknowledgements")
    removal = org.command("remove A3")
    fake.wait_for(lambda: org.acked(removal), what="the removal")
    # Within the quiet period nothing is edited yet.
    clock(app).advance(QUIET / 2)
    assert not bot.lifecycle.sync_held()
    assert len(requests(fake, "PATCH")) == before
    clock(app).advance(QUIET)
    assert bot.lifecycle.sync_held()
    assert len(requests(fake, "PATCH")) == before + 1  # one edit for nine changes
    (record,) = fake.scheduled_of(org.bot)
    assert "(35 min of 60 min)" in record.content
    assert "Topic 7" in record.content and "Topic 2" not in record.content
    assert record.timestamp == int(WEEK_BEFORE.timestamp())
    # Nothing more changed: no further edit.
    clock(app).advance(MAX_WAIT)
    assert not bot.lifecycle.sync_held()
    bot.lifecycle.sweep()
    assert len(requests(fake, "PATCH")) == before + 1


def test_cancelling_a_meeting_deletes_its_held_reminder(bot: Bot, app: App, org: Org) -> None:
    fake = org.fake
    (record,) = fake.scheduled_of(org.bot)
    org.command("cancel 2031-06-17 Summer break", org.olga)
    # The schedule changed: the held reminder goes at once (no quiet period to wait).
    fake.wait_for(
        lambda: all(r.scheduled_message_id != record.id for r in held(app)),
        what="the held reminder withdrawn",
    )
    assert [r.status for r in fake.requests_to(f"scheduled_messages/{record.id}")] == [200]
    assert record.id not in [r.id for r in fake.scheduled_of(org.bot)]
    # The following meeting's reminder is held instead, and the cancelled one's never goes.
    fake.deliver_scheduled(START.timestamp())
    assert not any("is in 7 days" in m.content and m.topic == TOPIC for m in org.replies())


def test_a_moved_meeting_gets_its_held_reminder_moved(bot: Bot, app: App, org: Org) -> None:
    fake = org.fake
    (record,) = fake.scheduled_of(org.bot)
    later = START + dt.timedelta(hours=2)
    with app.unit_of_work() as session:
        meeting = session.scalars(select(Meeting).where(Meeting.starts_at == START)).one()
        meeting.starts_at, meeting.ends_at = later, later + dt.timedelta(hours=1)
    bot.lifecycle.sweep()
    (moved,) = fake.scheduled_of(org.bot)
    assert moved.id == record.id  # edited in place
    assert moved.timestamp == int((later - dt.timedelta(days=7)).timestamp())
    assert f"<time:{later:%Y-%m-%dT%H:%M:%SZ}>" in moved.content


def test_without_the_feature_the_bot_s_own_timer_sends_them(
    app: App, org: Org, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="cafebot")
    monkeypatch.setattr(fakezulip, "FEATURE_LEVEL", 170)  # Zulip 6: no scheduled messages
    bot = Bot(app)
    try:
        assert bot.lifecycle.held is not None and not bot.lifecycle.held.active
        assert "the bot's own timer" in bot.lifecycle.reminder_path
        assert org.fake.requests_to("scheduled_messages") == []
        clock(app).set(WEEK_BEFORE)
        assert bot.lifecycle.sweep().reminders == 1
        (posted,) = in_topic(org)
        assert posted.content.startswith("**The Collaboration Cafe is in 7 days**")
    finally:
        bot.stop()
    said = caplog.text
    assert "has no scheduled messages" in said and "the bot's own timer sends them" in said
    assert held(app) == []


def test_when_zulip_refuses_a_scheduled_message_the_bot_s_own_timer_takes_over(
    app: App, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="cafebot")
    org.fake.fault("status", "scheduled_messages", method="POST", status=400)
    bot = Bot(app)
    try:
        assert bot.lifecycle.held is not None and not bot.lifecycle.held.active
        assert "Zulip refused a scheduled message" in caplog.text
        assert held(app) == [] and org.fake.scheduled_of(org.bot) == []
        clock(app).set(WEEK_BEFORE)
        assert bot.lifecycle.sweep().reminders == 1
        assert len(in_topic(org)) == 1
    finally:
        bot.stop()


def test_debounce_waits_for_quiet_but_not_forever() -> None:
    debounce = Debounce(dt.timedelta(seconds=5), dt.timedelta(seconds=60))
    assert debounce.due_at is None and not debounce.take(JUNE_1)
    for second in range(0, 100, 2):  # a change every two seconds, for 100 s
        due, began = debounce.mark(JUNE_1 + dt.timedelta(seconds=second))
        assert began == (second == 0)
        if second < 60:
            assert due == JUNE_1 + dt.timedelta(seconds=min(second + 5, 60))
    # Changes never paused for 5 s: the update is still due 60 s after the first one.
    assert debounce.take(JUNE_1 + dt.timedelta(seconds=60))
    assert not debounce.take(JUNE_1 + dt.timedelta(seconds=61))  # once
    assert debounce.mark(JUNE_1 + dt.timedelta(seconds=100))[1]  # a new burst
    assert not debounce.take(JUNE_1 + dt.timedelta(seconds=104))
    assert debounce.take(JUNE_1 + dt.timedelta(seconds=105))


def test_a_lost_answer_to_the_create_does_not_hold_it_twice(app: App, org: Org) -> None:
    # Zulip makes the scheduled message, but its answer never reaches the bot.
    org.fake.fault("drop_after", "scheduled_messages", method="POST")
    bot = Bot(app)
    try:
        (record,) = org.fake.scheduled_of(org.bot)
        (row,) = held(app)
        assert row.scheduled_message_id == record.id  # found in Zulip's list, not made again
        assert len(org.fake.requests_to("scheduled_messages", "POST")) == 1
    finally:
        bot.stop()


def test_a_create_not_confirmed_before_a_crash_is_adopted_at_the_restart(
    app: App, org: Org
) -> None:
    Bot(app).stop()
    (record,) = org.fake.scheduled_of(org.bot)
    with app.unit_of_work() as session:  # as if the bot died before storing Zulip's answer
        session.scalars(select(HeldReminder)).one().scheduled_message_id = None
    again = Bot(app)
    try:
        (row,) = held(app)
        assert row.scheduled_message_id == record.id
        assert [r.id for r in org.fake.scheduled_of(org.bot)] == [record.id]
        assert len(org.fake.requests_to("scheduled_messages", "POST")) == 1
    finally:
        again.stop()
