"""Retry and pacing policy for talking to a chat server: backoff, rate limits, stop signals.

Pure Python (no ``zulip`` here): the Zulip transport feeds it what the server
reports, and asks it how long to wait.

- :class:`Backoff`: capped exponential backoff with jitter, for connection
  errors, timeouts and 5xx answers, so that an outage costs a bounded number of
  requests rather than a tight loop.
- :class:`RateLimiter`: the server's own account of its rate limit
  (``X-RateLimit-Remaining`` / ``-Reset`` on every response, ``retry-after`` on
  HTTP 429), shared by every thread that talks to the server.
- :class:`Api`: one thread's calls, classified: success, :class:`ApiError` (the
  server said no: never retried), :class:`Transient` (connection error, timeout,
  5xx: retried with backoff where that is safe) and 429 (always waited out).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests
import urllib3

log = logging.getLogger("cafebot.zulip")


class Backoff:
    """Capped exponential backoff with jitter: ``base``, ``2*base``, ... up to ``cap`` seconds.

    Each delay is drawn from the upper half of its step (``[d/2, d]``), so delays
    keep growing (a minute's outage costs a handful of requests) while clients
    that failed together do not retry together.
    """

    def __init__(self, base: float, cap: float, rng: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.rng = rng
        self.failures = 0

    def next_delay(self) -> float:
        step = min(self.cap, self.base * (2 ** min(self.failures, 62)))
        self.failures += 1
        return float(step * (0.5 + self.rng() / 2))

    def reset(self) -> None:
        self.failures = 0


class RateLimiter:
    """What the server says about its rate limit, and how long to wait before a request.

    ``reserve`` requests of each window are left for the poller's own calls (registering
    a queue, the catch-up's reads): paced senders wait when fewer remain. GET /events is
    limited apart on Zulip, and has a limiter of its own (:attr:`Api.events_limiter`).

    Zulip's limiter is a sliding log: a request counts for ``W`` seconds after it was
    made, ``X-RateLimit-Remaining`` is the limit less the requests of the last ``W``
    seconds, and ``X-RateLimit-Reset`` is when the *newest* of them leaves the window,
    that is when the whole window is free (Zulip's zerver/lib/rate_limiter.py,
    ``get_api_calls_left``; recorded.json, "an ordinary answer's rate-limit headers", a
    reset in whole seconds, and "rate limit hit at request 201": the 201st request of a
    minute is refused). Waiting for the reset whenever the window is nearly full sends
    in bursts a whole window apart; so the limiter keeps a log of its own requests (the
    time each one's answer came, no earlier than the server counted it) and, when few
    remain, waits only until the oldest of the requests in the server's window leave it.
    (Another client using the bot's key at the same time would make the log's account
    wrong: a 429 then says so, and is waited out.)
    """

    # Added to each wait for room in the window: the server's clock and ours tick apart.
    SLACK = 0.05

    def __init__(
        self,
        *,
        reserve: int = 2,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.reserve = reserve
        self._monotonic = monotonic
        self._wall = wall
        self._lock = threading.Lock()
        self.remaining: int | None = None
        self.limit: int | None = None
        self.window: float | None = None  # the window's length in seconds, as far as seen
        self._reset_at = 0.0  # monotonic time when the window resets
        self._blocked_until = 0.0  # after a 429: no request before this
        self._log: deque[float] = deque()  # monotonic times of the answers to our requests
        self._in_flight = 0  # requests spent and not answered yet
        self.hits = 0  # 429 answers seen

    def update(self, headers: Mapping[str, str], *, counted: bool = True) -> None:
        """A request spent with :meth:`spend` was answered with ``headers`` (or failed:
        ``headers`` empty). ``counted``: the server may have counted it in its window
        (everything but a 429: Zulip's zerver/lib/rate_limiter.py adds a request to its
        log only when it is let through).

        Reads ``X-RateLimit-Remaining`` / ``-Limit`` / ``-Reset`` from a response's headers.
        Zulip sends them on ordinary answers (recorded.json, "an ordinary answer's
        rate-limit headers"; docs: zulip.com/api/http-headers), ``-Reset`` as a Unix
        time. ``GET /events`` is limited separately and spells them ``X-Ratelimit-*``
        (zulip-api/README.md): ``headers`` is requests' case-insensitive mapping.
        """
        remaining = _number(headers.get("X-RateLimit-Remaining"))
        reset = _number(headers.get("X-RateLimit-Reset"))
        limit = _number(headers.get("X-RateLimit-Limit"))
        with self._lock:
            now = self._monotonic()
            self._in_flight = max(0, self._in_flight - 1)
            if counted:
                self._log.append(now)
            if remaining is not None:
                self.remaining = int(remaining)
            if limit is not None:
                self.limit = int(limit)
            # The window holds no more than the limit, and nothing older than the window
            # (two, to be sure): older answers tell nothing. A short log only ever makes
            # :meth:`_room_at` wait longer (before the limit is known, for the reset).
            while len(self._log) > max(self.limit or 1, 1) or (
                self._log and self.window is not None and self._log[0] < now - 2 * self.window
            ):
                self._log.popleft()
            if reset is not None:
                self._reset_at = self._to_monotonic(reset)
                if counted:
                    # This request is the newest in the window, so the reset is about one
                    # window from now: less, as Zulip rounds it down to a whole second
                    # (recorded.json), by less than a second. Zulip's windows are whole
                    # seconds (its RATE_LIMITING_RULES setting: 200 requests per 60 s by
                    # default), so rounding up gives the window itself.
                    seen = math.ceil(self._reset_at - now - 1e-6)
                    if seen > 0 and (self.window is None or seen > self.window):
                        self.window = float(seen)

    def hit(self, retry_after: float | None) -> float:
        """The server answered 429: no request for ``retry_after`` seconds. Returns the wait."""
        wait = retry_after if retry_after is not None and retry_after >= 0 else 1.0
        with self._lock:
            self.hits += 1
            self._blocked_until = max(self._blocked_until, self._monotonic() + wait)
            # Unknown until the next response says: retry-after is when requests may go again.
            self.remaining = None
        return wait

    def delay(self, *, paced: bool = True) -> float:
        """Seconds to wait before the next request (0: go now).

        ``paced`` requests (the outgoing queue) also wait when the window has no
        more than ``reserve`` requests left; the poller's calls may use the reserve,
        and wait only when nothing is left (rather than earn a 429). The wait is until
        enough of the requests in the window leave it (see the class's description).
        """
        with self._lock:
            now = self._monotonic()
            wait = max(0.0, self._blocked_until - now)
            floor = self.reserve if paced else 0
            if self.remaining is not None and self.remaining <= floor:
                wait = max(wait, self._room_at(floor + 1 - self.remaining) - now)
            return max(0.0, wait)

    def _room_at(self, needed: int) -> float:
        """When ``needed`` more requests than now fit in the server's window (lock held).

        The window holds ``limit - remaining`` requests, the newest of them in flight;
        the others are the newest answered ones in our log, and the ``needed``-th oldest
        of those leaves it one window after its answer came. When the log cannot tell
        (the window holds requests from before this process, the limit or the window's
        length is unknown, or only requests in flight would make room), the reset.
        """
        if self.limit is None or self.window is None or self.remaining is None:
            return self._reset_at
        answered = self.limit - self.remaining - self._in_flight
        index = len(self._log) - answered + needed - 1
        if answered <= 0 or needed > answered or index < 0:
            return self._reset_at
        # Not capped by the reset: Zulip rounds it down, before the newest request leaves.
        return self._log[index] + self.window + self.SLACK

    def spend(self) -> None:
        """Count a request about to be sent (until its response tells the truth)."""
        with self._lock:
            self._in_flight += 1
            if self.remaining is not None and self.remaining > 0:
                self.remaining -= 1

    def _to_monotonic(self, reset: float) -> float:
        now_mono = self._monotonic()
        # Zulip sends a Unix time; a small number is taken as seconds from now.
        seconds = reset - self._wall() if reset > 1e9 else reset
        return now_mono + max(0.0, seconds)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        return None


class Stopper:
    """A stop signal that sleeps can wait on (so a shutdown never waits out a backoff)."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        self._event.set()

    @property
    def stopped(self) -> bool:
        return self._event.is_set()

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds`` or until stopped; True when stopped."""
        if seconds <= 0:
            return self._event.is_set()
        return self._event.wait(seconds)


@dataclass(frozen=True)
class Tuning:
    """Timings and sizes of the transport (tests make them small)."""

    catchup_window: dt.timedelta = dt.timedelta(hours=24)
    backoff_base: float = 0.5  # seconds before the first retry
    backoff_max: float = 60.0  # the longest wait between retries
    request_timeout: float = 15.0
    longpoll_timeout: float = 90.0  # unless register says otherwise
    shutdown_grace: float = 3.0  # time to finish sending at shutdown
    page_size: int = 1000  # messages per GET /messages
    combine_acks: int = 3  # pending reactions in one topic that become one reply when throttled
    rate_reserve: int = 2  # requests of each rate-limit window left for the poller's calls
    anchor_every: float = 1.0  # seconds between writes of the catch-up anchor


# ====================================================================== errors


class ZulipError(Exception):
    pass


class ApiError(ZulipError):
    """Zulip answered with an error (not retried)."""

    def __init__(self, status: int, code: str, msg: str) -> None:
        super().__init__(f"HTTP {status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg


class Transient(ZulipError):
    """A connection error, timeout or 5xx. ``maybe_done``: the request may have taken effect."""

    def __init__(self, text: str, *, maybe_done: bool) -> None:
        super().__init__(text)
        self.maybe_done = maybe_done


class RateLimited(ZulipError):
    def __init__(self, retry_after: float | None) -> None:
        super().__init__(f"rate limited (retry after {retry_after} s)")
        self.retry_after = retry_after


class Stopped(ZulipError):
    """The bot is shutting down: the call was given up."""


class FatalError(ZulipError):
    """The bot cannot run (credentials refused, a request Zulip will never accept)."""


def _not_sent(exc: BaseException) -> bool:
    """Whether a connection error happened before the request reached the server."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, urllib3.exceptions.NewConnectionError):
            return True
        reason = getattr(seen.args[0], "reason", None) if seen.args else None
        if isinstance(reason, urllib3.exceptions.NewConnectionError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# ====================================================================== one thread's calls


def settle_environment(session: requests.Session, url: str) -> None:
    """Read the proxy and CA-bundle settings from the environment once, for ``url``.

    ``requests`` otherwise reads them again on every request (``trust_env``):
    walking the whole environment twice per call, a good part of the cost of a
    request on loopback. The process's environment does not change while it runs,
    so the answer is kept in the session, and ``no_proxy`` still applies (to the
    one server this session talks to).
    """
    if not session.trust_env or not url:
        return
    settings = session.merge_environment_settings(url, {}, None, session.verify, None)
    session.proxies.update(settings["proxies"])
    session.verify = settings["verify"]
    session.trust_env = False


class Api:
    """Calls through one API client (a ``zulip.Client``; one per thread), with our retry policy.

    The client's ``call_endpoint`` does the HTTP; a response hook on its
    ``requests`` session gives us the status and headers it does not return.
    ``network_errors`` are what the client raises when the server is not reached.
    """

    def __init__(
        self,
        client: Any,
        limiter: RateLimiter,
        stopper: Stopper,
        tuning: Tuning,
        *,
        paced: bool,
        secret: str,
        network_errors: tuple[type[Exception], ...] = (requests.exceptions.RequestException,),
    ) -> None:
        self.client = client
        self.network_errors = network_errors
        self.limiter = limiter
        self.stopper = stopper
        self.tuning = tuning
        self.paced = paced
        self.secret = secret
        # GET /events has a rate limit of its own on Zulip, and its answers carry that
        # limit's headers, spelled X-Ratelimit-* (zulip-api/README.md, "Other facts"):
        # they must not move the shared limiter of the rest of the API, nor a 429 there
        # hold up every sender. Only the poller's calls use it.
        self.events_limiter = RateLimiter(reserve=0)
        self._last: tuple[int, Mapping[str, str]] = (0, {})
        client.ensure_session()
        settle_environment(client.session, str(getattr(client, "base_url", "")))
        client.session.hooks["response"].append(self._record)

    def _record(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self._last = (response.status_code, response.headers)

    def _limiter_for(self, method: str, url: str) -> RateLimiter:
        return self.events_limiter if (method, url) == ("GET", "events") else self.limiter

    def clean(self, text: str) -> str:
        """``text`` without the API key (which must never reach a log or an error)."""
        return text.replace(self.secret, "***") if self.secret else text

    def call(
        self,
        method: str,
        url: str,
        request: dict[str, Any] | None = None,
        *,
        retry: bool,
        timeout: float | None = None,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> dict[str, Any]:
        """One API call. 429 is always waited out (the request was not processed);
        connection errors, timeouts and 5xx are retried with backoff when ``retry``.

        ``files``: (name, content) of files sent as ``multipart/form-data``
        (``POST /user_uploads``)."""
        backoff = Backoff(self.tuning.backoff_base, self.tuning.backoff_max)
        limiter = self._limiter_for(method, url)
        while True:
            # Asked again after each wait: another thread may have used the room meanwhile.
            while (wait := limiter.delay(paced=self.paced)) > 0:
                if self.stopper.sleep(wait):
                    raise Stopped(url)
            if self.stopper.stopped:
                raise Stopped(url)
            try:
                return self.once(method, url, request, timeout, files)
            except RateLimited as exc:
                waited = limiter.hit(exc.retry_after)
                log.warning("Zulip rate limit reached; waiting %.1f s as it asks", waited)
            except Transient as exc:
                if not retry:
                    raise
                delay = backoff.next_delay()
                log.warning("%s %s failed (%s); retrying in %.1f s", method, url, exc, delay)
                if self.stopper.sleep(delay):
                    raise Stopped(url) from exc

    def once(
        self,
        method: str,
        url: str,
        request: dict[str, Any] | None,
        timeout: float | None,
        files: Sequence[tuple[str, bytes]] = (),
    ) -> dict[str, Any]:
        limiter = self._limiter_for(method, url)
        limiter.spend()
        self._last = (0, {})
        extra: dict[str, Any] = {}
        if files:  # a fresh file object for each try: the client sends it by its name
            extra["files"] = [named_file(name, content) for name, content in files]
        try:
            result: dict[str, Any] = self.client.call_endpoint(
                url=url,
                method=method,
                request=request or {},
                timeout=timeout or self.tuning.request_timeout,
                **extra,
            )
        except self.network_errors as exc:
            limiter.update({})  # it may have reached the server, and count in its window
            text = self.clean(f"{type(exc).__name__}: {exc}")[:300]
            raise Transient(text, maybe_done=not _not_sent(exc)) from None
        except BaseException:
            limiter.update({})
            raise
        status, headers = self._last
        # A 429 carries code RATE_LIMIT_HIT, a fractional "retry-after" in the body and a
        # Retry-After header (recorded.json, "rate limit hit at request 201"; zulip.yaml,
        # RateLimitedError).
        limited = status == 429 or result.get("code") == "RATE_LIMIT_HIT"
        limiter.update(headers, counted=not limited)
        if limited:
            after = result.get("retry-after") or headers.get("Retry-After")
            raise RateLimited(float(after) if after is not None else None)
        if status >= 500 or result.get("result") == "http-error":
            raise Transient(f"the server answered HTTP {status or '?'}", maybe_done=True)
        # zulip.yaml, JsonError: every refusal is {"result": "error", "msg", "code"}, with
        # HTTP 400 (401 for a wrong key: recorded.json, "wrong api key").
        if result.get("result") != "success":
            raise ApiError(
                status,
                str(result.get("code", "")),
                self.clean(str(result.get("msg", "unknown error"))),
            )
        return result


def named_file(name: str, content: bytes) -> io.BytesIO:
    """A file object of ``content`` called ``name`` (the upload's file name)."""
    file = io.BytesIO(content)
    file.name = name
    return file
