"""Reminders held by Zulip: each meeting's next reminder as a scheduled message.

Where the server has scheduled messages (Zulip feature level 179), the bot keeps
each upcoming meeting's *next* reminder at Zulip, which then posts it on time
even when the bot is down. The database is still the truth:

- a :class:`~cafebot.storage.models.HeldReminder` row is written *before* Zulip is asked,
  and while it exists the bot's own timer leaves that reminder alone
  (:func:`cafebot.cafe.reminders.due_reminder` counts it as done);
- when the agenda changes, the held text is edited, debounced (:class:`Debounce`:
  a burst of changes gives one edit), through the chat's paced sender;
- when the meeting is cancelled or moved, the scheduled message is deleted
  (only while its time is ahead: one whose time has come may be on its way);
- it is recorded as sent (a :class:`~cafebot.storage.models.SentNotice`) when the bot
  sees Zulip post it (:func:`record_delivered`), or, after a restart, when it is
  gone from Zulip's list of scheduled messages and its time has passed
  (:meth:`HeldReminders.reconcile`). Zulip lists what it has not sent yet, and
  flags what it tried and failed to send (for instance more than ten minutes
  late): a failed one is deleted and handed back to the bot's own timer, which
  sends it late, once.

So each reminder still goes out exactly once. Where the server lacks the feature,
or refuses a scheduled message, the bot's own timer sends every reminder, and
the log says so (``cafebot check`` too).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cafebot.cafe import meetings
from cafebot.cafe.reminders import looks_like_reminder, reminder_text
from cafebot.core.chat import ScheduledGone, ScheduleRefused, SchedulesMessages, SendFailed
from cafebot.core.config import SeriesSettings
from cafebot.storage.models import (
    HeldReminder,
    Meeting,
    MeetingState,
    NoticeKind,
    NoticeStatus,
    SentNotice,
)

if TYPE_CHECKING:
    from cafebot.core.chat import Message, Scheduled
    from cafebot.core.services import Services

log = logging.getLogger("cafebot.reminders")

#: A reminder due sooner than this is left to the bot's own timer (Zulip refuses a
#: time that has passed by the time the request arrives).
MIN_LEAD = dt.timedelta(seconds=3)
#: Zulip's delivery worker looks once a minute: a held reminder not seen sent this long
#: after its time is looked up in Zulip's list.
CONFIRM_AFTER = dt.timedelta(seconds=90)
#: A burst of changes gives one edit: this long after the last change ...
QUIET = dt.timedelta(seconds=5)
#: ... or this long after the first, whichever comes first.
MAX_WAIT = dt.timedelta(seconds=60)
#: A longer reminder is left to the bot's own timer (which splits long posts).
MAX_HELD_LENGTH = 10_000


class Debounce:
    """When to bring the held texts up to date after changes: once things are quiet."""

    def __init__(self, quiet: dt.timedelta = QUIET, max_wait: dt.timedelta = MAX_WAIT) -> None:
        self.quiet = quiet
        self.max_wait = max_wait
        self._lock = threading.Lock()
        self._first: dt.datetime | None = None
        self._last: dt.datetime | None = None

    def mark(self, now: dt.datetime) -> tuple[dt.datetime, bool]:
        """Something changed at ``now``: when the update is due, and whether this change
        began a new burst (the changes after it only move that time)."""
        with self._lock:
            began = self._first is None
            self._first = self._first or now
            self._last = now
            return self._due(), began

    @property
    def due_at(self) -> dt.datetime | None:
        with self._lock:
            return self._due() if self._first is not None else None

    def urgent(self, now: dt.datetime) -> None:
        """Due at once (the schedule changed: a cancelled meeting's reminder must go)."""
        with self._lock:
            self._first = now - self.max_wait
            self._last = self._last or now

    def take(self, now: dt.datetime) -> bool:
        """True (once) when an update is due at ``now``."""
        with self._lock:
            if self._first is None or now < self._due():
                return False
            self._first = self._last = None
            return True

    def _due(self) -> dt.datetime:
        assert self._first is not None and self._last is not None  # noqa: S101
        return min(self._last + self.quiet, self._first + self.max_wait)


@dataclass
class HeldResult:
    created: int = 0
    edited: int = 0
    withdrawn: int = 0
    sent: int = 0  # recorded as sent by Zulip
    handed_back: int = 0  # left to the bot's own timer (Zulip failed, or refused)

    def __bool__(self) -> bool:
        return any((self.created, self.edited, self.withdrawn, self.sent, self.handed_back))


@dataclass(frozen=True)
class _Wanted:
    offset: int
    due_at: dt.datetime
    stream: str
    topic: str
    text: str


@dataclass(frozen=True)
class _Row:
    """A held reminder, read out of its session."""

    id: int
    meeting_id: int
    offset: int
    due_at: dt.datetime
    scheduled_id: int | None
    content: str
    withdrawn: bool

    @classmethod
    def of(cls, row: HeldReminder) -> _Row:
        return cls(
            row.id,
            row.meeting_id,
            row.offset_seconds,
            row.due_at,
            row.scheduled_message_id,
            row.content,
            row.withdrawn,
        )


def _rows(session: Session) -> list[_Row]:
    return [_Row.of(r) for r in session.scalars(select(HeldReminder).order_by(HeldReminder.id))]


def _record_sent(
    session: Session, row: HeldReminder, message_id: int | None, at: dt.datetime
) -> None:
    """Zulip has sent the held reminder: it becomes a sent notice (the row goes)."""
    notice = session.scalar(
        select(SentNotice).where(
            SentNotice.meeting_id == row.meeting_id,
            SentNotice.kind == NoticeKind.REMINDER,
            SentNotice.offset_seconds == row.offset_seconds,
        )
    )
    if notice is None:
        session.add(
            SentNotice(
                meeting_id=row.meeting_id,
                kind=NoticeKind.REMINDER,
                offset_seconds=row.offset_seconds,
                status=NoticeStatus.SENT,
                due_at=row.due_at,
                sent_at=at,
                late=False,
                message_id=message_id,
            )
        )
    elif notice.message_id is None and message_id is not None:
        notice.message_id = message_id
    session.delete(row)


def record_delivered(app: Services, message: Message) -> bool:
    """The bot saw one of its own messages: if it is a held reminder, record it as sent.

    Safe on every instance of the bot (the record is in the shared database) and
    with the restart check racing it (whoever comes second finds the row gone).
    """
    if message.stream is None or not looks_like_reminder(message.content):
        return False
    wanted = message.content.strip()
    try:
        with app.unit_of_work() as session:
            for row in session.scalars(
                select(HeldReminder).where(
                    HeldReminder.withdrawn.is_(False),
                    HeldReminder.scheduled_message_id.is_not(None),
                )
            ):
                if row.content.strip() == wanted:
                    _record_sent(session, row, message.id, app.clock.now())
                    log.info(
                        "Zulip sent the held reminder of meeting %s (message %s)",
                        row.meeting_id,
                        message.id,
                    )
                    return True
    except IntegrityError:
        return True  # recorded at the same moment by the restart check
    return False


class HeldReminders:
    """Keeps each meeting's next reminder at Zulip (see the module docstring).

    Called under the scheduler's lock; the calls to Zulip are made outside any
    transaction, each after the row that records it is committed.
    """

    def __init__(self, app: Services, chat: SchedulesMessages) -> None:
        self.app = app
        self.chat = chat
        self.active = False
        self.why_not = "not started yet"
        self.debounce = Debounce()
        self._reconciled = False

    # ------------------------------------------------------------ which path

    def start(self) -> bool:
        """Decide the path (and log it); on the Zulip path, look at what Zulip holds."""
        reason = self.chat.scheduling_unavailable()
        if reason is not None:
            self.active, self.why_not = False, reason
            log.warning("reminders: %s; the bot's own timer sends them", reason)
            return False
        self.active, self.why_not = True, ""
        log.info(
            "reminders: Zulip holds each meeting's next reminder as a scheduled message "
            "(sent on time even while the bot is down)"
        )
        try:
            self.reconcile()
        except SendFailed as exc:
            log.warning("could not read Zulip's scheduled messages (%s); trying again later", exc)
        return True

    def _give_up(self, why: str) -> HeldResult:
        """Zulip refused: every reminder goes back to the bot's own timer, for this run."""
        self.active, self.why_not = False, why
        log.warning("reminders: %s; the bot's own timer sends them from now on", why)
        result = HeldResult()
        with self.app.unit_of_work() as session:
            rows = _rows(session)
        now = self.app.clock.now()
        for row in rows:
            if row.scheduled_id is None or row.due_at <= now:
                continue  # not made, or on its way: left to the restart check
            try:
                self.chat.unschedule(row.scheduled_id)
            except ScheduledGone:
                pass
            except (ScheduleRefused, SendFailed) as exc:
                log.error(  # noqa: TRY400 - said plainly
                    "could not delete scheduled message %s (%s): Zulip may still send it "
                    "(the bot does not)",
                    row.scheduled_id,
                    exc,
                )
                continue
            self._drop(row.id)
            result.handed_back += 1
        return result

    # ------------------------------------------------------------ what Zulip holds

    def reconcile(self) -> HeldResult:
        """Bring the rows in line with Zulip's list of the bot's scheduled messages."""
        result = HeldResult()
        if not self.active:
            return result
        now = self.app.clock.now()
        with self.app.unit_of_work() as session:
            rows = _rows(session)
        if not rows:
            self._reconciled = True
            return result
        try:
            listed = {s.id: s for s in self.chat.scheduled()}
        except ScheduleRefused as exc:
            return self._give_up(f"Zulip refused to list the bot's scheduled messages ({exc})")
        claimed = {r.scheduled_id for r in rows if r.scheduled_id is not None}
        for row in rows:
            if row.scheduled_id is None:
                self._unconfirmed(row, listed, claimed, now, result)
                continue
            found = listed.get(row.scheduled_id)
            if row.withdrawn:
                self._withdraw(row, result, known_gone=found is None)
            elif found is None:
                if row.due_at <= now:
                    self._sent(row.id, None, row.due_at)  # Zulip sent it at its time
                    result.sent += 1
                    log.info("Zulip sent the held reminder of meeting %s", row.meeting_id)
                else:
                    self._drop(row.id)  # deleted at Zulip: made again if still wanted
            elif found.failed:
                self._hand_back(row, result, "Zulip could not send it at its time")
        self._reconciled = True
        return result

    def _unconfirmed(
        self,
        row: _Row,
        listed: dict[int, Scheduled],
        claimed: set[int],
        now: dt.datetime,
        result: HeldResult,
    ) -> None:
        """A row whose creation was not confirmed (the bot stopped while asking)."""
        due = int(row.due_at.timestamp())
        for scheduled in listed.values():
            if (
                scheduled.id not in claimed
                and int(scheduled.at.timestamp()) == due
                and scheduled.content.strip() == row.content.strip()
            ):
                claimed.add(scheduled.id)
                with self.app.unit_of_work() as session:
                    held = session.get(HeldReminder, row.id)
                    if held is not None:
                        held.scheduled_message_id = scheduled.id
                return
        if row.due_at > now:
            self._drop(row.id)  # Zulip never got it: made again if still wanted
            return
        # Its time has passed and Zulip does not hold it: it was sent, or never made.
        # Never twice: it counts as sent.
        log.warning(
            "cannot tell whether Zulip sent the reminder of meeting %s due %s; "
            "it is not sent again",
            row.meeting_id,
            row.due_at,
        )
        self._sent(row.id, None, row.due_at)
        result.sent += 1

    def overdue(self, now: dt.datetime) -> dt.datetime | None:
        """When to look whether Zulip has sent the held reminders whose time has come."""
        with self.app.unit_of_work() as session:
            dues = [r.due_at for r in _rows(session) if not r.withdrawn]
        if not dues:
            return None
        return max(now, min(dues) + CONFIRM_AFTER) if min(dues) <= now else None

    def confirm(self) -> HeldResult:
        """Look up held reminders whose time passed a while ago and that were not seen sent."""
        now = self.app.clock.now()
        with self.app.unit_of_work() as session:
            rows = _rows(session)
        late = [r for r in rows if r.due_at + CONFIRM_AFTER <= now or r.scheduled_id is None]
        if not late and self._reconciled:
            return HeldResult()
        return self.reconcile()

    # ------------------------------------------------------------ keeping them current

    def sync(self) -> HeldResult:
        """Create, edit or delete scheduled messages so that each upcoming meeting's next
        reminder is held at Zulip with its current text. Idempotent."""
        result = HeldResult()
        if not self.active:
            return result
        if not self._reconciled:
            result = self.reconcile()
        now = self.app.clock.now()
        creates: list[tuple[int, _Wanted]] = []
        edits: list[tuple[_Row, _Wanted]] = []
        withdraws: list[_Row] = []
        with self.app.unit_of_work() as session:
            rows = _rows(session)
            by_meeting: dict[int, list[_Row]] = {}
            for row in rows:
                by_meeting.setdefault(row.meeting_id, []).append(row)
            seen: set[int] = set()
            for series in self.app.settings.series:
                if not series.stream:
                    continue
                for meeting in self._upcoming(session, series, now):
                    seen.add(meeting.id)
                    held = by_meeting.get(meeting.id, [])
                    wanted = self._wanted(session, series, meeting, now)
                    for row in held:
                        if row.withdrawn or row.scheduled_id is None:
                            continue
                        if row.due_at <= now + MIN_LEAD:
                            continue  # its time has come: on its way, or sent
                        if wanted is not None and row.offset == wanted.offset:
                            if row.content != wanted.text or row.due_at != wanted.due_at:
                                edits.append((row, wanted))
                        else:
                            withdraws.append(row)
                    if wanted is not None and all(r.offset != wanted.offset for r in held):
                        claim = HeldReminder(
                            meeting_id=meeting.id,
                            offset_seconds=wanted.offset,
                            due_at=wanted.due_at,
                            content=wanted.text,
                            withdrawn=False,
                            updated_at=now,
                        )
                        session.add(claim)
                        session.flush()
                        creates.append((claim.id, wanted))
            for row in rows:
                if row.meeting_id in seen or row.withdrawn or row.scheduled_id is None:
                    continue
                if row.due_at > now + MIN_LEAD:
                    withdraws.append(row)  # cancelled, moved away, or its series is gone
            for row in withdraws:
                found = session.get(HeldReminder, row.id)
                if found is not None:
                    found.withdrawn = True
            retry = [r for r in rows if r.withdrawn and r.scheduled_id is not None]
        # The claims are committed: now Zulip is asked.
        for row in [*withdraws, *retry]:
            self._withdraw(row, result)
        for row_id, wanted in creates:
            if not self.active:
                self._drop(row_id)
                continue
            self._create(row_id, wanted, result)
        for row, wanted in edits:
            if self.active:
                self._edit(row, wanted, result)
        if result:
            log.info(
                "held reminders: %d created, %d edited, %d deleted",
                result.created,
                result.edited,
                result.withdrawn,
            )
        return result

    def _upcoming(
        self, session: Session, series: SeriesSettings, now: dt.datetime
    ) -> list[Meeting]:
        row = meetings.series_row(session, series)
        return list(
            session.scalars(
                select(Meeting).where(
                    Meeting.series_id == row.id,
                    Meeting.state == MeetingState.SCHEDULED,
                    Meeting.starts_at > now,
                )
            )
        )

    def _wanted(
        self, session: Session, series: SeriesSettings, meeting: Meeting, now: dt.datetime
    ) -> _Wanted | None:
        """The meeting's next reminder not yet sent, if its time is far enough ahead."""
        assert series.stream is not None  # noqa: S101 - only series with a stream
        done = set(
            session.scalars(
                select(SentNotice.offset_seconds).where(
                    SentNotice.meeting_id == meeting.id, SentNotice.kind == NoticeKind.REMINDER
                )
            )
        )
        for offset in sorted(series.reminders, reverse=True):
            seconds = int(offset.total_seconds())
            due_at = meeting.starts_at - offset
            if seconds in done or due_at <= now + MIN_LEAD:
                continue
            text = reminder_text(series, meeting, offset, due_at, late=False)
            if len(text) > MAX_HELD_LENGTH:
                return None
            return _Wanted(seconds, due_at, series.stream, series.topic_for(meeting.date), text)
        return None

    # ------------------------------------------------------------ one change at Zulip

    def _create(self, row_id: int, wanted: _Wanted, result: HeldResult) -> None:
        try:
            scheduled_id = self.chat.schedule(
                wanted.stream, wanted.topic, wanted.text, wanted.due_at
            )
        except ScheduleRefused as exc:
            self._drop(row_id)
            given_back = self._give_up(f"Zulip refused a scheduled message ({exc})")
            result.handed_back += given_back.handed_back + 1
            return
        except SendFailed as exc:
            # It may have reached Zulip: the row stays unconfirmed, and the next look at
            # Zulip's list adopts it or makes it again.
            self._reconciled = False
            log.warning("scheduling a reminder failed (%s); trying again later", exc)
            return
        with self.app.unit_of_work() as session:
            row = session.get(HeldReminder, row_id)
            if row is not None:
                row.scheduled_message_id = scheduled_id
        result.created += 1

    def _edit(self, row: _Row, wanted: _Wanted, result: HeldResult) -> None:
        assert row.scheduled_id is not None  # noqa: S101 - only confirmed rows are edited
        try:
            self.chat.reschedule(row.scheduled_id, wanted.text, wanted.due_at)
        except ScheduledGone:
            self._drop(row.id)  # deleted at Zulip: the next sync makes it again
            return
        except ScheduleRefused as exc:
            self._hand_back(row, result, f"Zulip refused to change it ({exc})")
            return
        except SendFailed as exc:
            log.warning("editing a held reminder failed (%s); trying again later", exc)
            return
        with self.app.unit_of_work() as session:
            held = session.get(HeldReminder, row.id)
            if held is not None:
                held.content, held.due_at = wanted.text, wanted.due_at
                held.updated_at = self.app.clock.now()
        result.edited += 1

    def _withdraw(self, row: _Row, result: HeldResult, *, known_gone: bool = False) -> None:
        if row.scheduled_id is not None and not known_gone:
            try:
                self.chat.unschedule(row.scheduled_id)
            except ScheduledGone:
                pass
            except (ScheduleRefused, SendFailed) as exc:
                log.warning(
                    "deleting scheduled message %s failed (%s); trying again later",
                    row.scheduled_id,
                    exc,
                )
                return
        self._drop(row.id)
        result.withdrawn += 1

    def _hand_back(self, row: _Row, result: HeldResult, why: str) -> None:
        """Delete it at Zulip; the bot's own timer sends it (late, if its time has passed)."""
        if row.scheduled_id is not None:
            try:
                self.chat.unschedule(row.scheduled_id)
            except ScheduledGone:
                pass
            except (ScheduleRefused, SendFailed) as exc:
                log.warning("could not delete scheduled message %s (%s)", row.scheduled_id, exc)
                return
        self._drop(row.id)
        result.handed_back += 1
        log.warning(
            "the held reminder of meeting %s: %s; the bot's own timer sends it", row.meeting_id, why
        )

    def _drop(self, row_id: int) -> None:
        with self.app.unit_of_work() as session:
            row = session.get(HeldReminder, row_id)
            if row is not None:
                session.delete(row)

    def _sent(self, row_id: int, message_id: int | None, at: dt.datetime) -> None:
        try:
            with self.app.unit_of_work() as session:
                row = session.get(HeldReminder, row_id)
                if row is not None:
                    _record_sent(session, row, message_id, at)
        except IntegrityError:
            pass  # the bot saw it sent at the same moment: recorded there
