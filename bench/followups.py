"""The follow-up messages before a meeting: 200 open actions across 50 owners.

    python -m bench.followups [--runs 3] [--time-scale 10]

A series with a meeting a minute ahead and, from a meeting a month back, 200 open
actions owned by 50 people (4 each). ``cafebot run`` starts with the follow-up
already due (``action_followup = 1d``), so it writes the 50 direct messages at once
and the outbox sends them within the rate limit. Timed from the process's start,
Python's start-up included, to the last direct message Zulip accepted. Set against
the least the rate limit allows for the bot's requests in that time (start-up
included): with L requests per W seconds, R requests starting on an empty window
cannot all go before ``floor((R - 1) / L) * W`` seconds. At Zulip's default (200 per
60 s, which these requests do not exhaust, so that bound is 0) the ratio is to the
window's steady pace, R * W / L, instead; the binding limit is 20 requests per
window, the window shortened by ``--time-scale``. Counted: owners who got no
message or two, and messages that do not list exactly their owner's 4 actions.

Results go in bench/RESULTS.md; nothing here is asserted in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.burst import min_drain  # noqa: E402
from bench.common import machine  # noqa: E402
from bench.live import BotProcess, Site  # noqa: E402
from cafebot.bot.app import App  # noqa: E402
from cafebot.cafe import meetings  # noqa: E402
from cafebot.core.config import load_settings  # noqa: E402
from cafebot.storage import actions as store  # noqa: E402
from cafebot.storage.models import Meeting, MeetingState, Person  # noqa: E402

OWNERS = 50
PER_OWNER = 4


def seed(site: Site) -> None:
    """The meeting ahead, and the month-old meeting with the owners' open actions."""
    with site.config.open("a", encoding="utf-8") as config:
        config.write("action_followup = 1d\n")
    settings = load_settings(site.config, environ={})
    (series,) = settings.series
    app = App.create(settings)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        with app.unit_of_work() as session:
            row = meetings.series_row(session, series)
            ahead = now + dt.timedelta(minutes=10)
            session.add(
                Meeting(
                    series=row,
                    date=ahead.date(),
                    starts_at=ahead,
                    ends_at=ahead + series.duration,
                    added=True,
                )
            )
            past = now - dt.timedelta(days=30)
            earlier = Meeting(
                series=row,
                date=past.date(),
                starts_at=past,
                ends_at=past + series.duration,
                state=MeetingState.PUBLISHED,
            )
            session.add(earlier)
            session.flush()
            for n, user in enumerate(site.people[:OWNERS]):
                person = Person(zulip_user_id=user.id, zulip_name=user.full_name, created_at=past)
                session.add(person)
                session.flush()
                for k in range(PER_OWNER):
                    store.create(
                        session,
                        row,
                        earlier,
                        f"task {k + 1} of owner {n}",
                        created_at=past + dt.timedelta(minutes=n * PER_OWNER + k),
                        owner_id=person.id,
                    )
    finally:
        app.close()


def is_dm(request: object) -> bool:
    params = getattr(request, "params", {})
    return (
        getattr(request, "method", "") == "POST"
        and getattr(request, "path", "") == "messages"
        and params.get("type") in ("private", "direct")
    )


def run(workdir: Path, limit: int, window: float) -> dict[str, float]:
    site = Site(workdir, users=OWNERS, rate_limit=(limit, window))
    try:
        seed(site)
        start = len(site.log)
        began = time.time()
        bot = BotProcess(site)
        try:
            deadline = time.monotonic() + 30 * window + 120
            while time.monotonic() < deadline:
                sent = [r for r in site.log[start:] if is_dm(r) and r.status == 200]
                if len(sent) >= OWNERS:
                    break
                time.sleep(0.05)
            time.sleep(1.0)  # a second message to anyone would show now
        finally:
            bot.stop()
        mine = [r for r in site.log[start:] if r.user_id == site.bot.id]
        dms = [r for r in mine if is_dm(r) and r.status == 200]
        last = max((r.at for r in dms), default=time.time())
        accepted = [
            r for r in mine if r.status == 200 and r.at <= last and not r.path.startswith("events")
        ]
        too_many = sum(1 for r in mine if r.status == 429)
        to = Counter(int(json.loads(r.params["to"])[0]) for r in dms)
        owners = {u.id for u in site.people[:OWNERS]}
        right = sum(1 for r in dms if r.params.get("content", "").count("`close T") == PER_OWNER)
    finally:
        site.close()
    drain = last - began
    least = min_drain(len(accepted), limit, window)
    steady = len(accepted) * window / limit
    return {
        "missing": len(owners - set(to)),
        "twice": sum(1 for n in to.values() if n > 1),
        "wrong": len(dms) - right,
        "dms": len(dms),
        "drain": drain,
        "requests": len(accepted),
        "too_many": too_many,
        "min_drain": least,
        "ratio": drain / least if least else drain / steady,
        "steady": steady,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--time-scale", type=float, default=10.0)
    args = parser.parse_args(argv)
    print(machine())
    window = 60.0 / args.time_scale
    print(
        "| limit | DMs | missing | twice | wrong list | drain | requests | 429s | "
        "the least the limit allows | drain / that | drain / steady pace |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    cases = [("200 per 60 s (Zulip's default)", 200, 60.0, 1)]
    cases.append((f"20 per {window:g} s", 20, window, args.runs))
    for label, limit, span, runs in cases:
        ratios = []
        for n in range(runs):
            with tempfile.TemporaryDirectory(prefix="cafebot-followups-") as tmp:
                r = run(Path(tmp), limit, span)
            ratios.append(r["ratio"])
            bound = (
                f"{r['min_drain']:.1f} s"
                if r["min_drain"]
                else f"0 s: {r['requests']:.0f} requests fit in one window"
            )
            pace = "" if r["min_drain"] else f" of the window's steady pace ({r['steady']:.0f} s)"
            print(
                f"| {label}, run {n + 1} | {r['dms']:.0f} | {r['missing']:.0f} | "
                f"{r['twice']:.0f} | {r['wrong']:.0f} | {r['drain']:.2f} s | "
                f"{r['requests']:.0f} | {r['too_many']:.0f} | {bound} | {r['ratio']:.2f}x{pace} | "
                f"{r['drain'] / r['steady']:.2f}x ({r['steady']:.1f} s) |"
            )
        if runs > 1:
            print(f"median ratio for {label}: {statistics.median(ratios):.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
