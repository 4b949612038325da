"""The pages: every series, a series' next meeting, each meeting, the archive by year."""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import quote

from flask import Blueprint, abort, render_template, url_for
from werkzeug.routing import BaseConverter, ValidationError

from cafebot.core.config import SeriesSettings
from cafebot.web.site import Published, Upcoming, site

bp = Blueprint("pages", __name__)

FRONT_RECENT = 5  # published meetings listed on a series' front page
FRONT_COMING = 4  # meetings ahead shown there (the next one in full)


class DateConverter(BaseConverter):
    """``2031-05-20`` in a path: a date on the calendar, or the URL matches nothing."""

    regex = r"\d{4}-\d{2}-\d{2}"

    def to_python(self, value: str) -> dt.date:
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            raise ValidationError from None

    def to_url(self, value: Any) -> str:
        return value.isoformat() if isinstance(value, dt.date) else str(value)


@bp.record_once
def _register_converter(state: Any) -> None:
    state.app.url_map.converters["date"] = DateConverter


def the_series(key: str) -> SeriesSettings:
    """The series named in the path, or a 404 that names the series there are."""
    found = site().series_by_key(key)
    if found is None:
        known = ", ".join(s.key for s in site().series)
        abort(404, description=f"There is no series “{key}” here. The series are: {known}.")
    return found


def zulip_topic_url(series: SeriesSettings, date: dt.date) -> str | None:
    """The meeting's topic on Zulip (``#narrow/channel/…/topic/…``), if the site is known."""
    server = site().app.settings.zulip.site
    if not server or not series.stream:
        return None

    def encode(text: str) -> str:  # Zulip's hash encoding: percent-escapes with dots
        return quote(text, safe="!~*'()").replace(".", "%2E").replace("%", ".")

    topic = series.topic_for(date)
    return f"{server.rstrip('/')}/#narrow/channel/{encode(series.stream)}/topic/{encode(topic)}"


def calendar_urls(series: SeriesSettings) -> tuple[str, str]:
    """The feed's address for a browser (https) and for a calendar app (webcal)."""
    feed = url_for("feeds.calendar", series=series.key, _external=True)
    webcal = "webcal://" + feed.split("://", 1)[1]
    return feed, webcal


@bp.get("/")
def index() -> str:
    with site().session() as session:
        coming = {s.key: site().upcoming(session, s, 1) for s in site().series}
    return render_template("index.html", coming=coming)


@bp.get("/<series>/")
def front(series: str) -> str:
    chosen = the_series(series)
    with site().session() as session:
        ahead = site().upcoming(session, chosen, FRONT_COMING)
        recent = site().published_dates(session, chosen, FRONT_RECENT)
    following = [m for m in ahead if m.status.value != "cancelled"]
    feed, webcal = calendar_urls(chosen)
    return render_template(
        "front.html",
        series=chosen,
        meeting=following[0] if following else None,
        ahead=ahead,
        recent=recent,
        feed=feed,
        webcal=webcal,
        topic_url=zulip_topic_url(chosen, following[0].date) if following else None,
    )


@bp.get("/<series>/<date:date>/")
def meeting(series: str, date: dt.date) -> str:
    chosen = the_series(series)
    with site().session() as session:
        found = site().meeting(session, chosen, date)
    if found is None:
        abort(
            404,
            description=f"The {chosen.name} has no meeting on {date.isoformat()}. "
            "The archive lists every meeting, and the front page the next one.",
        )
    feed, webcal = calendar_urls(chosen)
    template = "meeting.html" if isinstance(found, Published) else "upcoming.html"
    return render_template(
        template,
        series=chosen,
        meeting=found,
        feed=feed,
        webcal=webcal,
        topic_url=zulip_topic_url(chosen, date),
        is_upcoming=isinstance(found, Upcoming),
    )


@bp.get("/<series>/archive/")
def archive(series: str) -> str:
    """The archive's newest year, with every year listed."""
    chosen = the_series(series)
    with site().session() as session:
        years = site().years(session, chosen)
        year = years[0] if years else None
        rows = site().archive_year(session, chosen, year) if year is not None else []
    return render_template("archive.html", series=chosen, years=years, year=year, rows=rows)


@bp.get("/<series>/archive/<int:year>/")
def archive_year(series: str, year: int) -> str:
    chosen = the_series(series)
    with site().session() as session:
        years = site().years(session, chosen)
        rows = site().archive_year(session, chosen, year) if year in years else []
    if year not in years:
        shown = f"from {years[-1]} to {years[0]}" if years else "none yet"
        abort(
            404,
            description=f"The {chosen.name}'s archive has no meeting in {year}. "
            f"Its years: {shown}.",
        )
    return render_template("archive.html", series=chosen, years=years, year=year, rows=rows)
