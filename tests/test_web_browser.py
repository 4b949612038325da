"""The site in a real headless browser (Debian's chromium, driven by Selenium).

One cafe (tests/webdata.py) served for the whole module, one browser for the session,
and one more in another time zone for the time-zone test.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.browser import serve, start_browser
from tests.webdata import NEXT_UTC, entries_in_file, make_cafe, sample_archive

pytestmark = pytest.mark.slow

AXE_ENV = "CAFEBOT_AXE_JS"  # axe.min.js from npm's axe-core (.ci/run installs it)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (in America/New_York)."""
    with start_browser() as driver:
        yield driver


@pytest.fixture(scope="module")
def site_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    h = make_cafe(tmp_path_factory.mktemp("web"))
    try:
        with serve(h.app) as url:
            yield url
    finally:
        h.close()


def _by_css(driver: Any, selector: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, selector)


def _all_css(driver: Any, selector: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return list(driver.find_elements(By.CSS_SELECTOR, selector))


def _flat(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize("tz", ["America/New_York", "Asia/Kolkata"])
def test_the_next_meeting_shows_its_agenda_and_the_time_in_the_browsers_zone(
    site_url: str, browser: Any, tz: str
) -> None:
    def check(driver: Any) -> None:
        driver.get(site_url + "cafe/")
        when = _by_css(driver, ".next time[data-local]")
        assert when.get_attribute("datetime") == "2031-08-19T14:00:00Z"
        local = NEXT_UTC.astimezone(ZoneInfo(tz))
        # New York: 10:00 EDT; Kolkata: 19:30 IST (the series reads 16:00 CEST in Berlin).
        assert f"{local:%H:%M}" in when.text, when.text
        assert "16:00" not in when.text
        assert "Aug 19, 2031" in when.text or "19 Aug 2031" in when.text
        topics = [e.text for e in _all_css(driver, ".agenda .topic")]
        assert topics[:2] == ["Release plans", "Docs sprint"]
        assert [e.text for e in _all_css(driver, ".agenda .estimate")] == [
            "(10 min)",
            "(5-10 min)",
            "(50 min)",
        ]
        assert "65-70 min of 60 min" in _by_css(driver, ".total").text
        checkins = [e.text for e in _all_css(driver, ".checkins li")]
        assert checkins == ["Ada Lovelace / @ada / Analytical Engines", "Bob Builder / @bob"]
        feed = _by_css(driver, ".calendar a").get_attribute("href")
        assert feed.startswith("webcal://") and feed.endswith("/cafe/calendar.ics")

    if tz == "America/New_York":
        check(browser)  # the session's browser runs in New York
    else:
        with start_browser(tz) as other:
            check(other)


def test_each_imported_meeting_renders_every_entry_of_the_archive_file(
    site_url: str, browser: Any
) -> None:
    expected = entries_in_file(sample_archive().read_text(encoding="utf-8"))
    assert len(expected) == 7
    for date, entries in expected.items():
        browser.get(f"{site_url}cafe/{date}/")
        shown = {e.get_attribute("id"): _flat(e.text) for e in _all_css(browser, "li.entry")}
        assert shown == entries, date


def test_archive_to_meeting_to_entry_permalink_by_clicking(site_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(site_url + "cafe/")
    browser.find_element(By.LINK_TEXT, "Archive").click()
    rows = _all_css(browser, "table.archive tbody th")
    dates = [r.text for r in rows]
    assert dates == sorted(dates, reverse=True) and dates[0] == "2031-07-15"
    browser.find_element(By.LINK_TEXT, "2031-05-20").click()
    assert browser.current_url == f"{site_url}cafe/2031-05-20/"
    entry = _by_css(browser, "li#A4")
    assert "Switch the team pages to folder-style URLs?" in entry.text
    # The entry's permalink: its anchor, reached by link and highlighted as the target.
    browser.get(f"{site_url}cafe/2031-05-20/#A4")
    target = browser.execute_script("return document.querySelector(':target').id")
    assert target == "A4"
    browser.find_element(By.LINK_TEXT, "Every meeting of 2031").click()
    assert browser.current_url == f"{site_url}cafe/archive/2031/"


def test_a_search_finds_an_imported_decision(site_url: str, browser: Any) -> None:
    from selenium.webdriver.common.by import By

    browser.get(site_url + "cafe/")
    browser.find_element(By.LINK_TEXT, "Search").click()
    box = _by_css(browser, "input[name=q]")
    box.send_keys("check redirects")
    box.submit()
    results = _all_css(browser, "ol.results li")
    assert len(results) == 1
    assert "decision: one more week to check redirects" in results[0].text
    assert [m.text.lower() for m in _all_css(browser, "ol.results mark")] == ["check", "redirects"]
    results[0].find_element(By.TAG_NAME, "a").click()
    assert browser.current_url == f"{site_url}cafe/2031-05-20/#A4"
    assert "Decision - one more week" in _by_css(browser, "li#A4").text


def test_a_script_or_onerror_in_an_entry_is_shown_as_text(site_url: str, browser: Any) -> None:
    for page, selector in (("cafe/", ".agenda li#A3"), ("cafe/2030-12-16/", "li#A1")):
        browser.get(site_url + page)
        assert "<script>window.__pwned = 1</script>" in _by_css(browser, selector).text
        assert browser.execute_script("return window.__pwned === undefined")
        assert _all_css(browser, "main script") == []
        assert _all_css(browser, "main img") == []
    checkin = _by_css(browser, "li#C1").text
    assert 'onerror="window.__pwned = 2"' in checkin
    # A javascript: link in a note is no link at all.
    assert _all_css(browser, "a[href^='javascript']") == []


def test_the_static_sites_search_finds_an_imported_decision(
    tmp_path_factory: pytest.TempPathFactory, browser: Any
) -> None:
    import functools
    import http.server
    import threading

    from selenium.webdriver.common.by import By

    from cafebot.web.build import build_site

    tmp = tmp_path_factory.mktemp("static")
    h = make_cafe(tmp)
    try:
        build_site(h.app, tmp / "site")
    finally:
        h.close()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp / "site"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        browser.get(base + "cafe/")
        browser.find_element(By.LINK_TEXT, "Search").click()
        box = _by_css(browser, "input[name=q]")
        box.send_keys('"check redirects"')
        box.submit()
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(browser, 10).until(lambda d: _all_css(d, "ol.results li"))
        (result,) = _all_css(browser, "ol.results li")
        assert "one more week to check redirects" in result.text
        assert [m.text for m in _all_css(browser, "ol.results mark")] == ["check redirects"]
        result.find_element(By.TAG_NAME, "a").click()
        assert browser.current_url == f"{base}cafe/2031-05-20/#A4"
        assert "Decision - one more week" in _by_css(browser, "li#A4").text
    finally:
        server.shutdown()
        server.server_close()


def _axe_source() -> str:
    path = os.environ.get(AXE_ENV)
    if not path or not Path(path).is_file():
        pytest.skip(
            f"axe-core is not installed: set {AXE_ENV} to node_modules/axe-core/axe.min.js "
            "(.ci/run installs it with npm)"
        )
    return Path(path).read_text(encoding="utf-8")


@pytest.mark.parametrize(
    "page",
    ["", "cafe/", "cafe/2031-05-20/", "cafe/archive/", "search/?q=release&series=cafe", "nope/"],
)
def test_the_pages_have_no_serious_accessibility_violations(
    site_url: str, browser: Any, page: str
) -> None:
    axe = _axe_source()
    browser.get(site_url + page)
    browser.execute_script(axe)
    browser.set_script_timeout(30)
    result = browser.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document, {resultTypes: ['violations']})"
        ".then(r => done(JSON.stringify(r.violations)), e => done(JSON.stringify(String(e))));"
    )
    violations = json.loads(result)
    assert isinstance(violations, list), violations
    serious = [
        (v["id"], v["impact"], [n["html"] for n in v["nodes"]][:3])
        for v in violations
        if v.get("impact") in ("serious", "critical")
    ]
    assert serious == [], serious


def test_without_javascript_the_time_reads_in_the_series_zone(site_url: str) -> None:
    from urllib.request import urlopen

    with urlopen(site_url + "cafe/", timeout=10) as response:  # noqa: S310 - our own server
        page = response.read().decode("utf-8")
    assert '<time datetime="2031-08-19T14:00:00Z" data-local>Tue 19 Aug 2031, 16:00 CEST' in page
    assert dt.date(2031, 8, 19).isoformat() in page
