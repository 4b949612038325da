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
    # The config's warnings are findings here, printed once with the others.
    settings = settings_of(args, quiet=True, log_warnings=False)
    findings: list[tuple[str, str]] = [("ok", f"config: {settings.source or 'defaults (no file)'}")]
    findings += [("warning", w) for w in settings.warnings]
    findings.append(_database_finding(settings.database_url))
    if settings.zulip.configured:
        from cafebot.edge.direct import check_zulip

        findings += check_zulip(settings)
    else:
        findings.append(("error", f"zulip: {settings.zulip.missing_text(settings.source)}"))
    for level, text in findings:
        print(f"{level.upper():8} {text}")
    errors = sum(1 for level, _ in findings if level == "error")
    print(f"\n{errors} error(s)" if errors else "\nAll checks passed.")
    return 1 if errors else 0


def _database_finding(url: str) -> tuple[str, str]:
    """The database's revision against the latest; checking creates no file."""
    from cafebot.storage import db

    head = db.head_revision()
    upgrade = "run `cafebot db upgrade` (or start the bot) to create it"
    path = db.sqlite_file(url)
    if path is not None and not path.exists():
        return ("error", f"database: no SQLite database at {path} yet: {upgrade}")
    engine = db.make_engine(url)
    try:
        current = db.current_revision(engine)
    except Exception as exc:  # any driver error: say it plainly
        return ("error", f"database: cannot be reached ({type(exc).__name__}: {exc})")
    finally:
        engine.dispose()
    if current == head:
        return ("ok", f"database: at the latest revision ({head})")
    if current is None:
        return (
            "error",
            f"database: holds no cafebot tables yet (the latest revision is {head}): "
            f"{upgrade.replace('create it', 'create them')}",
        )
    return ("error", f"database: at revision {current}, not {head}: run `cafebot db upgrade`")
