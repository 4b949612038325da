"""``/healthz``: the heartbeat's age, the database's revision, whether this instance leads.

It answers 200 when the database answers at its latest revision, 503 otherwise (a load
balancer takes the instance out); the heartbeat belongs to ``cafebot run`` and only
informs: a plain ``cafebot web`` has none of its own. Nothing secret is in it (not the
database URL, not the heartbeat file's path).
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError

from cafebot.ops.health import heartbeat_path
from cafebot.storage import db
from cafebot.web.site import site

bp = Blueprint("health", __name__)


def heartbeat_ages(path: Path, now: dt.datetime) -> dict[str, float] | None:
    """Seconds since each part of the running bot last beat; None without a readable file."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        beats = {str(k): dt.datetime.fromisoformat(str(v)) for k, v in dict(data["beats"]).items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return {
        part: round(max(0.0, (now - when).total_seconds()), 1)
        for part, when in sorted(beats.items())
        if when.tzinfo is not None
    }


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    here = site()
    now = here.now()
    body: dict[str, Any] = {}
    ok = True
    try:
        revision = db.current_revision(here.app.engine)
    except SQLAlchemyError:
        revision = None
        body["database"] = "not reachable"
        ok = False
    head = db.head_revision()
    body["database_revision"] = revision
    body["database_current"] = revision == head
    ok = ok and revision == head
    ages = heartbeat_ages(heartbeat_path(here.app.settings), now)
    body["heartbeat_age_seconds"] = max(ages.values()) if ages else None
    body["heartbeat"] = ages or {}
    body["leader"] = bool(here.leads())
    body["status"] = "ok" if ok else "failing"
    return jsonify(body), 200 if ok else 503
