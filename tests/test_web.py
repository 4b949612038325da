"""The site without a browser: the feed, /healthz, what it shows and hides, bad input,
search, the static build, and a real `cafebot web` process."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import pytest
import recurring_ical_events
from flask.testing import FlaskClient
from icalendar import Calendar

from cafebot.cafe import meetings
from cafebot.cli.main import main
from cafebot.core.config import DEFAULT_WEB_LISTEN, ConfigError, load_settings, parse_listen
from cafebot.web.app import create_app
from cafebot.web.build import MARKER, BuildError, build_site, site_paths
from tests.harness import ADA, CAFE, OLGA, Harness, sqlite_url
from tests.webdata import AUG_1, make_cafe


@pytest.fixture(autouse=True)
def _logging_as_it_was() -> Iterator[None]:
    """`main()` sets up logging on the (captured) standard error: put it back afterwards,
    or later tests would log to a stream pytest has closed."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = make_cafe(tmp_path_factory.mktemp("web"))
    yield h
    h.close()


@pytest.fixture
def client(cafe: Harness) -> FlaskClient:
    return create_app(cafe.app).test_client()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------- the calendar feed

CONFIG = """[series:cafe]
name = Collaboration Cafe
stream = jupyterhub
schedule = FREQ=MONTHLY;BYDAY=3TU
start = 16:00
timezone = Europe/Berlin
organizers = olga@example.org
"""

_SCHEDULE_LINE = re.compile(
    r"^  \w{3} (\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}) \S+(?:  \((\d{2}:\d{2}) UTC\))?(  cancelled.*)?"
)


def _schedule_instants(config: Path, url: str, capsys: pytest.CaptureFixture[str]) -> list[Any]:
    """The meetings `cafebot schedule` prints (not the cancelled ones), as UTC instants."""
    assert main(["schedule", "--config", str(config), "--db", url, "--count", "8"]) == 0
    out = capsys.readouterr().out
    found = []
    for line in out.splitlines():
        m = _SCHEDULE_LINE.match(line)
        if m and not m.group(4):
            day = dt.date.fromisoformat(m.group(1))
            utc = dt.time.fromisoformat(m.group(3) or m.group(2))
            found.append(dt.datetime.combine(day, utc, tzinfo=dt.UTC))
    assert len(found) >= 6, out
    return found


def test_the_feed_expands_to_the_same_instants_as_cafebot_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "config.ini"
    config.write_text(CONFIG, encoding="utf-8")
    settings = load_settings(config, environ={})
    now = dt.datetime.now(dt.UTC)  # `cafebot schedule` reads the system's clock
    h = Harness(f"sqlite:///{tmp_path / 'cafe.db'}", series=settings.series, now=now)
    try:
        series = h.settings.series[0]
        second, third = list(zip(range(3), meetings.occurrences(series, now), strict=False))[1:]
        assert h.send(f"cancel {second[1].date()} summer break", OLGA).replies
        extra = third[1].date() + dt.timedelta(days=1)
        assert h.send(f"add meeting {extra} 18:30", OLGA).replies
        expected = _schedule_instants(config, h.settings.database_url, capsys)
        response = create_app(h.app).test_client().get("/cafe/calendar.ics")
        assert response.status_code == 200
        assert response.mimetype == "text/calendar"
        calendar = Calendar.from_ical(response.data)
        events = recurring_ical_events.of(calendar).between(now, expected[-1] + dt.timedelta(1))
        served = sorted(e["DTSTART"].dt.astimezone(dt.UTC) for e in events)
        served = [s for s in served if s <= expected[-1]]
        assert served == expected
        cancelled = dt.datetime.combine(second[1].date(), dt.time(16), tzinfo=series.tz)
        assert cancelled.astimezone(dt.UTC) not in served
        added = dt.datetime.combine(extra, dt.time(18, 30), tzinfo=series.tz)
        assert added.astimezone(dt.UTC) in served
    finally:
        h.close()


def test_a_second_request_with_the_etag_gets_304(client: FlaskClient, cafe: Harness) -> None:
    first = client.get("/cafe/calendar.ics")
    etag, modified = first.headers["ETag"], first.headers["Last-Modified"]
    assert first.status_code == 200 and etag.startswith('"')
    assert b"DTSTAMP:" in first.data and first.headers["Cache-Control"].startswith("public")
    again = client.get("/cafe/calendar.ics", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    since = client.get("/cafe/calendar.ics", headers={"If-Modified-Since": modified})
    assert since.status_code == 304
    assert client.get("/cafe/calendar.ics").data == first.data  # the same content, the same tag
    # A cancellation changes the feed: the old tag no longer matches.
    assert cafe.send("cancel 2031-09-16 conference week", OLGA).replies
    try:
        changed = client.get("/cafe/calendar.ics", headers={"If-None-Match": etag})
        assert changed.status_code == 200 and changed.headers["ETag"] != etag
        assert b"EXDATE" in changed.data
    finally:
        assert cafe.send("uncancel 2031-09-16", OLGA).replies


def test_one_meeting_alone_as_an_ics_file(client: FlaskClient) -> None:
    response = client.get("/cafe/2031-08-19.ics")
    assert response.status_code == 200
    (event,) = Calendar.from_ical(response.data).walk("VEVENT")
    assert event["DTSTART"].dt.astimezone(dt.UTC) == dt.datetime(2031, 8, 19, 14, tzinfo=dt.UTC)
    assert str(event["URL"]).endswith("/cafe/2031-08-19/")
    assert client.get("/cafe/2031-05-20.ics").status_code == 404  # long past: the notes


# ---------------------------------------------------------------- /healthz


def test_healthz_says_the_heartbeats_age_the_revision_and_who_leads(cafe: Harness) -> None:
    from cafebot.ops.health import heartbeat_path
    from cafebot.storage import db

    path = heartbeat_path(cafe.app.settings)
    beat = (AUG_1 - dt.timedelta(seconds=42)).isoformat()
    path.write_text(json.dumps({"pid": 1, "beats": {"events": beat}}), encoding="utf-8")
    try:
        for leads in (False, True):
            client = create_app(cafe.app, leads=lambda leads=leads: leads).test_client()
            response = client.get("/healthz")
            assert response.status_code == 200
            body = response.get_json()
            assert body["leader"] is leads
            assert body["heartbeat_age_seconds"] == 42.0
            assert body["database_revision"] == db.head_revision()
            assert body["status"] == "ok"
            assert "sqlite" not in response.get_data(as_text=True)  # no database URL
    finally:
        path.unlink()
    body = create_app(cafe.app).test_client().get("/healthz").get_json()
    assert body["heartbeat_age_seconds"] is None and body["heartbeat"] == {}


# ---------------------------------------------------------------- what it shows, and hides


def test_no_page_shows_an_email_address_or_a_zulip_user_id(
    client: FlaskClient, cafe: Harness
) -> None:
    assert cafe.send("intro I build engines; write to ada@example.org", ADA).reactions
    assert cafe.send("note A1 @**Ada Lovelace|11** drafts it, ada@example.org", ADA).reactions
    paths = site_paths(create_app(cafe.app))
    assert "/cafe/2031-05-20/" in paths and "/cafe/2031-08-19/" in paths
    for path in [*paths, "/search/?q=Ada", "/search/?q=engines"]:
        page = client.get(path).get_data(as_text=True)
        assert "@example.org" not in page, path
        assert "|11" not in page and "user11" not in page, path
    # The next meeting is not published: its introduction and notes are not on the site.
    upcoming = client.get("/cafe/2031-08-19/").get_data(as_text=True)
    assert "I build engines" not in upcoming and "drafts it" not in upcoming
    assert "Release plans" in upcoming  # what `list` shows in the stream: the agenda


def test_a_published_meeting_links_to_its_zulip_topic(client: FlaskClient) -> None:
    page = client.get("/cafe/2031-05-20/").get_data(as_text=True)
    assert (
        'href="https://chat.example.org/#narrow/channel/jupyterhub/topic/'
        'Collaboration.20Cafe.202031-05-20"' in page
    )
    assert '<details class="spoiler"><summary>Tools for breakouts, if required</summary>' in page
    assert '<span class="who">Ines</span>' in page and "[name=" not in page
    assert "⛰️" in page and ":mountain:" not in page.replace('title=":mountain:"', "")
    jan = client.get("/cafe/2031-01-21/").get_data(as_text=True)
    assert 'href="#voices-survey-update"' in jan and 'id="voices-survey-update"' in jan


def test_the_archive_lists_every_meeting_by_year_newest_first_with_counts(
    client: FlaskClient,
) -> None:
    page = client.get("/cafe/archive/").get_data(as_text=True)
    dates = re.findall(r'<th scope="row"><a href="/cafe/(\d{4}-\d{2}-\d{2})/">', page)
    assert dates == sorted(dates, reverse=True) and len(dates) == 7
    # 2031-05-20: 5 check-ins, 2 introductions, 3 shout-outs, 5 agenda items.
    assert re.search(
        r"2031-05-20</a></th><td>5</td><td>2</td><td>3</td><td>5</td>", page.replace("\n", "")
    )
    assert 'href="/cafe/archive/2030/"' in page
    older = client.get("/cafe/archive/2030/").get_data(as_text=True)
    assert "2030-12-16" in older and "2031-05-20" not in older


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("path", "code", "says"),
    [
        pytest.param(
            "/nope/", 404, "There is no series “nope” here. The series are: cafe.", id="series"
        ),
        pytest.param("/cafe/2031-02-30/", 404, "Not Found", id="no-such-day"),
        pytest.param("/cafe/2031-05-21/", 404, "has no meeting on 2031-05-21", id="no-meeting"),
        pytest.param("/cafe/2029-01-16/", 404, "has no meeting on 2029-01-16", id="passed"),
        pytest.param("/cafe/archive/1999/", 404, "Its years: from 2030 to 2031", id="year"),
        pytest.param("/search/?q=x&page=two", 400, "The page must be a number", id="page"),
        pytest.param("/search/?q=" + "x" * 201, 400, "at most 200 characters", id="long"),
        pytest.param("/search/?q=x&series=nope", 400, "There is no series “nope”", id="filter"),
        pytest.param("/search/?q=" + "+w" * 11, 400, "Give at most 10 words", id="words"),
    ],
)
def test_bad_input_gets_a_page_that_helps(
    client: FlaskClient, path: str, code: int, says: str
) -> None:
    response = client.get(path)
    assert response.status_code == code
    page = response.get_data(as_text=True)
    assert says in page
    assert "Traceback" not in page
    if code == 404:  # a page that leads on: every series' next meeting, archive, search
        assert 'href="/cafe/archive/"' in page and 'href="/cafe/"' in page
    else:  # the search form again, with the words given
        assert 'name="q"' in page


def test_a_permalink_without_its_slash_and_the_old_search_address_redirect(
    client: FlaskClient,
) -> None:
    assert client.get("/cafe/2031-05-20").headers["Location"].endswith("/cafe/2031-05-20/")
    assert client.get("/search?q=x").headers["Location"].endswith("/search/?q=x")


# ---------------------------------------------------------------- search


def _results(page: str) -> list[str]:
    """The result links of a search page, in order."""
    listing = page.split('<ol class="results">', 1)[1].split("</ol>", 1)[0]
    return re.findall(r'<li><a href="([^"]+)"', listing)


def test_search_highlights_paginates_and_links_each_result_to_its_entry(
    client: FlaskClient,
) -> None:
    page = client.get("/search/?q=redirects&series=cafe").get_data(as_text=True)
    assert 'href="/cafe/2031-05-20/#A4">2031-05-20/A4</a>' in page
    assert "<mark>redirects</mark>" in page
    # Nearly every entry of the archive holds an "e": more than one page of 20.
    first = client.get("/search/?q=e&series=cafe").get_data(as_text=True)
    total = int(re.search(r"(\d+) found", first).group(1))  # type: ignore[union-attr]
    pages = -(-total // 20)
    assert total > 20 and f"page 1 of {pages}" in first and 'rel="next"' in first
    assert len(_results(first)) == 20
    last = client.get(f"/search/?q=e&series=cafe&page={pages}").get_data(as_text=True)
    assert f"page {pages} of {pages}" in last and 'rel="prev"' in last and 'rel="next"' not in last
    assert len(_results(last)) == total - 20 * (pages - 1)
    dates = [link.split("/")[2] for link in _results(first) + _results(last)]
    assert dates == sorted(dates, reverse=True)  # newest first, across the pages
    beyond = client.get(f"/search/?q=e&series=cafe&page={pages + 1}")
    assert beyond.status_code == 400 and f"only {pages} pages" in beyond.get_data(as_text=True)
    hostile = client.get("/search/?q=hostile").get_data(as_text=True)
    assert "&lt;script&gt;" in hostile and "<script>window" not in hostile
    nothing = client.get('/search/?q="no such words"').get_data(as_text=True)
    assert "Nothing found for “&#34;no such words&#34;”" in nothing


# ---------------------------------------------------------------- the static build


def test_the_static_build_writes_the_served_pages(
    tmp_path: Path, cafe: Harness, client: FlaskClient
) -> None:
    out = tmp_path / "site"
    report = build_site(cafe.app, out)
    assert report.pages >= 12
    pages = sorted(p for p in out.rglob("index.html"))
    for page in pages:
        path = "/" + str(page.parent.relative_to(out)) + "/"
        path = "/" if path == "/./" else path
        if path == "/search/":  # the one difference: it searches the prebuilt index
            served = client.get(path).get_data(as_text=True)
            static = page.read_text(encoding="utf-8")
            hook = ' data-index="/search/index.json" data-base="/" data-per-page="20"'
            assert hook in static and static.replace(hook, "") == served
            continue
        assert page.read_bytes() == client.get(path).data, path
    assert (out / "cafe" / "calendar.ics").read_bytes() == client.get("/cafe/calendar.ics").data
    assert (out / "static" / "site.css").is_file() and (out / "static" / "site.js").is_file()
    index = json.loads((out / "search" / "index.json").read_text(encoding="utf-8"))
    (decision,) = [e for e in index["entries"] if "check redirects" in e[5]]
    assert decision[:4] == ["cafe", "2031-05-20", "A4", "2031-05-20/A4"]
    # Built again: the folder is replaced; a folder of other files is refused.
    (out / "stale.html").write_text("old", encoding="utf-8")
    build_site(cafe.app, out)
    assert not (out / "stale.html").exists() and (out / MARKER).is_file()
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(BuildError, match="holds files that no site build wrote"):
        build_site(cafe.app, other)


def test_the_static_build_under_a_path_prefix_links_inside_it(
    tmp_path: Path, cafe: Harness
) -> None:
    out = tmp_path / "site"
    build_site(cafe.app, out, base_url="https://example.github.io/cafe-notes/")
    front = (out / "cafe" / "index.html").read_text(encoding="utf-8")
    assert 'href="/cafe-notes/cafe/archive/"' in front
    assert "webcal://example.github.io/cafe-notes/cafe/calendar.ics" in front


def test_cafebot_site_build_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    assert main(["site", "build", "--db", url, "-o", str(tmp_path / "out")]) == 0
    assert "pages" in capsys.readouterr().out
    assert (tmp_path / "out" / "cafe" / "index.html").is_file()
    (tmp_path / "file").write_text("x", encoding="utf-8")
    assert main(["site", "build", "--db", url, "-o", str(tmp_path / "file")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


# ---------------------------------------------------------------- config and the process


def test_the_web_section_of_the_config(tmp_path: Path) -> None:
    path = tmp_path / "config.ini"
    path.write_text("[web]\nlisten = 192.0.2.1:9000\nbase_url = https://cafe.example.org\n")
    web = load_settings(path, environ={}).web
    assert web.listen == ("192.0.2.1", 9000) and web.base_url == "https://cafe.example.org/"
    assert parse_listen(":8080") == ("127.0.0.1", 8080)
    assert parse_listen("[::1]:8081") == ("::1", 8081)
    path.write_text("[web]\nlisten = localhost\n")
    with pytest.raises(ConfigError, match=r"listen.*'localhost' is not a host and port"):
        load_settings(path, environ={})
    path.write_text("[web]\nsite_dir = ../elsewhere\n")
    with pytest.raises(ConfigError, match="inside the archive repository"):
        load_settings(path, environ={})
    assert load_settings(None, environ={}).web.listen is None  # `cafebot run` serves no site
    assert DEFAULT_WEB_LISTEN == ("127.0.0.1", 8080)  # `cafebot web` binds the loopback


@pytest.mark.slow
def test_cafebot_web_serves_the_site_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAFEBOT_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cafebot", "web", "--listen", f"127.0.0.1:{port}"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                assert process.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert body["status"] == "ok" and body["leader"] is False
        with urlopen(f"http://127.0.0.1:{port}/cafe/", timeout=5) as response:
            assert b"Collaboration Cafe" in response.read()
    finally:
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=15)
    assert process.returncode == 0, err
    assert f"serving on http://127.0.0.1:{port}/" in out
    assert (tmp_path / "cafebot.db").exists()


def test_cafebot_web_explains_a_bad_listen_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["web", "--listen", "nowhere", "--db", f"sqlite:///{tmp_path / 'c.db'}"]) == 2
    assert "'nowhere' is not a host and port" in capsys.readouterr().err


def test_a_meeting_rendered_anew_keeps_its_anchors(tmp_path: Path) -> None:
    """A meeting the bot wrote (not imported) gets its anchors from the canonical form."""
    h = make_cafe(tmp_path)
    client = create_app(h.app).test_client()
    try:
        h.clock.set(dt.datetime(2031, 8, 19, 14, 5, tzinfo=dt.UTC))
        assert h.send("note A1 We aim for May", ADA).reactions
        h.clock.set(dt.datetime(2031, 8, 19, 15, 30, tzinfo=dt.UTC))
        answer = h.send("publish 2031-08-19", OLGA)
        assert answer.sent or answer.replies
        page = client.get("/cafe/2031-08-19/").get_data(as_text=True)
        assert 'id="A1"' in page and 'id="A1.1"' in page and 'id="C1"' in page
        assert "We aim for May" in page
        assert "&lt;script&gt;window.__pwned = 1&lt;/script&gt;" in page
    finally:
        h.close()


def test_reminders_and_next_link_the_calendar_feed(tmp_path: Path) -> None:
    from cafebot.cafe.reminders import next_reminder

    path = tmp_path / "config.ini"
    path.write_text("[web]\nbase_url = https://cafe.example.org/site\n\n[series:cafe]\n")
    (series,) = load_settings(path, environ={}).series
    assert series.calendar_url == "https://cafe.example.org/site/cafe/calendar.ics"
    h = Harness(sqlite_url(tmp_path), series=(replace(CAFE, site_url=series.site_url),))
    try:
        reply = h.send("next", ADA).replies[0]
        assert "Calendar (subscribe in your calendar app): " + series.calendar_url in reply
        with h.app.unit_of_work() as session:
            preview = next_reminder(session, h.settings.series[0], h.clock.now())
            assert preview is not None
            text = preview.text
        assert text.endswith(f"Calendar (subscribe in your calendar app): {series.calendar_url}")
    finally:
        h.close()
    plain = Harness(sqlite_url(tmp_path / "x"), series=(CAFE,))
    try:
        assert "Calendar" not in plain.send("next", ADA).replies[0]  # no public site: no link
    finally:
        plain.close()


def test_the_pages_read_while_the_bot_holds_the_write_lock(client: FlaskClient) -> None:
    """On SQLite the site's transactions take no write lock, so a page never waits for
    the bot's (another process's) transaction, nor makes the bot wait for it."""
    import sqlite3

    from cafebot.storage.db import sqlite_file

    url = client.application.extensions["cafebot.site"].app.settings.database_url
    path = sqlite_file(url)
    assert path is not None
    other = sqlite3.connect(path, isolation_level=None, timeout=0.1)
    try:
        other.execute("BEGIN IMMEDIATE")  # as the bot's unit of work does
        for page in ("/cafe/", "/cafe/2031-05-20/", "/cafe/archive/", "/cafe/calendar.ics"):
            assert client.get(page).status_code == 200, page
    finally:
        other.execute("ROLLBACK")
        other.close()
