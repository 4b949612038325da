"""``cafebot db upgrade``, ``cafebot backup`` and ``cafebot restore``: the database."""

from __future__ import annotations

import argparse
import sys

from cafebot.cli.common import settings_of


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from cafebot.storage import db

    settings = settings_of(args)
    engine = db.make_engine(settings.database_url)
    try:
        before = db.current_revision(engine)
        db.ensure_schema(engine)  # on PostgreSQL, under the leader lock (cafebot.storage.leader)
        after = db.current_revision(engine)
    finally:
        engine.dispose()
    if before == after:
        print(f"The database is at the latest revision ({after}).")
    else:
        print(f"Upgraded the database from revision {before or 'none'} to {after}.")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cafebot.storage import db
    from cafebot.storage.backup import BackupError, write_backup

    settings = settings_of(args, quiet=True)
    engine = db.make_engine(settings.database_url)
    try:
        target = sys.stdout if args.file == "-" else Path(args.file)
        summary = write_backup(engine, target)
    except BackupError as exc:
        print(f"cafebot backup: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    where = "standard output" if args.file == "-" else args.file
    print(f"Backed up {summary.describe()} to {where}.", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cafebot.storage import db
    from cafebot.storage.backup import BackupError, read_backup, restore

    settings = settings_of(args, quiet=True)
    engine = db.make_engine(settings.database_url)
    try:
        data = read_backup(sys.stdin if args.file == "-" else Path(args.file))
        summary = restore(engine, data)
    except BackupError as exc:
        print(f"cafebot restore: {exc}", file=sys.stderr)
        return 1
    finally:
        engine.dispose()
    print(f"Restored {summary.describe()} into {engine.url}.", file=sys.stderr)
    return 0
