"""The retry and pacing policy of `cafebot run` (cafebot.pacing), with a fake clock."""

from __future__ import annotations

import random

import pytest

from cafebot.pacing import Backoff, RateLimiter, Tuning


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
