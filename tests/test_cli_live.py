"""Issue #17: running a meeting live in `cafebot shell`, a real process at real time.

A series whose daily schedule puts a meeting a few minutes before now is one
that may be started; the default series (third Tuesday of the month) has its
next meeting days away on most days.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from tests.test_cli import cafebot

ORGANIZER = ("--as", "Olga Organiser <olga@example.org>", "--organizer")


def daily_config(tmp_path: Path, *, minutes_ago: int = 10, extra: str = "") -> tuple[Path, dt.date]:
    """A series meeting every day, today's meeting having begun ``minutes_ago`` (UTC)."""
    start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=minutes_ago)
    config = tmp_path / "cafe.ini"
    config.write_text(
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        "[series:cafe]\nname = Test Cafe\nschedule = FREQ=DAILY\n"
        f"start = {start:%H:%M}\ntimezone = UTC\nduration = 60m\n{extra}"
    )
    return config, start.date()


def rows(tmp_path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(tmp_path / "cafe.db") as conn:
        return list(conn.execute(sql))


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
