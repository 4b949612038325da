"""Restarts against a server that answers as Zulip does: the catch-up and the SIGKILL replay.

    python -m bench.catchup [--runs 3] [--time-scale 10]

The fake server (tests/fakezulip.py) leaves ``max_message_id`` out of the
``/register`` answer, as Zulip does for the bot's parameters, so what is posted
while the bot is away reaches it only through its forward read of ``GET /messages``.

- **catch-up**: ``cafebot run`` is killed (SIGKILL), 100 commands of the busy-hour
  mix are posted, and it is started again. Timed from the new process's start to
  the last answer reaching the server, Python's start-up included. That time is set
  against what the rate limit allows for the requests the bot made meanwhile (start-up
  and catch-up reads included): with L requests per W seconds, R requests starting on
  an empty window cannot all go before ``floor((R - 1) / L) * W`` seconds. Measured
  at Zulip's default (200 per 60 s, which 100 commands do not exhaust, so the bound
  is 0 and the ratio is to the window's steady pace, R * W / L, instead) and under a
  binding limit (40 requests per window, the window shortened by ``--time-scale``).
- **SIGKILL replay**: 300 commands posted at once; the process is killed five times
  while it works through them, at random moments, and restarted each time. Counted:
  commands without effect or with two, answers lost or doubled, and the time to the
  last answer against one uninterrupted replay of the same commands.

Results go in bench/RESULTS.md; nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.burst import min_drain, processed, tally, wait_answered  # noqa: E402
from bench.common import machine  # noqa: E402
from bench.live import UNLIMITED, BotProcess, Command, Site, Workload, replay  # noqa: E402


def reactions_by_message(site: Site, start: int) -> Counter[int]:
    """Accepted reactions of the bot from log index ``start``, by message id."""
    return Counter(
        int(r.path.split("/")[1])
        for r in site.log[start:]
        if r.user_id == site.bot.id
        and r.method == "POST"
        and r.path.endswith("/reactions")
        and r.status == 200
    )


ENTRY_TABLES = ("agenda_item", "item_note", "checkin", "introduction", "shoutout")


def handled_twice(db: Path) -> int:
    """Messages that made two entries: a command that took effect twice."""
    with sqlite3.connect(db) as connection:
        return sum(
            int(
                connection.execute(
                    f"SELECT count(*) FROM (SELECT message_id FROM {table} "  # noqa: S608
                    "WHERE message_id IS NOT NULL GROUP BY message_id HAVING count(*) > 1)"
                ).fetchone()[0]
            )
            for table in ENTRY_TABLES
        )


def catch_up(workdir: Path, count: int, limit: int, window: float) -> dict[str, float]:
    site = Site(workdir, rate_limit=(UNLIMITED[0], window))
    bot = BotProcess(site).wait_live()
    try:
        work = Workload(site, len(site.people))
        replay(site, work.warm_up())
        bot.kill()
        commands = work.take(count)
        posted = {site.post(c.user, c.text): c for c in commands}
        time.sleep(window)  # the warm-up's requests leave the window
        site.fake.set_rate_limit(limit, window)
        start = len(site.log)
        began = time.time()
        bot = BotProcess(site)
        done, seen = wait_answered(site, start, posted, 6 * window + 120)
        answers = seen.reactions + seen.replies + seen.combined
        reacted = reactions_by_message(site, start)
    finally:
        bot.stop()
        site.close()
    drain = seen.last_at - began
    least = min_drain(seen.accepted, limit, window)
    steady = seen.accepted * window / limit
    return {
        "lost": count - min(done, answers),
        "twice": sum(1 for n in reacted.values() if n > 1),
        "drain": drain,
        "requests": seen.accepted,
        "too_many": seen.too_many,
        "combined": seen.combined,
        "min_drain": least,
        "ratio": drain / least if least else drain / steady,
    }


def sigkill_replay(workdir: Path, count: int, kills: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)  # noqa: S311 - when to kill, not a secret
    site = Site(workdir)
    bot = BotProcess(site).wait_live()
    try:
        work = Workload(site, len(site.people))
        replay(site, work.warm_up())
        commands: list[Command] = work.take(count)
        start = len(site.log)
        began = time.time()
        posted = {site.post(c.user, c.text): c for c in commands}
        first = min(posted)
        restart_s = []
        for _ in range(kills):
            time.sleep(rng.uniform(0.05, 0.6))
            bot.kill()
            t0 = time.monotonic()
            bot = BotProcess(site).wait_live()
            restart_s.append(time.monotonic() - t0)
        deadline = time.monotonic() + 300
        expected = sum(c.answers - (not c.reply) for c in commands)
        while True:
            time.sleep(0.1)
            done = processed(workdir / "cafe.db", first)
            seen = tally(site, start, posted)
            if (done >= count and seen.replies >= expected) or time.monotonic() > deadline:
                break
        reacted = reactions_by_message(site, start)
        twice = handled_twice(workdir / "cafe.db")
    finally:
        bot.stop()
        site.close()
    acks = sum(not c.reply for c in commands)
    return {
        "lost": count - done,
        "twice": twice,
        "acks_twice": sum(1 for n in reacted.values() if n > 1),
        "acks_lost": acks - len(reacted) - seen.combined,
        "replies": seen.replies,
        "replies_expected": expected,
        "took": seen.last_at - began,
        "restart": statistics.median(restart_s),
    }


def calm_replay(workdir: Path, count: int) -> float:
    site = Site(workdir)
    bot = BotProcess(site).wait_live()
    try:
        work = Workload(site, len(site.people))
        replay(site, work.warm_up())
        return replay(site, work.take(count))
    finally:
        bot.stop()
        site.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=10.0)
    parser.add_argument("--skip-real", action="store_true", help="skip the 200-per-60 s run")
    parser.add_argument("--skip-replay", action="store_true", help="skip the SIGKILL replay")
    args = parser.parse_args()
    window = 60.0 / args.time_scale
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows = []
        if not args.skip_real:
            rows.append(("200 per 60 s", catch_up(work / "real", 100, 200, 60.0)))
        for n in range(args.runs):
            rows.append((f"40 per {window:g} s", catch_up(work / f"bind-{n}", 100, 40, window)))
        print("\ncatch-up of 100 commands after a SIGKILL")
        print(
            "| limit | lost | acked twice | drain | requests | 429s | acks in combined "
            "replies | least the limit allows | ratio |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for label, r in rows:
            bound = (
                f"{r['min_drain']:.1f} s"
                if r["min_drain"]
                else f"0 s (steady pace {r['requests'] * 60 / 200:.0f} s)"
            )
            print(
                f"| {label} | {r['lost']:.0f} | {r['twice']:.0f} | {r['drain']:.2f} s | "
                f"{r['requests']:.0f} | {r['too_many']:.0f} | {r['combined']:.0f} | {bound} | "
                f"{r['ratio']:.2f}x |"
            )
        if args.skip_replay:
            return 0
        print("\nSIGKILL five times during a replay of 300 commands")
        calm = [calm_replay(work / f"calm-{n}", 300) for n in range(args.runs)]
        killed = [sigkill_replay(work / f"kill-{n}", 300, 5, seed=n) for n in range(args.runs)]
        print("| run | lost | twice | acks lost / twice | replies | took | calm | restart |")
        print("|---|---|---|---|---|---|---|---|")
        for n, (k, c) in enumerate(zip(killed, calm, strict=True)):
            print(
                f"| {n + 1} | {k['lost']:.0f} | {k['twice']:.0f} | "
                f"{k['acks_lost']:.0f} / {k['acks_twice']:.0f} | "
                f"{k['replies']:.0f} of {k['replies_expected']:.0f} | {k['took']:.2f} s | "
                f"{c:.2f} s | {k['restart']:.2f} s |"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
