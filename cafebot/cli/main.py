"""The ``cafebot`` command: its parser, and ``main``.

Each group of subcommands has its module in this package; heavy modules are imported
lazily, inside each subcommand.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cafebot.cli import archive, database, insights, meetings, operations, running, web
from cafebot.cli.common import common_options

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    common = common_options()
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
    p.set_defaults(func=running.cmd_run)

    p = sub.add_parser(
        "shell",
        parents=[common],
        help="talk to the bot in the terminal (local database, no Zulip needed)",
        description="Talk to the bot in the terminal. Reads commands line by line, so it "
        "can be scripted: printf 'agenda 10m Release plans\\nlist\\n' | cafebot shell. "
        "A scripted run (standard input not a terminal) exits with status 1 when any "
        "command was refused or failed, 0 when all succeeded. At a terminal: Tab completes "
        "command names, Ctrl-C drops the line, Ctrl-D leaves; `preview reminders` shows the "
        "next reminder's message.",
    )
    p.add_argument(
        "--as",
        dest="as_user",
        metavar='"NAME <EMAIL>"',
        help='act as this user (default: your login name), e.g. "Ada Lovelace <ada@example.org>"',
    )
    p.add_argument("--organizer", action="store_true", help="act as an organiser of every series")
    p.set_defaults(func=running.cmd_shell)

    p = sub.add_parser("notes", parents=[common], help="print a meeting's notes")
    p.add_argument("date", nargs="?", help="2031-06-17, last or next (default: the next meeting)")
    p.add_argument("--series", help="the series' name in the config (default: the first)")
    p.add_argument(
        "--flavour",
        choices=["archive", "zulip"],
        default="archive",
        help="the archive file's Markdown (default) or Zulip's",
    )
    p.set_defaults(func=meetings.cmd_notes)

    p = sub.add_parser(
        "check", parents=[common], help="validate the config, the database and the Zulip server"
    )
    p.set_defaults(func=operations.cmd_check)

    p = sub.add_parser("publish", parents=[common], help="publish a meeting's notes now")
    p.add_argument("date", nargs="?", help="the meeting's date (default: the latest that ended)")
    p.add_argument("--series", help="the series' name in the config (default: the first)")
    p.set_defaults(func=meetings.cmd_publish)

    p = sub.add_parser("schedule", parents=[common], help="upcoming meetings and reminder times")
    p.add_argument("--series", help="only this series (its name in the config)")
    p.add_argument("--count", type=int, default=5, help="meetings per series (default: 5)")
    p.set_defaults(func=meetings.cmd_schedule)

    p = sub.add_parser("ics", parents=[common], help="the schedule as an iCalendar feed")
    p.add_argument("--series", help="only this series (its name in the config)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    p.set_defaults(func=meetings.cmd_ics)

    web.add_parsers(sub, common)

    p_db = sub.add_parser("db", help="manage the database schema")
    db_sub = p_db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = db_sub.add_parser("upgrade", parents=[common], help="apply database migrations")
    p.set_defaults(func=database.cmd_db_upgrade)

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
    p.set_defaults(func=archive.cmd_archive_import)
    p = archive_sub.add_parser(
        "export",
        parents=[common],
        help="write the archive files, one per year, newest meeting first",
        description="Write <DIR>/<YEAR>.md for each year (default: every year with published "
        "meetings). Imported meetings come out as they were read, until the bot changed them.",
    )
    p.add_argument("years", nargs="*", type=archive.year, metavar="YEAR", help="e.g. 2031")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="the directory to write to (default: the series' archive_dir)",
    )
    p.add_argument("--series", help="the series' name in the config (needed if there are several)")
    p.set_defaults(func=archive.cmd_archive_export)

    insights.add_parser(sub, common)

    p = sub.add_parser(
        "backup",
        parents=[common],
        help="write everything in the database to FILE, as JSON",
        description="Write everything in the database to FILE as JSON (`-`: standard "
        "output), in one consistent snapshot; the bot may keep running.",
    )
    p.add_argument("file", metavar="FILE", help="the backup file to write, or - for stdout")
    p.set_defaults(func=database.cmd_backup)

    p = sub.add_parser(
        "restore",
        parents=[common],
        help="restore a backup into an empty database (SQLite or PostgreSQL)",
        description="Restore a backup made by `cafebot backup` into an empty database, on "
        "either backend: a new one (it is migrated first) or one whose tables are empty.",
    )
    p.add_argument("file", metavar="FILE", help="the backup file to read, or - for stdin")
    p.set_defaults(func=database.cmd_restore)

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
    p.set_defaults(func=operations.cmd_health)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv:  # a bare `cafebot`: the overview of its commands is what a person wants
        parser.print_help()
        return 0
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
