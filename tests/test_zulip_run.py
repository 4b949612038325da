"""`cafebot run` as a real process against the fake Zulip server, as an operator runs it.

A few seconds each: start, commands in a stream and a DM, SIGTERM, a restart
with commands posted while down, SIGKILL right after a commit, an outage.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.fakezulip import Org

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def config(tmp_path: Path, org: Org) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(
        f"""[zulip]
site = {org.fake.url}
email = {org.bot.email}

[database]
url = sqlite:///{tmp_path / "cafe.db"}

[series:cafe]
stream = jupyterhub
organizers = olga@example.org
""",
        encoding="utf-8",
    )
    return path


class Process:
    """``cafebot run --config FILE`` in the background; its log in a file."""

    def __init__(self, config: Path, org: Org) -> None:
        self.org = org
        self.log = config.parent / f"run-{time.monotonic_ns()}.log"
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "CAFEBOT_ZULIP_KEY": org.bot.api_key,  # the key from the environment
        }
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cafebot", "run", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=config.parent,
            )
        registered = len(org.fake.requests_to("register"))
        org.fake.wait_for(
            lambda: self.output().count("is live on Zulip") or self.proc.poll() is not None,
            20,
            "the bot to start",
        )
        assert self.proc.poll() is None, self.output()
        assert len(org.fake.requests_to("register")) > registered

    def output(self) -> str:
        return self.log.read_text()

    def terminate(self) -> tuple[int, float]:
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(15)
        return code, time.monotonic() - started

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


def db_rows(config: Path, sql: str, **params: int) -> list[tuple[Any, ...]]:
    engine = create_engine(f"sqlite:///{config.parent / 'cafe.db'}")
    try:
        with engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), params)]
    finally:
        engine.dispose()


def db_count(config: Path, sql: str, **params: int) -> int:
    return int(db_rows(config, sql, **params)[0][0])


def test_run_answers_in_a_stream_and_a_dm_and_stops_cleanly_on_sigterm(
    config: Path, org: Org
) -> None:
    fake = org.fake
    bot = Process(config, org)
    try:
        command = org.command("agenda 10m Release plans")
        fake.wait_for(lambda: org.acked(command), what="the stream command")
        fake.dm(org.bob, [org.bot], "list")
        reply = fake.wait_for(lambda: org.replies(), what="the DM reply")
        assert "Release plans" in reply[0].content and reply[0].stream is None
    finally:
        code, took = bot.terminate()
    assert code == 0, bot.output()
    assert took < 5
    assert fake.requests_to("events", "DELETE"), "the queue was not deregistered"
    assert "cafebot stopped" in bot.output()
    assert org.bot.api_key not in bot.output()
    assert org.bot.id in fake.streams["jupyterhub"].subscribers


def test_commands_posted_while_the_bot_was_down_are_handled_after_a_restart(
    config: Path, org: Org
) -> None:
    fake = org.fake
    bot = Process(config, org)
    bot.terminate()
    while_down = [org.command(f"agenda {n}m While down {n}") for n in (1, 2, 3)]
    dm = fake.dm(org.ada, [org.bot], "checkin Ada / @ada")
    bot = Process(config, org)
    try:
        fake.wait_for(lambda: all(org.acked(m) for m in [*while_down, dm]), 15, "the catch-up")
    finally:
        assert bot.terminate()[0] == 0
    assert db_count(config, "SELECT count(*) FROM agenda_item") == 3
    assert db_count(config, "SELECT count(*) FROM checkin") == 1


def test_sigkill_right_after_a_commit_repeats_no_effect(config: Path, org: Org) -> None:
    fake = org.fake
    bot = Process(config, org)
    # The reaction is slow to answer: the process is killed after the command's commit,
    # while the acknowledgement is still on its way.
    fake.fault("slow", "messages/", method="POST", delay=3.0)
    command = org.command("agenda 10m Exactly once")
    fake.wait_for(
        lambda: db_count(config, "SELECT count(*) FROM agenda_item") == 1, what="the commit"
    )
    bot.kill()
    bot = Process(config, org)
    try:
        again = org.command("agenda 5m After the crash")
        fake.wait_for(lambda: org.acked(again), what="a command after the restart")
    finally:
        assert bot.terminate()[0] == 0
    assert db_count(config, "SELECT count(*) FROM agenda_item") == 2
    processed = "SELECT count(*) FROM processed_message WHERE message_id = :id"
    assert db_count(config, processed, id=command) == 1
    assert fake.reactions(command).count((org.bot.id, "check")) <= 1


def test_an_outage_at_start_and_in_the_middle_is_waited_out(config: Path, org: Org) -> None:
    fake = org.fake
    bot = Process(config, org)
    try:
        fake.outage(2.0)
        during = org.command("agenda 10m During the outage")
        fake.wait_for(lambda: org.acked(during), 20, "the command after the outage")
        cut = [r for r in fake.requests if r.status == "outage"]
        assert len(cut) <= 20, f"{len(cut)} requests in a 2 s outage"
    finally:
        assert bot.terminate()[0] == 0


def test_run_without_zulip_settings_says_what_to_set(tmp_path: Path) -> None:
    config = tmp_path / "config.ini"
    config.write_text("[series:cafe]\nstream = jupyterhub\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFEBOT_ZULIP")}
    result = subprocess.run(
        [sys.executable, "-m", "cafebot", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "no Zulip account configured" in result.stderr


# Against a server that answers as Zulip does (no max_message_id in the /register answer,
# tests/test_zulip_contract.py), the failures an operator meets: each command is handled
# once, in order, whatever happened to the process or to its event queue.


def agenda(config: Path) -> list[tuple[int, str]]:
    return [
        (int(r), str(t))
        for r, t in db_rows(config, "SELECT ref, topic FROM agenda_item ORDER BY ref")
    ]


def test_sigkill_then_five_commands_while_down_are_each_handled_once_in_order(
    config: Path, org: Org
) -> None:
    fake = org.fake
    bot = Process(config, org)
    first = org.command("agenda 1m Before the kill")
    fake.wait_for(lambda: org.acked(first), what="the first command")
    bot.kill()
    while_down = [org.command(f"agenda {n}m While down {n}") for n in range(2, 7)]
    bot = Process(config, org)
    try:
        fake.wait_for(lambda: all(org.acked(m) for m in while_down), 15, "the catch-up")
        last = org.command("agenda 7m After the restart")
        fake.wait_for(lambda: org.acked(last), what="a command after the catch-up")
    finally:
        assert bot.terminate()[0] == 0
    assert agenda(config) == [
        (1, "Before the kill"),
        *((n, f"While down {n}") for n in range(2, 7)),
        (7, "After the restart"),
    ]
    for message in [first, *while_down, last]:
        processed = "SELECT count(*) FROM processed_message WHERE message_id = :id"
        assert db_count(config, processed, id=message) == 1
        assert fake.reactions(message).count((org.bot.id, "check")) == 1


def test_a_command_posted_after_the_queue_expired_is_handled_once(config: Path, org: Org) -> None:
    fake = org.fake
    bot = Process(config, org)
    try:
        registered = len(fake.requests_to("register"))
        fake.expire_queues()
        gap = org.command("agenda 10m Posted in the gap")
        fake.wait_for(lambda: org.acked(gap), what="the command from the gap")
        after = org.command("agenda 5m On the new queue")
        fake.wait_for(lambda: org.acked(after), what="a command on the new queue")
    finally:
        assert bot.terminate()[0] == 0
    assert len(fake.requests_to("register")) == registered + 1
    assert agenda(config) == [(1, "Posted in the gap"), (2, "On the new queue")]
    assert fake.reactions(gap).count((org.bot.id, "check")) == 1
    assert "Zulip forgot the event queue" in bot.output()


def test_a_command_edited_while_the_bot_is_down_is_followed_after_the_restart(
    config: Path, org: Org
) -> None:
    fake = org.fake
    bot = Process(config, org)
    command = org.command("agenda 10m Relase plans")
    fake.wait_for(lambda: org.acked(command), what="the command")
    assert bot.terminate()[0] == 0
    fake.edit(command, f"@**{org.bot.full_name}** agenda 15m Release plans")
    bot = Process(config, org)
    try:
        fake.wait_for(
            lambda: agenda(config) == [(1, "Release plans")], 15, "the edit to be followed"
        )
        later = org.command("agenda 5m Later")
        fake.wait_for(lambda: org.acked(later), what="a later command")
    finally:
        assert bot.terminate()[0] == 0
    assert db_count(config, "SELECT estimate_min FROM agenda_item WHERE ref = 1") == 15
    assert "edited while the bot was away" in bot.output()
