"""The retry and pacing policy of `cafebot run` (cafebot.edge.pacing), with a fake clock."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import zulip

from cafebot.edge.client import NETWORK_ERRORS
from cafebot.edge.pacing import Api, Backoff, RateLimiter, Stopper, Transient, Tuning
from tests.fakezulip import Org


def requests_during_outage(seconds: float, seed: int) -> int:
    """How many requests one retrying loop makes while the server is down for ``seconds``."""
    tuning = Tuning()
    backoff = Backoff(tuning.backoff_base, tuning.backoff_max, random.Random(seed).random)
    now, count = 0.0, 0
    while now < seconds:
        count += 1
        now += backoff.next_delay()
    return count


@pytest.mark.parametrize("seed", range(20))
def test_a_minute_of_outage_costs_a_handful_of_requests(seed: int) -> None:
    assert requests_during_outage(60.0, seed) <= 10
    # ... and an hour costs about one a minute, not a tight loop.
    assert requests_during_outage(3600.0, seed) <= 130


def test_backoff_grows_with_jitter_up_to_its_cap() -> None:
    backoff = Backoff(0.5, 8.0, random.Random(1).random)
    delays = [backoff.next_delay() for _ in range(10)]
    for n, delay in enumerate(delays):
        step = min(8.0, 0.5 * 2**n)
        assert step / 2 <= delay <= step
    assert len(set(delays)) == len(delays)  # jittered, not in lockstep
    backoff.reset()
    assert backoff.next_delay() <= 0.5


class Clock:
    def __init__(self) -> None:
        self.mono = 100.0
        self.wall = 1_700_000_000.0

    def advance(self, seconds: float) -> None:
        self.mono += seconds
        self.wall += seconds


def test_the_limiter_keeps_a_reserve_and_waits_for_the_reset() -> None:
    clock = Clock()
    limiter = RateLimiter(reserve=2, monotonic=lambda: clock.mono, wall=lambda: clock.wall)
    assert limiter.delay() == 0
    reset = clock.wall + 30
    limiter.update({"X-RateLimit-Remaining": "3", "X-RateLimit-Reset": str(reset)})
    assert limiter.delay() == 0
    limiter.update({"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": str(reset)})
    assert limiter.delay() == pytest.approx(30)
    assert limiter.delay(paced=False) == 0  # the event poll uses the reserve
    limiter.spend()
    limiter.spend()
    assert limiter.remaining == 0
    # Nothing left: the poll, too, waits for the reset rather than earn a 429.
    assert limiter.delay(paced=False) == pytest.approx(30)
    clock.advance(30)
    assert limiter.delay() == 0
    assert limiter.delay(paced=False) == 0


def test_a_429_blocks_everyone_for_its_float_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(monotonic=lambda: clock.mono, wall=lambda: clock.wall)
    limiter.update({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(clock.wall + 60)})
    assert limiter.hit(0.75) == 0.75
    assert limiter.delay(paced=False) == pytest.approx(0.75)
    clock.advance(0.75)
    # After retry-after, requests may go again: the next response tells how many remain.
    assert limiter.delay() == 0
    assert limiter.hits == 1


def test_the_event_polls_limit_leaves_the_rest_of_the_api_alone(org: Org) -> None:
    # GET /events has a limit of its own on Zulip (zulip-api/README.md): polls that use
    # it up must not hold up the senders, whose own window still has room.
    org.fake.set_rate_limit(3, 60.0)
    api = _api(_client(org), org)
    queue = api.call("POST", "register", {"event_types": ["message"]}, retry=False)
    api.call("GET", "users/me", retry=False)
    assert api.limiter.remaining == 1  # register and users/me: 2 of 3
    for _ in range(3):
        api.call(
            "GET",
            "events",
            {"queue_id": queue["queue_id"], "last_event_id": -1, "dont_block": True},
            retry=False,
        )
    assert api.events_limiter.remaining == 0
    assert api.limiter.remaining == 1
    assert api.limiter.delay(paced=False) == 0


# ------------------------------------------------------------------ the environment, read once


def _client(org: Org) -> Any:
    """A client of the bot's (made before the test changes the environment: it asks the
    server for its settings)."""
    return zulip.Client(
        email=org.bot.email, api_key=org.bot.api_key, site=org.fake.url, retry_on_errors=False
    )


def _api(client: Any, org: Org) -> Api:
    return Api(
        client,
        RateLimiter(),
        Stopper(),
        Tuning(),
        paced=False,
        secret=org.bot.api_key,
        network_errors=NETWORK_ERRORS,
    )


def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("NO_PROXY", "HTTP_PROXY", "ALL_PROXY", "CURL_CA_BUNDLE", "REQUESTS_CA_BUNDLE"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


def test_proxy_and_ca_settings_are_read_from_the_environment_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, org: Org
) -> None:
    _no_proxies(monkeypatch)
    client = _client(org)
    bundle = tmp_path / "ca.pem"
    bundle.write_text("")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    session = _api(client, org).client.session
    assert session.proxies.get("http") == "http://proxy.example.org:3128"
    assert session.verify == str(bundle)
    # Not read again on each request: changing the environment now changes nothing.
    assert session.trust_env is False
    monkeypatch.setenv("HTTP_PROXY", "http://elsewhere.example.org:3128")
    merged = session.merge_environment_settings(
        f"{org.fake.url}/api/v1/users/me", {}, None, None, None
    )
    assert merged["proxies"].get("http") == "http://proxy.example.org:3128"


def test_no_proxy_still_applies_to_the_server(monkeypatch: pytest.MonkeyPatch, org: Org) -> None:
    _no_proxies(monkeypatch)
    client = _client(org)
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.example.org:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    api = _api(client, org)
    assert "http" not in api.client.session.proxies
    assert api.once("GET", "users/me", None, 2.0)["user_id"] == org.bot.id


def test_requests_go_through_the_proxy_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, org: Org
) -> None:
    _no_proxies(monkeypatch)
    client = _client(org)
    # A proxy nobody listens on: the call fails there, so the setting was followed.
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    with pytest.raises(Transient) as failed:
        _api(client, org).once("GET", "users/me", None, 2.0)
    assert "proxy" in str(failed.value).lower()
