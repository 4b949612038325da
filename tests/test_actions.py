"""Action items as records of their own: recorded, listed, closed, reassigned, reviewed.

Driven through the handler with a fake clock (the end-to-end runs against the fake
Zulip server are in test_actions_run.py).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cafebot.core.chat import Message
from cafebot.storage.backup import read_backup, restore, write_backup
from cafebot.storage.db import make_engine
from cafebot.storage.models import Action, ActionStatus, ItemNote, Meeting, Person
from tests.harness import ADA, BOB, OLGA, Harness, RecordingChat, sqlite_url

JUNE_17 = dt.datetime(2031, 6, 17, 14, 0, tzinfo=dt.UTC)  # 16:00 in Berlin
JULY_15 = dt.datetime(2031, 7, 15, 14, 0, tzinfo=dt.UTC)
BOB_MENTION = "@**Bob Builder|12**"


@pytest.fixture
def bot(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    try:
        yield harness
    finally:
        harness.close()


def _one(bot: Harness) -> Action:
    (action,) = bot.rows(Action)
    return action


def test_an_action_made_at_one_meeting_is_listed_at_the_next(bot: Harness) -> None:
    assert bot.send("agenda 10m Release plans").acked
    assert bot.send(f"action A1 {BOB_MENTION} write the release notes").acked
    action = _one(bot)
    assert (action.label, action.text, action.status) == ("T1", "write the release notes", "open")
    assert action.item_ref == 1 and action.note_ref == 1 and action.due_on is None
    bot.clock.set(JUNE_17 + dt.timedelta(days=2))  # the June meeting is over
    listing = bot.dm("actions", BOB).text
    assert "**T1** write the release notes — Bob Builder · from 2031-06-17 (A1.1)" in listing
    assert "2 weeks old" in listing and "due at the meeting of 2031-07-15" in listing
    assert "`close T1`" in listing and "overdue" not in listing
    bot.clock.set(JULY_15 + dt.timedelta(hours=2))  # the July meeting has ended as well
    assert "**overdue**, due at the meeting of 2031-07-15" in bot.send("actions").text
    assert "1 action is still open from earlier meetings" in bot.send("list").text


def test_a_due_date_ends_the_text_and_a_bad_one_is_refused(bot: Harness) -> None:
    assert bot.send("agenda 10m Release plans").acked
    bad = bot.send("action A1 Book the room by 2031-02-30")
    assert "'2031-02-30' is not a date on the calendar" in bad.text
    assert "`action A2 @_**Bob Builder** write the release notes by 2031-07-01`" in bad.text
    assert not bot.rows(Action) and not bot.rows(ItemNote)
    assert bot.send("action A1 Book the room by 2031-06-10").acked
    action = _one(bot)
    assert action.text == "Book the room" and action.due_on == dt.date(2031, 6, 10)
    assert action.owner_id == action.author_id  # no mention: the author owns it
    bot.clock.set(dt.datetime(2031, 6, 11, 10, 0, tzinfo=dt.UTC))
    assert "**overdue**, due by 2031-06-10" in bot.send("actions").text
    assert bot.send("due T1 next").text == "T1 is due at the meeting of 2031-07-15."
    assert "overdue" not in bot.send("actions").text


def test_close_reopen_drop_and_assign(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send(f"action A1 {BOB_MENTION} write the release notes")
    assert bot.send("close T1", BOB).acked
    action = _one(bot)
    assert action.status is ActionStatus.DONE and action.status_at == bot.clock.now()
    again = bot.send("close T1", BOB).text
    assert "T1 is already done by Bob Builder on 2031-06-01" in again
    assert "no open actions" in bot.send("actions").text
    assert "done by Bob Builder on 2031-06-01" in bot.send("actions all").text
    assert bot.send("reopen A1.1", ADA).acked  # by its sub-reference, by its author
    assert bot.send("drop T1", BOB).acked
    assert _one(bot).status is ActionStatus.DROPPED
    assert bot.send("reopen T1", BOB).acked
    assert "is now Ada Lovelace's" in bot.send("assign T1 @**Ada Lovelace|11**", BOB).text
    assert _one(bot).owner_id == bot.rows(ItemNote)[0].owner_id
    assert "T1" in bot.send("actions mine", ADA).text
    assert "no open actions of Bob Builder" in bot.send(f"actions {BOB_MENTION}").text
    assert "not an action" in bot.send("close A1").text
    assert "has no action T9" in bot.send("close T9").text
    live_done = bot.send("done T1", OLGA).text
    assert "I did not understand" in live_done or "close T1" in live_done


def test_only_the_owner_the_author_or_an_organiser_may_change_an_action(bot: Harness) -> None:
    bot.send("agenda 10m Release plans", OLGA)
    bot.send(f"action A1 {BOB_MENTION} write the release notes", OLGA)
    refused = bot.send("close T1", ADA).text
    assert refused == (
        "You can't close T1: only its owner (Bob Builder), its author (Olga Organiser) or "
        "an organiser of Collaboration Cafe may."
    )
    assert _one(bot).status is ActionStatus.OPEN
    assert "You can't reassign T1" in bot.send("assign T1 @**Ada Lovelace|11**", ADA).text
    assert "You can't edit that entry" in bot.send("edit A1.1 something else", ADA).text
    assert bot.send("edit A1.1 write the release notes for 5.0", BOB).acked  # the owner may
    assert _one(bot).text == "write the release notes for 5.0"
    assert bot.send("close T1", BOB).acked


def test_edit_and_remove_by_reference_change_the_action(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send(f"action A1 {BOB_MENTION} write the release notes")
    assert bot.send("edit A1.1 @**Ada Lovelace|11** write the notes by 2031-06-30").acked
    action = _one(bot)
    assert (action.text, action.due_on) == ("write the notes", dt.date(2031, 6, 30))
    ada = bot.rows(Person, zulip_user_id=ADA.id)[0]
    assert action.owner_id == ada.id
    assert bot.send("remove A1.1").acked
    assert not bot.rows(Action) and not bot.rows(ItemNote)
    bot.send("action A1 Book the room")
    assert _one(bot).number == 2  # a removed action's number is not given again


def test_editing_and_deleting_the_message_follow(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    raw = bot.message(f"action A1 {BOB_MENTION} write the release notes")
    bot.deliver(raw)
    edited = Message.from_zulip({**raw, "content": "@**cafe** action A1 Write it by 2031-06-20"})
    assert bot.handler.dispatch_edit(edited, "action A1 Write it by 2031-06-20", RecordingChat())
    action = _one(bot)
    assert (action.text, action.due_on) == ("Write it", dt.date(2031, 6, 20))
    assert action.owner_id == action.author_id  # the mention is gone: its author owns it
    assert bot.handler.dispatch_delete([raw["id"]]) == ["the action under A1"]
    assert not bot.rows(Action) and not bot.rows(ItemNote)


def test_a_deferred_action_keeps_its_reference(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send("agenda 10m Docs")
    bot.send(f"action A2 {BOB_MENTION} write the docs")
    assert "Moved A2 to the meeting of 2031-07-15 as A1" in bot.send("defer A2").text
    bot.clock.set(JUNE_17 + dt.timedelta(days=3))
    listing = bot.send("list").text
    assert "2031-07-15" in listing and "(**T1**, open)" in listing
    copies = [n for n in bot.rows(ItemNote) if n.action_id is not None]
    assert len(copies) == 2 and len({n.action_id for n in copies}) == 1
    assert bot.send("close 2031-07-15/A1.1", BOB).acked  # the copy in July
    assert _one(bot).status is ActionStatus.DONE
    june = bot.rows(Meeting, date=dt.date(2031, 6, 17))[0]
    assert _one(bot).meeting_id == june.id  # it belongs to the meeting it was made at


def test_start_reviews_the_open_actions_of_earlier_meetings(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send(f"action A1 {BOB_MENTION} write the release notes")
    bot.send("action A1 Book the room")
    bot.send("close T2")
    bot.clock.set(JULY_15 - dt.timedelta(minutes=5))
    started = bot.send("start", OLGA).text
    assert "**Open actions from earlier meetings** (1):" in started
    assert "**T1** write the release notes — Bob Builder" in started and "T2" not in started


def test_actions_in_a_dm_and_bad_filters(bot: Harness) -> None:
    assert "has no open actions" in bot.dm("actions").text
    bad = bot.dm("actions yesterday").text
    assert "`actions` takes `mine`, `all` or a mention" in bad and "actions mine" in bad
    assert "close <action>" in bot.dm("help close").text
    overview = bot.dm("help").text
    assert "**Actions**" in overview and "`close <action>`" in overview


def test_the_notes_of_the_meeting_that_reviewed_them_get_a_section(db_url: str) -> None:
    bot = Harness(db_url, notes_flavour="archive")
    try:
        bot.send("agenda 10m Release plans")
        bot.send(f"action A1 {BOB_MENTION} write the release notes")
        bot.send("action A1 Book the room by 2031-07-01")
        bot.send("action A1 Old news")
        bot.clock.set(JUNE_17 + dt.timedelta(days=1))
        assert bot.send("close T3").acked  # closed before the July meeting...
        bot.clock.set(JUNE_17 + dt.timedelta(days=20))
        july = bot.send("notes 2031-07-15").text
        assert "Action items" not in july  # not reviewed yet: no section
        bot.clock.set(JULY_15 - dt.timedelta(minutes=5))
        bot.send("start", OLGA)
        bot.send("close T2")  # ... and during it
        bot.send("end", OLGA)
        notes = bot.send("notes 2031-07-15").text
        assert (
            "### Action items :white_check_mark:\n\n"
            "_Actions from earlier meetings: done since last time, and still open._\n\n"
            "- **Done** - [name=Ada Lovelace] Book the room (T2, from 2031-06-17, due by "
            "2031-07-01)\n"
            "- **Done** - [name=Ada Lovelace] Old news (T3, from 2031-06-17)\n"
            "- **Open** - [name=Bob Builder] write the release notes (T1, from 2031-06-17)\n"
        ) in notes
        bot.clock.set(JULY_15 + dt.timedelta(days=2))
        bot.send("close T1", BOB)  # after the meeting: its notes still show it open
        assert (
            "- **Open** - [name=Bob Builder] write the release notes"
            in bot.send("notes 2031-07-15").text
        )
        june = bot.send("notes 2031-06-17").text
        assert "Action items" not in june  # nothing from before June
    finally:
        bot.close()


def test_search_finds_actions_by_text_and_owner(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send(f"action A1 {BOB_MENTION} write the release notes")
    bot.send("close T1", BOB)
    found = bot.send("search Bob release").text
    assert "**1 found**" in found
    assert (
        "- **2031-06-17/A1** action T1 (done, Bob Builder): write the release notes "
        "(on “Release plans”)"
    ) in found


def test_backup_and_restore_keep_actions(bot: Harness, tmp_path: Path) -> None:
    bot.send("agenda 10m Release plans")
    bot.send(f"action A1 {BOB_MENTION} write the release notes by 2031-07-01")
    bot.send("close T1", BOB)
    dump = tmp_path / "backup.json"
    write_backup(bot.app.engine, dump)
    tables = json.loads(dump.read_text())["tables"]
    assert tables["action"]["rows"] and tables["item_note"]["rows"]
    (tmp_path / "restored").mkdir()
    url = sqlite_url(tmp_path / "restored")
    engine = make_engine(url)
    restore(engine, read_backup(dump))
    engine.dispose()
    restored = Harness(url)
    restored.next_id = 5000  # past the messages the backup holds as handled
    try:
        (action,) = restored.rows(Action)
        assert (action.label, action.status, action.due_on) == (
            "T1",
            ActionStatus.DONE,
            dt.date(2031, 7, 1),
        )
        assert restored.send("action A1 Book the room").acked
        assert [a.number for a in restored.rows(Action)] == [1, 2]
    finally:
        restored.close()
