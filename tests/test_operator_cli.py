"""The operator's command line (issue #17, points 10-18): real `cafebot` processes, real files.

Each test asserts what a person sees: the output, the exit status, file modes, files
that are not created.
"""

from __future__ import annotations

import configparser
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakezulip import Org
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


NO_ENV = {
    "CAFEBOT_ZULIP_KEY": "",
    "CAFEBOT_ZULIP_SITE": "",
    "CAFEBOT_ZULIP_EMAIL": "",
    "CAFEBOT_DATABASE_URL": "",
    "CAFEBOT_CONFIG": "",
}


def copied_example(directory: Path) -> Path:
    config = directory / "config.ini"
    config.write_text((ROOT / "config.example.ini").read_text())
    config.chmod(0o644)
    return config


def test_check_names_the_missing_key_and_its_variable(tmp_path: Path) -> None:
    copied_example(tmp_path)  # site and email set, key = ... (the placeholder)
    result = cafebot("check", cwd=tmp_path, env=NO_ENV)
    assert result.returncode == 1
    assert (
        "ERROR    zulip: no Zulip account configured: key not set (site and email are); "
        "set `key =` in [zulip] of config.ini, or CAFEBOT_ZULIP_KEY in the environment"
    ) in result.stdout
    run = cafebot("run", cwd=tmp_path, env=NO_ENV)
    assert run.returncode == 2
    assert "key not set (site and email are)" in run.stderr and "CAFEBOT_ZULIP_KEY" in run.stderr


def test_check_creates_no_database_file(tmp_path: Path) -> None:
    copied_example(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    result = cafebot("check", cwd=tmp_path, env=NO_ENV)
    assert result.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # cafebot.db not created
    assert "ERROR    database: no SQLite database at cafebot.db yet" in result.stdout
    assert "cafebot db upgrade" in result.stdout
    assert "revision none" not in result.stdout
    nested = cafebot("check", "--db", f"sqlite:///{tmp_path / 'new' / 'c.db'}", env=NO_ENV)
    assert "no SQLite database at" in nested.stdout and not (tmp_path / "new").exists()


def test_check_prints_the_permission_warning_once(tmp_path: Path, org: Org) -> None:
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {org.fake.url}\nemail = {org.bot.email}\nkey = {org.bot.api_key}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'c.db'}\n[series:cafe]\nstream = jupyterhub\n"
    )
    config.chmod(0o644)
    result = cafebot("check", "--config", str(config), env=NO_ENV)
    seen = result.stdout + result.stderr
    assert seen.count("is readable by every user of this machine") == 1, seen
    assert "WARNING  " in result.stdout and "chmod o-rwx" in result.stdout
    assert org.bot.api_key not in seen


def test_scripted_shell_exits_1_when_a_command_was_refused_or_failed(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    ada = ("shell", "--db", db, "--as", "Ada <ada@example.org>")
    good = cafebot(*ada, stdin="agenda 10m Release plans\nlist\n")
    assert good.returncode == 0, good.stderr
    assert "refused or failed" not in good.stderr
    unknown = cafebot(*ada, stdin="list\nbogus words\nlist\n")
    assert unknown.returncode == 1
    assert "I don't know the command `bogus`" in unknown.stdout
    assert "cafebot shell: 1 of 3 commands was refused or failed" in unknown.stderr
    refused = cafebot("shell", "--db", db, "--as", "Bob <bob@example.org>", stdin="remove A1\n")
    assert refused.returncode == 1
    assert "only its author (Ada) or an organiser" in refused.stdout
    assert "1 of 1 command was refused or failed" in refused.stderr
    bad_args = cafebot(*ada, stdin="remove\n")  # its reference missing
    assert bad_args.returncode == 1


def test_notes_says_what_it_looked_for(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    last = cafebot("notes", "last", "--db", db)
    assert last.returncode == 1
    assert last.stderr.strip() == "cafebot notes: the Collaboration Cafe has not met yet"
    shell = cafebot("shell", "--db", db, stdin="notes last\n")
    assert "The Collaboration Cafe has not met yet." in shell.stdout  # the same words
    off = cafebot("notes", "2031-06-18", "--db", db)  # a Wednesday: no meeting that day
    assert off.returncode == 1
    assert (
        off.stderr.strip() == "cafebot notes: the Collaboration Cafe has no meeting on 2031-06-18"
    )


def test_archive_import_names_the_bad_date_heading_and_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "2030.md"
    bad.write_text("# 2030 Notes\n\n## 2030-13-45\n\n### Agenda :clock2:\n\n- [name=Ada] Plans\n")
    result = cafebot("archive", "import", "--db", f"sqlite:///{tmp_path / 'c.db'}", str(bad))
    assert result.returncode == 1
    assert (
        f"cafebot archive import: {bad}: no meetings found: line 3, `## 2030-13-45`, is not a "
        "date on the calendar; a meeting's heading is its date, like `## 2031-05-20`; "
        "nothing was imported from it"
    ) in result.stderr
    bad.write_text("## 2030-13-45\n\n## 2030-02-30\n\n## 2030-00-01\n")
    two = cafebot("archive", "import", "--db", f"sqlite:///{tmp_path / 'c.db'}", str(bad))
    assert "line 1, `## 2030-13-45`, is not a date on the calendar (and 2 more such headings)" in (
        two.stderr
    )


def test_the_example_config_runs_the_documented_default_series(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'c.db'}"
    bare = cafebot("schedule", "--count", "3", "--db", db, cwd=tmp_path, env=NO_ENV)
    copied_example(tmp_path)
    example = cafebot("schedule", "--count", "3", "--db", db, cwd=tmp_path, env=NO_ENV)
    assert example.returncode == 0, example.stderr
    assert "Collaboration Cafe (cafe) in #jupyterhub, UTC" in example.stdout
    meetings = [line for line in example.stdout.splitlines() if line.startswith("  ")]
    assert meetings == [line for line in bare.stdout.splitlines() if line.startswith("  ")]
    assert all(line.rstrip().endswith("16:00 UTC") for line in meetings if "reminder" not in line)
    # The README's default: 16:00 UTC on the third Tuesday.
    readme = (ROOT / "README.md").read_text()
    assert "third\nTuesday of every month, 16:00 UTC" in readme


def test_the_example_config_sets_no_database_url_nor_key_as_compose_says(tmp_path: Path) -> None:
    compose = (ROOT / "deploy" / "README.md").read_text()
    assert "no key, no database URL" in compose
    example = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";", "#"))
    example.read(ROOT / "config.example.ini")
    assert not example.has_option("database", "url")  # a comment shows the default
    assert not example.has_option("zulip", "key")
    copied_example(tmp_path)
    pg = "postgresql+psycopg://cafebot@127.0.0.1:1/cafebot"  # nothing listens there
    # Under Compose the environment gives the URL: the copied file leaves it to it.
    result = cafebot("check", cwd=tmp_path, env={**NO_ENV, "CAFEBOT_DATABASE_URL": pg})
    assert "ERROR    database: cannot be reached (OperationalError" in result.stdout
    assert "readable by every user" not in result.stdout + result.stderr  # no secret in it
    assert not (tmp_path / "cafebot.db").exists()


def test_the_readme_scripted_example_runs_as_written(tmp_path: Path) -> None:
    """After the README's first line, the virtualenv is not active: the example must say
    `.venv/bin/cafebot`, which a checkout's `.venv` has (here: one that runs this cafebot)."""
    readme = (ROOT / "README.md").read_text()
    (line,) = [x for x in readme.splitlines() if x.startswith("printf ") and "shell" in x]
    venv_bin = tmp_path / ".venv" / "bin"
    venv_bin.mkdir(parents=True)
    wrapper = venv_bin / "cafebot"
    wrapper.write_text(f'#!/bin/sh\nPYTHONPATH={ROOT} exec {sys.executable} -m cafebot "$@"\n')
    wrapper.chmod(0o755)
    result = subprocess.run(
        ["/bin/sh", "-c", line],
        cwd=tmp_path,
        env={**os.environ, **NO_ENV, "PATH": "/usr/bin:/bin"},  # no virtualenv on PATH
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "- [name=Ada] (10 min): Release plans" in result.stdout
    assert (tmp_path / "cafebot.db").exists()


def test_the_notes_format_the_readme_points_to_is_there_and_its_examples_import(
    tmp_path: Path,
) -> None:
    readme = (ROOT / "README.md").read_text()
    assert "(docs/notes-format.md)" in readme
    doc = (ROOT / "docs" / "notes-format.md").read_text()
    examples = re.findall(r"```markdown\n(.*?)```", doc, re.S)
    meetings = [e for e in examples if e.startswith("## 20")]
    assert len(meetings) >= 2
    db = f"sqlite:///{tmp_path / 'c.db'}"
    for n, example in enumerate(meetings):
        path = tmp_path / f"{n}.md"
        path.write_text(f"# Notes\n\n{example}")
        result = cafebot("archive", "import", "--db", db, str(path))
        assert result.returncode == 0, result.stderr
        # Each example was read as a meeting (the summary counts, in the singular for 1).
        assert re.search(r"\d+ check-ins?, .* \d+ agenda items?,", result.stdout), result.stdout
        exported = cafebot("archive", "export", "--db", db, "-o", str(tmp_path / f"out{n}"))
        assert exported.returncode == 0, exported.stderr
    # The drifted example comes back out as it was read.
    drifted = next(e for e in meetings if "### Introductions" in e)
    year = drifted[3:7]
    assert (tmp_path / f"out{len(meetings) - 1}" / f"{year}.md").read_text().endswith(drifted)


def test_every_help_names_cafebot_config_in_the_search_order() -> None:
    for args in (["shell", "--help"], ["check", "--help"], ["archive", "export", "--help"]):
        result = cafebot(*args)
        assert result.returncode == 0
        text = " ".join(result.stdout.split())
        assert (
            "(default: $CAFEBOT_CONFIG, then ./config.ini, then ~/.config/cafebot/config.ini)"
            in (text)
        ), args
