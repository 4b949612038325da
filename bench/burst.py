"""A burst of commands against a server that enforces its rate limit with HTTP 429.

The fake server counts every request of a user (event polls too) in a sliding
window, as Zulip does (200 requests per minute by default), and answers the
rest with 429 and a ``retry-after``. 500 commands arrive at once; side by side,
in the same run:

- ``cafebot run`` (this project);
- a minimal zulip_bots bot under ``zulip-run-bot`` (bench/minimal_bot.py), the
  usual alternative, answering with replies and, in a second run, with reactions.

For each: commands lost (no effect or no answer), 429s received, and the time
until every answer was out. For cafebot, that time is set against the minimum
the limit allows for the requests it made: with a window of L requests per W
seconds, R requests starting on an empty window cannot all be sent before
``floor((R - 1) / L) * W`` seconds.

A 200-per-minute window makes a run last minutes, so the runner shortens the
window by a scale factor (200 per 6 s is the same limit, ten times faster) for
its repeated runs, and measures the real 200-per-60 s configuration once.
"""

from __future__ import annotations

import re
import sqlite3
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import ROOT
from bench.live import (
    UNLIMITED,
    BotProcess,
    Command,
    Site,
    Workload,
    replay,
)
from tests.fakezulip import Request

COMBINED = re.compile(r"Done, all (\d+) of them")


@dataclass
class Tally:
    """The bot's answers to a set of posted commands, read from the server's log."""

    reactions: int = 0
    replies: int = 0  # replies to commands that are answered by a reply
    combined: int = 0  # acknowledgements folded into a combined reply
    last_at: float = 0.0
    too_many: int = 0  # 429 answers to the bot
    accepted: int = 0  # requests the server let through (event polls too)


def tally(site: Site, start: int, posted: dict[int, Command]) -> Tally:
    out = Tally()
    seen: set[int] = set()
    for request in site.log[start:]:
        if request.user_id != site.bot.id:
            continue
        if request.status == 429:
            out.too_many += 1
            continue
        out.accepted += 1
        if request.method != "POST" or request.status != 200:
            continue
        answered = _answer(request, posted, seen, out)
        if answered:
            out.last_at = max(out.last_at, request.at)
    return out


def _answer(request: Request, posted: dict[int, Command], seen: set[int], out: Tally) -> bool:
    if request.path.endswith("/reactions"):
        message_id = int(request.path.split("/")[1])
        if message_id in posted and message_id not in seen:
            seen.add(message_id)
            out.reactions += 1
            return True
        return False
    if request.path == "messages":
        combined = COMBINED.search(request.params.get("content", ""))
        if combined:
            out.combined += int(combined.group(1))
        else:
            out.replies += 1
        return True
    return False


def processed(db: Path, first_id: int) -> int:
    """How many messages from ``first_id`` on the bot's database records as handled."""
    with sqlite3.connect(db) as connection:
        row = connection.execute(
            "SELECT count(*) FROM processed_message WHERE message_id >= ?", (first_id,)
        ).fetchone()
    return int(row[0])


def wait_answered(
    site: Site, start: int, posted: dict[int, Command], timeout: float
) -> tuple[int, Tally]:
    """Until every command in ``posted`` is handled and answered, or ``timeout`` seconds:
    how many are handled, and the answers in the log from index ``start``."""
    first, count = min(posted), len(posted)
    deadline = time.monotonic() + timeout
    while True:
        time.sleep(0.2)
        done = processed(site.workdir / "cafe.db", first)
        seen = tally(site, start, posted)
        answers = seen.reactions + seen.replies + seen.combined
        if (done >= count and answers >= count) or time.monotonic() > deadline:
            return done, seen


def min_drain(requests: int, limit: int, window: float) -> float:
    """The earliest the last of ``requests`` can go, starting on an empty sliding window."""
    return max(0, (requests - 1) // limit) * window


def cafebot(workdir: Path, count: int, limit: int, window: float) -> dict[str, float]:
    # The same window from the start (a server's window does not change), without a
    # limit while everyone checks in (the first check-ins are welcomed).
    site = Site(workdir, rate_limit=(UNLIMITED[0], window))
    bot = BotProcess(site).wait_live()
    try:
        work = Workload(site, len(site.people))
        replay(site, work.warm_up())
        commands = work.take(count)
        time.sleep(window)  # the warm-up's requests leave the window, on both sides
        site.fake.set_rate_limit(limit, window)
        start = len(site.log)
        began = time.time()
        posted = {site.post(c.user, c.text): c for c in commands}
        done, seen = wait_answered(site, start, posted, 6 * window + 120)
        answers = seen.reactions + seen.replies + seen.combined
        alive = bot.alive()
    finally:
        bot.stop()
        site.close()
    drain = seen.last_at - began
    least = min_drain(seen.accepted, limit, window)
    return {
        "lost": count - min(done, answers),
        "too_many": seen.too_many,
        "drain": drain,
        "min_drain": least,
        "ratio": drain / least if least else float("nan"),
        "requests": seen.accepted,
        "reactions": seen.reactions,
        "combined": seen.combined,
        "survived": float(alive),
    }


def run_bot_binary() -> list[str]:
    script = Path(sys.executable).parent / "zulip-run-bot"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "zulip_bots.run"]


def zulip_run_bot(
    workdir: Path, count: int, limit: int, window: float, answer: str, wait: float
) -> dict[str, float]:
    """The minimal bot under ``zulip-run-bot``, given the same burst; ``answer`` is
    "reply" or "react". Waits until every command is answered, the process is gone,
    or nothing more came for a whole window (at most ``wait`` seconds)."""
    site = Site(workdir)
    site.fake.subscribe(site.bot, "cafe")  # zulip-run-bot does not subscribe by itself
    zuliprc = workdir / "zuliprc"
    zuliprc.write_text(
        f"[api]\nemail={site.bot.email}\nkey={site.bot.api_key}\nsite={site.fake.url}\n",
        encoding="utf-8",
    )
    argv = [
        *run_bot_binary(),
        str(ROOT / "bench" / "minimal_bot.py"),
        "--config-file",
        str(zuliprc),
    ]
    bot = BotProcess(
        site, name=f"zulip-run-bot-{answer}", argv=argv, env={"BENCH_BOT_ANSWER": answer}
    )
    try:
        bot.wait_until(lambda: site.fake.queues)  # registered: it is listening
        work = Workload(site, len(site.people))
        commands = work.take(count)
        site.fake.set_rate_limit(limit, window)
        start = len(site.log)
        began = time.time()
        posted = {site.post(c.user, c.text): c for c in commands}
        deadline = time.monotonic() + wait
        quiet_since, answers = time.monotonic(), 0
        while time.monotonic() < deadline and bot.alive():
            time.sleep(0.2)
            seen = tally(site, start, posted)
            now_answers = seen.reactions + seen.replies
            if now_answers >= count:
                break
            if now_answers != answers:
                quiet_since, answers = time.monotonic(), now_answers
            elif time.monotonic() - quiet_since > window + 5 and time.time() - began > window:
                break
        seen = tally(site, start, posted)
        alive = bot.alive()
    finally:
        bot.stop()
        site.close()
    answered = seen.reactions + seen.replies
    return {
        "lost": count - min(count, answered),
        "too_many": seen.too_many,
        "drain": (seen.last_at - began) if answered else float("nan"),
        "survived": float(alive),
    }


__all__ = ["UNLIMITED", "cafebot", "min_drain", "zulip_run_bot"]
