"""The Flask application: :func:`create_app`, and how a group of pages joins it.

Why Flask: it is already in the dependency tree (through zulip-botserver), it is
synchronous like the rest of cafebot, its Jinja2 templates autoescape, and its test
client renders a page without a socket, which the static build uses, so that the
static files are the served pages. waitress serves it (``cafebot web``, ``cafebot run``).

Adding pages: write a module with a :class:`flask.Blueprint` whose views read through
:func:`cafebot.web.site.site` (``with site().session() as session: ...``) and render templates that
``{% extends "series.html" %}`` (a page of one series: ``series`` in the context) or
``{% extends "base.html" %}``; add the blueprint to :data:`BLUEPRINTS`, and a tab of
the series' navigation to :data:`SERIES_NAV` (label, endpoint; the endpoint takes
``series``). Every page must show only what the published notes show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Flask, current_app, render_template, request
from werkzeug.exceptions import HTTPException

from cafebot.bot.app import App
from cafebot.core.config import SeriesSettings
from cafebot.web import feeds, health, insights, pages, search
from cafebot.web.site import EXTENSION, Site, site

#: The groups of pages, in the order they are registered.
BLUEPRINTS: list[Blueprint] = [pages.bp, feeds.bp, search.bp, insights.bp, health.bp]

#: The tabs of a series' pages: (label, endpoint); each endpoint takes ``series``.
SERIES_NAV: list[tuple[str, str]] = [
    ("Next meeting", "pages.front"),
    ("Archive", "pages.archive"),
    ("Search", "search.search_page"),
    ("Insights", "insights.insights_page"),
]


def create_app(app: App, *, leads: Callable[[], bool] | None = None, static: bool = False) -> Flask:
    """The site over ``app`` (its settings, database and clock).

    ``leads``: whether this process is the leader (``/healthz`` says so; a plain
    ``cafebot web`` never leads). ``static``: for the static build (links to files).
    """
    flask = Flask(__name__)
    flask.config.update(MAX_CONTENT_LENGTH=16 * 1024)  # a read-only site takes no uploads
    flask.extensions[EXTENSION] = Site(app, leads or (lambda: False), static)
    flask.jinja_env.autoescape = True  # every template, whatever its name ends with
    flask.jinja_env.trim_blocks = True
    flask.jinja_env.lstrip_blocks = True
    flask.jinja_env.filters["utc"] = _utc
    flask.jinja_env.filters["local"] = _local
    flask.jinja_env.globals["series_nav"] = SERIES_NAV
    for blueprint in BLUEPRINTS:
        flask.register_blueprint(blueprint)
    flask.context_processor(_context)
    flask.register_error_handler(HTTPException, _http_error)
    flask.register_error_handler(Exception, _bug)
    flask.after_request(_headers)
    return flask


def _context() -> dict[str, Any]:
    return {"site": site(), "all_series": site().series}


def _utc(instant: dt.datetime) -> str:
    """The instant for ``<time datetime=…>``."""
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _local(instant: dt.datetime, series: SeriesSettings) -> str:
    """The instant in the series' time zone (what the page reads without JavaScript)."""
    local = instant.astimezone(series.tz)
    return local.strftime("%a %-d %b %Y, %H:%M ") + (local.tzname() or series.timezone)


def _headers(response: Any) -> Any:
    """What every answer says: no framing by others, no sniffing, a strict content policy."""
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    )
    return response


def _http_error(error: HTTPException) -> Any:
    """A page that helps: what was wrong, and where to go instead."""
    if error.code is not None and error.code < 400:
        return error  # redirects (a permalink without its slash)
    code = error.code or 500
    message = error.description or "That did not work."
    if request.path.endswith(".ics") or request.path == "/healthz":
        return {"error": message}, code
    return render_template("error.html", code=code, title=error.name, message=message), code


def _bug(error: Exception) -> Any:
    current_app.logger.exception("the page %s failed", request.path)
    message = "Sorry, something went wrong on our side; the error has been logged."
    return render_template("error.html", code=500, title="Server error", message=message), 500
