"""Wiring: settings, the database, the clock, and the dispatcher that runs commands."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, make_transient_to_detached, sessionmaker

from cafebot.cafe import edits, meetings, people, todo
from cafebot.cafe.context import Context
from cafebot.commands.converters import consume_series
from cafebot.commands.errors import PermissionDenied, UserError
from cafebot.commands.registry import REGISTRY, Outcome, Spec, Who, unknown_command, usage_text
from cafebot.core.chat import Chat, Message, StagesReplies
from cafebot.core.clock import Clock, SystemClock
from cafebot.core.config import SeriesSettings, Settings
from cafebot.core.services import Services
from cafebot.core.text import silence_mentions
from cafebot.storage import db
from cafebot.storage.models import Person, ProcessedMessage, Series

# The command modules register themselves on import.
from cafebot.cafe import entries as _entries  # noqa: F401  isort: skip
from cafebot.cafe import info as _info  # noqa: F401  isort: skip
from cafebot.cafe import search as _search  # noqa: F401  isort: skip
from cafebot.cafe import lifecycle as _lifecycle  # noqa: F401  isort: skip
from cafebot.cafe import actions as _actions  # noqa: F401  isort: skip
from cafebot.insights import commands as _insights  # noqa: F401  isort: skip

log = logging.getLogger("cafebot")

# Recording a message as handled, where the backend's INSERT takes ON CONFLICT DO NOTHING
# (see Bot._claim); built once, as every command runs it.
_CLAIM = {
    dialect.__name__.rsplit(".", 1)[-1]: dialect.insert(ProcessedMessage)
    .values(
        message_id=bindparam("message_id"),
        processed_at=bindparam("processed_at"),
        edit_timestamp=bindparam("edit_timestamp"),
    )
    .on_conflict_do_nothing()
    .returning(ProcessedMessage.message_id)
    for dialect in (sqlite, postgresql)
}

APOLOGY = (
    "Sorry, something went wrong on my side while handling that; nothing was changed. "
    "The error has been logged for the operators."
)
# The outcome of a message handled before (redelivered, or taken by another instance).
DUPLICATE = Outcome()


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
    # Called after a command changed the schedule (the scheduler re-plans its jobs).
    schedule_listeners: list[Callable[[], None]] = field(default_factory=list)
    # Called after a command, an edit or a delete took effect (held reminders follow the
    # agenda); each must be quick: it runs on the thread that handles commands.
    change_listeners: list[Callable[[], None]] = field(default_factory=list)
    # Each writes the static site into a folder (the command line installs the site's
    # builder: publishing rebuilds it into [web] site_dir of the archive repository).
    site_builders: list[Callable[[Path], None]] = field(default_factory=list)

    def entries_changed(self) -> None:
        for listener in list(self.change_listeners):
            try:
                listener()
            except Exception:
                log.exception("a change listener failed")

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


# Control characters, the bidirectional overrides that make text read other than it is,
# and lone surrogates (which no database can store as text).
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
        *range(0xD800, 0xE000),
    ]
}


def split_command(text: str) -> tuple[str, str, list[str]]:
    """``"agenda 10m Topic\\nmore"`` -> ("agenda", "10m Topic", ["more"]).

    Control characters, bidirectional overrides and lone surrogates are dropped first.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_UNWANTED)
    lines = text.strip().split("\n")
    first = lines[0].strip()
    word, _, rest = first.partition(" ")
    more = [line.rstrip() for line in lines[1:]]
    while more and not more[-1].strip():
        more.pop()
    return word.strip(), rest.strip(), more


# A tick can come before the bot has recorded the id of the to-do list it just posted.
SUBMESSAGE_TRIES = 20
SUBMESSAGE_WAIT = 0.1  # seconds


class Bot:
    """Runs one command per message: parse, check, change in one transaction, answer."""

    def __init__(self, app: App) -> None:
        self.app = app
        # Each series row's id, once read in its configured name (rows are never deleted).
        self._series_ids: dict[tuple[str, str], int] = {}

    def handle(self, message: Message, text: str, chat: Chat) -> str:
        """Handle ``text``, the command part of ``message`` (the bot's mention removed).

        Returns the outcome, as logged: ``ok``, ``refused`` (not allowed), ``error`` (a
        user error: unknown command, bad arguments), ``bug`` or ``duplicate``."""
        started = time.perf_counter()
        word, rest, more = split_command(text)
        outcome: Outcome
        result = "ok"
        try:
            if not word:
                outcome = self._answer_only(
                    message,
                    chat,
                    "Hi! I run the meeting here. Say `help` to see what I can do, "
                    "or `agenda 10m Your topic` to propose a topic.",
                )
            else:
                outcome = self._run(message, word, rest, more, chat)
        except UserError as exc:
            result = "refused" if isinstance(exc, PermissionDenied) else "error"
            outcome = self._answer_only(message, chat, self._error_text(word, exc))
        except Exception:
            result = "bug"
            log.exception("command %r failed (message %s)", word[:30], message.id)
            outcome = self._answer_only(message, chat, APOLOGY)
        if outcome is DUPLICATE:
            result = "duplicate"
        if result == "ok" and outcome is not DUPLICATE:
            self.app.entries_changed()
        for emoji in outcome.reactions:
            chat.react(message, emoji)
        if outcome.reply:
            # A reply never pings: whatever user text it repeats, mentions in it are silent.
            chat.reply(message, silence_mentions(outcome.reply))
        self._after(word, outcome, chat)
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
        return result

    # ------------------------------------------------------------ edited and deleted messages
    # The ProcessedMessage row of the original message stays its dedupe key: edits add none,
    # but it keeps the last edit followed (``edit_timestamp``), so that an edit made while
    # the bot was away is told apart from one followed already (see :meth:`edit_followed`).

    def edit_followed(self, message: Message) -> bool | None:
        """Whether ``message``'s last edit has been followed; None if it was never handled."""
        if message.id is None:
            return None
        with self.app.unit_of_work() as session:
            row = session.get(ProcessedMessage, message.id)
            if row is None:
                return None
            if message.edited_at is None:
                return True
            return row.edit_timestamp is not None and row.edit_timestamp >= message.edited_at

    @staticmethod
    def _mark_followed(session: Session, message: Message) -> None:
        row = session.get(ProcessedMessage, message.id)
        if row is not None and message.edited_at is not None:
            row.edit_timestamp = max(row.edit_timestamp or 0, message.edited_at)

    def handle_edit(self, message: Message, text: str, chat: Chat) -> bool:
        """The user edited ``message`` (now reading ``text``), which made an entry earlier.

        The entry is re-parsed and updated in place, keeping its reference; an edit
        that no longer parses is answered and changes nothing. Returns whether the
        message had made an entry (or a note).
        """
        if message.id is None:
            return False
        word, rest, more = split_command(text)
        spec = REGISTRY.find(word) if word else None
        try:
            with self.app.unit_of_work() as session:
                self._mark_followed(session, message)
                found, notes = edits.made_by_message(session, message.id)
                if not found and not notes:
                    return False
                meeting = found[0].meeting if found else notes[0].item.meeting
                series = self.app.settings.series_by_key(meeting.series.key)
                if series is None:
                    log.warning("message %s edited, but its series is gone", message.id)
                    return True
                if spec is not None:
                    _, rest = consume_series(rest)
                ctx = Context(
                    session=session,
                    settings=self.app.settings,
                    series=series,
                    series_row=meeting.series,
                    message=message,
                    person=people.for_sender(session, message, self.app.clock.now()),
                    is_organizer=self.app.is_organizer(series, message),
                    now=self.app.clock.now(),
                    notes_flavour=chat.notes_flavour,
                    more=more,
                )
                changed = edits.follow_edit(
                    ctx, found[0] if found else None, notes, spec, rest, more
                )
            log.info("message %s edited: %s follows it", message.id, changed)
            self.app.entries_changed()
        except UserError as exc:
            self._followed_unchanged(message)
            chat.reply(message, silence_mentions(self._error_text(word, exc)))
        except Exception:
            log.exception("following the edit of message %s failed", message.id)
            self._followed_unchanged(message)
            chat.reply(message, APOLOGY)
        return True

    def _followed_unchanged(self, message: Message) -> None:
        """An edit answered without an effect counts as followed: it is not answered again."""
        try:
            with self.app.unit_of_work() as session:
                self._mark_followed(session, message)
        except Exception:
            log.exception("could not record the edit of message %s as followed", message.id)

    def handle_submessage(
        self, message_id: int, sender_id: int, content: str, submessage_id: int | None = None
    ) -> str | None:
        """A tick or untick in a to-do widget the bot posted: the action follows."""
        changed: str | None = todo.PENDING
        for _ in range(SUBMESSAGE_TRIES):
            try:
                with self.app.unit_of_work() as session:
                    changed = todo.follow_strike(
                        session, message_id, sender_id, content, self.app.clock.now(), submessage_id
                    )
            except Exception:
                log.exception("following the submessage of message %s failed", message_id)
                return None
            if changed != todo.PENDING:
                break
            time.sleep(SUBMESSAGE_WAIT)  # a widget just posted: its id is being recorded
        else:
            log.warning("a tick in message %s, which the bot does not know", message_id)
            return None
        if changed:
            log.info("to-do list of message %s: %s", message_id, changed)
            self.app.entries_changed()
        return changed

    def widget_messages(self) -> list[int]:
        """The to-do lists whose ticks are read again after a restart (cafe.todo)."""
        with self.app.unit_of_work() as session:
            return todo.recent_widgets(session, self.app.clock.now())

    def handle_delete(self, message_ids: list[int]) -> list[str]:
        """Messages were deleted: the entries they made go too. Returns what was removed."""
        removed: list[str] = []
        for message_id in message_ids:
            try:
                with self.app.unit_of_work() as session:
                    gone = edits.follow_delete(session, message_id)
            except Exception:
                log.exception("following the deletion of message %s failed", message_id)
                continue
            if gone:
                log.info("message %s deleted: removed %s", message_id, ", ".join(gone))
                self.app.entries_changed()
            removed += gone
        return removed

    def _after(self, word: str, outcome: Outcome, chat: Chat) -> None:
        """Work that follows a committed command; a failure here is logged, not raised."""
        if outcome.after is not None:
            try:
                outcome.after(self.app, chat)
            except Exception:
                log.exception("the follow-up of command %r failed", word[:30])
        if outcome.replan:
            for listener in list(self.app.schedule_listeners):
                try:
                    listener()
                except Exception:
                    log.exception("re-planning after command %r failed", word[:30])

    def _error_text(self, word: str, exc: UserError) -> str:
        spec = REGISTRY.find(word) if word else None
        text = exc.message
        if exc.example:
            text += f"\nFor example: `{exc.example}`"
        elif exc.show_usage and spec is not None:
            text += "\n" + usage_text(spec)
        return text

    def _answer_only(self, message: Message, chat: Chat, reply: str) -> Outcome:
        """Record a message answered without a command's effect (refused, failed, a bare
        mention) as handled, so that a redelivery is not answered again; the reply is
        stored with that record where the chat keeps replies.

        :data:`DUPLICATE` when it was handled already (e.g. by another instance of the
        bot): then this one stays silent.
        """
        outcome = Outcome(reply=reply)
        if message.id is None:
            return outcome
        try:
            with self.app.unit_of_work() as session:
                if not self._claim(session, message):
                    return DUPLICATE
                return self._stage(session, message, chat, outcome)
        except Exception:
            log.exception("could not record message %s as processed", message.id)
            return outcome

    @staticmethod
    def _stage(session: Session, message: Message, chat: Chat, outcome: Outcome) -> Outcome:
        """Where the chat keeps replies in the database, write the reply in the command's
        own transaction (so a crash cannot keep one without the other); it is sent when
        the transaction has committed, before the outcome's ``after`` work."""
        if not outcome.reply or not isinstance(chat, StagesReplies):
            return outcome
        send = chat.stage_reply(session, message, silence_mentions(outcome.reply))
        after = outcome.after

        def then(app: Services, chat: Chat) -> None:
            send()
            if after is not None:
                after(app, chat)

        return replace(outcome, reply=None, after=then)

    def _claim(self, session: Session, message: Message) -> bool:
        """Record ``message`` as handled in this transaction; False if it already was.

        Two bot instances may receive the same message: the second insert waits for
        the first transaction and then fails, so only one of them takes effect. The
        message's content is handled as last edited: that edit counts as followed.
        """
        message_id = message.id
        values = {
            "message_id": message_id,
            "processed_at": self.app.clock.now(),
            "edit_timestamp": message.edited_at,
        }
        claim = _CLAIM.get(session.get_bind().dialect.name)
        if claim is not None:
            # One statement per command: INSERT … ON CONFLICT DO NOTHING (it waits for a
            # concurrent insert of the same id to commit, then inserts nothing).
            # A row comes back only when this insert took the id (rowcount is not reliable
            # for ON CONFLICT on every driver).
            return session.connection().execute(claim, values).first() is not None
        if session.get(ProcessedMessage, message_id) is not None:
            return False
        try:
            with session.begin_nested():
                session.add(ProcessedMessage(**values))
        except IntegrityError:
            return False
        return True

    def _run(self, message: Message, word: str, rest: str, more: list[str], chat: Chat) -> Outcome:
        spec = REGISTRY.find(word)
        if spec is None:
            raise unknown_command(word)
        series_key, rest = consume_series(rest)
        now = self.app.clock.now()
        with self.app.unit_of_work() as session:
            if message.id is not None and not self._claim(session, message):
                log.info("message %s was handled before; skipped", message.id)
                return DUPLICATE
            person = people.for_sender(session, message, now)
            series = self._series(session, message, person, series_key, spec)
            ctx = Context(
                session=session,
                settings=self.app.settings,
                series=series,
                series_row=self._series_row(session, series),
                message=message,
                person=person,
                is_organizer=self.app.is_organizer(series, message),
                now=now,
                notes_flavour=chat.notes_flavour,
                more=more,
            )
            if spec.who is Who.ORGANIZER and not ctx.is_organizer:
                raise PermissionDenied(
                    f"Only the organisers of the {series.name} may use `{spec.called}`. "
                    "Ask one of them (they are listed in the bot's configuration)."
                )
            series_id = ctx.series_row.id
            args = spec.parse(rest, more)
            outcome = self._stage(session, message, chat, spec.func(ctx, **args))
        # Committed: the row is stored, in its configured name.
        self._series_ids[(series.key, series.name)] = series_id
        return outcome

    def _series_row(self, session: Session, series: SeriesSettings) -> Series:
        """The series' row: read by the first command, then put in ``session`` without a
        query (a copy made detached, then added: it is persistent at once)."""
        known = self._series_ids.get((series.key, series.name))
        if known is not None:
            row = Series(id=known, key=series.key, name=series.name)
            make_transient_to_detached(row)
            session.add(row)
            return row
        return meetings.series_row(session, series)

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
