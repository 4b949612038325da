"""The ``cafebot`` command. Heavy modules are imported lazily, inside each subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

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


def _settings(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from cafebot.config import find_config, load_settings

    return load_settings(find_config(args.config), db_url=args.db)


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


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="cafebot",
        description="A Zulip bot that runs a community's recurring meeting.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

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
