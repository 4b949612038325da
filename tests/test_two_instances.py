"""Two `cafebot run` processes on one PostgreSQL database, as in a rolling restart.

Both handle commands, each command takes effect once; only the leader runs the
scheduler, and when it is killed the other takes over: each reminder goes out once.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from cafebot.bot.app import App
from cafebot.core.config import load_settings
from tests.fakezulip import FakeZulip, Org
from tests.harness import add_meeting

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def start(config: Path, org: Org, name: str) -> tuple[subprocess.Popen[bytes], Path]:
    log = config.parent / f"{name}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "cafebot", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT), "CAFEBOT_ZULIP_KEY": org.bot.api_key},
            cwd=config.parent,
        )
    org.fake.wait_for(lambda: "is live on Zulip" in log.read_text(), 20, f"{name} to start")
    return proc, log


def test_killing_the_leader_loses_and_doubles_nothing(
    db_url: str, tmp_path: Path, fake: FakeZulip
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("two instances share a PostgreSQL database (SQLite refuses a second)")
    org = Org.create(fake)
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = {db_url}\n"
        f"[health]\nheartbeat_file = {tmp_path / 'heartbeat'}\n"
        "[series:cafe]\nstream = jupyterhub\norganizers = olga@example.org\n"
        "reminders = 16s, 12s, 0s\nduration = 5s\npublish_delay = 1s\n"
        f"archive_dir = {tmp_path / 'notes'}\n",
        encoding="utf-8",
    )
    settings = load_settings(config, environ={})
    (series,) = settings.series
    begins = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=20)
    app = App.create(settings)
    add_meeting(app, series, begins)
    topic = series.topic_for(begins.date())

    def reminders() -> list[str]:
        return [m.content for m in org.replies() if m.topic == topic and "Cafe is" in m.content]

    leader, leader_log = start(config, org, "leader")
    follower, follower_log = start(config, org, "follower")
    sent = []
    try:
        for n in range(5):
            sent.append(org.command(f"agenda 1m Before the kill {n}"))
        fake.wait_for(lambda: all(org.acked(m) for m in sent), 15, "the first commands")
        fake.wait_for(lambda: len(reminders()) >= 1, 15, "the first reminder")
        leader.kill()  # SIGKILL: no clean hand-over
        leader.wait(10)
        for n in range(5):
            sent.append(org.command(f"agenda 1m After the kill {n}"))
        fake.wait_for(lambda: all(org.acked(m) for m in sent), 20, "commands after the kill")
        fake.wait_for(lambda: len(reminders()) >= 3, 30, "the other reminders")
        time.sleep(1)  # anything sent twice would arrive now
    finally:
        follower.terminate()
        follower.wait(15)
    texts = reminders()
    assert len(texts) == 3, texts
    assert "in 16 seconds" in texts[0] and "in 12 seconds" in texts[1] and "now" in texts[2]
    with app.engine.connect() as connection:
        items = connection.execute(text("SELECT topic FROM agenda_item ORDER BY ref")).scalars()
        assert sorted(items) == sorted(
            [f"Before the kill {n}" for n in range(5)] + [f"After the kill {n}" for n in range(5)]
        )
        doubled = connection.execute(
            text("SELECT count(*) FROM processed_message WHERE message_id = ANY(:ids)"),
            {"ids": sent},
        ).scalar_one()
        assert doubled == len(sent)
    app.close()
    for message_id in sent:
        assert fake.reactions(message_id).count((org.bot.id, "check")) == 1
    assert "this process leads" in leader_log.read_text()
    assert "this process leads" in follower_log.read_text()  # it took over
    assert org.bot.api_key not in leader_log.read_text() + follower_log.read_text()


def test_on_sqlite_a_second_instance_refuses_and_the_first_is_healthy(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        f"[health]\nheartbeat_file = {tmp_path / 'heartbeat'}\n"
        "[series:cafe]\nstream = jupyterhub\n",
        encoding="utf-8",
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CAFEBOT_ZULIP_KEY": org.bot.api_key}

    def cafebot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cafebot", *args, "--config", str(config)],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip

    assert cafebot("health").returncode == 1  # not running yet: no heartbeat
    first, _ = start(config, org, "first")
    try:
        second = cafebot("run")
        assert second.returncode == 1
        assert "another cafebot is already running on this SQLite database" in second.stderr
        org.fake.wait_for(lambda: cafebot("health").returncode == 0, 10, "a fresh heartbeat")
        healthy = cafebot("health")
        assert "events" in healthy.stdout and "scheduler" in healthy.stdout
    finally:
        first.terminate()
        assert first.wait(15) == 0
