"""A real headless browser for the site's tests, and the site served to it.

Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them with apt),
driven by Selenium with the driver's path given, so that Selenium Manager never tries
to download one. Tests that need the browser skip, saying why, only where chromium is
not installed.

- :func:`start_browser` starts one Chromium, in a time zone of choice (``TZ`` in the
  driver's environment, which the browser inherits);
- :func:`serve` serves a site (``cafebot.web``) over a test's App on a free port, with
  waitress in a thread, and gives its address.

A test module makes one browser for all its tests::

    @pytest.fixture(scope="module")
    def browser() -> Iterator[Any]:
        with start_browser() as driver:
            yield driver
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from cafebot.bot.app import App

CHROMIUM = os.environ.get("CAFEBOT_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CAFEBOT_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
DEFAULT_TZ = "America/New_York"

# Without the background-networking flags, Chromium's own connections are refused on
# machines without a network, and it waits for them.
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--lang=en-US",
    "--window-size=1200,900",
)


def _missing() -> str | None:
    for path, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        if not (Path(path).is_file() or shutil.which(path)):
            return f"{path} is not installed (apt-get install {package}; .ci/run does)"
    return None


@contextmanager
def start_browser(tz: str = DEFAULT_TZ) -> Iterator[Any]:
    """A headless Chromium whose clock reads in ``tz``; quit at the end."""
    problem = _missing()
    if problem:
        pytest.skip(problem)
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="cafebot-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    env = dict(os.environ, TZ=tz, SE_OFFLINE="true")
    service = Service(executable_path=CHROMEDRIVER, env=env)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextmanager
def serve(app: App, leads: Callable[[], bool] | None = None) -> Iterator[str]:
    """The site over ``app``, on 127.0.0.1 and a free port; its address ends with ``/``."""
    from cafebot.web.server import Background

    running = Background(app, "127.0.0.1", 0, leads)
    try:
        yield f"http://127.0.0.1:{running.port}/"
    finally:
        running.stop()
