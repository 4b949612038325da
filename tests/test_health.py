"""The heartbeat and `cafebot health`, and the warning about a config file others can read."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cafebot.core.clock import FakeClock
from cafebot.core.config import ConfigError, Settings, find_config, load_settings
from cafebot.ops.health import DEFAULT_MAX_AGE, Heartbeat, check, heartbeat_path

ROOT = Path(__file__).resolve().parent.parent
T0 = dt.datetime(2031, 6, 1, 10, 0, 0, 250000, tzinfo=dt.UTC)
KEY = "s3cr3tAPIkey0123456789abcdef"


def cafebot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    environ = {
        k: v for k, v in os.environ.items() if k not in {"STATE_DIRECTORY", "CAFEBOT_CONFIG"}
    }
    return subprocess.run(
        [sys.executable, "-m", "cafebot", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**environ, "PYTHONPATH": str(ROOT), **(env or {})},
        timeout=60,
        check=False,
    )


# ------------------------------------------------------------------ the heartbeat


def test_beat_writes_each_part_and_check_accepts_fresh_beats(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    heartbeat = Heartbeat(tmp_path / "state" / "heartbeat", clock)
    assert heartbeat.beat("events")
    clock.advance(dt.timedelta(seconds=20))
    assert heartbeat.beat("scheduler")
    data = json.loads((tmp_path / "state" / "heartbeat").read_text())
    assert data["pid"] == os.getpid()
    assert data["beats"] == {
        "events": T0.isoformat(),
        "scheduler": (T0 + dt.timedelta(seconds=20)).isoformat(),
    }
    health = check(heartbeat.path, DEFAULT_MAX_AGE, clock.now() + dt.timedelta(seconds=30))
    assert health.ok
    assert health.message == (
        f"ok (process {os.getpid()}): events 50 s ago, scheduler 30 s ago (at most 180 s allowed)"
    )


def test_a_stale_part_fails_with_its_name_and_age(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    heartbeat = Heartbeat(tmp_path / "heartbeat", clock)
    heartbeat.beat("events")
    heartbeat.beat("scheduler")
    clock.advance(dt.timedelta(minutes=10))
    heartbeat.beat("events")  # the event loop goes on, the scheduler is stuck
    health = check(heartbeat.path, dt.timedelta(minutes=3), clock.now())
    assert not health.ok
    assert "the scheduler part last beat 600 s ago, at 2031-06-01T10:00:00.250000+00:00" in (
        health.message
    )
    assert "the events part" not in health.message  # only the stale part is named
    assert "at most 180 s is allowed" in health.message
    # Exactly at the limit is still fine; a second later is not.
    assert check(heartbeat.path, dt.timedelta(seconds=600), clock.now()).ok
    assert not check(heartbeat.path, dt.timedelta(seconds=599), clock.now()).ok


def test_forget_stops_expecting_a_part(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    heartbeat = Heartbeat(tmp_path / "heartbeat", clock)
    heartbeat.beat("events")
    heartbeat.beat("scheduler")
    clock.advance(dt.timedelta(minutes=10))
    heartbeat.beat("events")
    heartbeat.forget("scheduler")  # no longer the leader: no scheduler here
    assert check(heartbeat.path, DEFAULT_MAX_AGE, clock.now()).ok
    assert list(json.loads(heartbeat.path.read_text())["beats"]) == ["events"]


def test_a_new_process_replaces_what_an_old_one_left(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    Heartbeat(tmp_path / "heartbeat", clock).beat("scheduler")
    clock.advance(dt.timedelta(hours=1))
    Heartbeat(tmp_path / "heartbeat", clock).beat("events")  # the next run, not leading
    assert check(tmp_path / "heartbeat", DEFAULT_MAX_AGE, clock.now()).ok


def test_beats_close_together_are_written_once(tmp_path: Path) -> None:
    clock = FakeClock(T0)
    heartbeat = Heartbeat(tmp_path / "heartbeat", clock)
    heartbeat.beat("events")
    clock.advance(dt.timedelta(milliseconds=500))
    heartbeat.beat("events")
    assert json.loads(heartbeat.path.read_text())["beats"]["events"] == T0.isoformat()
    clock.advance(dt.timedelta(milliseconds=600))
    heartbeat.beat("events")
    written = json.loads(heartbeat.path.read_text())["beats"]["events"]
    assert written == (T0 + dt.timedelta(milliseconds=1100)).isoformat()


def test_a_write_failure_is_logged_once_and_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    clock = FakeClock(T0)
    heartbeat = Heartbeat(blocker / "heartbeat", clock)
    with caplog.at_level(logging.WARNING, logger="cafebot.health"):
        assert heartbeat.beat("events") is False
        clock.advance(dt.timedelta(seconds=5))
        assert heartbeat.beat("events") is False
    warnings = [r for r in caplog.records if "cannot write the heartbeat" in r.getMessage()]
    assert len(warnings) == 1 and str(blocker) in warnings[0].getMessage()
    assert not list(tmp_path.glob(".heartbeat.*"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(None, "no heartbeat file at", id="missing"),
        pytest.param("garbage", "is not one that cafebot wrote", id="garbage"),
        pytest.param('{"pid": 1, "beats": {}}', "records no beat yet", id="empty"),
        pytest.param(
            '{"beats": {"events": "2031-06-01T10:00:00"}}', "without a time zone", id="naive"
        ),
    ],
)
def test_check_explains_an_unusable_file(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    path = tmp_path / "heartbeat"
    if content is not None:
        path.write_text(content)
    health = check(path, DEFAULT_MAX_AGE, T0)
    assert not health.ok
    assert expected in health.message and str(path) in health.message


@pytest.mark.parametrize(
    ("settings", "environ", "expected"),
    [
        pytest.param(
            Settings(heartbeat_file=Path("/srv/hb")),
            {"STATE_DIRECTORY": "/var/lib/cafebot"},
            "/srv/hb",
            id="config-wins",
        ),
        pytest.param(
            Settings(database_url="postgresql+psycopg://x@db/cafebot"),
            {"STATE_DIRECTORY": "/var/lib/cafebot:/var/lib/other"},
            "/var/lib/cafebot/heartbeat",
            id="systemd-state-directory",
        ),
        pytest.param(
            Settings(database_url="sqlite:////data/cafe.db"),
            {},
            "/data/cafe.db.heartbeat",
            id="beside-sqlite",
        ),
        pytest.param(
            Settings(database_url="postgresql+psycopg://x@db/cafebot"),
            {},
            "cafebot.heartbeat",
            id="current-directory",
        ),
        pytest.param(Settings(database_url="sqlite://"), {}, "cafebot.heartbeat", id="memory"),
    ],
)
def test_heartbeat_path(settings: Settings, environ: dict[str, str], expected: str) -> None:
    assert heartbeat_path(settings, environ) == Path(expected)


# ------------------------------------------------------------------ cafebot health


def test_cafebot_health_exit_codes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'cafe.db'}"
    missing = cafebot("health", "--db", db, cwd=tmp_path)
    assert missing.returncode == 1
    assert f"no heartbeat file at {tmp_path / 'cafe.db.heartbeat'}" in missing.stderr

    # A beat ten minutes ago (written with a clock set back, not by waiting).
    clock = FakeClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    Heartbeat(tmp_path / "cafe.db.heartbeat", clock).beat("events")
    stale = cafebot("health", "--db", db, cwd=tmp_path)
    assert stale.returncode == 1
    # About 600 s: the clock goes on while the process starts.
    assert "stale heartbeat" in stale.stderr
    assert re.search(r"the events part last beat 6\d\d s ago", stale.stderr), stale.stderr

    relaxed = cafebot("health", "--db", db, "--max-age", "3600", cwd=tmp_path)
    assert relaxed.returncode == 0, relaxed.stderr
    assert relaxed.stdout.startswith("cafebot health: ok")
    assert re.search(r"events 6\d\d s ago", relaxed.stdout), relaxed.stdout

    bad = cafebot("health", "--db", db, "--max-age", "0", cwd=tmp_path)
    assert bad.returncode == 2 and "--max-age must be more than 0" in bad.stderr


def test_cafebot_health_reads_the_health_section(tmp_path: Path) -> None:
    config = tmp_path / "cafe.ini"
    config.write_text("[health]\nheartbeat_file = run/hb.json\nmax_age = 20m\n")
    clock = FakeClock(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10))
    Heartbeat(tmp_path / "run" / "hb.json", clock).beat("events")  # relative to the config
    result = cafebot("health", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    # The environment's STATE_DIRECTORY does not override an explicit file.
    result = cafebot(
        "health", cwd=tmp_path, env={"CAFEBOT_CONFIG": str(config), "STATE_DIRECTORY": "/nope"}
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("soon", "'soon' is not a duration", id="not-a-duration"),
        pytest.param("0m", "must be more than zero", id="zero"),
    ],
)
def test_bad_max_age_is_a_config_error(tmp_path: Path, value: str, problem: str) -> None:
    config = tmp_path / "cafe.ini"
    config.write_text(f"[health]\nmax_age = {value}\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, environ={})
    assert problem in str(raised.value) and "key 'max_age'" in str(raised.value)
    assert "max_age = 3m" in str(raised.value)


def test_max_age_in_plain_seconds(tmp_path: Path) -> None:
    config = tmp_path / "cafe.ini"
    config.write_text("[health]\nmax_age = 90\n")
    assert load_settings(config, environ={}).health_max_age == dt.timedelta(seconds=90)


def test_cafebot_config_names_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "elsewhere.ini"
    config.write_text("[series:cafe]\nname = Env Cafe\n")
    assert find_config(None, environ={"CAFEBOT_CONFIG": str(config)}) == config
    with pytest.raises(ConfigError, match="named by CAFEBOT_CONFIG"):
        find_config(None, environ={"CAFEBOT_CONFIG": str(tmp_path / "nope.ini")})
    # --config still wins.
    other = tmp_path / "other.ini"
    other.write_text("")
    assert find_config(other, environ={"CAFEBOT_CONFIG": str(config)}) == other


# ------------------------------------------------------------------ readable config


def write_config(tmp_path: Path, body: str, mode: int) -> Path:
    config = tmp_path / "config.ini"
    config.write_text(body)
    config.chmod(mode)
    return config


@pytest.mark.parametrize(
    ("body", "mode", "warned"),
    [
        pytest.param(
            f"[zulip]\nkey = {KEY}\n", 0o644, "the Zulip API key", id="key-world-readable"
        ),
        pytest.param(f"[zulip]\nkey = {KEY}\n", 0o640, None, id="key-group-only"),
        pytest.param(f"[zulip]\nkey = {KEY}\n", 0o600, None, id="key-owner-only"),
        pytest.param(
            "[database]\nurl = postgresql+psycopg://bot:pw@db/cafebot\n",
            0o604,
            "a database password",
            id="db-password",
        ),
        pytest.param("[zulip]\nkey = ...\n", 0o644, None, id="placeholder-key"),
        pytest.param("[series:cafe]\nname = Cafe\n", 0o644, None, id="no-secret"),
    ],
)
def test_config_readable_by_others_is_warned_about(
    tmp_path: Path, body: str, mode: int, warned: str | None
) -> None:
    settings = load_settings(write_config(tmp_path, body, mode), environ={})
    if warned is None:
        assert settings.warnings == ()
        return
    (warning,) = settings.warnings
    assert f"holds {warned} and is readable by every user" in warning
    assert "chmod o-rwx" in warning
    assert KEY not in warning and "pw@" not in warning


def test_world_readable_zuliprc_is_warned_about(tmp_path: Path) -> None:
    rc = tmp_path / "zuliprc"
    rc.write_text(f"[api]\nkey={KEY}\n")
    rc.chmod(0o644)
    settings = load_settings(
        write_config(tmp_path, "[zulip]\nzuliprc = zuliprc\n", 0o600), environ={}
    )
    (warning,) = settings.warnings
    assert str(rc) in warning and KEY not in warning


def test_cafebot_logs_the_warning_and_goes_on(tmp_path: Path) -> None:
    config = write_config(tmp_path, f"[zulip]\nkey = {KEY}\n", 0o644)
    result = cafebot("health", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 1  # no heartbeat: the warning did not stop anything
    assert "WARNING cafebot.config:" in result.stderr
    assert "is readable by every user" in result.stderr
    assert KEY not in result.stderr + result.stdout
    config.chmod(0o600)
    quiet = cafebot("health", "--config", str(config), cwd=tmp_path)
    assert "readable" not in quiet.stderr
