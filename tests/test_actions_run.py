"""Actions under `cafebot run`, against the fake Zulip server, in real time.

An action recorded at one meeting and listed at the next, closed from chat, the
owner's one follow-up message before the meeting (exactly once across a restart),
permissions, and the edit and delete of the message that made an action.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from cafebot.bot.app import App
from cafebot.cafe import meetings
from cafebot.core.config import SeriesSettings, load_settings
from cafebot.storage import actions as store
from cafebot.storage.models import ActionStatus, Meeting, MeetingState, Person
from tests import test_zulip_run as zr
from tests.fakezulip import FakeZulip, Org, StoredMessage, User
from tests.harness import add_meeting

pytestmark = pytest.mark.slow


def write_config(tmp_path: Path, org: Org, extra: str = "") -> Path:
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {org.fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        "[series:cafe]\nstream = jupyterhub\norganizers = olga@example.org\n"
        f"archive_dir = {tmp_path / 'notes'}\n{extra}",
        encoding="utf-8",
    )
    return config


def dms_to(org: Org, user: User) -> list[StoredMessage]:
    return [m for m in org.replies() if m.stream is None and user.id in m.recipients]


def seed_earlier_meeting(config: Path, org: Org, owners: dict[str, User]) -> SeriesSettings:
    """A meeting a month ago, published, with one open action per owner (and a done one)."""
    settings = load_settings(config, environ={})
    (series,) = settings.series
    app = App.create(settings)
    past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(days=30)
    with app.unit_of_work() as session:
        row = meetings.series_row(session, series)
        meeting = Meeting(
            series=row,
            date=past.date(),
            starts_at=past,
            ends_at=past + dt.timedelta(hours=1),
            state=MeetingState.PUBLISHED,
        )
        session.add(meeting)
        session.flush()
        for text, user in owners.items():
            person = session.query(Person).filter_by(zulip_user_id=user.id).one_or_none()
            if person is None:
                person = Person(zulip_user_id=user.id, zulip_name=user.full_name, created_at=past)
                session.add(person)
                session.flush()
            store.create(session, row, meeting, text, created_at=past, owner_id=person.id)
        done = store.create(session, row, meeting, "Already done", created_at=past)
        store.set_status(done, ActionStatus.DONE, by_id=None, at=past)
    app.close()
    return series


def test_the_owner_gets_one_dm_before_the_meeting_across_a_restart(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = write_config(tmp_path, org, "reminders = 0s\naction_followup = 8s\nduration = 4s\n")
    series = seed_earlier_meeting(
        config, org, {"Write the release notes": org.bob, "Book the room": org.bob,
                      "Fix the docs": org.ada},
    )  # fmt: skip
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=11)
    app = App.create(load_settings(config, environ={}))
    add_meeting(app, series, start, topics=("Quick one",))
    app.close()
    # The first try's answer is lost: the outbox must find the DM, not post it twice.
    fake.fault("drop_after", "messages", method="POST")
    bot = zr.Process(config, org)
    try:
        fake.wait_for(lambda: dms_to(org, org.bob) and dms_to(org, org.ada), 15, "the DMs")
    finally:
        bot.kill()  # no clean shutdown
    bot = zr.Process(config, org)  # restarted before the meeting
    try:
        topic = series.topic_for(start.date())
        fake.wait_for(
            lambda: any(m.topic == topic for m in org.replies()), 20, "the start reminder"
        )
        assert "Open actions" not in bot.output()
    finally:
        assert bot.terminate()[0] == 0
    (bob,) = dms_to(org, org.bob)
    (ada,) = dms_to(org, org.ada)
    assert bob.content.startswith(
        f"**Your open 2 actions for the Collaboration Cafe of {start.date()}**"
    )
    assert "**T1** Write the release notes" in bob.content and "`close T1`" in bob.content
    assert "**T2** Book the room" in bob.content and "`close T2`" in bob.content
    assert "Fix the docs" not in bob.content and "Already done" not in bob.content
    assert "**T3** Fix the docs" in ada.content and "`close T3`" in ada.content
    assert not dms_to(org, org.olga)
    rows = zr.db_rows(config, "SELECT count(*) FROM action_followup")
    assert rows == [(2,)]
    reminder = next(m for m in org.replies() if m.topic == topic)
    assert "3 actions are still open from earlier meetings" in reminder.content


def test_an_action_made_at_one_meeting_is_listed_and_closed_at_the_next(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = write_config(tmp_path, org, "reminders = 0s\naction_followup = off\n")
    bot = zr.Process(config, org)
    try:
        first = org.command("agenda 10m Release plans")
        fake.wait_for(lambda: org.acked(first), what="the agenda item")
        made = org.command("action A1 @**Bob Builder** write the release notes")
        fake.wait_for(lambda: org.acked(made), what="the action")
        # The next meeting: the action's meeting is a month back.
        back = dt.timedelta(days=40)
        zr.db_rows(config, "SELECT 1")  # the database is there
        engine = zr.create_engine(f"sqlite:///{tmp_path / 'cafe.db'}")
        with engine.begin() as connection:
            connection.execute(
                zr.text(
                    "UPDATE meeting SET starts_at = :s, ends_at = :e, state = 'published', "
                    "date = :d WHERE id = (SELECT meeting_id FROM action)"
                ),
                {
                    "s": (dt.datetime.now(dt.UTC) - back).replace(tzinfo=None),
                    "e": (dt.datetime.now(dt.UTC) - back).replace(tzinfo=None),
                    "d": (dt.datetime.now(dt.UTC) - back).date(),
                },
            )
        engine.dispose()
        fake.dm(org.bob, [org.bot], "actions mine")
        listing = fake.wait_for(lambda: dms_to(org, org.bob), what="the listing")[0].content
        assert "**T1** write the release notes — Bob Builder" in listing
        assert f"from {(dt.datetime.now(dt.UTC) - back).date()} (A1.1)" in listing
        assert "**overdue**" in listing and "`close T1`" in listing
        listed = org.command("list")
        fake.wait_for(lambda: len(org.replies()) >= 2, what="the list")
        assert "1 action is still open from earlier meetings" in org.replies()[-1].content
        refused = org.command("close T1", org.ada)  # Ada made it for Bob: she may
        fake.wait_for(lambda: org.acked(refused), what="Ada's close")
        status = "SELECT status FROM action"
        assert zr.db_rows(config, status) == [("done",)]
        reopen = fake.dm(org.olga, [org.bot], "reopen T1")  # an organiser may
        fake.wait_for(lambda: org.acked(reopen), what="the organiser's reopen")
        assert zr.db_rows(config, status) == [("open",)]
        fake.dm(org.bob, [org.bot], "close T1")
        fake.wait_for(
            lambda: zr.db_rows(config, "SELECT status FROM action") == [("done",)],
            what="Bob's close",
        )
        assert listed
    finally:
        assert bot.terminate()[0] == 0
    owner = zr.db_rows(
        config, "SELECT p.zulip_user_id FROM action a JOIN person p ON p.id = a.owner_id"
    )
    assert owner == [(org.bob.id,)]  # the mention by name resolved to Bob's Zulip account


def test_permissions_refusal_and_the_message_that_made_the_action(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = write_config(tmp_path, org, "reminders = 0s\n")
    bot = zr.Process(config, org)
    try:
        first = org.command("agenda 10m Release plans", org.olga)
        fake.wait_for(lambda: org.acked(first), what="the agenda item")
        made = org.command("action A1 @**Bob Builder** write the release notes", org.olga)
        fake.wait_for(lambda: org.acked(made), what="the action")
        org.command("close T1", org.ada)
        refusal = fake.wait_for(
            lambda: [m for m in org.replies() if "You can't close T1" in m.content],
            what="the refusal",
        )[0].content
        assert "only its owner (Bob Builder), its author (Olga Organiser) or an organiser" in (
            refusal
        )
        assert zr.db_rows(config, "SELECT status FROM action") == [("open",)]
        fake.edit(made, "@**cafe** action A1 @**Ada Lovelace** write the notes by 2031-07-01")
        fake.wait_for(
            lambda: (
                zr.db_rows(config, "SELECT text, due_on FROM action")
                == [("write the notes", "2031-07-01")]
            ),
            what="the edit followed",
        )
        owner = "SELECT p.zulip_user_id FROM action a JOIN person p ON p.id = a.owner_id"
        assert zr.db_rows(config, owner) == [(org.ada.id,)]
        fake.delete(made)
        fake.wait_for(
            lambda: zr.db_count(config, "SELECT count(*) FROM action") == 0,
            what="the delete followed",
        )
        assert zr.db_count(config, "SELECT count(*) FROM item_note") == 0
    finally:
        assert bot.terminate()[0] == 0


def test_the_notes_post_a_todo_widget_and_ticks_close_the_action(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = write_config(
        tmp_path, org, "reminders = 0s\nduration = 3s\npublish_delay = 1s\naction_followup = off\n"
    )
    settings = load_settings(config, environ={})
    (series,) = settings.series
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=8)
    app = App.create(settings)
    add_meeting(app, series, start, topics=("Release plans",))
    app.close()
    topic = series.topic_for(start.date())
    bot = zr.Process(config, org)
    try:
        made = org.command("action A1 @**Bob Builder** write the release notes: all of them")
        fake.wait_for(lambda: org.acked(made), what="the action")
        other = org.command("action A1 Book the room by 2031-07-01")
        fake.wait_for(lambda: org.acked(other), what="the second action")

        def widget() -> list[StoredMessage]:
            return [m for m in org.replies() if m.topic == topic and m.content.startswith("/todo")]

        (posted,) = fake.wait_for(widget, 25, "the to-do widget")
        assert posted.content == (
            f"/todo Actions of {start.date()}\n"
            "T1 write the release notes - all of them: Bob Builder\n"
            "T2 Book the room: Ada Lovelace, due by 2031-07-01"
        )
        tasks = json.loads(fake.submessages_of(posted.id)[0]["content"])["extra_data"]["tasks"]
        assert [t["task"] for t in tasks] == [
            "T1 write the release notes - all of them",
            "T2 Book the room",
        ]
        status = "SELECT number, status FROM action ORDER BY number"
        fake.strike(org.bob, posted.id, "0,canned")
        fake.wait_for(
            lambda: zr.db_rows(config, status) == [(1, "done"), (2, "open")], what="the tick"
        )
        by = "SELECT p.zulip_user_id FROM action a JOIN person p ON p.id = a.status_by_id"
        assert zr.db_rows(config, by + " WHERE a.number = 1") == [(org.bob.id,)]
        fake.strike(org.ada, posted.id, "0,canned")  # unticked: open again
        fake.wait_for(
            lambda: zr.db_rows(config, status) == [(1, "open"), (2, "open")], what="the untick"
        )
        again = fake.dm(org.olga, [org.bot], f"publish {start.date()}")
        fake.wait_for(lambda: org.acked(again) or dms_to(org, org.olga), what="the re-publish")
        fake.wait_for(lambda: len(fake.requests_to("messages", "PATCH")) >= 1, what="the edit")
        assert len(widget()) == 1  # a widget cannot be edited: the list posted once stays
    finally:
        assert bot.terminate()[0] == 0
    fake.strike(org.bob, posted.id, "1,canned")  # ticked while the bot is away
    bot = zr.Process(config, org)
    try:
        fake.wait_for(
            lambda: zr.db_rows(config, status) == [(1, "open"), (2, "done")],
            what="the tick made while away",
        )
        time.sleep(1)  # the earlier ticks, read again, are not followed twice
        assert zr.db_rows(config, status) == [(1, "open"), (2, "done")]
    finally:
        assert bot.terminate()[0] == 0
