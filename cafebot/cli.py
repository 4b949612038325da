"""The ``cafebot`` command. Heavy modules are imported lazily, inside each subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cafebot.config import Settings
    from cafebot.models import Meeting

Handler = Callable[[argparse.Namespace], int]


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="the config file (default: ./config.ini, then ~/.config/cafebot/config.ini)",
    )
    common.add_argument(
        "--db", metavar="URL", help="a SQLAlchemy database URL; overrides the config"
    )
    return common


def _settings(args: argparse.Namespace, *, quiet: bool = False) -> Settings:
    """Load the settings and set up logging from them (``quiet``: warnings and worse only)."""
    from cafebot.config import find_config, load_settings
    from cafebot.logs import setup_logging

    settings = load_settings(find_config(args.config), db_url=args.db)
    level = settings.log_level
    if quiet and level in ("DEBUG", "INFO"):
        level = "WARNING"
    setup_logging(level, settings.log_format)
    return settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from cafebot import db

    settings = _settings(args)
    engine = db.make_engine(settings.database_url)
    try:
        db.upgrade_database(engine)
    finally:
        engine.dispose()
    print("The database is at the latest revision.")
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    from cafebot.app import App
    from cafebot.shell import parse_identity, run_shell

    try:
        name, email = parse_identity(args.as_user)
    except ValueError as exc:
        print(f"cafebot shell: --as: {exc}", file=sys.stderr)
        return 2
    app = App.create(_settings(args, quiet=True))
    try:
        return run_shell(app, name=name, email=email, organizer=args.organizer)
    finally:
        app.close()


def cmd_notes(args: argparse.Namespace) -> int:
    import datetime as dt

    from cafebot import meetings
    from cafebot.app import App
    from cafebot.notes import Flavour, render

    settings = _settings(args, quiet=True)
    series = settings.series_by_key(args.series) if args.series else settings.series[0]
    if series is None:
        known = ", ".join(s.key for s in settings.series)
        print(
            f"cafebot notes: no series '{args.series}' (the series are: {known})", file=sys.stderr
        )
        return 2
    app = App.create(settings)
    try:
        with app.unit_of_work() as session:
            row = meetings.series_row(session, series)
            now = app.clock.now()
            meeting: Meeting | None
            if args.date in (None, "next"):
                meeting = meetings.target(session, series, row, now)
            elif args.date == "last":
                meeting = meetings.last(session, row, now)
            else:
                try:
                    day = dt.date.fromisoformat(args.date)
                except ValueError:
                    print(
                        f"cafebot notes: '{args.date}' is not a date (e.g. 2031-06-17, last, next)",
                        file=sys.stderr,
                    )
                    return 2
                meeting = meetings.by_date(session, series, row, day)
            if meeting is None:
                print(f"cafebot notes: {series.name} has no such meeting", file=sys.stderr)
                return 1
            print(render(meeting, Flavour(args.flavour), series), end="")
    finally:
        app.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="cafebot",
        description="A Zulip bot that runs a community's recurring meeting.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "shell",
        parents=[common],
        help="talk to the bot in the terminal (local database, no Zulip needed)",
        description="Talk to the bot in the terminal. Reads commands line by line, so it "
        "can be scripted: printf 'agenda 10m Release plans\\nlist\\n' | cafebot shell",
    )
    p.add_argument(
        "--as",
        dest="as_user",
        metavar='"NAME <EMAIL>"',
        help='act as this user (default: your login name), e.g. "Ada Lovelace <ada@example.org>"',
    )
    p.add_argument("--organizer", action="store_true", help="act as an organiser of every series")
    p.set_defaults(func=cmd_shell)

    p = sub.add_parser("notes", parents=[common], help="print a meeting's notes")
    p.add_argument("date", nargs="?", help="2031-06-17, last or next (default: the next meeting)")
    p.add_argument("--series", help="the series' name in the config (default: the first)")
    p.add_argument(
        "--flavour",
        choices=["archive", "zulip"],
        default="archive",
        help="the archive file's Markdown (default) or Zulip's",
    )
    p.set_defaults(func=cmd_notes)

    p_db = sub.add_parser("db", help="manage the database schema")
    db_sub = p_db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = db_sub.add_parser("upgrade", parents=[common], help="apply database migrations")
    p.set_defaults(func=cmd_db_upgrade)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from cafebot.config import ConfigError

    func: Handler = args.func
    try:
        return func(args)
    except ConfigError as exc:
        print(f"cafebot: config: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
