"""``cafebot health`` (is the running bot alive?) and ``cafebot check`` (will it run?)."""

from __future__ import annotations

import argparse
import sys

from cafebot.cli.common import settings_of


def cmd_health(args: argparse.Namespace) -> int:
    import datetime as dt

    from cafebot.core.clock import SystemClock
    from cafebot.ops.health import check, heartbeat_path

    settings = settings_of(args, quiet=True)
    max_age = settings.health_max_age
    if args.max_age is not None:
        if args.max_age <= 0:
            print("cafebot health: --max-age must be more than 0 seconds", file=sys.stderr)
            return 2
        max_age = dt.timedelta(seconds=args.max_age)
    health = check(heartbeat_path(settings), max_age, SystemClock().now())
    if not health.ok:
        print(f"cafebot health: {health.message}", file=sys.stderr)
        return 1
    print(f"cafebot health: {health.message}")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from cafebot.storage import db

    settings = settings_of(args, quiet=True)
    findings: list[tuple[str, str]] = [("ok", f"config: {settings.source or 'defaults (no file)'}")]
    findings += [("warning", w) for w in settings.warnings]
    engine = db.make_engine(settings.database_url)
    try:
        current, head = db.current_revision(engine), db.head_revision()
    except Exception as exc:  # any driver error: say it plainly
        current, head = "unreachable", db.head_revision()
        findings.append(("error", f"database: cannot be reached ({type(exc).__name__}: {exc})"))
    finally:
        engine.dispose()
    if current == head:
        findings.append(("ok", f"database: at the latest revision ({head})"))
    elif current != "unreachable":
        findings.append(
            (
                "error",
                f"database: at revision {current or 'none'}, not {head}: run `cafebot db upgrade`",
            )
        )
    if settings.zulip.configured:
        from cafebot.edge.direct import check_zulip

        findings += check_zulip(settings)
    else:
        findings.append(("error", "zulip: no account configured (site, email and key, or zuliprc)"))
    for level, text in findings:
        print(f"{level.upper():8} {text}")
    errors = sum(1 for level, _ in findings if level == "error")
    print(f"\n{errors} error(s)" if errors else "\nAll checks passed.")
    return 1 if errors else 0
