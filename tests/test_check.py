"""`cafebot check`: the config, the database and the Zulip server, with precise messages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cafebot.storage import db
from tests.fakezulip import Org

ROOT = Path(__file__).resolve().parent.parent


def check(config: Path, key: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cafebot", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CAFEBOT_ZULIP_KEY": key},
        timeout=60,
        check=False,
    )


def write_config(tmp_path: Path, org: Org, stream: str = "jupyterhub", extra: str = "") -> Path:
    path = tmp_path / "config.ini"
    path.write_text(
        f"[zulip]\nsite = {org.fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        f"[series:cafe]\nstream = {stream}\norganizers = olga@example.org{extra}\n",
        encoding="utf-8",
    )
    path.chmod(0o600)
    return path


def test_a_good_setup_passes_with_a_warning_for_the_subscription(tmp_path: Path, org: Org) -> None:
    config = write_config(tmp_path, org)
    db.upgrade_database(db.make_engine(f"sqlite:///{tmp_path / 'cafe.db'}"))
    result = check(config, org.bot.api_key)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OK       database: at the latest revision" in result.stdout
    assert "OK       Zulip answers; the bot is cafe" in result.stdout
    assert "WARNING  series cafe: the bot is not subscribed to 'jupyterhub' yet" in result.stdout
    assert org.bot.api_key not in result.stdout + result.stderr


def test_problems_are_errors_with_precise_messages(tmp_path: Path, org: Org) -> None:
    config = write_config(tmp_path, org, stream="nowhere", extra=", ghost@example.org")
    engine = db.make_engine(f"sqlite:///{tmp_path / 'cafe.db'}")
    db.upgrade_database(engine, "0001")
    engine.dispose()
    result = check(config, org.bot.api_key)
    assert result.returncode == 1
    out = result.stdout
    assert "ERROR    database: at revision 0001, not" in out and "cafebot db upgrade" in out
    assert "ERROR    series cafe: stream 'nowhere' does not exist for the bot" in out
    assert "WARNING  series cafe: organiser ghost@example.org could not be resolved" in out
    wrong = check(config, "not-the-key")
    assert wrong.returncode == 1
    assert "Zulip refused the bot's credentials" in wrong.stdout
    assert "not-the-key" not in wrong.stdout + wrong.stderr
