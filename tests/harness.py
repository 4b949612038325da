"""Drive the bot the way users do: Zulip-shaped messages into the real handler.

The transcript is zulip_bots' own ``StubBotHandler``; reactions are recorded
too. Only the outside is faked: the chat server (the stub) and the clock.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sqlalchemy import select
from zulip_bots.test_lib import StubBotHandler

from cafebot.bot.app import App
from cafebot.core.clock import FakeClock
from cafebot.core.config import SeriesSettings, Settings
from cafebot.edge.handler import CafeHandler

BOT_ID = 99
BOT_NAME = "cafe"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    email: str
    is_bot: bool = False


ADA = User(11, "Ada Lovelace", "ada@example.org")
BOB = User(12, "Bob Builder", "user12@chat.example.org")  # a placeholder email, as Zulip hides
OLGA = User(13, "Olga Organiser", "olga@example.org")  # an organiser, by email
OTTO = User(14, "Otto Organiser", "user14@chat.example.org")  # an organiser, by user id
OTHER_BOT = User(50, "Other Bot", "other-bot@example.org", is_bot=True)

CAFE = SeriesSettings(
    key="cafe",
    name="Collaboration Cafe",
    stream="jupyterhub",
    timezone="Europe/Berlin",
    organizers=("olga@example.org", "14"),
    link="https://meet.example.org/cafe",
)
BOOK = SeriesSettings(
    key="jupyterbook",
    name="Jupyter Book Cafe",
    stream="jupyterbook",
    schedule="FREQ=MONTHLY;BYDAY=1TH",
    start=dt.time(9, 0),
    timezone="America/New_York",
    organizers=("olga@example.org",),
)

# Sunday 1 June 2031, noon in Berlin: the next cafe is Tuesday 17 June 2031, 16:00 CEST.
JUNE_1 = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)


class Transcript(StubBotHandler):
    """zulip_bots' stub bot handler, which also records reactions."""

    def __init__(self) -> None:
        super().__init__()
        self.full_name = BOT_NAME
        self.user_id = BOT_ID

    def react(self, message: dict[str, Any], emoji_name: str) -> dict[str, Any]:
        self.transcript.append(("react", {"emoji_name": emoji_name}))
        return super().react(message, emoji_name)


@dataclass
class Answer:
    """What the bot did for one message."""

    reactions: list[str]
    replies: list[str]
    sent: list[tuple[str, str, str]] = field(default_factory=list)  # (stream, topic, text)

    @property
    def text(self) -> str:
        return "\n".join(self.replies)

    @property
    def acked(self) -> bool:
        return self.reactions == ["check"] and not self.replies


class Harness:
    def __init__(
        self,
        db_url: str,
        *,
        series: tuple[SeriesSettings, ...] = (CAFE,),
        now: dt.datetime = JUNE_1,
        notes_flavour: str = "zulip",
    ) -> None:
        self.clock = FakeClock(now)
        # A series' notes go to a directory of this harness, never into the checkout
        # (the default archive_dir, "notes", is relative to the working directory).
        self._notes = tempfile.TemporaryDirectory(prefix="cafebot-notes-")
        series = tuple(
            s
            if s.archive_dir.is_absolute()
            else replace(s, archive_dir=Path(self._notes.name) / s.archive_dir)
            for s in series
        )
        self.settings = Settings(database_url=db_url, series=series)
        self.app = App.create(self.settings, self.clock)
        self.handler = CafeHandler(self.app, notes_flavour=notes_flavour)
        self.stub = Transcript()
        self.handler.initialize(self.stub)
        self.next_id = 1000

    def close(self) -> None:
        self.app.close()
        self._notes.cleanup()

    def message(
        self,
        content: str,
        user: User = ADA,
        *,
        stream: str | None = "jupyterhub",
        topic: str = "Collaboration Cafe",
        msg_id: int | None = None,
        mention: bool = True,
    ) -> dict[str, Any]:
        if msg_id is None:
            self.next_id += 1
            msg_id = self.next_id
        raw: dict[str, Any] = {
            "id": msg_id,
            "sender_id": user.id,
            "sender_full_name": user.name,
            "sender_email": user.email,
        }
        if user.is_bot:
            raw["sender_is_bot"] = True
        if stream is None:
            raw.update(
                type="private",
                content=content,
                display_recipient=[
                    {"id": user.id, "email": user.email, "full_name": user.name},
                    {"id": BOT_ID, "email": "cafe-bot@example.org", "full_name": BOT_NAME},
                ],
            )
        else:
            raw.update(
                type="stream",
                content=f"@**{BOT_NAME}** {content}" if mention else content,
                display_recipient=stream,
                subject=topic,
            )
        return raw

    def send(self, content: str, user: User = ADA, **kwargs: Any) -> Answer:
        raw = self.message(content, user, **kwargs)
        return self.deliver(raw)

    def deliver(self, raw: dict[str, Any]) -> Answer:
        self.stub.reset_transcript()
        self.handler.handle_message(raw, self.stub)
        reactions = [m["emoji_name"] for kind, m in self.stub.transcript if kind == "react"]
        replies = [m["content"] for kind, m in self.stub.transcript if kind == "send_reply"]
        sent = [
            (m["to"], m.get("topic", ""), m["content"])
            for kind, m in self.stub.transcript
            if kind == "send_message"
        ]
        return Answer(reactions, replies, sent)

    def dm(self, content: str, user: User = ADA, **kwargs: Any) -> Answer:
        return self.send(content, user, stream=None, **kwargs)

    def rows(self, model: type[Any], **where: Any) -> list[Any]:
        with self.app.unit_of_work() as session:
            query = select(model)
            for key, value in where.items():
                query = query.where(getattr(model, key) == value)
            return list(session.scalars(query))


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'cafe.db'}"


__all__ = [
    "ADA",
    "BOB",
    "BOOK",
    "CAFE",
    "JUNE_1",
    "OLGA",
    "OTHER_BOT",
    "OTTO",
    "Harness",
    "replace",
]


@dataclass
class Posted:
    stream: str
    topic: str
    text: str
    id: int


class RecordingChat:
    """A fake chat server for the scheduler and publisher: it records what is posted.

    ``edit_limit`` refuses edits (as Zulip's message-edit time limit does).
    """

    notes_flavour = "zulip"

    def __init__(self, max_message_length: int = 10_000) -> None:
        self.max_message_length = max_message_length
        self.posted: list[Posted] = []
        self.edits: list[tuple[int, str]] = []
        self.replies: list[str] = []
        self.refuse_edits = False
        self._next_id = 5000

    def send(self, stream: str, topic: str, text: str) -> int:
        self._next_id += 1
        self.posted.append(Posted(stream, topic, text, self._next_id))
        return self._next_id

    def edit(self, message_id: int, text: str) -> None:
        from cafebot.core.chat import EditNotAllowed

        if self.refuse_edits:
            raise EditNotAllowed("The time limit for editing this message has passed")
        self.edits.append((message_id, text))
        for posted in self.posted:
            if posted.id == message_id:
                posted.text = text

    def reply(self, message: object, text: str) -> None:
        self.replies.append(text)

    def react(self, message: object, emoji: str) -> None:
        pass


def add_meeting(
    app: App, series: SeriesSettings, starts_at: dt.datetime, *, topics: tuple[str, ...] = ()
) -> int:
    """A one-off meeting of ``series`` at ``starts_at`` (as `add meeting` makes one),
    with these agenda items; its id."""
    from cafebot.cafe import meetings
    from cafebot.storage.models import AgendaItem, Meeting

    with app.unit_of_work() as session:
        meeting = Meeting(
            series=meetings.series_row(session, series),
            date=starts_at.date(),
            starts_at=starts_at,
            ends_at=starts_at + series.duration,
            added=True,
        )
        session.add(meeting)
        for ref, topic in enumerate(topics, start=1):
            session.add(
                AgendaItem(
                    meeting=meeting, ref=ref, topic=topic, position=ref, created_at=starts_at
                )
            )
        session.flush()
        return meeting.id
