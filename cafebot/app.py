"""Wiring: settings, the database, the clock, and the dispatcher that runs commands."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from cafebot import db, meetings, people
from cafebot.chat import Chat, Message
from cafebot.clock import Clock, SystemClock
from cafebot.commands import REGISTRY, Outcome, Spec, Who, unknown_command, usage_text
from cafebot.config import SeriesSettings, Settings
from cafebot.context import Context
from cafebot.converters import consume_series
from cafebot.errors import PermissionDenied, UserError
from cafebot.models import Person, ProcessedMessage, Series
from cafebot.text import silence_mentions

# The command modules register themselves on import.
from cafebot import entries as _entries  # noqa: F401  isort: skip
from cafebot import info as _info  # noqa: F401  isort: skip

log = logging.getLogger("cafebot")

APOLOGY = (
    "Sorry, something went wrong on my side while handling that; nothing was changed. "
    "The error has been logged for the operators."
)


@dataclass
class App:
    """Everything a command needs from outside: settings, database and clock."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    clock: Clock = field(default_factory=SystemClock)
    # Organisers found at start-up by resolving the config's emails (series key -> user ids),
    # and any granted locally (``cafebot shell --organizer``).
    organizer_ids: dict[str, set[int]] = field(default_factory=dict)

    @classmethod
    def create(cls, settings: Settings, clock: Clock | None = None) -> App:
        engine = db.make_engine(settings.database_url)
        db.ensure_schema(engine)
        return cls(settings, engine, db.session_factory(engine), clock or SystemClock())

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        with db.unit_of_work(self.sessions) as session:
            yield session

    def is_organizer(self, series: SeriesSettings, message: Message) -> bool:
        if message.sender_id in series.organizer_ids:
            return True
        if message.sender_id in self.organizer_ids.get(series.key, set()):
            return True
        # An email only counts where the organisation shows real addresses.
        return bool(message.sender_email) and message.sender_email.lower() in (
            series.organizer_emails
        )


# Control characters, and the bidirectional overrides that make text read other than it is.
_UNWANTED = {
    c: None
    for c in [
        *range(0x00, 0x09),
        0x0B,
        0x0C,
        *range(0x0E, 0x20),
        0x7F,
        *range(0x80, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    ]
}


def split_command(text: str) -> tuple[str, str, list[str]]:
    """``"agenda 10m Topic\\nmore"`` -> ("agenda", "10m Topic", ["more"]).

    Control characters and bidirectional overrides are dropped first.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_UNWANTED)
    lines = text.strip().split("\n")
    first = lines[0].strip()
    word, _, rest = first.partition(" ")
    more = [line.rstrip() for line in lines[1:]]
    while more and not more[-1].strip():
        more.pop()
    return word.strip(), rest.strip(), more


class Bot:
    """Runs one command per message: parse, check, change in one transaction, answer."""

    def __init__(self, app: App) -> None:
        self.app = app

    def handle(self, message: Message, text: str, chat: Chat) -> None:
        """Handle ``text``, the command part of ``message`` (the bot's mention removed)."""
        started = time.perf_counter()
        word, rest, more = split_command(text)
        outcome: Outcome
        result = "ok"
        try:
            if not word:
                outcome = Outcome(
                    reply="Hi! I run the meeting here. Say `help` to see what I can do, "
                    "or `agenda 10m Your topic` to propose a topic."
                )
            else:
                outcome = self._run(message, word, rest, more, chat)
        except UserError as exc:
            result = "refused" if isinstance(exc, PermissionDenied) else "error"
            outcome = Outcome(reply=self._error_text(word, exc))
            self._mark_processed(message)
        except Exception:
            result = "bug"
            log.exception("command %r failed (message %s)", word[:30], message.id)
            outcome = Outcome(reply=APOLOGY)
            self._mark_processed(message)
        if outcome.reaction:
            chat.react(message, outcome.reaction)
        if outcome.reply:
            # A reply never pings: whatever user text it repeats, mentions in it are silent.
            chat.reply(message, silence_mentions(outcome.reply))
        log.info(
            "%s from user %s: %s in %.1f ms",
            word.lower()[:30] or "(empty)",
            message.sender_id,
            result,
            (time.perf_counter() - started) * 1000,
            extra={
                "command": word.lower()[:30],
                "sender_id": message.sender_id,
                "message_id": message.id,
                "outcome": result,
                "ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )

    def _error_text(self, word: str, exc: UserError) -> str:
        spec = REGISTRY.find(word) if word else None
        text = exc.message
        if exc.example:
            text += f"\nFor example: `{exc.example}`"
        elif exc.show_usage and spec is not None:
            text += "\n" + usage_text(spec)
        return text

    def _mark_processed(self, message: Message) -> None:
        """A refused or failed command is not retried when Zulip delivers it again."""
        if message.id is None:
            return
        try:
            with self.app.unit_of_work() as session:
                if session.get(ProcessedMessage, message.id) is None:
                    session.add(
                        ProcessedMessage(message_id=message.id, processed_at=self.app.clock.now())
                    )
        except Exception:
            log.exception("could not record message %s as processed", message.id)

    def _run(self, message: Message, word: str, rest: str, more: list[str], chat: Chat) -> Outcome:
        spec = REGISTRY.find(word)
        if spec is None:
            raise unknown_command(word)
        series_key, rest = consume_series(rest)
        now = self.app.clock.now()
        with self.app.unit_of_work() as session:
            if message.id is not None and session.get(ProcessedMessage, message.id) is not None:
                log.info("message %s was handled before; skipped", message.id)
                return Outcome()
            person = people.for_sender(session, message, now)
            series = self._series(session, message, person, series_key, spec)
            ctx = Context(
                session=session,
                settings=self.app.settings,
                series=series,
                series_row=meetings.series_row(session, series),
                message=message,
                person=person,
                is_organizer=self.app.is_organizer(series, message),
                now=now,
                notes_flavour=chat.notes_flavour,
                more=more,
            )
            if spec.who is Who.ORGANIZER and not ctx.is_organizer:
                raise PermissionDenied(
                    f"Only the organisers of the {series.name} may use `{spec.name}`. "
                    "Ask one of them (they are listed in the bot's configuration)."
                )
            args = spec.parse(rest, more)
            outcome = spec.func(ctx, **args)
            if message.id is not None:
                session.add(ProcessedMessage(message_id=message.id, processed_at=now))
        return outcome

    def _series(
        self,
        session: Session,
        message: Message,
        person: Person,
        key: str | None,
        spec: Spec,
    ) -> SeriesSettings:
        settings = self.app.settings
        if key is not None:
            chosen = settings.series_by_key(key)
            if chosen is None:
                known = ", ".join(f"`@{s.key}`" for s in settings.series)
                raise UserError(f"There is no series '{key}'. The series are: {known}.")
            return chosen
        if message.stream is not None:
            bound = settings.series_for_stream(message.stream)
            if bound is not None:
                return bound
            unbound = [s for s in settings.series if s.stream is None]
            if len(settings.series) == 1 and unbound:
                return unbound[0]
            if spec.needs_series:
                raise UserError(
                    "This stream has no meeting series. Use the series' own stream, "
                    "or name the series after the command.",
                    example=f"{spec.name} @{settings.series[0].key} …",
                )
            return settings.series[0]
        if person.default_series_id is not None:
            row = session.get(Series, person.default_series_id)
            chosen = settings.series_by_key(row.key) if row is not None else None
            if chosen is not None:
                return chosen
        if len(settings.series) == 1 or not spec.needs_series:
            return settings.series[0]
        known = ", ".join(f"`{s.key}`" for s in settings.series)
        raise UserError(
            f"Which series do you mean? Name it after the command, or choose one once with "
            f"`use`. The series are: {known}.",
            example=f"{spec.name} @{settings.series[0].key} …",
        )


def processed(session: Session, message_id: int) -> bool:
    return (
        session.scalar(
            select(ProcessedMessage.message_id).where(ProcessedMessage.message_id == message_id)
        )
        is not None
    )
