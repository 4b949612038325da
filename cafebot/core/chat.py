"""The edge types: a frozen :class:`Message` and the :class:`Chat` a command answers on.

Only the transports know Zulip's dict-shaped payloads; they build a Message once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Message:
    """A chat message, as the bot sees it."""

    id: int | None  # None where the transport has no message ids (nothing to deduplicate)
    sender_id: int
    sender_name: str
    sender_email: str  # shown by some organisations as a placeholder: never identifies anyone
    content: str
    stream: str | None = None  # None for a direct message
    topic: str | None = None
    recipient_ids: tuple[int, ...] = ()  # a direct message's participants, sender included
    sender_is_bot: bool = False
    # When its content was last edited (Zulip's ``last_edit_timestamp``, seconds); None if never.
    edited_at: int | None = None

    @property
    def is_direct(self) -> bool:
        return self.stream is None

    @classmethod
    def from_zulip(cls, raw: Mapping[str, Any]) -> Message:
        """Build a Message from a Zulip message object (event or ``GET /messages``)."""
        is_stream = raw.get("type") == "stream"
        recipients: tuple[int, ...] = ()
        stream = None
        if is_stream:
            stream = str(raw.get("display_recipient", ""))
        else:
            shown = raw.get("display_recipient") or []
            if isinstance(shown, list):
                recipients = tuple(int(r["id"]) for r in shown if isinstance(r, dict) and "id" in r)
        raw_id = raw.get("id")
        # zulip.yaml, MessagesBase.last_edit_timestamp: present only if the message was edited.
        edited = raw.get("last_edit_timestamp")
        return cls(
            id=int(raw_id) if raw_id is not None else None,
            sender_id=int(raw.get("sender_id", 0)),
            sender_name=str(raw.get("sender_full_name", "")),
            sender_email=str(raw.get("sender_email", "")),
            content=str(raw.get("content", "")),
            stream=stream,
            topic=str(raw.get("subject", raw.get("topic", ""))) if is_stream else None,
            recipient_ids=recipients,
            sender_is_bot=bool(raw.get("sender_is_bot", False)),
            edited_at=int(edited) if edited is not None else None,
        )


class EditNotAllowed(Exception):
    """The chat server refused to edit a message (e.g. the organisation's edit time limit)."""


class SendFailed(Exception):
    """The chat server did not take a post: it refused it, or the bot is shutting down."""


class Chat(Protocol):
    """Where the bot answers. Implemented by each transport."""

    #: The flavour notes are previewed in: "zulip" on Zulip, "archive" in the terminal.
    notes_flavour: str

    def reply(self, message: Message, text: str) -> None:
        """Answer in the message's stream and topic, or in the same direct message."""

    def react(self, message: Message, emoji: str) -> None:
        """Add an emoji reaction (Zulip's names: ``check``, not ``white_check_mark``)."""

    def send(self, stream: str, topic: str, text: str) -> int | None:
        """Post to a stream topic; the new message's id where the transport has ids."""

    def edit(self, message_id: int, text: str) -> None:
        """Replace the text of a message the bot sent; :class:`EditNotAllowed` if refused."""

    def direct(self, user_id: int, text: str) -> None:
        """Send a direct message to one user (by their Zulip user id)."""

    def upload(self, filename: str, data: bytes) -> str:
        """Upload a file (Zulip's ``POST /user_uploads``; the server tells its type by the
        name's ending); the address to link it by in a message (``/user_uploads/…``:
        ``[chart.png](/user_uploads/…)`` shows it inline). :class:`SendFailed` when the
        server refused it or was not reached."""


@runtime_checkable
class StagesReplies(Protocol):
    """A chat that keeps replies in the database until they are sent (``cafebot run``)."""

    def stage_reply(self, session: Session, message: Message, text: str) -> Callable[[], None]:
        """Write the reply in ``session``'s transaction, the command's own, so that the
        command and its answer are stored together; the callable sends it, once that
        transaction has committed."""
        ...


@runtime_checkable
class StagesDirect(Protocol):
    """A chat that can write a direct message in the caller's transaction (``cafebot run``)."""

    def stage_direct(
        self, session: Session, user_ids: tuple[int, ...], text: str
    ) -> Callable[[], None]:
        """Write a direct message to ``user_ids`` in ``session``'s transaction, so that it
        is stored with what it records (a follow-up claimed once); the callable queues it,
        once that transaction has committed. The outbox then sends it exactly once."""
        ...


# ---------------------------------------------------------------- scheduled messages


@dataclass(frozen=True)
class Scheduled:
    """A message the chat server holds, to send at ``at`` (Zulip's scheduled message)."""

    id: int
    topic: str
    content: str
    at: dt.datetime
    failed: bool  # the server tried to send it and could not (it will not try again)


class ScheduleRefused(Exception):
    """The server would not schedule (or change) the message; the bot's own timer sends it."""


class ScheduledGone(Exception):
    """The server has no such scheduled message (deleted, or never made)."""


@runtime_checkable
class SchedulesMessages(Protocol):
    """A chat whose server can hold a message and send it later, also while the bot is down.

    Every call goes through the chat's paced sender. They raise
    :class:`ScheduleRefused` when the server says no, :class:`ScheduledGone` for an id
    it does not know, and :class:`SendFailed` when the server was not reached.
    """

    def scheduling_unavailable(self) -> str | None:
        """Why the server cannot hold scheduled messages; None when it can."""
        ...

    def schedule(self, stream: str, topic: str, text: str, at: dt.datetime) -> int:
        """Have the server post ``text`` to a stream topic at ``at``; the scheduled id."""
        ...

    def reschedule(self, scheduled_id: int, text: str, at: dt.datetime) -> None:
        """Replace a scheduled message's text and time."""
        ...

    def unschedule(self, scheduled_id: int) -> None:
        """Delete a scheduled message (one already sent stays sent)."""
        ...

    def scheduled(self) -> list[Scheduled]:
        """The bot's scheduled messages not yet sent (failed ones included)."""
        ...
