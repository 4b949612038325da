"""The database schema: typed SQLAlchemy 2 models.

Every instant is stored as an aware UTC ``datetime``; the schema changes only
through the Alembic revisions in ``migrations/``.
"""

from __future__ import annotations

import datetime as dt
import enum

from sqlalchemy import (
    BigInteger,
    Date,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    Session,
    UOWTransaction,
    mapped_column,
    relationship,
)

# Stable constraint names, so that migrations are the same on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(cls: type[enum.Enum], name: str) -> Enum:
    """A portable enum column: VARCHAR plus CHECK, storing the values (not names)."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda e: [m.value for m in e],
        validate_strings=True,
    )


class UTCDateTime(TypeDecorator[dt.datetime]):
    """An aware UTC instant on every backend (SQLite alone would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(
        self, value: dt.datetime | None, dialect: Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)


Instant = UTCDateTime()


class MeetingState(enum.StrEnum):
    """What has happened to a meeting; whether it is *current* also depends on the clock."""

    SCHEDULED = "scheduled"  # upcoming, or current by its scheduled start
    LIVE = "live"  # an organiser started it and runs it live
    ENDED = "ended"  # ended by an organiser (a scheduled end is derived from the clock)
    PUBLISHED = "published"
    CANCELLED = "cancelled"


class ItemState(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    DEFERRED = "deferred"  # pushed to a later meeting by hand (``defer``)
    CARRIED_OVER = "carried"  # never reached in a live meeting: copied to the next one


class NoteKind(enum.StrEnum):
    NOTE = "note"
    DECISION = "decision"
    ACTION = "action"


class Series(Base):
    """A recurring meeting. Its schedule lives in the config; this row anchors its data."""

    __tablename__ = "series"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    # The number the series' next action gets (its reference, T1 …): never reused (0010).
    next_action_ref: Mapped[int] = mapped_column(default=1, server_default="1")

    meetings: Mapped[list[Meeting]] = relationship(back_populates="series")


class Meeting(Base):
    __tablename__ = "meeting"
    __table_args__ = (
        UniqueConstraint("series_id", "date"),
        # Every command looks for its series' live, current or unpublished meeting: with
        # years of history that must not scan the series' meetings (revision 0005).
        Index("ix_meeting_series_id_state_starts_at", "series_id", "state", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # Indexed by the unique (series_id, date) constraint.
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    date: Mapped[dt.date] = mapped_column(Date)
    starts_at: Mapped[dt.datetime] = mapped_column(Instant)
    ends_at: Mapped[dt.datetime] = mapped_column(Instant)
    state: Mapped[MeetingState] = mapped_column(
        _enum(MeetingState, "meeting_state"), default=MeetingState.SCHEDULED
    )
    # Set for one-off meetings added by an organiser (not from the schedule).
    added: Mapped[bool] = mapped_column(default=False)
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    # The live meeting: when it was started / ended, and the item being discussed.
    started_at: Mapped[dt.datetime | None] = mapped_column(Instant)
    ended_at: Mapped[dt.datetime | None] = mapped_column(Instant)
    current_item_ref: Mapped[int | None] = mapped_column()  # the agenda item's reference number
    current_item_since: Mapped[dt.datetime | None] = mapped_column(Instant)
    published_at: Mapped[dt.datetime | None] = mapped_column(Instant)
    # The next reference number of each kind: references are never reused.
    next_agenda_ref: Mapped[int] = mapped_column(default=1)
    next_shoutout_ref: Mapped[int] = mapped_column(default=1)
    next_intro_ref: Mapped[int] = mapped_column(default=1)
    next_checkin_ref: Mapped[int] = mapped_column(default=1)

    series: Mapped[Series] = relationship(back_populates="meetings")
    checkins: Mapped[list[CheckIn]] = relationship(
        back_populates="meeting", order_by="CheckIn.ref", cascade="all, delete-orphan"
    )
    introductions: Mapped[list[Introduction]] = relationship(
        back_populates="meeting", order_by="Introduction.ref", cascade="all, delete-orphan"
    )
    shoutouts: Mapped[list[ShoutOut]] = relationship(
        back_populates="meeting", order_by="ShoutOut.ref", cascade="all, delete-orphan"
    )
    agenda_items: Mapped[list[AgendaItem]] = relationship(
        back_populates="meeting",
        order_by="(AgendaItem.position, AgendaItem.ref)",
        cascade="all, delete-orphan",
    )
    # Archive (revision 0004): an imported meeting's source and free text (cafebot.notes.archive).
    # Loaded with the meeting (a join): every flush that changes an entry asks for it.
    archive: Mapped[ArchiveMeeting | None] = relationship(
        back_populates="meeting",
        cascade="all, delete-orphan",
        passive_deletes=True,
        lazy="joined",
    )
    archive_blocks: Mapped[list[ArchiveBlock]] = relationship(
        back_populates="meeting",
        order_by="ArchiveBlock.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class Person(Base):
    """Someone who takes part; identified by Zulip user id, never by sender email."""

    __tablename__ = "person"

    id: Mapped[int] = mapped_column(primary_key=True)
    zulip_user_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    # The full name Zulip shows; used until the person gives a name when checking in.
    zulip_name: Mapped[str | None] = mapped_column(String(200))
    # Remembered from the latest check-in.
    name: Mapped[str | None] = mapped_column(String(200))
    github: Mapped[str | None] = mapped_column(String(100), index=True)
    affiliation: Mapped[str | None] = mapped_column(String(200))
    # The series a person's direct messages address by default (``use``).
    default_series_id: Mapped[int | None] = mapped_column(
        ForeignKey("series.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(Instant)

    @property
    def display_name(self) -> str:
        return self.name or self.zulip_name or (f"@{self.github}" if self.github else "someone")


def name_at(meeting: Meeting, person: Person) -> str:
    """The name ``person`` went by at ``meeting``: the one they checked in with there (a
    later check-in under a new name leaves past meetings as they were), else their name
    now."""
    for checkin in meeting.checkins:
        same = checkin.person is person or (
            person.id is not None and checkin.person_id == person.id
        )
        if same and checkin.name:
            return checkin.name
    return person.display_name


class _Entry:
    """Columns every kind of entry has."""

    id: Mapped[int] = mapped_column(primary_key=True, sort_order=-10)
    ref: Mapped[int] = mapped_column(sort_order=-9)
    # The Zulip message that created the entry (so an edit or delete can follow it).
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Instant)


class CheckIn(_Entry, Base):
    __tablename__ = "checkin"
    __table_args__ = (UniqueConstraint("meeting_id", "ref"),)

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    # As given at this check-in (the person row remembers the latest).
    name: Mapped[str] = mapped_column(String(200))
    github: Mapped[str | None] = mapped_column(String(100))
    affiliation: Mapped[str | None] = mapped_column(String(200))

    meeting: Mapped[Meeting] = relationship(back_populates="checkins")
    person: Mapped[Person] = relationship()


class Introduction(_Entry, Base):
    __tablename__ = "introduction"
    __table_args__ = (UniqueConstraint("meeting_id", "ref"),)

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id"), index=True)
    text: Mapped[str] = mapped_column(Text)

    meeting: Mapped[Meeting] = relationship(back_populates="introductions")
    person: Mapped[Person] = relationship()


class ShoutOut(_Entry, Base):
    __tablename__ = "shoutout"
    __table_args__ = (UniqueConstraint("meeting_id", "ref"),)

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    project: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)

    meeting: Mapped[Meeting] = relationship(back_populates="shoutouts")
    author: Mapped[Person | None] = relationship()


class AgendaItem(_Entry, Base):
    __tablename__ = "agenda_item"
    __table_args__ = (UniqueConstraint("meeting_id", "ref"),)

    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    proposer_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    topic: Mapped[str] = mapped_column(Text)
    # The proposer's estimate in minutes: a single value (max is None) or a range.
    estimate_min: Mapped[int | None] = mapped_column()
    estimate_max: Mapped[int | None] = mapped_column()
    position: Mapped[int] = mapped_column()
    state: Mapped[ItemState] = mapped_column(_enum(ItemState, "item_state"), default=ItemState.OPEN)
    # Where an item came from (carried over or deferred from an earlier meeting) ...
    carried_from: Mapped[dt.date | None] = mapped_column(Date)
    # ... and, on the original, the meeting it moved to.
    moved_to: Mapped[dt.date | None] = mapped_column(Date)
    # Set when the item was reached in a live meeting (closed, or discussed).
    reached: Mapped[bool] = mapped_column(default=False)
    # The number the item's next note gets (its sub-reference, A2.1 …): never reused.
    next_note_ref: Mapped[int] = mapped_column(default=1)

    meeting: Mapped[Meeting] = relationship(back_populates="agenda_items")
    proposer: Mapped[Person | None] = relationship()
    # Deleting an item deletes its notes in the database (ON DELETE CASCADE), unread.
    notes: Mapped[list[ItemNote]] = relationship(
        back_populates="item",
        order_by="ItemNote.position",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )


class ItemNote(Base):
    """A note, decision or action recorded under an agenda item."""

    __tablename__ = "item_note"

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(
        ForeignKey("agenda_item.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[NoteKind] = mapped_column(_enum(NoteKind, "note_kind"))
    text: Mapped[str] = mapped_column(Text)
    # Its order under the item and its stable sub-reference there (A2.1 is position 1 of A2).
    position: Mapped[int] = mapped_column()
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    # For actions: who will do it.
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Instant)
    # For actions: the action record (revision 0010). Every copy of the note (an item
    # carried over or deferred) names the same action; deleting the action deletes them.
    action_id: Mapped[int | None] = mapped_column(
        ForeignKey("action.id", ondelete="CASCADE"), index=True
    )

    item: Mapped[AgendaItem] = relationship(back_populates="notes")
    author: Mapped[Person | None] = relationship(foreign_keys=[author_id])
    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])
    action: Mapped[Action | None] = relationship(back_populates="notes")


# ---------------------------------------------------------------- actions (revision 0010)


class ActionStatus(enum.StrEnum):
    OPEN = "open"  # to be followed up
    DONE = "done"
    DROPPED = "dropped"
    # Imported from the notes archive, which does not say how it ended: history, never
    # followed up (an imported action is DONE where the archive shows it ticked).
    UNKNOWN = "unknown"


class Action(Base):
    """An action item: owned, followed up across meetings until done or dropped.

    Its reference ``T<number>`` is the series' own and never changes (``move``,
    ``defer`` and roll-over copy the note under the item, not the action).
    ``meeting_id`` is the meeting it was recorded at, ``item_ref``/``note_ref`` its
    sub-reference there (A2.3). ``imported`` marks history read from the notes archive.
    """

    __tablename__ = "action"
    __table_args__ = (
        UniqueConstraint("series_id", "number"),
        Index("ix_action_series_id_status_created_at", "series_id", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column()
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meeting.id", ondelete="CASCADE"), index=True
    )
    item_ref: Mapped[int | None] = mapped_column()
    note_ref: Mapped[int | None] = mapped_column()
    text: Mapped[str] = mapped_column(Text)
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    status: Mapped[ActionStatus] = mapped_column(
        _enum(ActionStatus, "action_status"), default=ActionStatus.OPEN
    )
    # Who last changed the status, and when (None while it has never changed).
    status_by_id: Mapped[int | None] = mapped_column(ForeignKey("person.id"))
    status_at: Mapped[dt.datetime | None] = mapped_column(Instant)
    # Due by this day; None: due at the next meeting after the one it was made at.
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    # The Zulip message that made it (an edit or delete of that message follows).
    message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Instant)
    imported: Mapped[bool] = mapped_column(default=False)

    meeting: Mapped[Meeting] = relationship()
    owner: Mapped[Person | None] = relationship(foreign_keys=[owner_id])
    author: Mapped[Person | None] = relationship(foreign_keys=[author_id])
    status_by: Mapped[Person | None] = relationship(foreign_keys=[status_by_id])
    notes: Mapped[list[ItemNote]] = relationship(
        back_populates="action", cascade="all, delete-orphan", passive_deletes=True
    )

    @property
    def label(self) -> str:
        return f"T{self.number}"

    @property
    def is_open(self) -> bool:
        return self.status is ActionStatus.OPEN


class ActionFollowUp(Base):
    """The one direct message an owner gets before a meeting about their open actions.

    Written in the transaction that queues the message, so it goes out once.
    """

    __tablename__ = "action_followup"
    __table_args__ = (UniqueConstraint("meeting_id", "person_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    person_id: Mapped[int] = mapped_column(ForeignKey("person.id", ondelete="CASCADE"))
    actions: Mapped[int] = mapped_column()  # how many it listed
    sent_at: Mapped[dt.datetime] = mapped_column(Instant)


class TodoWidget(Base):
    """A Zulip to-do widget (a ``/todo`` message) listing a meeting's open actions."""

    __tablename__ = "todo_widget"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meeting.id", ondelete="CASCADE"), index=True
    )
    # The outbox's row while it is on its way, then Zulip's message id.
    outgoing_id: Mapped[int | None] = mapped_column(index=True)
    message_id: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    posted_at: Mapped[dt.datetime] = mapped_column(Instant)
    # The last of the message's submessages followed: the same tick (an event, and the
    # catch-up after a restart) is followed once.
    last_submessage_id: Mapped[int | None] = mapped_column(BigInteger)

    items: Mapped[list[TodoItem]] = relationship(
        back_populates="widget", cascade="all, delete-orphan", passive_deletes=True
    )


class TodoItem(Base):
    """A task of a to-do widget, by the key Zulip gives it, and the action it stands for."""

    __tablename__ = "todo_item"
    __table_args__ = (UniqueConstraint("widget_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    widget_id: Mapped[int] = mapped_column(ForeignKey("todo_widget.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(64))
    action_id: Mapped[int] = mapped_column(ForeignKey("action.id", ondelete="CASCADE"), index=True)
    # Whether the task shows ticked in Zulip: each strike toggles it (cafebot.cafe.todo).
    ticked: Mapped[bool] = mapped_column(default=False)

    widget: Mapped[TodoWidget] = relationship(back_populates="items")
    action: Mapped[Action] = relationship()


class CancelMove(Base):
    """An entry that cancelling a meeting moved to the following one, and where it stood.

    ``uncancel`` moves it back while it is untouched: still in that meeting under the
    reference it got there, with the content it had (``fingerprint``).
    """

    __tablename__ = "cancel_move"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meeting.id", ondelete="CASCADE"), index=True
    )  # the cancelled meeting
    target_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(1))  # A, S, I or C
    entry_id: Mapped[int] = mapped_column()
    old_ref: Mapped[int] = mapped_column()
    new_ref: Mapped[int] = mapped_column()
    old_position: Mapped[int | None] = mapped_column()  # an agenda item's
    old_carried_from: Mapped[dt.date | None] = mapped_column(Date)  # an agenda item's
    fingerprint: Mapped[str] = mapped_column(String(64))
    moved_at: Mapped[dt.datetime] = mapped_column(Instant)


class ProcessedMessage(Base):
    """A chat message whose command has taken effect: recorded in the same transaction."""

    __tablename__ = "processed_message"

    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    processed_at: Mapped[dt.datetime] = mapped_column(Instant)
    # The message's last edit the bot has followed (Zulip's ``last_edit_timestamp``, revision
    # 0006): an edit made while the bot was away is later than this, one already followed is not.
    edit_timestamp: Mapped[int | None] = mapped_column(BigInteger, nullable=True, default=None)


# ---------------------------------------------------------------- lifecycle (revision 0003)


class NoticeKind(enum.StrEnum):
    REMINDER = "reminder"
    CANCELLATION = "cancellation"


class NoticeStatus(enum.StrEnum):
    SENDING = "sending"  # claimed; a crash before "sent" means it is never sent twice
    SENT = "sent"
    SKIPPED = "skipped"  # overtaken by a later reminder while the bot was down


class SentNotice(Base):
    """A reminder or cancellation notice of a meeting: the record that makes it go out once."""

    __tablename__ = "sent_notice"
    __table_args__ = (UniqueConstraint("meeting_id", "kind", "offset_seconds"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    kind: Mapped[NoticeKind] = mapped_column(_enum(NoticeKind, "notice_kind"))
    # How long before the start a reminder is due (0 for a cancellation notice).
    offset_seconds: Mapped[int] = mapped_column()
    status: Mapped[NoticeStatus] = mapped_column(_enum(NoticeStatus, "notice_status"))
    due_at: Mapped[dt.datetime] = mapped_column(Instant)
    sent_at: Mapped[dt.datetime] = mapped_column(Instant)
    late: Mapped[bool] = mapped_column(default=False)
    message_id: Mapped[int | None] = mapped_column(BigInteger)


class HeldReminder(Base):
    """A meeting's reminder held by Zulip as a scheduled message (revision 0007).

    Zulip sends it at ``due_at`` even when the bot is down. While the row exists the
    bot's own timer leaves that reminder alone; when Zulip has sent it (the bot sees
    the message, or finds it gone from Zulip's list after its time), the row becomes
    a :class:`SentNotice`. The row is written before Zulip is asked
    (``scheduled_message_id`` is None until Zulip answers), so a crash in between
    never leaves a scheduled message the database does not know of.
    """

    __tablename__ = "held_reminder"
    __table_args__ = (UniqueConstraint("meeting_id", "offset_seconds"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    offset_seconds: Mapped[int] = mapped_column()
    due_at: Mapped[dt.datetime] = mapped_column(Instant)
    # Zulip's id of the scheduled message (not the id the message has once sent).
    scheduled_message_id: Mapped[int | None] = mapped_column(BigInteger)
    content: Mapped[str] = mapped_column(Text)  # as Zulip holds it
    # Being deleted at Zulip (the meeting was cancelled or moved): not to be sent.
    withdrawn: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime] = mapped_column(Instant)


class StepStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"


class PublishStep(Base):
    """One step of publishing a meeting's notes (zulip, archive, git) and how it went."""

    __tablename__ = "publish_step"
    __table_args__ = (UniqueConstraint("meeting_id", "step"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    step: Mapped[str] = mapped_column(String(16))
    status: Mapped[StepStatus] = mapped_column(_enum(StepStatus, "step_status"))
    attempts: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(Instant)
    retry_at: Mapped[dt.datetime | None] = mapped_column(Instant)


class PublishedPart(Base):
    """A Zulip message holding part of a meeting's published notes (re-publishing edits it)."""

    __tablename__ = "published_part"
    __table_args__ = (UniqueConstraint("meeting_id", "part"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(ForeignKey("meeting.id", ondelete="CASCADE"))
    part: Mapped[int] = mapped_column()
    message_id: Mapped[int] = mapped_column(BigInteger)
    posted_at: Mapped[dt.datetime] = mapped_column(Instant)


# ---------------------------------------------------------------- Zulip transport (revision 0002)


class ZulipCursor(Base):
    """How far ``cafebot run`` has read a Zulip account: catch-up starts after this message."""

    __tablename__ = "zulip_cursor"

    # The server and the bot's user id ("https://chat.example.org#42"): another starts afresh.
    account: Mapped[str] = mapped_column(String(300), primary_key=True)
    last_message_id: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[dt.datetime] = mapped_column(Instant)


class OutgoingState(enum.StrEnum):
    PENDING = "pending"  # not yet confirmed by Zulip (a restart sends it, looking first)
    SENT = "sent"
    FAILED = "failed"  # refused by Zulip, or too old to send after a restart (logged)


class OutgoingMessage(Base):
    """A reply or post on its way to Zulip, kept until Zulip confirms it.

    A post whose response was lost is looked for before it is posted again; the
    Zulip ids of confirmed posts tell two posts of the same text apart.
    """

    __tablename__ = "outgoing_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    account: Mapped[str] = mapped_column(String(300))
    # A stream post (stream and topic) or a direct message (the other participants: "11,12").
    stream: Mapped[str | None] = mapped_column(String(200))
    topic: Mapped[str | None] = mapped_column(String(200))
    recipient_ids: Mapped[str | None] = mapped_column(String(1000))
    content: Mapped[str] = mapped_column(Text)
    # A message older than this post (the command it answers): a lost post is looked for after it.
    after_message_id: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[OutgoingState] = mapped_column(
        _enum(OutgoingState, "outgoing_state"), default=OutgoingState.PENDING, index=True
    )
    attempts: Mapped[int] = mapped_column(default=0)
    zulip_message_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    created_at: Mapped[dt.datetime] = mapped_column(Instant)
    sent_at: Mapped[dt.datetime | None] = mapped_column(Instant)


# ---------------------------------------------------------------- archive (revision 0004)
# Meetings read from the community's notes archive (cafebot.notes.archive). An imported
# meeting keeps its source, so that exporting it gives back what was read; the
# free text that fits no record is kept as blocks where it stood, for the canonical
# rendering once the bot changes the meeting (notes-format.md, fidelity rules 1-2).


class ArchiveMeeting(Base):
    """A meeting imported from an archive file."""

    __tablename__ = "archive_meeting"

    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meeting.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    # The meeting's part of the file, from its ``## date`` heading on; None once the bot
    # has changed the meeting (it is rendered canonically from then on).
    source: Mapped[str | None] = mapped_column(Text)
    # SHA-256 of the normalised source: importing the same meeting again changes nothing.
    digest: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[dt.datetime] = mapped_column(Instant)

    meeting: Mapped[Meeting] = relationship(back_populates="archive")


class ArchiveBlock(Base):
    """Text of an imported meeting that is no record, kept verbatim where it stood.

    ``section`` is the standard section it stood in (``top`` before the first one;
    an invented section or a ``####`` subsection belongs to the section before it),
    ``after_entries`` how many entries of that section came before it. A ``prompt``
    is the section's italic template line, not content.
    """

    __tablename__ = "archive_block"

    id: Mapped[int] = mapped_column(primary_key=True)
    meeting_id: Mapped[int] = mapped_column(
        ForeignKey("meeting.id", ondelete="CASCADE"), index=True
    )
    position: Mapped[int] = mapped_column()
    section: Mapped[str] = mapped_column(String(16))
    after_entries: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(16))  # "text" or "prompt"
    text: Mapped[str] = mapped_column(Text)

    meeting: Mapped[Meeting] = relationship(back_populates="archive_blocks")


class ArchiveFile(Base):
    """What an imported year's file had before its first meeting: the title, and any preamble."""

    __tablename__ = "archive_file"
    __table_args__ = (UniqueConstraint("series_id", "year"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("series.id", ondelete="CASCADE"))
    year: Mapped[int] = mapped_column()
    title: Mapped[str | None] = mapped_column(String(300))  # the level-1 heading's text
    head: Mapped[str] = mapped_column(Text)  # the lines before the first meeting, verbatim


_CONTENT_MODELS = (CheckIn, Introduction, ShoutOut, AgendaItem, ItemNote)


def _meeting_of(session: Session, obj: object) -> Meeting | None:
    """The meeting an entry or note belongs to (a new one may be linked by id only)."""
    if isinstance(obj, ItemNote):
        item = obj.item
        if item is None and obj.item_id is not None:
            item = session.get(AgendaItem, obj.item_id)
        return _meeting_of(session, item) if item is not None else None
    if isinstance(obj, CheckIn | Introduction | ShoutOut | AgendaItem):
        if obj.meeting is None and obj.meeting_id is not None:
            return session.get(Meeting, obj.meeting_id)
        return obj.meeting
    return None


@event.listens_for(Session, "before_flush")
def _forget_changed_sources(session: Session, context: UOWTransaction, instances: object) -> None:
    """An imported meeting whose entries or notes change is rendered canonically from then on.

    Whatever command or job makes the change, its flush drops the stored source.
    (The importer writes with bulk statements, which do not pass through here.)
    """
    dirty = session.dirty
    for obj in [*session.new, *session.deleted, *dirty]:
        if not isinstance(obj, _CONTENT_MODELS):
            continue
        with session.no_autoflush:
            meeting = _meeting_of(session, obj)
        archive = meeting.archive if meeting is not None else None
        if archive is None or archive.source is None:
            continue  # the usual case: only an imported meeting has a source
        # A dirty entry counts when a column of its own changed (not only a collection).
        if obj in dirty and not session.is_modified(obj, include_collections=False):
            continue
        archive.source = None
