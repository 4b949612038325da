"""``cafebot archive import`` and ``cafebot archive export``: the notes archive."""

from __future__ import annotations

import argparse
import sys

from cafebot.cli.common import one_series, settings_of


def cmd_archive_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from cafebot.bot.app import App
    from cafebot.cafe import textindex
    from cafebot.notes.archive import ArchiveError, import_archive, parse_archive, read_archive_file

    settings = settings_of(args, quiet=True)
    series = one_series(settings, args.series, "archive import")
    if series is None:
        return 2
    status = 0
    skipped = 0
    app = App.create(settings)
    try:
        for name in args.files:
            where = f"cafebot archive import: {name}"
            try:
                archive = parse_archive(read_archive_file(Path(name)))
                # One transaction per file: a file that fails leaves nothing behind.
                with app.unit_of_work() as session:
                    report = import_archive(
                        session, series, archive, app.clock.now(), replace=args.replace
                    )
            except ArchiveError as exc:
                print(f"{where}: {exc}; nothing was imported from it", file=sys.stderr)
                status = 1
                continue
            except SQLAlchemyError as exc:
                print(
                    f"{where}: the database refused it ({exc.__class__.__name__}: "
                    f"{str(exc).splitlines()[0]}); nothing was imported from it",
                    file=sys.stderr,
                )
                status = 1
                continue
            for outcome in report.outcomes:
                print(outcome.line())
            for warning in report.warnings:
                print(f"{where}: {warning}", file=sys.stderr)
            skipped += len(report.conflicts)
        # The imported meetings' search documents, now rather than at the bot's next refresh.
        textindex.refresh_all(app.unit_of_work)
    finally:
        app.close()
    if skipped:
        print(
            f"cafebot archive import: {skipped} meeting(s) skipped because the database holds "
            "them with other content; --replace imports the file's over them",
            file=sys.stderr,
        )
        status = 1
    return status


def cmd_archive_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cafebot.bot.app import App
    from cafebot.notes.archive import archive_years, meeting_count, write_year_file

    settings = settings_of(args, quiet=True)
    series = one_series(settings, args.series, "archive export")
    if series is None:
        return 2
    directory = Path(args.output) if args.output else series.archive_dir
    status = 0
    app = App.create(settings)
    try:
        with app.unit_of_work() as session:
            years = args.years or archive_years(session, series)
            if not years:
                print(
                    f"cafebot archive export: the {series.name} has no published meetings yet",
                    file=sys.stderr,
                )
                return 1
            for year in years:
                count = meeting_count(session, series, year)
                if not count:
                    print(
                        f"cafebot archive export: the {series.name} has no published meetings "
                        f"in {year}; nothing written for it",
                        file=sys.stderr,
                    )
                    status = 1
                    continue
                path = write_year_file(session, series, year, directory)
                print(f"{path}: {count} meeting{'s' if count != 1 else ''}")
    finally:
        app.close()
    return status


def year(text: str) -> int:
    if not (text.isdigit() and len(text) == 4):
        raise argparse.ArgumentTypeError(f"'{text}' is not a year like 2031")
    return int(text)
