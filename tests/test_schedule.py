"""`cafebot schedule` and `cafebot ics`: what the calendar says the bot will do."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from icalendar import Calendar

from tests.harness import CAFE, OLGA, Harness
from tests.test_cli import cafebot


def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        "[series:cafe]\nname = Collaboration Cafe\nstream = jupyterhub\n"
        "timezone = Europe/Berlin\norganizers = olga@example.org\n"
        "link = https://meet.example.org/cafe\nreminders = 1d, 0m\n"
    )
    return path


def test_schedule_and_ics_show_cancellations_and_additions(tmp_path: Path) -> None:
    path = config(tmp_path)
    # Change the schedule the way organisers do, through the bot, on that database.
    bot = Harness(f"sqlite:///{tmp_path / 'cafe.db'}", series=(CAFE,))
    try:
        bot.clock.set(dt.datetime.now(dt.UTC))
        nxt = bot.send("next").text
        assert "The next Collaboration Cafe" in nxt
        assert "Cancelled" in bot.send("cancel next Holidays", OLGA).text
        future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=3)).date()
        if future.weekday() == 1:  # never on a Tuesday, the schedule's own day
            future += dt.timedelta(days=1)
        bot.send(f"add meeting {future} 10:00", OLGA)
    finally:
        bot.close()

    out = cafebot("schedule", "--config", str(path), "--count", "4").stdout
    lines = out.splitlines()
    assert lines[0] == "Collaboration Cafe (cafe) in #jupyterhub, Europe/Berlin"
    assert any("cancelled: Holidays" in line for line in lines)
    assert any(line.strip().endswith("added") and str(future) in line for line in lines)
    assert "reminder      1d before:" in out and "reminder   at the start:" in out

    result = cafebot("ics", "--config", str(path), "-o", str(tmp_path / "cafe.ics"))
    assert result.returncode == 0, result.stderr
    calendar = Calendar.from_ical((tmp_path / "cafe.ics").read_bytes())
    (tz,) = calendar.walk("VTIMEZONE")
    assert str(tz["TZID"]) == "Europe/Berlin"
    (event,) = calendar.walk("VEVENT")
    assert event["RRULE"].to_ical() == b"FREQ=MONTHLY;BYDAY=3TU"
    assert event.decoded("DTSTART").tzinfo is not None
    assert event.decoded("DTSTART").strftime("%H:%M") == "16:00"
    assert event.decoded("DURATION") == dt.timedelta(hours=1)
    exdates = [d.dt for d in event["EXDATE"].dts]
    rdates = [d.dt for d in event["RDATE"].dts]
    assert len(exdates) == 1 and exdates[0].strftime("%H:%M") == "16:00"
    assert exdates[0].weekday() == 1  # the cancelled third Tuesday
    assert [d.date() for d in rdates] == [future] and rdates[0].strftime("%H:%M") == "10:00"
    assert str(event["URL"]) == "https://meet.example.org/cafe"
