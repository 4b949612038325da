"""Logging set-up: plain lines for people, or one JSON object per line for collectors.

The dispatcher logs one line per handled command with these extra fields:
``command``, ``sender_id``, ``message_id``, ``outcome`` and ``ms``; the scheduler
one line per job with ``job``, ``outcome`` and ``ms``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import TextIO

EXTRA_FIELDS = ("command", "job", "sender_id", "message_id", "outcome", "ms")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in EXTRA_FIELDS:
            if hasattr(record, key):
                data[key] = getattr(record, key)
        if record.exc_info:
            data["traceback"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "plain", stream: TextIO | None = None) -> None:
    handler = logging.StreamHandler(stream or sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic narrates every start-up at INFO; `cafebot db upgrade` says what it did itself.
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
