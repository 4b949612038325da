"""The INI configuration, read once into frozen, typed settings.

Every problem is reported as a :class:`ConfigError` naming the file, the
section, the key, what is wrong and an example of a good value.
"""

from __future__ import annotations

import configparser
import contextlib
import datetime as dt
import os
import re
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dateutil.rrule import rrulestr

T = TypeVar("T")

DEFAULT_DB_URL = "sqlite:///cafebot.db"
CONFIG_SEARCH_PATH = (Path("config.ini"), Path("~/.config/cafebot/config.ini"))

# Secrets may come from the environment instead of the file.
ENV_ZULIP_KEY = "CAFEBOT_ZULIP_KEY"
ENV_ZULIP_EMAIL = "CAFEBOT_ZULIP_EMAIL"
ENV_ZULIP_SITE = "CAFEBOT_ZULIP_SITE"
ENV_DATABASE_URL = "CAFEBOT_DATABASE_URL"
# The config file, when --config is not given (the container image sets it).
ENV_CONFIG = "CAFEBOT_CONFIG"

DEFAULT_PROMPTS = {
    "checkin": "- _Name / GitHub handle / affiliation_",
    "intro": "_First time here? Add your name and a line about yourself._",
    "shoutout": "_Celebrate something great that someone in the community did!_",
    "agenda": "_Add a topic with your name and a rough time estimate, so we can plan the hour._",
}


class ConfigError(Exception):
    """A problem in the configuration, said so that a person can fix it."""

    def __init__(
        self,
        problem: str,
        *,
        file: str | None = None,
        section: str | None = None,
        key: str | None = None,
        example: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = file
        self.section = section
        self.key = key
        self.example = example
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ", ".join(
            part
            for part in (
                self.file,
                f"section [{self.section}]" if self.section else None,
                f"key '{self.key}'" if self.key else None,
            )
            if part
        )
        text = f"{where}: {self.problem}" if where else self.problem
        if self.example:
            text += f"\n  for example: {self.example}"
        return text


@dataclass(frozen=True)
class ZulipSettings:
    site: str | None = None
    email: str | None = None
    key: str | None = field(default=None, repr=False)  # a secret: never printed
    zuliprc: Path | None = None
    # How far back `cafebot run` looks for commands posted while it was down.
    catchup_window: dt.timedelta = dt.timedelta(hours=24)

    @property
    def configured(self) -> bool:
        return self.zuliprc is not None or bool(self.site and self.email and self.key)

    @property
    def missing(self) -> tuple[str, ...]:
        """The keys of [zulip] that are not set, when no zuliprc stands in for them."""
        if self.zuliprc is not None:
            return ()
        return tuple(k for k in ("site", "email", "key") if not getattr(self, k))

    def missing_text(self, source: Path | None) -> str:
        """What to set so that the account is configured, naming each missing key."""
        where = f"[zulip] of {source}" if source else "the [zulip] section of a config file"
        env = {"site": ENV_ZULIP_SITE, "email": ENV_ZULIP_EMAIL, "key": ENV_ZULIP_KEY}
        missing = self.missing
        given = [k for k in ("site", "email", "key") if k not in missing]
        text = f"no Zulip account configured: {_and(missing)} not set"
        if given:
            text += f" ({_and(given)} {'is' if len(given) == 1 else 'are'})"
        keys = _and([f"`{k} =`" for k in missing])
        names = _and([env[k] for k in missing])
        return f"{text}; set {keys} in {where}, or {names} in the environment"


def _and(words: Sequence[str]) -> str:
    return " and ".join(w for w in (", ".join(words[:-1]), words[-1]) if w) if words else ""


@dataclass(frozen=True)
class SeriesSettings:
    key: str
    name: str = "Collaboration Cafe"
    stream: str | None = None
    topic: str = "{name} {date}"
    schedule: str = "FREQ=MONTHLY;BYDAY=3TU"
    start: dt.time = dt.time(16, 0)
    timezone: str = "UTC"
    duration: dt.timedelta = dt.timedelta(minutes=60)
    link: str | None = None
    organizers: tuple[str, ...] = ()
    reminders: tuple[dt.timedelta, ...] = (
        dt.timedelta(days=7),
        dt.timedelta(days=1),
        dt.timedelta(hours=1),
        dt.timedelta(0),
    )
    publish_delay: dt.timedelta = dt.timedelta(minutes=15)
    # How long before its scheduled start a plain `start` may start a meeting.
    start_margin: dt.timedelta = dt.timedelta(minutes=30)
    # How long before a meeting each owner of open actions gets their direct message
    # (with the one-day reminder by default); None: no such messages.
    action_followup: dt.timedelta | None = dt.timedelta(days=1)
    archive_dir: Path = Path("notes")
    git_remote: str | None = None
    git_branch: str = "main"
    prompts: tuple[tuple[str, str], ...] = tuple(DEFAULT_PROMPTS.items())
    # The series' front page on the site ([web] base_url + key + "/"), if the site is public.
    site_url: str | None = None

    @property
    def calendar_url(self) -> str | None:
        """The calendar feed people subscribe to (reminders and `next` link it)."""
        return f"{self.site_url}calendar.ics" if self.site_url else None

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def organizer_ids(self) -> frozenset[int]:
        return frozenset(int(o) for o in self.organizers if o.isdigit())

    @property
    def organizer_emails(self) -> frozenset[str]:
        return frozenset(o.lower() for o in self.organizers if not o.isdigit())

    def prompt(self, section: str) -> str:
        return dict(self.prompts).get(section, "")

    def topic_for(self, date: dt.date) -> str:
        return self.topic.format(name=self.name, date=date.isoformat())


DEFAULT_WEB_LISTEN = ("127.0.0.1", 8080)


@dataclass(frozen=True)
class WebSettings:
    """``[web]``: the site (``cafebot web``; ``cafebot run`` serves it when ``listen`` is set)."""

    listen: tuple[str, int] | None = None  # host and port; None: `cafebot run` serves no site
    # The site's public address (https://cafe.example.org/), for the links in chat.
    base_url: str | None = None
    # With git_remote set, publishing rebuilds the static site into this folder of the
    # archive repository (relative to archive_dir); None: it does not.
    site_dir: str | None = None


def parse_listen(text: str) -> tuple[str, int]:
    """``127.0.0.1:8080``, ``[::1]:8080`` or ``:8080`` (127.0.0.1) as host and port."""
    raw = text.strip()
    host, sep, port = raw.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"'{raw}' is not a host and port")
    host = host.strip("[]") or DEFAULT_WEB_LISTEN[0]
    return host, int(port)


@dataclass(frozen=True)
class Settings:
    database_url: str = DEFAULT_DB_URL
    zulip: ZulipSettings = ZulipSettings()
    series: tuple[SeriesSettings, ...] = (SeriesSettings(key="cafe"),)
    log_level: str = "INFO"
    log_format: str = "plain"
    source: Path | None = None  # the file read, if any
    # [health]: the heartbeat file (None: see cafebot.ops.health.heartbeat_path) and its max age.
    heartbeat_file: Path | None = None
    health_max_age: dt.timedelta = dt.timedelta(minutes=3)
    web: WebSettings = WebSettings()
    # Problems worth a log line that do not stop cafebot (a config file others can read).
    warnings: tuple[str, ...] = ()

    def series_by_key(self, key: str) -> SeriesSettings | None:
        key = key.lower()
        return next((s for s in self.series if s.key.lower() == key), None)

    def series_for_stream(self, stream: str) -> SeriesSettings | None:
        return next(
            (s for s in self.series if s.stream and s.stream.lower() == stream.lower()), None
        )


# ---------------------------------------------------------------- value parsers

_DURATION_UNITS = {
    "s": 1,
    "sec": 1,
    "secs": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "mins": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hrs": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_DURATION_RE = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$", re.IGNORECASE)


def parse_duration(text: str) -> dt.timedelta:
    """``"7d"``, ``"1h"``, ``"90 min"``, ``"0m"`` -> timedelta. Raises ValueError."""
    m = _DURATION_RE.match(text)
    if not m or m.group(2).lower() not in _DURATION_UNITS:
        raise ValueError(f"'{text.strip()}' is not a duration")
    return dt.timedelta(seconds=int(m.group(1)) * _DURATION_UNITS[m.group(2).lower()])


def parse_optional_duration(text: str) -> dt.timedelta | None:
    """A duration, or ``off`` (``none``, ``no``) for none. Raises ValueError."""
    if text.strip().lower() in ("off", "none", "no", "false"):
        return None
    return parse_duration(text)


_DURATIONS_RE = re.compile(r"\s*\d+\s*[a-z]+\s*", re.IGNORECASE)


def parse_durations(text: str) -> list[dt.timedelta]:
    """A list of durations, by commas (``"7d, 1 day, 2 h, 0m"``); each read by
    :func:`parse_duration`, so every key reads durations alike. Within an item,
    durations may also stand apart by spaces (``"7d 1d"``). Raises ValueError."""
    out = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        pieces = [m.group() for m in _DURATIONS_RE.finditer(item)]
        if len(pieces) > 1 and "".join(pieces) == item:
            out += [parse_duration(piece) for piece in pieces]
        else:
            out.append(parse_duration(item))  # one duration, or a ValueError naming the item
    return out


def format_duration(delta: dt.timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s" if seconds else "0m"


def parse_rrule(text: str) -> str:
    """Validate an iCalendar RRULE (with or without the ``RRULE:`` prefix); return it bare."""
    rule = text.strip()
    if rule.upper().startswith("RRULE:"):
        rule = rule[6:]
    if not rule:
        raise ValueError("the rule is empty")
    try:
        rrulestr(rule, dtstart=dt.datetime(2020, 1, 1))  # noqa: DTZ001 - a naive local anchor
    except (ValueError, TypeError) as exc:
        raise ValueError(f"'{rule}' is not an iCalendar RRULE ({exc})") from exc
    return rule


# ---------------------------------------------------------------- the loader

_KNOWN_SERIES_KEYS = {
    "name",
    "stream",
    "topic",
    "schedule",
    "start",
    "timezone",
    "duration",
    "link",
    "organizers",
    "reminders",
    "publish_delay",
    "start_margin",
    "action_followup",
    "archive_dir",
    "git_remote",
    "git_branch",
    "prompt_checkin",
    "prompt_intro",
    "prompt_shoutout",
    "prompt_agenda",
}
_KNOWN_KEYS = {
    "zulip": {"site", "email", "key", "zuliprc", "catchup_window"},
    "database": {"url"},
    "logging": {"level", "format"},
    "health": {"heartbeat_file", "max_age"},
    "web": {"listen", "base_url", "site_dir"},
}
_SERIES_KEY_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def find_config(
    explicit: str | os.PathLike[str] | None, environ: dict[str, str] | None = None
) -> Path | None:
    """The config file to read: ``--config``, else $CAFEBOT_CONFIG, else ./config.ini,
    else ~/.config/cafebot/config.ini."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise ConfigError(f"no config file at {path}", example="--config ./config.ini")
        return path
    from_env = (os.environ if environ is None else environ).get(ENV_CONFIG)
    if from_env:
        path = Path(from_env).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"no config file at {path} (named by {ENV_CONFIG} in the environment)",
                example=f"{ENV_CONFIG}=/etc/cafebot/config.ini",
            )
        return path
    for candidate in CONFIG_SEARCH_PATH:
        path = candidate.expanduser()
        if path.is_file():
            return path
    return None


def load_settings(
    path: Path | None, *, db_url: str | None = None, environ: dict[str, str] | None = None
) -> Settings:
    """Read the settings from ``path`` (or the defaults when None); ``db_url`` overrides."""
    env = dict(os.environ) if environ is None else environ
    if path is None:
        url = db_url or env.get(ENV_DATABASE_URL) or DEFAULT_DB_URL
        return Settings(database_url=url, zulip=_zulip_from_env(env, ZulipSettings()))
    return _Loader(path, env).load(db_url)


def _zulip_from_env(env: dict[str, str], base: ZulipSettings) -> ZulipSettings:
    return ZulipSettings(
        site=base.site or env.get(ENV_ZULIP_SITE) or None,
        email=base.email or env.get(ENV_ZULIP_EMAIL) or None,
        key=env.get(ENV_ZULIP_KEY) or base.key,
        zuliprc=base.zuliprc,
        catchup_window=base.catchup_window,
    )


class _Loader:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path = path
        self.file = str(path)
        self.env = env
        self.parser = configparser.ConfigParser(
            interpolation=None, inline_comment_prefixes=(";", "#"), strict=True
        )

    def error(
        self, problem: str, section: str | None = None, key: str | None = None, example: str = ""
    ) -> ConfigError:
        return ConfigError(problem, file=self.file, section=section, key=key, example=example)

    def load(self, db_url: str | None) -> Settings:
        try:
            with self.path.open(encoding="utf-8") as fh:
                self.parser.read_file(fh)
        except UnicodeDecodeError as exc:
            raise self.error("the file is not UTF-8 text") from exc
        except configparser.Error as exc:
            raise self.error(f"not a valid INI file: {exc.message}") from exc
        except OSError as exc:
            raise self.error(f"cannot read the file: {exc.strerror}") from exc

        for section in self.parser.sections():
            if section.startswith("series:"):
                continue
            if section not in _KNOWN_KEYS:
                raise self.error(
                    f"unknown section [{section}]",
                    example="[zulip], [database], [logging], [health], [web] or [series:cafe]",
                )
            for key in self.parser[section]:
                if key not in _KNOWN_KEYS[section]:
                    known = ", ".join(sorted(_KNOWN_KEYS[section]))
                    raise self.error(f"unknown key (known: {known})", section, key)

        series = tuple(self.series(s) for s in self.parser.sections() if s.startswith("series:"))
        if not series:
            series = (SeriesSettings(key="cafe"),)
        streams = [s.stream.lower() for s in series if s.stream]
        for stream in set(streams):
            if streams.count(stream) > 1:
                raise self.error(
                    f"two series are bound to stream '{stream}'; each series needs its own stream",
                    example="stream = jupyterbook",
                )

        url = db_url or self.env.get(ENV_DATABASE_URL) or self.get("database", "url")
        level = (self.get("logging", "level") or "INFO").upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise self.error(
                "unknown log level",
                "logging",
                "level",
                "level = INFO (DEBUG, INFO, WARNING, ERROR)",
            )
        heartbeat = self.get("health", "heartbeat_file")
        heartbeat_file = None
        if heartbeat:
            heartbeat_file = Path(heartbeat).expanduser()
            if not heartbeat_file.is_absolute():
                heartbeat_file = self.path.parent / heartbeat_file
        max_age = Settings.health_max_age
        if raw_age := self.get("health", "max_age"):
            try:
                max_age = parse_duration(raw_age if not raw_age.isdigit() else f"{raw_age}s")
            except ValueError as exc:
                raise self.error(str(exc), "health", "max_age", "max_age = 3m") from exc
            if max_age <= dt.timedelta(0):
                raise self.error("must be more than zero", "health", "max_age", "max_age = 3m")
        fmt = (self.get("logging", "format") or "plain").lower()
        if fmt not in {"plain", "json"}:
            raise self.error("unknown log format", "logging", "format", "format = json (or plain)")
        web = self.web()
        if web.base_url:
            series = tuple(replace(s, site_url=f"{web.base_url}{s.key}/") for s in series)
        return Settings(
            database_url=url or DEFAULT_DB_URL,
            zulip=self.zulip(),
            series=series,
            log_level=level,
            log_format=fmt,
            source=self.path,
            heartbeat_file=heartbeat_file,
            health_max_age=max_age,
            web=web,
            warnings=self.permission_warnings(),
        )

    def web(self) -> WebSettings:
        listen = None
        if raw := self.get("web", "listen"):
            try:
                listen = parse_listen(raw)
            except ValueError as exc:
                raise self.error(str(exc), "web", "listen", "listen = 127.0.0.1:8080") from exc
        base_url = self.get("web", "base_url")
        if base_url and not re.match(r"^https?://[^\s/]+(/\S*)?$", base_url):
            raise self.error(
                f"'{base_url}' is not a web address",
                "web",
                "base_url",
                "base_url = https://cafe.example.org/",
            )
        site_dir = self.get("web", "site_dir")
        if site_dir and (Path(site_dir).is_absolute() or ".." in Path(site_dir).parts):
            raise self.error(
                "must be a folder inside the archive repository",
                "web",
                "site_dir",
                "site_dir = site",
            )
        return WebSettings(listen, base_url.rstrip("/") + "/" if base_url else None, site_dir)

    def permission_warnings(self) -> tuple[str, ...]:
        """A file holding a secret (the API key, a database password) that others can read."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        secrets = []
        key = self.get("zulip", "key")
        if key and key not in {"...", "<key>"}:
            secrets.append("the Zulip API key")
        url = self.get("database", "url")
        with contextlib.suppress(ValueError, ArgumentError):
            if url and make_url(url).password:
                secrets.append("a database password")
        found = []
        if secrets:
            found.append((self.path, " and ".join(secrets)))
        rc = self.get("zulip", "zuliprc")
        if rc:
            rc_path = Path(rc).expanduser()
            found.append((rc_path if rc_path.is_absolute() else self.path.parent / rc_path, ""))
        warnings = []
        for path, what in found:
            try:
                mode = path.stat().st_mode
            except OSError:
                continue
            if mode & stat.S_IROTH:
                holds = f"holds {what} and " if what else "holds the Zulip API key and "
                warnings.append(
                    f"{path} {holds}is readable by every user of this machine "
                    f"(mode {stat.filemode(mode)}): run `chmod o-rwx {path}`, or keep the "
                    f"key in the environment ({ENV_ZULIP_KEY}) instead"
                )
        return tuple(warnings)

    def get(self, section: str, key: str) -> str | None:
        if not self.parser.has_option(section, key):
            return None
        value = self.parser.get(section, key).strip()
        return value or None

    def zulip(self) -> ZulipSettings:
        rc = self.get("zulip", "zuliprc")
        zuliprc = None
        if rc:
            zuliprc = Path(rc).expanduser()
            if not zuliprc.is_absolute():
                zuliprc = (self.path.parent / zuliprc).resolve()
        site = self.get("zulip", "site")
        if site and not re.match(r"^https?://[^\s/]+", site):
            raise self.error(
                "the site must be a URL", "zulip", "site", "site = https://chat.example.org"
            )
        key = self.get("zulip", "key")
        if key in {"...", "<key>"}:
            key = None
        window = ZulipSettings.catchup_window
        if raw_window := self.get("zulip", "catchup_window"):
            try:
                window = parse_duration(raw_window)
            except ValueError as exc:
                raise self.error(
                    str(exc), "zulip", "catchup_window", "catchup_window = 24h"
                ) from exc
        base = ZulipSettings(
            site=site,
            email=self.get("zulip", "email"),
            key=key,
            zuliprc=zuliprc,
            catchup_window=window,
        )
        return _zulip_from_env(self.env, base)

    def series(self, section: str) -> SeriesSettings:
        key = section.removeprefix("series:").strip()
        if not _SERIES_KEY_RE.match(key):
            raise self.error(
                "a series name is lower-case letters, digits, - or _",
                section,
                example="[series:cafe]",
            )
        values = self.parser[section]
        for k in values:
            if k not in _KNOWN_SERIES_KEYS:
                known = ", ".join(sorted(_KNOWN_SERIES_KEYS))
                raise self.error(f"unknown key (known: {known})", section, k)

        defaults = SeriesSettings(key=key)

        def get(k: str) -> str | None:
            return self.get(section, k)

        def parse(k: str, conv: Callable[[str], T], example: str, default: T) -> T:
            raw = get(k)
            if raw is None:
                return default
            try:
                return conv(raw)
            except (ValueError, TypeError) as exc:
                raise self.error(str(exc), section, k, example) from exc

        tz = get("timezone") or defaults.timezone
        try:
            ZoneInfo(tz)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise self.error(
                f"unknown time zone '{tz}'", section, "timezone", "timezone = Europe/Berlin"
            ) from exc

        def parse_time(raw: str) -> dt.time:
            m = re.match(r"^(\d{1,2}):(\d{2})$", raw)
            if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
                raise ValueError(f"'{raw}' is not a time of day (HH:MM, 24-hour clock)")
            return dt.time(int(m.group(1)), int(m.group(2)))

        def parse_positive_duration(raw: str) -> dt.timedelta:
            value = parse_duration(raw)
            if value <= dt.timedelta(0):
                raise ValueError("the duration must be more than zero")
            return value

        def parse_offsets(raw: str) -> tuple[dt.timedelta, ...]:
            return tuple(sorted(set(parse_durations(raw)), reverse=True))

        def parse_organizers(raw: str) -> tuple[str, ...]:
            out = []
            for part in (p.strip() for p in raw.split(",")):
                if not part:
                    continue
                if not (part.isdigit() or re.match(r"^[^@\s]+@[^@\s]+$", part)):
                    raise ValueError(f"'{part}' is neither an email address nor a Zulip user id")
                out.append(part.lower())
            return tuple(out)

        def parse_link(raw: str) -> str:
            if not re.match(r"^https?://\S+$", raw):
                raise ValueError(f"'{raw}' is not a web address")
            return raw

        def parse_topic(raw: str) -> str:
            try:
                raw.format(name="x", date="2031-01-01")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(
                    "the topic may only use the placeholders {name} and {date}"
                ) from exc
            return raw

        prompts = dict(DEFAULT_PROMPTS)
        for name in DEFAULT_PROMPTS:
            raw = self.parser.get(section, f"prompt_{name}", fallback=None)
            if raw is not None:
                prompts[name] = raw.strip()

        archive = get("archive_dir")
        archive_dir = defaults.archive_dir
        if archive:
            archive_dir = Path(archive).expanduser()
            if not archive_dir.is_absolute():
                archive_dir = self.path.parent / archive_dir

        return SeriesSettings(
            key=key,
            name=get("name") or defaults.name,
            stream=get("stream"),
            topic=parse("topic", parse_topic, "topic = Collaboration Cafe {date}", defaults.topic),
            schedule=parse(
                "schedule", parse_rrule, "schedule = FREQ=MONTHLY;BYDAY=3TU", defaults.schedule
            ),
            start=parse("start", parse_time, "start = 16:00", defaults.start),
            timezone=tz,
            duration=parse(
                "duration", parse_positive_duration, "duration = 60m", defaults.duration
            ),
            link=parse("link", parse_link, "link = https://meet.example.org/cafe", None),
            organizers=parse(
                "organizers", parse_organizers, "organizers = alice@example.org, 42", ()
            ),
            reminders=parse(
                "reminders", parse_offsets, "reminders = 7d, 1d, 1h, 0m", defaults.reminders
            ),
            publish_delay=parse(
                "publish_delay", parse_duration, "publish_delay = 15m", defaults.publish_delay
            ),
            start_margin=parse(
                "start_margin", parse_duration, "start_margin = 30m", defaults.start_margin
            ),
            action_followup=parse(
                "action_followup",
                parse_optional_duration,
                "action_followup = 1d (or off)",
                defaults.action_followup,
            ),
            archive_dir=archive_dir,
            git_remote=get("git_remote"),
            git_branch=get("git_branch") or defaults.git_branch,
            prompts=tuple(prompts.items()),
        )
