"""The ``cafebot`` command. Heavy modules are imported lazily, inside each subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cafebot.core.chat import Chat
    from cafebot.core.config import SeriesSettings, Settings
    from cafebot.storage.models import Meeting

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
    from cafebot.core.config import find_config, load_settings
    from cafebot.ops.logs import setup_logging

    settings = load_settings(find_config(args.config), db_url=args.db)
    level = settings.log_level
    if quiet and level in ("DEBUG", "INFO"):
        level = "WARNING"
    setup_logging(level, settings.log_format)
    if settings.warnings:
        import logging

        for warning in settings.warnings:
            logging.getLogger("cafebot.config").warning("%s", warning)
    return settings


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from cafebot.storage import db

    settings = _settings(args)
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

    settings = _settings(args, quiet=True)
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

    settings = _settings(args, quiet=True)
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


def cmd_health(args: argparse.Namespace) -> int:
    import datetime as dt

    from cafebot.core.clock import SystemClock
    from cafebot.ops.health import check, heartbeat_path

    settings = _settings(args, quiet=True)
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


def cmd_run(args: argparse.Namespace) -> int:
    import logging

    from cafebot.bot.app import App
    from cafebot.cafe.scheduler import start_lifecycle
    from cafebot.edge.transport import run
    from cafebot.ops.health import Heartbeat, heartbeat_path
    from cafebot.storage.leader import AnotherInstanceRunning, LeaderWatch, claim_instance

    log = logging.getLogger("cafebot")

    settings = _settings(args)
    if not settings.zulip.configured:
        print(
            "cafebot run: no Zulip account configured: set site, email and key (or zuliprc) "
            "in the [zulip] section of the config, or CAFEBOT_ZULIP_SITE, CAFEBOT_ZULIP_EMAIL "
            "and CAFEBOT_ZULIP_KEY in the environment",
            file=sys.stderr,
        )
        return 2
    app = App.create(settings)  # brings the database to the latest revision
    try:
        # SQLite: one bot per database. PostgreSQL: several may run (a rolling restart);
        # all handle commands, and only the leader runs the scheduler.
        leadership = claim_instance(app.engine)
    except AnotherInstanceRunning as exc:
        app.close()
        print(f"cafebot run: {exc}", file=sys.stderr)
        return 1
    heartbeat = Heartbeat(heartbeat_path(settings))

    def on_ready(chat: Chat) -> Callable[[], None]:
        """Once the bot is live: the scheduler (reminders, ends, publishing), on the leader."""
        running: list[Callable[[], None]] = []

        def elected() -> None:
            log.info("this process leads: it runs the scheduler")
            running.append(start_lifecycle(app, chat, lambda: heartbeat.beat("scheduler")))

        def deposed() -> None:
            while running:
                running.pop()()
            heartbeat.forget("scheduler")

        watch = LeaderWatch(leadership, on_elected=elected, on_deposed=deposed)
        watch.start()
        return watch.stop

    try:
        return run(app, on_ready=on_ready, heartbeat=lambda: heartbeat.beat("events"))
    finally:
        leadership.release()
        heartbeat.forget("events")
        app.close()


def cmd_shell(args: argparse.Namespace) -> int:
    from cafebot.bot.app import App
    from cafebot.edge.shell import parse_identity, run_shell

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

    from cafebot.bot.app import App
    from cafebot.cafe import meetings
    from cafebot.notes.render import Flavour, render

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


def _series_arg(settings: Settings, key: str | None, command: str) -> list[SeriesSettings] | None:
    if key is None:
        return list(settings.series)
    chosen = settings.series_by_key(key)
    if chosen is None:
        known = ", ".join(s.key for s in settings.series)
        print(f"cafebot {command}: no series '{key}' (the series are: {known})", file=sys.stderr)
        return None
    return [chosen]


def cmd_schedule(args: argparse.Namespace) -> int:
    from cafebot.bot.app import App
    from cafebot.cafe import meetings
    from cafebot.core.config import format_duration

    settings = _settings(args, quiet=True)
    chosen = _series_arg(settings, args.series, "schedule")
    if chosen is None:
        return 2
    app = App.create(settings)
    try:
        now = app.clock.now()
        with app.unit_of_work() as session:
            for n, series in enumerate(chosen):
                row = meetings.series_row(session, series)
                tz = series.tz
                where = f" in #{series.stream}" if series.stream else ""
                print(
                    ("\n" if n else "") + f"{series.name} ({series.key}){where}, {series.timezone}"
                )
                for slot in meetings.upcoming(session, series, row, now, args.count):
                    local = slot.starts_at.astimezone(tz)
                    line = f"  {local:%a %Y-%m-%d %H:%M %Z}  ({slot.starts_at:%H:%M} UTC)"
                    if slot.cancelled:
                        reason = f": {slot.cancel_reason}" if slot.cancel_reason else ""
                        print(f"{line}  cancelled{reason}")
                        continue
                    print(line + ("  added" if slot.added else ""))
                    for offset in series.reminders:
                        when = (slot.starts_at - offset).astimezone(tz)
                        state = " (past)" if when <= now else ""
                        label = (
                            "at the start" if not offset else f"{format_duration(offset)} before"
                        )
                        print(f"      reminder {label:>14}: {when:%a %Y-%m-%d %H:%M %Z}{state}")
    finally:
        app.close()
    return 0


def cmd_ics(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cafebot.bot.app import App
    from cafebot.cafe.ics import feed

    settings = _settings(args, quiet=True)
    chosen = _series_arg(settings, args.series, "ics")
    if chosen is None:
        return 2
    app = App.create(settings)
    try:
        with app.unit_of_work() as session:
            data = feed(session, chosen, app.clock.now())
    finally:
        app.close()
    if args.output in (None, "-"):
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        Path(args.output).write_bytes(data)
    return 0


def _one_series(settings: Settings, key: str | None, command: str) -> SeriesSettings | None:
    """The series a command works on: ``--series``, or the only one there is."""
    if key is None and len(settings.series) > 1:
        known = ", ".join(s.key for s in settings.series)
        print(
            f"cafebot {command}: say which series with --series (one of: {known})", file=sys.stderr
        )
        return None
    chosen = _series_arg(settings, key, command)
    return chosen[0] if chosen else None


def cmd_archive_import(args: argparse.Namespace) -> int:
    from pathlib import Path

    from sqlalchemy.exc import SQLAlchemyError

    from cafebot.bot.app import App
    from cafebot.notes.archive import ArchiveError, import_archive, parse_archive, read_archive_file

    settings = _settings(args, quiet=True)
    series = _one_series(settings, args.series, "archive import")
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

    settings = _settings(args, quiet=True)
    series = _one_series(settings, args.series, "archive export")
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


def _year(text: str) -> int:
    if not (text.isdigit() and len(text) == 4):
        raise argparse.ArgumentTypeError(f"'{text}' is not a year like 2031")
    return int(text)


def cmd_publish(args: argparse.Namespace) -> int:
    import datetime as dt

    from cafebot.bot.app import App
    from cafebot.cafe import meetings
    from cafebot.cafe.lifecycle import publishable
    from cafebot.commands.errors import UserError
    from cafebot.publishing.publish import publish

    settings = _settings(args)
    chosen = _series_arg(settings, args.series, "publish")
    if chosen is None:
        return 2
    series = chosen[0]
    day = None
    if args.date is not None:
        try:
            day = dt.date.fromisoformat(args.date)
        except ValueError:
            print(
                f"cafebot publish: '{args.date}' is not a date (e.g. 2031-06-17)", file=sys.stderr
            )
            return 2
    from cafebot.core.chat import SendFailed

    chat: Chat = _NoZulip("no Zulip account is configured")
    if settings.zulip.configured:
        from cafebot.edge.direct import DirectChat

        direct = DirectChat(settings.zulip)
        try:
            direct.connect()
            chat = direct
        except SendFailed as exc:
            print(f"cafebot publish: {exc}", file=sys.stderr)
            chat = _NoZulip(str(exc))
    app = App.create(settings)
    try:
        with app.unit_of_work() as session:
            row = meetings.series_row(session, series)
            now = app.clock.now()
            found = meetings.by_date(session, series, row, day) if day else None
            if day is not None and found is None:
                print(f"cafebot publish: {series.name} has no meeting on {day}", file=sys.stderr)
                return 1
            try:
                meeting_id = publishable(session, series, row, now, found).id
            except UserError as exc:
                print(f"cafebot publish: {exc.message}", file=sys.stderr)
                return 1
        report = publish(app, chat, meeting_id)
    finally:
        app.close()
    print(report.summary().replace(":check:", "ok").replace(":cross_mark:", "FAILED"))
    return 1 if report.failed else 0


class _NoZulip:
    """Where no Zulip account is configured: the Zulip step fails, saying why."""

    notes_flavour = "zulip"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def _refuse(self) -> None:
        from cafebot.core.chat import SendFailed

        raise SendFailed(self.reason)

    def send(self, stream: str, topic: str, text: str) -> int | None:
        self._refuse()
        return None

    def edit(self, message_id: int, text: str) -> None:
        self._refuse()

    def reply(self, message: object, text: str) -> None:
        self._refuse()

    def react(self, message: object, emoji: str) -> None:
        self._refuse()


def cmd_check(args: argparse.Namespace) -> int:
    from cafebot.storage import db

    settings = _settings(args, quiet=True)
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


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="cafebot",
        description="A Zulip bot that runs a community's recurring meeting.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser(
        "run",
        parents=[common],
        help="the long-running Zulip bot",
        description="Run the bot on Zulip until SIGTERM or Ctrl-C: it answers commands, "
        "catches up on those posted while it was down, and keeps to the server's rate limit.",
    )
    p.set_defaults(func=cmd_run)

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

    p = sub.add_parser(
        "check", parents=[common], help="validate the config, the database and the Zulip server"
    )
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("publish", parents=[common], help="publish a meeting's notes now")
    p.add_argument("date", nargs="?", help="the meeting's date (default: the latest that ended)")
    p.add_argument("--series", help="the series' name in the config (default: the first)")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("schedule", parents=[common], help="upcoming meetings and reminder times")
    p.add_argument("--series", help="only this series (its name in the config)")
    p.add_argument("--count", type=int, default=5, help="meetings per series (default: 5)")
    p.set_defaults(func=cmd_schedule)

    p = sub.add_parser("ics", parents=[common], help="the schedule as an iCalendar feed")
    p.add_argument("--series", help="only this series (its name in the config)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=cmd_ics)

    p_db = sub.add_parser("db", help="manage the database schema")
    db_sub = p_db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = db_sub.add_parser("upgrade", parents=[common], help="apply database migrations")
    p.set_defaults(func=cmd_db_upgrade)

    p_archive = sub.add_parser("archive", help="import or export the notes archive")
    archive_sub = p_archive.add_subparsers(dest="archive_command", metavar="ACTION", required=True)
    p = archive_sub.add_parser(
        "import",
        parents=[common],
        help="read notes archive files (one per year) into the database",
        description="Read notes archive files into the database, one transaction per file, "
        "and print one line per meeting with what was recognised. Importing a file again "
        "changes nothing; a meeting the database holds with other content is skipped "
        "unless --replace is given. Exit status 1 if a file failed or a meeting was skipped.",
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="an archive file, e.g. notes/2031.md")
    p.add_argument(
        "--replace",
        action="store_true",
        help="import meetings over the ones the database holds with other content",
    )
    p.add_argument("--series", help="the series' name in the config (needed if there are several)")
    p.set_defaults(func=cmd_archive_import)
    p = archive_sub.add_parser(
        "export",
        parents=[common],
        help="write the archive files, one per year, newest meeting first",
        description="Write <DIR>/<YEAR>.md for each year (default: every year with published "
        "meetings). Imported meetings come out as they were read, until the bot changed them.",
    )
    p.add_argument("years", nargs="*", type=_year, metavar="YEAR", help="e.g. 2031")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="the directory to write to (default: the series' archive_dir)",
    )
    p.add_argument("--series", help="the series' name in the config (needed if there are several)")
    p.set_defaults(func=cmd_archive_export)

    p = sub.add_parser(
        "backup",
        parents=[common],
        help="write everything in the database to FILE, as JSON",
        description="Write everything in the database to FILE as JSON (`-`: standard "
        "output), in one consistent snapshot; the bot may keep running.",
    )
    p.add_argument("file", metavar="FILE", help="the backup file to write, or - for stdout")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser(
        "restore",
        parents=[common],
        help="restore a backup into an empty database (SQLite or PostgreSQL)",
        description="Restore a backup made by `cafebot backup` into an empty database, on "
        "either backend: a new one (it is migrated first) or one whose tables are empty.",
    )
    p.add_argument("file", metavar="FILE", help="the backup file to read, or - for stdin")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser(
        "health",
        parents=[common],
        help="exit non-zero when the running bot's heartbeat is stale or missing",
        description="Check the heartbeat file that `cafebot run` keeps fresh (it does not "
        "call Zulip): exit 0 when every part beat recently, 1 when not.",
    )
    p.add_argument(
        "--max-age",
        type=float,
        metavar="SECONDS",
        help="the oldest beat that still counts as healthy (default: [health] max_age, 180)",
    )
    p.set_defaults(func=cmd_health)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from cafebot.core.config import ConfigError

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
