"""The INI loader: typed settings, and errors that say where and what, with an example."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cafebot.core.config import (
    RESERVED_SERIES_KEYS,
    ConfigError,
    find_config,
    load_settings,
    parse_duration,
)

ROOT = Path(__file__).resolve().parent.parent


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.ini"
    path.write_text(text, encoding="utf-8")
    return path


def test_example_config_loads_every_key() -> None:
    settings = load_settings(ROOT / "config.example.ini", environ={})
    assert settings.database_url == "sqlite:///cafebot.db"
    assert settings.zulip.site == "https://chat.example.org"
    assert settings.zulip.key is None  # commented out: from CAFEBOT_ZULIP_KEY
    (cafe,) = settings.series
    assert cafe.key == "cafe"
    assert cafe.stream == "jupyterhub"
    assert cafe.schedule == "FREQ=MONTHLY;BYDAY=3TU"
    assert cafe.start == dt.time(16, 0)
    assert cafe.timezone == "UTC"  # the documented default
    assert cafe.duration == dt.timedelta(minutes=60)
    assert cafe.organizer_ids == {42}
    assert cafe.organizer_emails == {"alice@example.org"}
    assert cafe.reminders == (
        dt.timedelta(days=7),
        dt.timedelta(days=1),
        dt.timedelta(hours=1),
        dt.timedelta(0),
    )
    assert cafe.publish_delay == dt.timedelta(minutes=15)
    assert cafe.archive_dir == ROOT / "notes"
    assert cafe.git_remote is None and cafe.git_branch == "main"
    assert cafe.prompt("shoutout").startswith("_Celebrate")
    assert cafe.topic_for(dt.date(2031, 6, 17)) == "Collaboration Cafe 2031-06-17"


def test_secrets_from_the_environment_and_never_in_repr(tmp_path: Path) -> None:
    path = write(tmp_path, "[zulip]\nsite = https://chat.example.org\nemail = bot@example.org\n")
    settings = load_settings(path, environ={"CAFEBOT_ZULIP_KEY": "s3cret-key"})
    assert settings.zulip.key == "s3cret-key"
    assert settings.zulip.configured
    assert "s3cret-key" not in repr(settings)


def test_db_override_and_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "[database]\nurl = sqlite:///from-file.db\n")
    assert load_settings(path, db_url="sqlite:///cli.db", environ={}).database_url == (
        "sqlite:///cli.db"
    )
    assert load_settings(path, environ={}).database_url == "sqlite:///from-file.db"
    default = load_settings(None, environ={})
    assert default.database_url == "sqlite:///cafebot.db"
    (series,) = default.series
    assert (series.name, series.schedule, series.start, series.timezone) == (
        "Collaboration Cafe",
        "FREQ=MONTHLY;BYDAY=3TU",
        dt.time(16, 0),
        "UTC",
    )


@pytest.mark.parametrize(
    ("body", "section", "key", "problem", "example"),
    [
        pytest.param(
            "timezone = Mars/Olympus",
            "series:cafe",
            "timezone",
            "unknown time zone",
            "timezone = Europe/Berlin",
            id="timezone",
        ),
        pytest.param(
            "schedule = FREQ=SOMETIMES",
            "series:cafe",
            "schedule",
            "not an iCalendar RRULE",
            "schedule = FREQ=MONTHLY;BYDAY=3TU",
            id="rrule",
        ),
        pytest.param(
            "reminders = 7d, soon",
            "series:cafe",
            "reminders",
            "'soon' is not a duration",
            "reminders = 7d, 1d, 1h, 0m",
            id="offset",
        ),
        pytest.param(
            "start = 25:00",
            "series:cafe",
            "start",
            "not a time of day",
            "start = 16:00",
            id="start",
        ),
        pytest.param(
            "duration = 0m",
            "series:cafe",
            "duration",
            "more than zero",
            "duration = 60m",
            id="duration",
        ),
        pytest.param(
            "organizers = alice",
            "series:cafe",
            "organizers",
            "neither an email",
            "organizers = alice@example.org, 42",
            id="organizers",
        ),
        pytest.param(
            "link = meet",
            "series:cafe",
            "link",
            "not a web address",
            "link = https://meet.example.org/cafe",
            id="link",
        ),
        pytest.param(
            "topic = Cafe {when}",
            "series:cafe",
            "topic",
            "placeholders {name} and {date}",
            "topic = Collaboration Cafe {date}",
            id="topic",
        ),
        pytest.param(
            "colour = blue",
            "series:cafe",
            "colour",
            "unknown key",
            None,
            id="unknown-key",
        ),
    ],
)
def test_bad_values_are_reported_precisely(
    tmp_path: Path, body: str, section: str, key: str, problem: str, example: str | None
) -> None:
    path = write(tmp_path, f"[series:cafe]\nstream = cafe\n{body}\n")
    with pytest.raises(ConfigError) as info:
        load_settings(path, environ={})
    message = str(info.value)
    assert str(path) in message
    assert f"section [{section}]" in message
    assert f"key '{key}'" in message
    assert problem in message
    if example:
        assert f"for example: {example}" in message


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        pytest.param("[zulip\nsite = x\n", "not a valid INI file", id="syntax"),
        pytest.param("[cafe]\nname = x\n", "unknown section [cafe]", id="section"),
        pytest.param("[series:Cafe Two]\n", "lower-case letters", id="series-name"),
        pytest.param(
            "[series:a]\nstream = s\n[series:b]\nstream = S\n", "two series are bound", id="dup"
        ),
        pytest.param("[logging]\nlevel = LOUD\n", "unknown log level", id="log-level"),
    ],
)
def test_bad_files(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), environ={})
    assert problem in str(info.value)


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_bytes(b"[series:cafe]\nname = Caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_settings(path, environ={})


def test_find_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert find_config(None) is None
    (tmp_path / "config.ini").write_text("[database]\nurl = sqlite:///a.db\n")
    assert find_config(None) == Path("config.ini")
    with pytest.raises(ConfigError, match="no config file"):
        find_config(tmp_path / "missing.ini")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("7d", 604800), ("1h", 3600), ("90 min", 5400), ("0m", 0), ("30s", 30), ("2w", 1209600)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize("key", RESERVED_SERIES_KEYS)
def test_a_series_may_not_take_one_of_the_sites_addresses(tmp_path: Path, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, f"[series:{key}]\nstream = s\n"), environ={})
    text = str(info.value)
    assert f"[series:{key}]" in text and f"the series name '{key}'" in text
    assert "(healthz, search, static)" in text
    assert f"[series:{key}-cafe]" in text  # an example that loads
    good = load_settings(write(tmp_path, f"[series:{key}-cafe]\nstream = s\n"), environ={})
    assert [s.key for s in good.series] == [f"{key}-cafe"]
