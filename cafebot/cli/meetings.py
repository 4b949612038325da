"""``cafebot notes``, ``schedule``, ``ics`` and ``publish``: a series' meetings, from the shell."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from cafebot.cli.common import series_arg, settings_of

if TYPE_CHECKING:
    from cafebot.core.chat import Chat
    from cafebot.storage.models import Meeting


def cmd_notes(args: argparse.Namespace) -> int:
    import datetime as dt

    from cafebot.bot.app import App
    from cafebot.cafe import meetings
    from cafebot.notes.render import Flavour, render

    settings = settings_of(args, quiet=True)
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
                # Say what was looked for, as the chat command does.
                looked = {"last": "has not met yet", None: "has no next meeting"}.get(
                    args.date, f"has no meeting on {args.date}"
                )
                print(f"cafebot notes: the {series.name} {looked}", file=sys.stderr)
                return 1
            print(render(meeting, Flavour(args.flavour), series), end="")
    finally:
        app.close()
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from cafebot.bot.app import App
    from cafebot.cafe import meetings
    from cafebot.core.config import format_duration

    settings = settings_of(args, quiet=True)
    chosen = series_arg(settings, args.series, "schedule")
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
                    line = f"  {local:%a %Y-%m-%d %H:%M %Z}"
                    if local.tzname() != "UTC":  # a series in UTC shows its time once
                        line += f"  ({slot.starts_at:%H:%M} UTC)"
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

    settings = settings_of(args, quiet=True)
    chosen = series_arg(settings, args.series, "ics")
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


def cmd_publish(args: argparse.Namespace) -> int:
    import datetime as dt

    from cafebot.bot.app import App
    from cafebot.cafe import meetings
    from cafebot.cafe.lifecycle import publishable
    from cafebot.commands.errors import UserError
    from cafebot.publishing.publish import publish

    settings = settings_of(args)
    chosen = series_arg(settings, args.series, "publish")
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
    from cafebot.web.build import rebuild_on_publish

    rebuild_on_publish(app)  # with [web] site_dir, publishing rebuilds the static site
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

    def direct(self, user_id: int, text: str) -> None:
        self._refuse()

    def upload(self, filename: str, data: bytes) -> str:
        self._refuse()
        return ""
