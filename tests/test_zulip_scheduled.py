"""Zulip's scheduled messages: the fake answers as Zulip does, and `cafebot run` uses them.

- Contract: each answer of the fake to ``/scheduled_messages`` and
  ``/scheduled_messages/{id}`` validates against Zulip's OpenAPI description
  (``../shared/zulip-api/zulip.yaml``) and has the shape of the exchanges recorded
  on a real server (``recorded.json``): keys, types, status, error code.
- End to end: a real ``cafebot run`` process (offsets of seconds) holds a reminder at
  the fake; the bot is stopped before it is due; Zulip posts it on time; after the
  restart the bot does not post it again.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from cafebot.app import App
from cafebot.config import load_settings
from tests import test_zulip_run as zr
from tests.fakezulip import FakeZulip, Org, StoredMessage
from tests.harness import add_meeting

ROOT = Path(__file__).resolve().parent.parent

# ====================================================================== end to end


def _config(tmp_path: Path, fake: FakeZulip, org: Org, reminders: str) -> Path:
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        "[series:cafe]\nstream = jupyterhub\norganizers = olga@example.org\n"
        f"reminders = {reminders}\nduration = 4s\npublish_delay = 1h\n"
        f"archive_dir = {tmp_path / 'notes'}\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_a_reminder_due_while_the_bot_is_stopped_goes_out_on_time_once(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = _config(tmp_path, fake, org, "16s, 0s")
    settings = load_settings(config, environ={})
    (series,) = settings.series
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=22)
    first_due = start - dt.timedelta(seconds=16)
    app = App.create(settings)
    meeting_id = add_meeting(app, series, start)
    app.close()
    topic = series.topic_for(start.date())

    def in_topic() -> list[StoredMessage]:
        return [m for m in org.replies() if m.stream == "jupyterhub" and m.topic == topic]

    bot = zr.Process(config, org)
    try:
        (held,) = fake.wait_for(lambda: fake.scheduled_of(org.bot), 10, "the held reminder")
    finally:
        assert bot.terminate()[0] == 0
    stopped_at = time.time()
    assert held.timestamp == int(first_due.timestamp())
    assert "reminders are sent by Zulip scheduled messages" in bot.output()
    assert in_topic() == [] and stopped_at < first_due.timestamp()  # stopped before it is due

    # Zulip posts it at its time, the bot being down.
    (first,) = fake.wait_for(in_topic, 20, "the reminder posted by Zulip")
    assert first.timestamp >= first_due.timestamp() > stopped_at
    assert "is in 16 seconds" in first.content and "late" not in first.content

    bot = zr.Process(config, org)  # back: it must not post the first one again
    try:
        changes = [org.command(f"agenda 1m Item {n}", topic=topic) for n in range(6)]
        fake.wait_for(lambda: all(org.acked(m) for m in changes), 15, "the agenda items")
        fake.wait_for(lambda: len(in_topic()) >= 2, 25, "the reminder at the start")
        time.sleep(1.0)  # a reminder sent twice would be there by now
    finally:
        assert bot.terminate()[0] == 0
    reminders = [m for m in in_topic() if m.sender_id == org.bot.id and "Cafe is" in m.content]
    assert [m.content.split("**")[1] for m in reminders] == [
        "The Collaboration Cafe is in 16 seconds",
        "The Collaboration Cafe is starting now",
    ]
    # The start's reminder was held too, and edited once the burst of changes was over.
    assert all(f"Item {n}" in reminders[1].content for n in range(6))
    patches = [r for r in fake.requests_to("scheduled_messages/", "PATCH") if r.status == 200]
    assert 1 <= len(patches) < len(changes)
    assert zr.db_count(config, "SELECT count(*) FROM held_reminder") == 0
    sent = zr.db_count(
        config,
        "SELECT count(*) FROM sent_notice WHERE meeting_id = :m AND status = 'sent'",
        m=meeting_id,
    )
    assert sent == 2
    assert org.bot.api_key not in bot.output()


# ====================================================================== cafebot check


def _check(config: Path, key: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cafebot", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CAFEBOT_ZULIP_KEY": key},
        timeout=60,
        check=False,
    )
    return result.stdout


def test_cafebot_check_says_which_path_sends_the_reminders(tmp_path: Path, org: Org) -> None:
    config = _config(tmp_path, org.fake, org, "1d, 0m")
    out = _check(config, org.bot.api_key)
    assert "OK       reminders: Zulip holds them as scheduled messages (feature level" in out
    org.fake.feature_level = 170
    out = _check(config, org.bot.api_key)
    assert "WARNING  reminders: this Zulip (feature level 170) has no scheduled messages" in out, (
        out
    )
    assert "the bot's own timer sends them" in out
