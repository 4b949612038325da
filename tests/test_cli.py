"""The `cafebot` command, run as a user runs it: a real process on a real SQLite file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cafebot(
    *args: str, stdin: str = "", cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cafebot", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=60,
        check=False,
    )


def test_scripted_shell_session_prints_acks_and_canonical_notes(tmp_path: Path) -> None:
    script = "checkin Ada / @ada / Engines\nagenda 10m Release plans\nnotes next\n"
    result = cafebot("shell", stdin=script, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count(":check:") == 2
    assert "Welcome to the Collaboration Cafe" in out
    # The notes, in the archive flavour of notes-format.md.
    for line in (
        "### Check-in :raising_hand:",
        "- Ada / @ada / Engines",
        "### Celebrations and Shout-Outs :tada:",
        "### Agenda :clock2:",
        "- [name=Ada] (10 min): Release plans",
    ):
        assert f"\n{line}\n" in out, line
    assert (tmp_path / "cafebot.db").exists()  # the embedded default database
    result = cafebot("shell", stdin="list\n", cwd=tmp_path)
    assert "**A1** (10 min) Release plans — Ada" in result.stdout  # it persisted


def test_shell_shows_both_reactions_of_an_agenda_over_the_slot(tmp_path: Path) -> None:
    script = "agenda 50m Long one\nagenda 20m One too many\nlist\n"
    out = cafebot("shell", stdin=script, cwd=tmp_path).stdout
    lines = out.splitlines()
    assert lines[0] == ":check:"  # within the slot: the check alone
    assert lines[1] == ":check:"
    assert lines[2].startswith(":hourglass: (the agenda now needs more time than the meeting")
    assert "needs about" not in out  # no message of its own
    assert "Estimated time: 70 min of 60 min — more than the meeting's length" in out


def test_shell_as_user_and_organiser(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    ada = ["--db", db, "--as", "Ada Lovelace <ada@example.org>"]
    cafebot("shell", *ada, stdin="agenda 10m Release plans\n")
    bob = ["--db", db, "--as", "Bob <bob@example.org>"]
    refused = cafebot("shell", *bob, stdin="remove A1\n")
    assert "only its author (Ada Lovelace) or an organiser" in refused.stdout
    allowed = cafebot("shell", *bob, "--organizer", stdin="remove A1\nlist\n")
    assert ":check:" in allowed.stdout and "No items yet" in allowed.stdout
    assert "Tue 17" not in refused.stderr
    # <time:...> is shown as a local time in the terminal.
    assert "<time:" not in allowed.stdout and ":00 UTC" in allowed.stdout


def test_multi_line_input_with_backslash(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    out = cafebot("shell", "--db", db, stdin="agenda 10m Topic\\\nfirst note\nnotes\n").stdout
    assert "- [name=" in out and "    - first note" in out


def test_config_and_db_after_the_subcommand(tmp_path: Path) -> None:
    config = tmp_path / "cafe.ini"
    config.write_text(
        "[database]\nurl = sqlite:///{}\n[series:cafe]\nname = Test Cafe\n".format(
            tmp_path / "from-config.db"
        )
    )
    result = cafebot("shell", "--config", str(config), stdin="next\n", cwd=tmp_path)
    assert "The next Test Cafe is" in result.stdout
    assert (tmp_path / "from-config.db").exists()
    override = tmp_path / "override.db"
    cafebot("shell", "--config", str(config), "--db", f"sqlite:///{override}", stdin="next\n")
    assert override.exists()


def test_bad_config_is_reported_not_a_traceback(tmp_path: Path) -> None:
    config = tmp_path / "bad.ini"
    config.write_text("[series:cafe]\ntimezone = Mars/Olympus\n")
    result = cafebot("shell", "--config", str(config))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "key 'timezone': unknown time zone 'Mars/Olympus'" in result.stderr
    assert "timezone = Europe/Berlin" in result.stderr
    missing = cafebot("notes", "--config", str(tmp_path / "nope.ini"))
    assert missing.returncode == 2 and "no config file" in missing.stderr


def test_db_upgrade_and_notes(tmp_path: Path) -> None:
    path = tmp_path / "fresh.db"
    result = cafebot("db", "upgrade", "--db", f"sqlite:///{path}")
    assert result.returncode == 0, result.stderr
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
    assert {"series", "meeting", "person", "agenda_item", "alembic_version"} <= tables
    notes = cafebot("notes", "--db", f"sqlite:///{path}", "next")
    assert notes.returncode == 0 and "### Agenda :clock2:" in notes.stdout
    bad = cafebot("notes", "--db", f"sqlite:///{path}", "someday")
    assert bad.returncode == 2 and "not a date" in bad.stderr


@pytest.mark.parametrize("args", [["--help"], ["shell", "--help"], ["notes", "--help"]])
def test_help(args: list[str]) -> None:
    result = cafebot(*args)
    assert result.returncode == 0 and "usage: cafebot" in result.stdout
