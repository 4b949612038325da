"""APScheduler wakes the sweep at the planned instants (real time, offsets of seconds)."""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy import select

from cafebot.bot.app import App
from cafebot.cafe.scheduler import Lifecycle
from cafebot.core.clock import SystemClock
from cafebot.core.config import Settings
from cafebot.storage.models import SentNotice
from tests.harness import CAFE, RecordingChat, add_meeting


def test_jobs_fire_at_their_instants(
    db_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="cafebot.scheduler")
    series = replace(
        CAFE,
        reminders=(dt.timedelta(seconds=2), dt.timedelta(0)),
        duration=dt.timedelta(seconds=2),
        publish_delay=dt.timedelta(seconds=1),
        archive_dir=tmp_path / "notes",
    )
    app = App.create(Settings(database_url=db_url, series=(series,)), SystemClock())
    chat = RecordingChat()
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=4)
    meeting_id = add_meeting(app, series, start, topics=("Quick one",))
    lifecycle = Lifecycle(app, chat)
    lifecycle.start()
    try:
        deadline = time.monotonic() + 15
        while len(chat.posted) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        with app.unit_of_work() as session:
            notices = list(session.scalars(select(SentNotice).order_by(SentNotice.due_at)))
    finally:
        lifecycle.stop()
        app.close()
    texts = [p.text for p in chat.posted]
    assert len(texts) == 3, texts
    assert "is in 2 seconds" in texts[0]
    assert "starting now" in texts[1]
    assert texts[2].startswith("## Collaboration Cafe notes:") and "Quick one" in texts[2]
    # Each reminder went out at its instant (not late), once.
    assert [n.due_at for n in notices] == [start - dt.timedelta(seconds=2), start]
    assert all(abs(n.sent_at - n.due_at) < dt.timedelta(seconds=1.5) for n in notices)
    assert not any(n.late for n in notices)
    # One structured log line per job, with its id, outcome and duration.
    jobs = [r for r in caplog.records if hasattr(r, "job")]
    assert {r.job for r in jobs} >= {  # type: ignore[attr-defined]
        f"reminder:{meeting_id}:2",
        f"reminder:{meeting_id}:0",
        f"publish:{meeting_id}",
    }
    assert any(r.outcome == "1 reminder(s)" for r in jobs)  # type: ignore[attr-defined]
