"""`cafebot run` with ``[web] listen`` serves the site beside the bot (a real process)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest

from tests.fakezulip import Org
from tests.test_web import free_port
from tests.test_zulip_run import Process

pytestmark = pytest.mark.slow


def _get(url: str) -> tuple[int, bytes]:
    with urlopen(url, timeout=5) as response:  # noqa: S310 - our own server
        return int(response.status), bytes(response.read())


def _wait(check: Any, what: str, seconds: float = 20) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        try:
            found = check()
        except OSError:
            found = None
        if found:
            return found
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.1)


def test_cafebot_run_serves_the_site_when_web_listen_is_set(tmp_path: Path, org: Org) -> None:
    port = free_port()
    config = tmp_path / "config.ini"
    config.write_text(
        f"""[zulip]
site = {org.fake.url}
email = {org.bot.email}

[database]
url = sqlite:///{tmp_path / "cafe.db"}

[web]
listen = 127.0.0.1:{port}

[series:cafe]
stream = jupyterhub
organizers = olga@example.org
""",
        encoding="utf-8",
    )
    bot = Process(config, org)
    base = f"http://127.0.0.1:{port}/"
    try:
        command = org.command("agenda 10m Release plans")
        org.fake.wait_for(lambda: org.acked(command), what="the stream command")
        page = _wait(lambda: _get(base + "cafe/")[1], "the front page")
        assert b"Release plans" in page and b"(10 min)" in page
        health = _wait(
            lambda: (body := json.loads(_get(base + "healthz")[1]))["leader"] and body,
            "the bot to lead",
        )
        assert health["status"] == "ok" and health["heartbeat_age_seconds"] is not None
    finally:
        code, _ = bot.terminate()
    assert code == 0, bot.output()
    assert f"serving the site on http://127.0.0.1:{port}/" in bot.output()
    with pytest.raises(OSError):
        _get(base + "healthz")  # the site stopped with the bot
