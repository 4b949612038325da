"""Issue #17: running a meeting live in `cafebot shell`, a real process at real time.

A series whose daily schedule puts a meeting a few minutes before now is one
that may be started; the default series (third Tuesday of the month) has its
next meeting days away on most days.
"""

from __future__ import annotations

import datetime as dt
import re
import sqlite3
from pathlib import Path

from tests.test_cli import cafebot

ORGANIZER = ("--as", "Olga Organiser <olga@example.org>", "--organizer")


def write_config(tmp_path: Path, schedule: str, start: dt.datetime, extra: str = "") -> Path:
    config = tmp_path / "cafe.ini"
    config.write_text(
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        f"[series:cafe]\nname = Test Cafe\nschedule = {schedule}\n"
        f"start = {start:%H:%M}\ntimezone = UTC\nduration = 60m\n{extra}"
    )
    return config


def daily_config(tmp_path: Path, *, minutes_ago: int = 10, extra: str = "") -> tuple[Path, dt.date]:
    """A series meeting every day, today's meeting having begun ``minutes_ago`` (UTC)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    return write_config(tmp_path, "FREQ=DAILY", start, extra), start.date()


def minutes_left(out: str) -> int:
    found = re.search(r"^(\d+) min left in the meeting", out, re.MULTILINE)
    assert found, out
    return int(found.group(1))


def rows(tmp_path: Path, sql: str, *params: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "cafe.db") as conn:
        return list(conn.execute(sql, params))


def test_end_names_the_ended_meetings_references_and_where_each_went(tmp_path: Path) -> None:
    config, today = daily_config(tmp_path)
    tomorrow = today + dt.timedelta(days=1)
    script = "".join(f"agenda 5m Topic {n}\n" for n in range(1, 6))
    script += "start\ndone\ndone\ngoto A4\ndone\nend\n"
    result = cafebot("shell", "--config", str(config), *ORGANIZER, stdin=script)
    assert result.returncode == 0, result.stderr
    line = next(x for x in result.stdout.splitlines() if "carried over" in x)
    # A1, A2 and A4 were discussed; A3 and A5 went to tomorrow's meeting as its A1 and A2.
    assert line == (
        f"2 items not reached were carried over to {tomorrow}: "
        f"A3 → {tomorrow}/A1, A5 → {tomorrow}/A2."
    )
    carried = rows(
        tmp_path,
        "select a.ref, a.topic, a.carried_from, m.date from agenda_item a "
        "join meeting m on m.id = a.meeting_id where a.carried_from is not null order by a.ref",
    )
    assert carried == [
        (1, "Topic 3", str(today), str(tomorrow)),
        (2, "Topic 5", str(today), str(tomorrow)),
    ]


# ---------------------------------------------------------------- point 1: start too early


def test_start_days_before_the_meeting_is_refused_and_start_now_keeps_the_slot(
    tmp_path: Path,
) -> None:
    # The meeting is nine days away, at this time of day (the 2026-12-06 and -15).
    day = dt.datetime.now(dt.UTC) + dt.timedelta(days=9)
    config = write_config(tmp_path, f"FREQ=YEARLY;BYMONTH={day.month};BYMONTHDAY={day.day}", day)
    shell = ("shell", "--config", str(config), *ORGANIZER)
    refused = cafebot(*shell, stdin="agenda 10m Release plans\nstart\nnow\n").stdout
    assert f"The next Test Cafe is on {day.date()}, " in refused
    assert f"{day:%H:%M} UTC: in 8 days." in refused or f"{day:%H:%M} UTC: in 9 days." in refused
    assert f"to start it now anyway, say `start now` (or `start {day.date()}`)." in refused
    assert "has started" not in refused
    assert "No Test Cafe is running live." in refused  # `now` after the refusal
    assert rows(tmp_path, "select state, started_at from meeting") == [("scheduled", None)]

    started = cafebot(*shell, stdin="start now\nnow\n").stdout
    assert f"The Test Cafe of {day.date()} has started." in started
    # The time left is the slot's 60 minutes from now, not the days until the scheduled end.
    assert 58 <= minutes_left(started) <= 60
    ended = cafebot(*shell, stdin="end\n").stdout
    assert f"The Test Cafe of {day.date()} has ended." in ended
    ((state, started_at, ended_at),) = rows(
        tmp_path, "select state, started_at, ended_at from meeting where date = ?", str(day.date())
    )
    assert state == "ended"
    held = dt.datetime.fromisoformat(str(ended_at)) - dt.datetime.fromisoformat(str(started_at))
    assert dt.timedelta(0) <= held < dt.timedelta(minutes=5)  # held now, not until the 15th


def test_start_by_the_meetings_date_and_wrong_dates(tmp_path: Path) -> None:
    day = dt.datetime.now(dt.UTC) + dt.timedelta(days=9)
    config = write_config(tmp_path, f"FREQ=YEARLY;BYMONTH={day.month};BYMONTHDAY={day.day}", day)
    later = day.date().replace(year=day.year + 1)
    script = f"start tomorrow\nstart {later}\nstart {day.date()}\n"
    out = cafebot("shell", "--config", str(config), *ORGANIZER, stdin=script).stdout
    assert "'tomorrow' is not `now` or a meeting's date: write `start now`" in out
    assert (
        f"`start` starts the current or next meeting, which is that of {day.date()}, "
        f"not {later}." in out
    )
    assert f"For example: `start {day.date()}`" in out
    assert f"The Test Cafe of {day.date()} has started." in out
    assert "Traceback" not in out
    assert rows(tmp_path, "select state from meeting") == [("live",)]


def test_start_within_the_margin_counts_the_slot_from_the_actual_start(tmp_path: Path) -> None:
    # Today's meeting begins in ten minutes: inside the default margin of 30 minutes.
    config, _ = daily_config(tmp_path, minutes_ago=-10)
    out = cafebot("shell", "--config", str(config), *ORGANIZER, stdin="start\nnow\n").stdout
    assert "has started" in out
    # Started ten minutes early, it keeps its 60 minutes: not 70 to the scheduled end.
    assert 58 <= minutes_left(out) <= 60


def test_start_margin_comes_from_the_series_config(tmp_path: Path) -> None:
    config, _ = daily_config(tmp_path, minutes_ago=-10, extra="start_margin = 5m\n")
    out = cafebot("shell", "--config", str(config), *ORGANIZER, stdin="start\n").stdout
    assert "`start` starts a meeting from 5 min before its start" in out
    assert "has started" not in out
    bad = tmp_path / "bad.ini"
    bad.write_text(config.read_text().replace("start_margin = 5m", "start_margin = soon"))
    result = cafebot("shell", "--config", str(bad), stdin="start\n")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "start_margin = 30m" in result.stderr


# ---------------------------------------------------------------- point 3: notes' sub-references


def test_notes_decisions_and_actions_have_sub_references_for_edit_and_remove(
    tmp_path: Path,
) -> None:
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    ada = ("shell", "--db", db, "--as", "Ada Lovelace <ada@example.org>")
    script = (
        "agenda 10m Release plans\n"
        "note A1 We aim for Mai\n"
        "decision A1 Ship 4.0 on 1 May\n"
        "action A1 @**Bob Builder** write the release notes\n"
        "edit A1.1 We aim for May\n"
        "remove A1.2\n"
        "decision A1 Ship 5.0 on 1 May\n"
        "list\nnotes\n"
    )
    out = cafebot(*ada, stdin=script).stdout
    # The listing: each under its item, by a sub-reference that a removal does not reuse.
    assert (
        "- **A1** (10 min) Release plans — Ada Lovelace\n"
        "    - **A1.1** We aim for May\n"
        "    - **A1.3** **Action**: Bob Builder — write the release notes (**T1**, open)\n"
        "    - **A1.4** **Decision**: Ship 5.0 on 1 May\n"
    ) in out
    # The notes preview ends each note's line with it.
    assert "    - We aim for May `A1.1`\n" in out
    assert "    - **Decision** - Ship 5.0 on 1 May `A1.4`\n" in out
    assert "Ship 4.0" not in out and "Mai" not in out
    # Published notes are in the community's format, which has no place for them.
    published = cafebot("notes", "--db", db, "next").stdout
    assert "    - We aim for May\n" in published and "`A1." not in published

    # Someone else may not change Ada's notes; an organiser may.
    bob = cafebot("shell", "--db", db, "--as", "Bob <bob@example.org>", stdin="remove A1.1\n")
    assert "only its author (Ada Lovelace) or an organiser" in bob.stdout
    olga = cafebot(
        "shell",
        "--db",
        db,
        *ORGANIZER,
        stdin="edit A1.3 @**Olga Organiser** book the room\nremove A1.4\nremove A1.4\n"
        "edit S1.1 x\nnote A1.1 x\n",
    ).stdout
    assert olga.count(":check:") == 2
    assert "There is no A1.4 under A1 of" in olga and "(its notes: A1.1, A1.3)" in olga
    assert "only agenda items have notes; a note's reference is like A2.1" in olga
    assert "A1.1 is a note under A1; here give the agenda item itself: A1." in olga
    assert "Traceback" not in olga
    notes = rows(
        tmp_path,
        "select n.position, n.kind, n.text, coalesce(p.name, p.zulip_name) from item_note n "
        "left join person p on p.id = n.owner_id order by n.position",
    )
    assert notes == [
        (1, "note", "We aim for May", None),
        (3, "action", "book the room", "Olga Organiser"),
    ]
    assert rows(tmp_path, "select next_note_ref from agenda_item") == [(5,)]


# ---------------------------------------------------------------- point 8: uncancel moves back


def test_uncancel_moves_back_what_the_cancel_moved_and_is_untouched(tmp_path: Path) -> None:
    # A monthly series whose next meeting is nine days away.
    first = dt.datetime.now(dt.UTC) + dt.timedelta(days=9)
    config = write_config(tmp_path, f"FREQ=MONTHLY;BYMONTHDAY={first.day}", first)
    first_date = first.date()
    ada = ("shell", "--config", str(config), "--as", "Ada Lovelace <ada@example.org>")
    cafebot(
        *ada,
        stdin="checkin Ada / @ada\nagenda 10m Release plans\nagenda 5m Docs sprint\n"
        "agenda Funding\nshoutout Site footers landed!\n",
    )
    olga = ("shell", "--config", str(config), *ORGANIZER)
    cancelled = cafebot(*olga, stdin=f"cancel {first_date} Holidays\nlist\n").stdout
    assert f"Cancelled the Test Cafe of {first_date}. 5 entries moved to " in cancelled
    later = dt.date.fromisoformat(cancelled.split("entries moved to ")[1][:10])
    # After the cancel, people touch two of the moved entries.
    cafebot(*ada, stdin=f"edit {later}/A2 5m Docs sprint, second round\nnote {later}/A3 Ask NF\n")
    out = cafebot(*olga, stdin=f"uncancel {first_date}\nlist\n").stdout
    assert (
        f"Moved back to {first_date} what the cancel had moved and nobody has changed since: "
        f"{later}/A1 → A1, {later}/C1 → C1, {later}/S1 → S1."
    ) in out
    assert (
        f"Changed or moved since, so left where they are: {later}/A2 (was A2), {later}/A3 (was A3)"
    ) in out
    assert "stay there" not in out
    # The meeting is back with its own references; the touched ones wait in the next one.
    assert "- **A1** (10 min) Release plans — Ada\n" in out  # the name she checked in with
    assert "- **C1** Ada / @ada\n" in out and "- **S1** Site footers landed! — Ada\n" in out
    placed = rows(
        tmp_path,
        "select m.date, a.ref, a.topic, a.carried_from from agenda_item a "
        "join meeting m on m.id = a.meeting_id order by m.date, a.ref",
    )
    assert placed == [
        (str(first_date), 1, "Release plans", None),
        (str(later), 2, "Docs sprint, second round", str(first_date)),
        (str(later), 3, "Funding", str(first_date)),
    ]
    assert rows(tmp_path, "select count(*) from cancel_move") == [(0,)]
    again = cafebot(*olga, stdin=f"cancel {first_date}\nuncancel {first_date}\n").stdout
    assert f"{later}/A4 → A1, {later}/C2 → C1, {later}/S2 → S1." in again
