"""``cafebot insights``: a series' community numbers on the command line."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys


def since_date(text: str) -> dt.date:
    """``--since``'s value: an ISO date."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"'{text}' is no date; give it as YYYY-MM-DD, e.g. --since 2030-05-01"
        ) from None


def add_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    p = sub.add_parser(
        "insights",
        parents=[common],
        help="who comes, who comes back and what gets done (counts only)",
        description="Print a series' community numbers: attendance, first-timers and "
        "returning people per meeting, retention of first-timers after 3 and 6 months, the "
        "organisations present and the agenda items proposed, discussed and rolled over "
        "(README, 'Community insights', defines each). Default period: the last 12 months.",
    )
    p.add_argument("--series", help="the series' name in the config (needed if there are several)")
    p.add_argument(
        "--since",
        type=since_date,
        metavar="DATE",
        help="count the meetings from this day on (default: 12 months ago), e.g. 2030-05-01",
    )
    p.add_argument(
        "--format",
        choices=["text", "json", "csv"],
        default="text",
        help="text (default), json (everything) or csv (one row per meeting)",
    )
    p.set_defaults(func=cmd_insights)


def cmd_insights(args: argparse.Namespace) -> int:
    # Read-only numbers need the database alone: not the application and its commands
    # (bench/insights.py: the process starts in less time than one that imports them).
    from cafebot.cli.common import one_series, settings_of
    from cafebot.core.clock import SystemClock
    from cafebot.insights import numbers, report
    from cafebot.storage import db

    settings = settings_of(args, quiet=True)
    series = one_series(settings, args.series, "insights")
    if series is None:
        return 2
    engine = db.make_engine(settings.database_url)
    try:
        db.ensure_schema(engine)
        now = SystemClock().now()
        if args.since is None:
            period = numbers.Period.last_months(now.date())
        else:
            period = numbers.Period(args.since, None, f"since {args.since.isoformat()}")
        with db.unit_of_work(db.session_factory(engine)) as session:
            found = numbers.compute(session, series, period, now)
    finally:
        engine.dispose()
    if args.format == "json":
        print(json.dumps(found.as_dict(), indent=2, ensure_ascii=False))
    elif args.format == "csv":
        sys.stdout.write(report.csv_text(found))
    else:
        sys.stdout.write(report.text(found))
    return 0
