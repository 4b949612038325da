"""The site's ``/<series>/insights/`` page: charts readable without JavaScript, a table beside
each, counts and organisations only; and in a real headless browser, one bar per meeting.

The cafe is tests/test_insights.py's made-up archive (eight meetings, counted by hand
there), seen on 1 June 2031.
"""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from cafebot.insights.charts import BAR_GID
from cafebot.web.app import create_app
from cafebot.web.build import render_site
from tests.browser import serve, start_browser
from tests.harness import Harness
from tests.test_insights import DATES, import_both

NAMES = ("Ada", "Bob", "Cy", "Dee", "Eve", "Fay", "Gus", "Hal")


@pytest.fixture(scope="module")
def cafe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    h = Harness(f"sqlite:///{tmp_path_factory.mktemp('insights') / 'cafe.db'}")
    import_both(h)
    yield h
    h.close()


@pytest.fixture
def client(cafe: Harness) -> FlaskClient:
    return create_app(cafe.app).test_client()


def svg_of(data_uri: str) -> ET.Element:
    head, _, payload = data_uri.partition(",")
    assert head == "data:image/svg+xml;base64"
    return ET.fromstring(base64.b64decode(payload))  # noqa: S314 - our own chart


def bars(svg: ET.Element, part: str = "first") -> list[str]:
    """The attendance chart's bars: one group per meeting and part (first-timers, returning)."""
    ids = [e.get("id", "") for e in svg.iter()]
    return [i for i in ids if i.startswith(BAR_GID) and i.endswith(f"-{part}")]


def table_rows(page: str, table_id: str) -> list[list[str]]:
    table = re.search(rf'<table[^>]*id="{table_id}".*?</table>', page, re.S)
    assert table is not None, table_id
    body = table.group(0).split("<tbody>", 1)[1]
    return [
        [re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def test_the_page_has_both_charts_and_their_tables(client: FlaskClient) -> None:
    response = client.get("/cafe/insights/")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Insights: the last 12 months (2030-06-01 to 2031-06-01)" in page
    rows = table_rows(page, "attendance-table")
    assert rows == [
        [d, str(n), str(f), str(r)]
        for d, n, f, r in zip(
            DATES,
            [3, 3, 2, 3, 2, 2, 2, 3],
            [3, 1, 1, 0, 1, 0, 1, 1],
            [0, 2, 1, 3, 1, 2, 1, 2],
            strict=True,
        )
    ]
    assert table_rows(page, "retention-table")[0] == ["2030-09-16", "3", "2", "3"]
    assert table_rows(page, "retention-table")[-1] == ["2031-05-19", "1", "too soon", "too soon"]
    assert table_rows(page, "organisations-table")[0] == ["Harbour Lab", "2", "9"]
    assert table_rows(page, "done-table")[0] == ["2030-09-16", "2", "1", "0", "0", "0"]
    (attendance,) = re.findall(r'<img src="([^"]+)" class="chart" id="attendance-chart"', page)
    assert len(bars(svg_of(attendance))) == len(DATES)
    assert re.search(r'id="retention-chart" alt="[^"]+"', page)  # every chart says what it is


def test_the_page_names_nobody(client: FlaskClient) -> None:
    page = client.get("/cafe/insights/?period=all").get_data(as_text=True)
    text = re.sub(r'src="data:[^"]+"', "", page)  # the charts hold numbers and dates only
    for name in NAMES:
        assert not re.search(rf"\b{name}\b", text), name
    for data_uri in re.findall(r'src="(data:[^"]+)"', page):
        words = " ".join(t.strip() for t in svg_of(data_uri).itertext())
        assert not any(re.search(rf"\b{n}\b", words) for n in NAMES), words


def test_a_period_and_a_bad_one(client: FlaskClient) -> None:
    page = client.get("/cafe/insights/?period=2031").get_data(as_text=True)
    assert [r[0] for r in table_rows(page, "attendance-table")] == DATES[4:]
    bad = client.get("/cafe/insights/?period=soon")
    assert bad.status_code == 400
    said = html.unescape(bad.get_data(as_text=True))
    assert "I don't know the period “soon”" in said
    assert "For example: ?period=6+months or ?period=2030." in said
    empty = client.get("/cafe/insights/?period=2029").get_data(as_text=True)
    assert "No meetings were held in this period" in empty
    assert "attendance-chart" not in empty


def test_the_static_site_holds_the_page(cafe: Harness) -> None:
    files = render_site(cafe.app, "https://cafe.example.org/")
    page = files[Path("cafe/insights/index.html")].decode()
    assert 'id="attendance-chart"' in page
    assert Path("static/insights.css") in files


# ---------------------------------------------------------------- in a real browser


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with start_browser() as driver:
        yield driver


@pytest.mark.slow
def test_in_a_browser_one_bar_per_meeting(cafe: Harness, browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    with serve(cafe.app) as url:
        browser.get(url + "cafe/insights/")
        shot = tmp_path / "insights.png"
        assert browser.save_screenshot(str(shot))
        assert shot.read_bytes().startswith(b"\x89PNG")
        chart = browser.find_element(By.ID, "attendance-chart")
        # The image is drawn (not broken, not blocked by the site's content policy) ...
        width = browser.execute_script(
            "const i = arguments[0]; return i.complete ? i.naturalWidth : 0;", chart
        )
        assert width > 0
        assert chart.size["width"] > 300
        # ... with one bar of first-timers and one of returning people per meeting.
        svg = svg_of(chart.get_attribute("src"))
        assert len(bars(svg, "first")) == len(bars(svg, "returning")) == len(DATES)
        rows = browser.find_elements(By.CSS_SELECTOR, "#attendance-table tbody tr")
        assert len(rows) == len(DATES)
        retention = browser.find_element(By.ID, "retention-chart")
        assert browser.execute_script("return arguments[0].naturalWidth;", retention) > 0
        nav = browser.find_element(By.CSS_SELECTOR, 'nav a[aria-current="page"]')
        assert nav.text == "Insights"
        browser.find_element(By.LINK_TEXT, "All meetings").click()
        assert "period=all" in browser.current_url
        assert "Insights: all meetings" in browser.find_element(By.TAG_NAME, "h1").text


def test_the_same_numbers_draw_the_same_chart(client: FlaskClient) -> None:
    first = client.get("/cafe/insights/").data
    assert client.get("/cafe/insights/").data == first  # no drawing time, no random ids


@pytest.mark.slow
def test_the_page_has_no_serious_accessibility_violations(cafe: Harness, browser: Any) -> None:
    # The site's own axe-core check (it skips, saying why, where axe-core is missing).
    import tests.test_web_browser as site_tests

    with serve(cafe.app) as url:
        site_tests.test_the_pages_have_no_serious_accessibility_violations(
            url, browser, "cafe/insights/"
        )
