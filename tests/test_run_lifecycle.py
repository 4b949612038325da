"""`cafebot run` runs the meeting: reminders once across a restart, then the notes published.

Real time with offsets of seconds: a meeting ten seconds ahead, reminders at
4 s and at the start, four seconds long, published one second after its end.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cafebot.bot.app import App
from cafebot.cafe import meetings
from cafebot.core.config import load_settings
from cafebot.storage.models import AgendaItem, Meeting
from tests import test_zulip_run as zr
from tests.fakezulip import FakeZulip, Org
from tests.harness import add_meeting

pytestmark = pytest.mark.slow


def test_reminders_once_across_a_restart_and_notes_published(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        "[series:cafe]\nstream = jupyterhub\norganizers = olga@example.org\n"
        "reminders = 4s, 0s\nduration = 4s\npublish_delay = 1s\n"
        f"archive_dir = {tmp_path / 'notes'}\n",
        encoding="utf-8",
    )
    # A one-off meeting ten seconds ahead, with one agenda item.
    settings = load_settings(config, environ={})
    (series,) = settings.series
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=10)
    app = App.create(settings)
    add_meeting(app, series, start, topics=("Quick one",))
    app.close()
    topic = series.topic_for(start.date())

    def in_topic() -> list[str]:
        return [m.content for m in org.replies() if m.stream == "jupyterhub" and m.topic == topic]

    bot = zr.Process(config, org)
    try:
        fake.wait_for(lambda: len(in_topic()) >= 1, 15, "the first reminder")
    finally:
        assert bot.terminate()[0] == 0
    bot = zr.Process(config, org)  # restarted between the two reminders
    try:
        fake.wait_for(lambda: len(in_topic()) >= 3, 25, "the second reminder and the notes")
    finally:
        assert bot.terminate()[0] == 0
    first, second, notes = in_topic()
    assert "is in 4 seconds" in first and f"<time:{start:%Y-%m-%dT%H:%M:%SZ}>" in first
    assert "starting now" in second
    assert notes.startswith("## Collaboration Cafe notes:") and "Quick one" in notes
    archive = (tmp_path / "notes" / f"{start.year}.md").read_text()
    assert f"## {start.date()}" in archive and "Quick one" in archive


def test_cafebot_publish_posts_and_archives(tmp_path: Path, fake: FakeZulip) -> None:
    org = Org.create(fake)
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        f"[series:cafe]\nstream = jupyterhub\narchive_dir = {tmp_path / 'notes'}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    (series,) = settings.series
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=30)).replace(
        hour=16, minute=0, second=0, microsecond=0
    )
    day = past.date().isoformat()
    app = App.create(settings)
    with app.unit_of_work() as session:
        row = meetings.series_row(session, series)
        meeting = Meeting(series=row, date=past.date(), starts_at=past, ends_at=past)
        session.add(meeting)
        session.flush()
        session.add(
            AgendaItem(meeting=meeting, ref=1, topic="Old news", position=1, created_at=past)
        )
    app.close()
    env = {"CAFEBOT_ZULIP_KEY": org.bot.api_key}
    result = zr.subprocess.run(
        [zr.sys.executable, "-m", "cafebot", "publish", day, "--config", str(config)],
        capture_output=True, text=True, env={**zr.os.environ, "PYTHONPATH": str(zr.ROOT), **env},
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    topic = f"Collaboration Cafe {day}"
    assert f"ok zulip: posted 1 message(s) to jupyterhub > {topic}" in result.stdout
    (posted,) = org.replies()
    assert posted.topic == topic and "Old news" in posted.content
    assert "Old news" in (tmp_path / "notes" / f"{past.year}.md").read_text()
    assert org.bot.api_key not in result.stdout + result.stderr
    # The server's message limit is read from the realm section of /register, which Zulip
    # sends only when asked for (zulip.yaml).
    (register,) = fake.requests_to("register")
    assert register.params.get("fetch_event_types") == '["realm"]'

    # Without a Zulip account, the archive is still written and the Zulip step says why.
    config.write_text(config.read_text().replace(f"site = {fake.url}\n", ""), encoding="utf-8")
    result = zr.subprocess.run(
        [zr.sys.executable, "-m", "cafebot", "publish", "--config", str(config)],
        capture_output=True, text=True, env={**zr.os.environ, "PYTHONPATH": str(zr.ROOT)},
        timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "FAILED zulip: failed: no Zulip account is configured" in result.stdout
    assert "ok archive: written to" in result.stdout
