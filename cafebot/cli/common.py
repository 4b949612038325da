"""What the subcommands share: the --config and --db options, the settings, a series."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cafebot.core.config import SeriesSettings, Settings


def common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="FILE",
        help="the config file (default: $CAFEBOT_CONFIG, then ./config.ini, then "
        "~/.config/cafebot/config.ini)",
    )
    common.add_argument(
        "--db", metavar="URL", help="a SQLAlchemy database URL; overrides the config"
    )
    return common


def settings_of(
    args: argparse.Namespace, *, quiet: bool = False, log_warnings: bool = True
) -> Settings:
    """Load the settings and set up logging from them (``quiet``: warnings and worse only).

    The config's warnings are logged, unless ``log_warnings`` is False (a command that
    reports them itself)."""
    from cafebot.core.config import find_config, load_settings
    from cafebot.ops.logs import setup_logging

    settings = load_settings(find_config(args.config), db_url=args.db)
    level = settings.log_level
    if quiet and level in ("DEBUG", "INFO"):
        level = "WARNING"
    setup_logging(level, settings.log_format)
    if settings.warnings and log_warnings:
        import logging

        for warning in settings.warnings:
            logging.getLogger("cafebot.config").warning("%s", warning)
    return settings


def series_arg(settings: Settings, key: str | None, command: str) -> list[SeriesSettings] | None:
    if key is None:
        return list(settings.series)
    chosen = settings.series_by_key(key)
    if chosen is None:
        known = ", ".join(s.key for s in settings.series)
        print(f"cafebot {command}: no series '{key}' (the series are: {known})", file=sys.stderr)
        return None
    return [chosen]


def one_series(settings: Settings, key: str | None, command: str) -> SeriesSettings | None:
    """The series a command works on: ``--series``, or the only one there is."""
    if key is None and len(settings.series) > 1:
        known = ", ".join(s.key for s in settings.series)
        print(
            f"cafebot {command}: say which series with --series (one of: {known})", file=sys.stderr
        )
        return None
    chosen = series_arg(settings, key, command)
    return chosen[0] if chosen else None
