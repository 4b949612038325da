"""``cafebot shell``: talk to the bot in a terminal, as a chosen user, with no Zulip account.

It reads commands line by line (so it can be scripted) and drives the same
handler as every other transport. A line ending in ``\\`` continues on the next.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import re
import sys
import zlib
from typing import Any, TextIO
from zoneinfo import ZoneInfo

from cafebot.bot.app import App
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
        return self._print(f":{emoji_name}:")

    def send_message(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._print(f"[{message.get('to')} > {message.get('topic')}]\n{message['content']}")

    def update_message(self, message: dict[str, Any]) -> dict[str, Any]:
        return self._print(f"[edited]\n{message['content']}")


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
            f"cafebot shell — you are {name} <{email}>, {role}. "
            "Type `help` for the commands, Ctrl-D to leave.",
            file=stdout,
        )
        with contextlib.suppress(ImportError):  # not on every platform
            import readline  # noqa: F401 - line editing and history for input()
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
