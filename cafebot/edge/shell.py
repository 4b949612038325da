"""``cafebot shell``: talk to the bot in a terminal, as a chosen user, with no Zulip account.

It reads commands line by line (so it can be scripted) and drives the same
handler as every other transport. A line ending in ``\\`` continues on the next.
"""

from __future__ import annotations

import datetime as dt
import getpass
import re
import sys
import tempfile
import zlib
from pathlib import Path
from typing import IO, Any, TextIO
from zoneinfo import ZoneInfo

from cafebot.bot.app import App
from cafebot.commands.registry import REACTION_GLOSS, REGISTRY
from cafebot.core.config import format_duration
from cafebot.core.text import zulip_time
from cafebot.edge.handler import CafeHandler

# Shell users get ids far above any real Zulip user id, derived from their email.
SHELL_ID_BASE = 10**12
#: The outcomes (cafebot.bot.app.Bot.handle) that make a scripted run exit with status 1.
FAILED_OUTCOMES = frozenset({"refused", "error", "bug"})
_TIME_RE = re.compile(r"<time:([0-9T:\-]+Z)>")
_WHO_RE = re.compile(r"^\s*(?P<name>[^<>]*?)\s*(?:<(?P<email>[^<>\s]+@[^<>\s]+)>)?\s*$")


def parse_identity(text: str | None) -> tuple[str, str]:
    """``"Ada Lovelace <ada@example.org>"`` -> (name, email); defaults from the login name."""
    if not text:
        login = getpass.getuser() or "you"
        return login, f"{login}@localhost"
    m = _WHO_RE.match(text)
    if not m or not (m.group("name") or m.group("email")):
        raise ValueError('give --as as "Full Name <email@example.org>"')
    name = m.group("name") or m.group("email").split("@")[0]
    email = m.group("email") or f"{re.sub(r'[^a-z0-9]+', '.', name.lower()).strip('.')}@localhost"
    return name, email


def shell_user_id(email: str) -> int:
    return SHELL_ID_BASE + zlib.crc32(email.lower().encode())


class TerminalBotHandler:
    """A zulip_bots-style bot handler that prints to a terminal."""

    full_name = "cafe"
    email = "cafe-bot@localhost"
    user_id = 1

    def __init__(self, out: TextIO, tz: ZoneInfo) -> None:
        self.out = out
        self.tz = tz
        self._next_id = 0
        self._uploads: Path | None = None  # where files "uploaded" in this session are kept

    def _local(self, text: str) -> str:
        def show(m: re.Match[str]) -> str:
            instant = dt.datetime.fromisoformat(m.group(1).replace("Z", "+00:00"))
            return instant.astimezone(self.tz).strftime("%a %d %b %Y, %H:%M %Z")

        return _TIME_RE.sub(show, text)

    def _print(self, text: str) -> dict[str, Any]:
        print(self._local(text), file=self.out)
        self.out.flush()
        self._next_id += 1
        return {"result": "success", "id": self._next_id}

    def send_reply(
        self, message: dict[str, Any], response: str, widget_content: str | None = None
    ) -> dict[str, Any]:
        return self._print(response)

    def react(self, message: dict[str, Any], emoji_name: str) -> dict[str, Any]:
        # A reaction stands beside the message on Zulip; here each is a line of its own,
        # with a word on what it means where that is not plain from the emoji.
        gloss = REACTION_GLOSS.get(emoji_name)
        return self._print(f":{emoji_name}:" + (f" ({gloss})" if gloss else ""))

    def send_message(self, message: dict[str, Any]) -> dict[str, Any]:
        if message.get("type") == "private":
            return self._print(f"[direct message to you]\n{message['content']}")
        return self._print(f"[{message.get('to')} > {message.get('topic')}]\n{message['content']}")

    def upload_file(self, file: IO[Any]) -> dict[str, Any]:
        """No server to upload to: the file is saved on this machine, and linked by its path."""
        if self._uploads is None:
            self._uploads = Path(tempfile.mkdtemp(prefix="cafebot-uploads-"))
        name = Path(str(getattr(file, "name", "") or "upload")).name
        self._next_id += 1
        path = self._uploads / f"{self._next_id}-{name}"
        path.write_bytes(file.read())
        return {"result": "success", "msg": "", "uri": path.as_uri()}

    def update_message(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._print(f"[edited]\n{message['content']}")


#: The shell's own commands, beside the bot's (``preview`` is an alias of ``notes``).
SHELL_COMMANDS = ("quit", "exit")
PREVIEWS = ("reminders",)


def _line_editing() -> None:
    """readline for input(): line editing, history, and Tab completing command names."""
    try:
        import readline
    except ImportError:  # not on every platform
        return
    words = sorted({*REGISTRY.lookup, *SHELL_COMMANDS})

    def complete(text: str, state: int) -> str | None:
        before = readline.get_line_buffer()[: readline.get_begidx()].split()
        if not before:
            choices = words
        elif before == ["preview"]:
            choices = sorted({*PREVIEWS, "last", "next"})
        else:
            return None
        matches = [f"{w} " for w in choices if w.startswith(text.lower())]
        return matches[state] if state < len(matches) else None

    readline.set_completer_delims(" \t\n")
    readline.set_completer(complete)
    if "libedit" in (readline.__doc__ or ""):  # macOS's readline module
        readline.parse_and_bind("bind ^I rl_complete")
    else:
        readline.parse_and_bind("tab: complete")


def _preview_reminder(app: App, bot: TerminalBotHandler, args: list[str]) -> bool:
    """``preview reminders [SERIES]``: the next reminder's exact message, and when it goes out."""
    from cafebot.cafe.reminders import next_reminder

    series = app.settings.series[0]
    if args:
        found = app.settings.series_by_key(args[0])
        if found is None:
            known = ", ".join(s.key for s in app.settings.series)
            bot.send_reply({}, f"There is no series `{args[0]}` (the series are: {known}).")
            return False
        series = found
    with app.unit_of_work() as session:
        preview = next_reminder(session, series, app.clock.now())
        if preview is None:
            bot.send_reply({}, f"The {series.name} has no reminders (`reminders` in the config).")
            return True
        before = (
            "at the start of" if not preview.offset else f"{format_duration(preview.offset)} before"
        )
        to = f" to #{series.stream} > {preview.topic}" if series.stream else ""
        head = (
            f"The next reminder, {before} the meeting of {preview.meeting.date}, goes out "
            f"{zulip_time(preview.due_at)}{to}; as the agenda stands, it says:"
        )
        note = "" if series.stream else "\n(The series has no stream: `cafebot run` posts none.)"
        bot.send_reply({}, f"{head}\n\n{preview.text}{note}")
    return True


def run_shell(
    app: App,
    *,
    name: str,
    email: str,
    organizer: bool = False,
    stdin: TextIO = sys.stdin,
    stdout: TextIO = sys.stdout,
) -> int:
    user_id = shell_user_id(email)
    if organizer:
        for series in app.settings.series:
            app.organizer_ids.setdefault(series.key, set()).add(user_id)
    bot = TerminalBotHandler(stdout, app.settings.series[0].tz)
    handler = CafeHandler(app, notes_flavour="archive")
    handler.bot_name, handler.bot_id = bot.full_name, bot.user_id
    interactive = stdin.isatty()
    if interactive:
        role = "an organiser" if organizer else "an attendee"
        print(
            f"cafebot shell — you are {name} <{email}>, {role}. Type `help` for the "
            "commands (Tab completes them), `preview reminders` for the next reminder, "
            "Ctrl-D to leave.",
            file=stdout,
        )
        _line_editing()
    pending: list[str] = []
    commands = failed = 0
    while True:
        try:
            if interactive:
                line = input("... " if pending else "cafe> ")
            else:
                line = stdin.readline()
                if not line:
                    break
                line = line.rstrip("\n")
        except KeyboardInterrupt:
            if not interactive:
                raise
            # Ctrl-C drops the line being typed (and the lines it continues), as shells do.
            print(file=stdout)
            pending = []
            continue
        except EOFError:
            break
        if line.endswith("\\"):
            pending.append(line[:-1])
            continue
        text = "\n".join([*pending, line])
        pending = []
        if not text.strip():
            continue
        if text.strip().lower() in {"quit", "exit"}:
            break
        words = text.lower().split()
        if words[:2] in (["preview", "reminders"], ["preview", "reminder"]):
            commands += 1
            if not _preview_reminder(app, bot, words[2:]):
                failed += 1
            continue
        message = {
            "type": "private",
            "sender_id": user_id,
            "sender_full_name": name,
            "sender_email": email,
            "content": text,
            "display_recipient": [
                {"id": user_id, "email": email, "full_name": name},
                {"id": bot.user_id, "email": bot.email, "full_name": bot.full_name},
            ],
        }
        commands += 1
        if handler.handle_message(message, bot) in FAILED_OUTCOMES:
            failed += 1
    if interactive:
        print(file=stdout)
        return 0
    if failed:
        # A script can tell: the exit status, and a line on stderr (stdout keeps the replies).
        print(
            f"cafebot shell: {failed} of {commands} command{'s' if commands != 1 else ''} "
            f"{'was' if failed == 1 else 'were'} refused or failed",
            file=sys.stderr,
        )
        return 1
    return 0
