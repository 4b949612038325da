"""The calendar feeds: a series' feed to subscribe to, and one meeting's ``.ics``.

The feed is the one ``cafebot ics`` writes (:mod:`cafebot.cafe.ics`: the RRULE, the
cancellations as EXDATE, the additions as RDATE). It answers with an ``ETag`` (a
digest of its content) and ``Last-Modified`` (when this process first served that
content), and a conditional request for an unchanged feed gets ``304 Not Modified``:
calendar apps poll it cheaply. Its DTSTAMP is that time too, so the content (and the
ETag) changes only when the schedule does.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from flask import Blueprint, Response, abort, request, url_for
from icalendar import Calendar, Event
from werkzeug.wrappers import Response as BaseResponse

from cafebot.cafe import ics
from cafebot.core.config import SeriesSettings
from cafebot.web.pages import the_series
from cafebot.web.site import Upcoming, site

bp = Blueprint("feeds", __name__)

ICS_TYPE = "text/calendar; charset=utf-8"
MAX_AGE = 300  # seconds a cache may keep a feed before asking again (with its ETag)

# A DTSTAMP that no feed carries: the content is rendered with it, digested, and the
# stamp then replaced by the time that content was first served.
_PLACEHOLDER = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_PLACEHOLDER_LINE = b"DTSTAMP:19700101T000000Z"


def _stamp(when: dt.datetime) -> bytes:
    return b"DTSTAMP:" + when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ").encode()


def series_feed(series: SeriesSettings) -> tuple[bytes, str, dt.datetime]:
    """The feed's content, its ETag and when it last changed (as far as this process knows)."""
    now = site().now()
    with site().session() as session:
        content = ics.feed(session, [series], now, stamp=_PLACEHOLDER)
    etag = hashlib.sha256(content).hexdigest()[:32]
    changed = site().first_served(series.key, etag, now.replace(microsecond=0))
    return content.replace(_PLACEHOLDER_LINE, _stamp(changed)), etag, changed


@bp.get("/<series>/calendar.ics")
def calendar(series: str) -> BaseResponse:
    chosen = the_series(series)
    content, etag, changed = series_feed(chosen)
    response = Response(content, mimetype="text/calendar")
    response.content_type = ICS_TYPE
    response.set_etag(etag)
    response.last_modified = changed
    response.cache_control.public = True
    response.cache_control.max_age = MAX_AGE
    response.headers["Content-Disposition"] = f'inline; filename="{chosen.key}.ics"'
    return response.make_conditional(request)


def meeting_event(series: SeriesSettings, meeting: Upcoming, page: str) -> bytes:
    """One meeting alone, as an iCalendar file (for a calendar without the subscription)."""
    calendar = Calendar()
    calendar.add("prodid", ics.PRODID)
    calendar.add("version", "2.0")
    event = Event()
    event.add("uid", f"{series.key}-{meeting.date.isoformat()}@cafebot")
    event.add("summary", series.name)
    event.add("dtstamp", site().now().astimezone(dt.UTC).replace(microsecond=0))
    event.add("dtstart", meeting.starts_at.astimezone(series.tz))
    event.add("dtend", meeting.ends_at.astimezone(series.tz))
    if series.link:
        event.add("location", series.link)
    event.add("url", page)
    description = f"The {series.name} of {meeting.date.isoformat()}: {page}"
    if series.link:
        description += f"\nJoin: {series.link}"
    event.add("description", description)
    if meeting.status.value == "cancelled":
        event.add("status", "CANCELLED")
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return bytes(calendar.to_ical())


@bp.get("/<series>/<date:date>.ics")
def meeting_ics(series: str, date: dt.date) -> Response:
    chosen = the_series(series)
    with site().session() as session:
        found = site().meeting(session, chosen, date)
    if not isinstance(found, Upcoming) or found.status.value not in ("upcoming", "cancelled"):
        abort(
            404,
            description=f"There is no coming meeting of the {chosen.name} on "
            f"{date.isoformat()} to add to a calendar; the feed has every one.",
        )
    page = url_for("pages.meeting", series=chosen.key, date=date, _external=True)
    response = Response(meeting_event(chosen, found, page), mimetype="text/calendar")
    response.content_type = ICS_TYPE
    response.headers["Content-Disposition"] = (
        f'attachment; filename="{chosen.key}-{date.isoformat()}.ics"'
    )
    return response
