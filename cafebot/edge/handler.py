"""The ``zulip_bots`` handler: the single entry point for commands on every transport.

``cafebot shell`` drives it with a terminal bot handler; ``cafebot run`` and
Zulip's own runners (``zulip-run-bot``, ``zulip-botserver``) with theirs.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from typing import IO, Any, ClassVar, Protocol

from cafebot.bot.app import App, Bot
from cafebot.commands.registry import help_overview
from cafebot.core.chat import Chat, Message, SendFailed
from cafebot.edge.client import upload_path
from cafebot.edge.pacing import named_file

log = logging.getLogger("cafebot")


class BotHandler(Protocol):
    """What cafebot uses of zulip_bots' ``AbstractBotHandler``."""

    def send_reply(
        self, message: dict[str, Any], response: str, widget_content: str | None = None
    ) -> Any: ...

    def react(self, message: dict[str, Any], emoji_name: str) -> Any: ...

    def send_message(self, message: dict[str, Any]) -> Any: ...

    def update_message(self, message: dict[str, Any]) -> Any: ...

    def upload_file(self, file: IO[Any]) -> Any: ...


_MENTION_RE = re.compile(r"^@_?\*\*(?P<name>[^*|\n]+?)(?:\|(?P<id>\d+))?\*\*[\s:,]*")


def strip_mention(content: str, bot_name: str | None, bot_id: int | None) -> tuple[bool, str]:
    """Remove a leading mention of the bot (``@**cafe**``, ``@**cafe|42**``).

    Returns whether the message started with such a mention, and the rest.
    """
    text = content.lstrip()
    m = _MENTION_RE.match(text)
    if m:
        by_id = bot_id is not None and m.group("id") == str(bot_id)
        by_name = bot_name is not None and m.group("name").strip().lower() == bot_name.lower()
        if by_id or (by_name and m.group("id") is None):
            return True, text[m.end() :]
    return False, text


def command_text(message: Message, bot_id: int | None, bot_name: str | None) -> str | None:
    """The command in ``message`` when it is addressed to the bot, else None.

    A stream message is a command only when it starts with a mention of the bot
    (``@**cafe**``, ``@**cafe|42**``; a silent mention, as a quote-and-reply
    starts, is not one); a one-to-one direct message always is (a leading
    mention is dropped); a group direct message counts as a stream.
    """
    content = message.content.lstrip()
    mentioned, rest = strip_mention(content, bot_name, bot_id)
    if mentioned and content.startswith("@_"):
        mentioned = False
    if message.is_direct and is_one_to_one(message, bot_id):
        return rest if mentioned else content
    return rest if mentioned else None


def is_one_to_one(message: Message, bot_id: int | None) -> bool:
    """A direct message between its sender and the bot alone."""
    others = set(message.recipient_ids) - {message.sender_id}
    if bot_id is not None:
        others.discard(bot_id)
    return message.is_direct and not others


class BotHandlerChat:
    """The :class:`~cafebot.core.chat.Chat` of a zulip_bots bot handler, for one message."""

    def __init__(self, handler: BotHandler, raw: dict[str, Any], notes_flavour: str) -> None:
        self.handler = handler
        self.raw = raw
        self.notes_flavour = notes_flavour

    def reply(self, message: Message, text: str) -> None:
        self.handler.send_reply(self.raw, text)

    def react(self, message: Message, emoji: str) -> None:
        self.handler.react(self.raw, emoji)

    def send(self, stream: str, topic: str, text: str) -> int | None:
        result = self.handler.send_message(
            {"type": "stream", "to": stream, "topic": topic, "content": text}
        )
        if isinstance(result, Mapping) and "id" in result:
            return int(result["id"])
        return None

    def edit(self, message_id: int, text: str) -> None:
        self.handler.update_message({"message_id": message_id, "content": text})

    def direct(self, user_id: int, text: str) -> None:
        self.handler.send_message({"type": "private", "to": [user_id], "content": text})

    def upload(self, filename: str, data: bytes) -> str:
        answer = self.handler.upload_file(named_file(filename, data))
        if not isinstance(answer, Mapping) or answer.get("result", "success") != "success":
            msg = answer.get("msg", "") if isinstance(answer, Mapping) else ""
            raise SendFailed(f"Zulip refused the upload: {msg or 'no reason given'}")
        return upload_path(dict(answer))


class CafeHandler:
    """A zulip_bots handler class: ``usage()`` and ``handle_message(message, bot_handler)``."""

    META: ClassVar[dict[str, str]] = {
        "name": "cafebot",
        "description": "Runs a community's recurring meeting.",
    }

    def __init__(self, app: App | None = None, *, notes_flavour: str = "zulip") -> None:
        self.app = app
        self.bot = Bot(app) if app is not None else None
        self.notes_flavour = notes_flavour
        self.bot_name: str | None = None
        self.bot_id: int | None = None

    def usage(self) -> str:
        return (
            "I run your community's recurring meeting: check in, propose agenda items, "
            "celebrate, take notes, and get the notes published.\n\n" + help_overview()
        )

    def initialize(self, bot_handler: Any) -> None:
        """Called by zulip_bots' runners: build the app from the cafebot config."""
        if self.app is None:
            from cafebot.core.config import find_config, load_settings

            config = bot_handler.get_config_info("cafebot", optional=True) or {}
            path = config.get("config") or os.environ.get("CAFEBOT_CONFIG")
            settings = load_settings(find_config(path))
            self.app = App.create(settings)
            self.bot = Bot(self.app)
        identity = getattr(bot_handler, "identity", None)
        if callable(identity):
            self.bot_name = identity().name
        user_id = getattr(bot_handler, "user_id", None)
        self.bot_id = int(user_id) if isinstance(user_id, int) else None

    def handle_message(self, message: dict[str, Any], bot_handler: BotHandler) -> str | None:
        """zulip_bots' entry point. Its runners pass only messages addressed to the bot,
        with a leading mention already removed (``zulip-run-bot``, ``zulip-botserver``).

        Returns the command's outcome (see :meth:`Bot.handle`; zulip_bots ignores it),
        or None for a message from a bot."""
        if self.bot is None:
            self.initialize(bot_handler)
        msg = Message.from_zulip(message)
        if msg.sender_is_bot or (self.bot_id is not None and msg.sender_id == self.bot_id):
            return None
        _, text = strip_mention(msg.content, self.bot_name, self.bot_id)
        return self.dispatch(msg, text, BotHandlerChat(bot_handler, message, self.notes_flavour))

    # The entry points of transports that build the Message and the Chat themselves
    # (``cafebot run``): the same Bot, one command per message.

    def dispatch(self, message: Message, text: str, chat: Chat) -> str:
        """Run the command ``text`` (``message`` without the bot's mention); its outcome."""
        return self._bot().handle(message, text, chat)

    def dispatch_edit(self, message: Message, text: str, chat: Chat) -> bool:
        """``message``, which made an entry, was edited to ``text``: the entry follows."""
        return self._bot().handle_edit(message, text, chat)

    def edit_followed(self, message: Message) -> bool | None:
        """Whether ``message``'s last edit was followed; None if it was never handled."""
        return self._bot().edit_followed(message)

    def dispatch_delete(self, message_ids: list[int]) -> list[str]:
        """Messages were deleted: the entries they made are removed."""
        return self._bot().handle_delete(message_ids)

    def dispatch_submessage(
        self, message_id: int, sender_id: int, content: str, submessage_id: int | None = None
    ) -> str | None:
        """A submessage of a widget message (a tick in a to-do list): its action follows."""
        return self._bot().handle_submessage(message_id, sender_id, content, submessage_id)

    def widget_messages(self) -> list[int]:
        """The bot's to-do list messages whose ticks a restart reads again."""
        return self._bot().widget_messages()

    def _bot(self) -> Bot:
        if self.bot is None:
            raise RuntimeError("CafeHandler has no app: pass one, or call initialize()")
        return self.bot


handler_class = CafeHandler
