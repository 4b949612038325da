"""The same handler under Zulip's own runners: `zulip-botserver` (outgoing webhooks) and
`zulip-run-bot`, with the real zulip client against the fake Zulip server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from tests.fakezulip import Org

ROOT = Path(__file__).resolve().parent.parent
HANDLER = str(ROOT / "cafebot" / "handler.py")
TOKEN = "outgoing-webhook-token"


@pytest.fixture
def cafebot_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n\n"
        "[series:cafe]\nstream = jupyterhub\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("CAFEBOT_CONFIG", str(path))
    return path


def agenda_topics(config: Path) -> list[str]:
    engine = create_engine(f"sqlite:///{config.parent / 'cafe.db'}")
    try:
        with engine.connect() as connection:
            return sorted(connection.execute(text("SELECT topic FROM agenda_item")).scalars())
    finally:
        engine.dispose()


def webhook(org: Org, message_id: int, trigger: str) -> dict[str, Any]:
    """What Zulip posts to an outgoing-webhook bot's endpoint."""
    with org.fake.lock:
        message = org.fake._shape(org.fake.messages[message_id], org.bot.id, raw=True)
    return {
        "bot_email": org.bot.email,
        "bot_full_name": org.bot.full_name,
        "data": message["content"],
        "message": message,
        "token": TOKEN,
        "trigger": trigger,
    }


def test_botserver_outgoing_webhook_reaches_the_handler(
    org: Org, cafebot_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zulip_botserver import server

    bots = [HANDLER]
    config = {
        HANDLER: {
            "email": org.bot.email,
            "key": org.bot.api_key,
            "site": org.fake.url,
            "token": TOKEN,
        }
    }
    modules = server.load_lib_modules(bots)
    handlers = server.load_bot_handlers(bots, modules, config)
    message_handlers = server.init_message_handlers(bots, modules, handlers)
    monkeypatch.setattr(server, "bots_config", config)
    monkeypatch.setitem(server.app.config, "BOTS_LIB_MODULES", modules)
    monkeypatch.setitem(server.app.config, "BOT_HANDLERS", handlers)
    monkeypatch.setitem(server.app.config, "MESSAGE_HANDLERS", message_handlers)
    client = server.app.test_client()
    try:
        command = org.command("agenda 10m Via the botserver")
        answer = client.post("/", json=webhook(org, command, "mention"))
        assert answer.status_code == 200
        assert org.acked(command)
        assert agenda_topics(cafebot_config) == ["Via the botserver"]

        dm = org.fake.dm(org.bob, [org.bot], "list")
        assert client.post("/", json=webhook(org, dm, "direct_message")).status_code == 200
        (reply,) = org.replies()
        assert reply.stream is None and "Via the botserver" in reply.content

        forged = {**webhook(org, command, "mention"), "token": "wrong"}
        assert client.post("/", json=forged).status_code == 401
    finally:
        message_handlers[HANDLER].app.close()


def test_zulip_run_bot_runs_the_handler(org: Org, cafebot_config: Path, tmp_path: Path) -> None:
    zuliprc = tmp_path / "zuliprc"
    zuliprc.write_text(
        f"[api]\nemail = {org.bot.email}\nkey = {org.bot.api_key}\nsite = {org.fake.url}\n",
        encoding="utf-8",
    )
    org.fake.subscribe(org.bot, org.stream)  # zulip-run-bot does not subscribe by itself
    log = (tmp_path / "run-bot.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "zulip_bots.run", "cafebot.handler", "--config-file", str(zuliprc)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CAFEBOT_CONFIG": str(cafebot_config)},
    )
    try:
        org.fake.wait_for(lambda: org.fake.queues, 20, "zulip-run-bot to register")
        command = org.command("agenda 10m Via zulip-run-bot")
        org.fake.wait_for(lambda: org.acked(command), 10, "the reaction")
        assert agenda_topics(cafebot_config) == ["Via zulip-run-bot"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        log.close()
