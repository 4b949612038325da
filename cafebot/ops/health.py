"""The heartbeat: a health signal for process supervisors that never calls Zulip.

The running bot's event loop and scheduler each call :meth:`Heartbeat.beat`
with their name; the heartbeat file then holds, as JSON, the time of each
part's latest beat::

    {"pid": 4242, "beats": {"events": "2031-06-01T10:00:03+00:00",
                            "scheduler": "2031-06-01T10:00:00+00:00"}}

``cafebot health`` (:func:`check`) reads it and fails when the file is missing
or any part's beat is older than the allowed age: a container's health check,
or a monitoring probe, can use it without touching Zulip or the database.

The file describes one process: the first beat of a process replaces what an
earlier run left, and a part that stops on purpose (the scheduler of a process
that is no longer the leader) calls :meth:`Heartbeat.forget`.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url

from cafebot.core.clock import Clock, SystemClock

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cafebot.core.config import Settings

log = logging.getLogger("cafebot.health")

#: The file name used in a state directory, or the suffix beside a SQLite database.
HEARTBEAT_NAME = "heartbeat"

#: How old the newest beat of each part may be before ``cafebot health`` fails.
#: The event loop returns from Zulip's long poll at least once a minute (Zulip
#: sends a heartbeat event when idle), so 3 minutes means several missed beats.
DEFAULT_MAX_AGE = dt.timedelta(minutes=3)

#: A part's beats closer together than this are not written again (less disk I/O).
MIN_WRITE_INTERVAL = dt.timedelta(seconds=1)


def heartbeat_path(settings: Settings, environ: Mapping[str, str] | None = None) -> Path:
    """Where the heartbeat file is, the same for the bot and for ``cafebot health``.

    ``[health] heartbeat_file`` from the config; else ``heartbeat`` in the state
    directory that systemd (``StateDirectory=``) or the container image gives in
    ``$STATE_DIRECTORY``; else ``<database>.heartbeat`` beside a SQLite database
    file; else ``cafebot.heartbeat`` in the current directory.
    """
    if settings.heartbeat_file is not None:
        return settings.heartbeat_file
    env = os.environ if environ is None else environ
    state = (env.get("STATE_DIRECTORY") or "").split(":")[0]
    if state:
        return Path(state) / HEARTBEAT_NAME
    url = make_url(settings.database_url)
    database = url.database or ""
    file_database = database not in ("", ":memory:") and not database.startswith("file:")
    if url.get_backend_name() == "sqlite" and file_database:
        return Path(str(Path(database).expanduser()) + "." + HEARTBEAT_NAME)
    return Path("cafebot." + HEARTBEAT_NAME)


class Heartbeat:
    """The heartbeat file of one running bot; ``beat()`` is safe from any thread.

    A failure to write is logged (once per distinct error) and never raised: a
    full disk must not stop the bot, only make it look unhealthy.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        clock: Clock | None = None,
        *,
        min_interval: dt.timedelta = MIN_WRITE_INTERVAL,
    ) -> None:
        self.path = Path(path)
        self.clock: Clock = clock or SystemClock()
        self.min_interval = min_interval
        self._beats: dict[str, dt.datetime] = {}
        self._written: dict[str, dt.datetime] = {}
        self._lock = threading.Lock()
        self._last_error: str | None = None

    def beat(self, part: str = "main") -> bool:
        """Record that ``part`` (e.g. ``"events"``, ``"scheduler"``) is alive now.

        Returns False when the file could not be written.
        """
        now = self.clock.now()
        with self._lock:
            self._beats[part] = now
            written = self._written.get(part)
            if written is not None and now - written < self.min_interval:
                return True
            return self._write()

    def forget(self, part: str) -> bool:
        """``part`` stopped on purpose: ``cafebot health`` no longer expects its beats."""
        with self._lock:
            if self._beats.pop(part, None) is None:
                return True
            return self._write()

    def _write(self) -> bool:
        data = {
            "pid": os.getpid(),
            "beats": {part: when.isoformat() for part, when in sorted(self._beats.items())},
        }
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Written beside and renamed over: a reader never sees half a file.
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    json.dump(data, fh)
                    fh.write("\n")
                os.chmod(tmp, 0o644)  # the health probe may run as another user; no secret in it
                os.replace(tmp, self.path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            error = f"{exc.strerror or exc} ({self.path})"
            if error != self._last_error:
                log.warning("cannot write the heartbeat file: %s", error)
                self._last_error = error
            return False
        self._last_error = None
        self._written = dict(self._beats)
        return True


@dataclass(frozen=True)
class Health:
    """The outcome of :func:`check`: healthy or not, and a message that says precisely why."""

    ok: bool
    message: str


def check(path: Path, max_age: dt.timedelta, now: dt.datetime) -> Health:
    """Read the heartbeat file at ``path`` and judge it at ``now``."""
    limit = max_age.total_seconds()
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Health(
            False,
            f"no heartbeat file at {path}: `cafebot run` is not running, has not started "
            "yet, or writes its heartbeat elsewhere (set [health] heartbeat_file to the "
            "same path for both)",
        )
    except OSError as exc:
        return Health(False, f"cannot read the heartbeat file {path}: {exc.strerror or exc}")
    try:
        data = json.loads(raw)
        beats = {
            str(part): dt.datetime.fromisoformat(str(when))
            for part, when in dict(data["beats"]).items()
        }
        pid = data.get("pid")
    except (ValueError, KeyError, TypeError, AttributeError):
        return Health(False, f"the heartbeat file {path} is not one that cafebot wrote")
    if not beats:
        return Health(False, f"the heartbeat file {path} records no beat yet")
    if any(when.tzinfo is None for when in beats.values()):
        return Health(False, f"the heartbeat file {path} has a time without a time zone")
    ages = {part: max(0.0, (now - when).total_seconds()) for part, when in beats.items()}
    stale = {part: age for part, age in ages.items() if age > limit}
    who = f" (process {pid})" if pid else ""
    if stale:
        details = "; ".join(
            f"the {part} part last beat {age:.0f} s ago, at {beats[part].isoformat()}"
            for part, age in sorted(stale.items())
        )
        return Health(
            False,
            f"stale heartbeat{who}: {details}; at most {limit:.0f} s is allowed "
            f"(--max-age, or [health] max_age). Is the bot stuck or stopped? ({path})",
        )
    summary = ", ".join(f"{part} {age:.0f} s ago" for part, age in sorted(ages.items()))
    return Health(True, f"ok{who}: {summary} (at most {limit:.0f} s allowed)")
