"""The operator's command line (issue #17, points 10-18): real `cafebot` processes, real files.

Each test asserts what a person sees: the output, the exit status, file modes, files
that are not created.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import ROOT, cafebot

pytestmark = pytest.mark.slow

ARCHIVE = """# 2031 Collaboration Cafe Notes Archive

## 2031-05-20

### Check-in :raising_hand:

- Ada / @ada / Engines

### Agenda :clock2:

- [name=Ada] (10 min): Release plans
"""


def test_bare_cafebot_prints_the_help_and_exits_0() -> None:
    result = cafebot()
    assert result.returncode == 0, result.stderr
    assert "usage: cafebot" in result.stdout
    for command in ("shell", "run", "check", "archive", "schedule"):
        assert f"    {command} " in result.stdout, command
    assert "error" not in result.stderr


def test_schedule_in_utc_shows_the_time_once(tmp_path: Path) -> None:
    result = cafebot("schedule", "--count", "2", "--db", f"sqlite:///{tmp_path / 'c.db'}")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("  Tue")]
    assert len(lines) == 2, result.stdout
    for line in lines:
        assert line.rstrip().endswith("16:00 UTC"), line
        assert line.count("UTC") == 1, line
    config = tmp_path / "berlin.ini"
    config.write_text("[series:cafe]\ntimezone = Europe/Berlin\n")
    berlin = cafebot("schedule", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'b.db'}")
    assert "16:00 CE" in berlin.stdout and ":00 UTC)" in berlin.stdout  # both, where they differ


@pytest.mark.parametrize(
    ("reminders", "shown"),
    [
        ("1 d, 2 h", ["1d before", "2h before"]),
        ("1 day", ["1d before"]),
        ("2 days, 90 min, 0m", ["2d before", "90m before", "at the start"]),
        ("7d 1d", ["7d before", "1d before"]),
    ],
)
def test_reminders_read_durations_as_duration_does(
    tmp_path: Path, reminders: str, shown: list[str]
) -> None:
    config = tmp_path / "c.ini"
    config.write_text(f"[series:cafe]\nduration = 90 min\nreminders = {reminders}\n")
    db = f"sqlite:///{tmp_path / 'c.db'}"
    result = cafebot("schedule", "--count", "1", "--config", str(config), "--db", db)
    assert result.returncode == 0, result.stderr
    labels = [
        line.split(":")[0].split("reminder")[1].strip()
        for line in result.stdout.splitlines()
        if line.strip().startswith("reminder")
    ]
    assert labels == shown


def test_reminders_name_the_bad_item(tmp_path: Path) -> None:
    config = tmp_path / "c.ini"
    config.write_text("[series:cafe]\nreminders = 1 d, soon\n")
    result = cafebot("schedule", "--config", str(config), "--db", f"sqlite:///{tmp_path / 'c.db'}")
    assert result.returncode == 2
    assert "key 'reminders': 'soon' is not a duration" in result.stderr


def test_archive_export_honours_the_umask(tmp_path: Path) -> None:
    (tmp_path / "2031.md").write_text(ARCHIVE)
    db = f"sqlite:///{tmp_path / 'c.db'}"
    imported = cafebot("archive", "import", "--db", db, str(tmp_path / "2031.md"))
    assert imported.returncode == 0, imported.stderr
    for umask, mode in ((0o022, 0o644), (0o027, 0o640)):
        out = tmp_path / f"out-{umask:o}"
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                f"import os, sys; os.umask({umask}); "
                "from cafebot.cli.main import main; sys.exit(main(sys.argv[1:]))",
                "archive",
                "export",
                "--db",
                db,
                "-o",
                str(out),
            ],
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert stat.S_IMODE((out / "2031.md").stat().st_mode) == mode, umask
