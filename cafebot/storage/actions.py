"""Action items at the storage level: create them, find them, change their status.

The interface other parts build on (``cafebot.cafe.actions`` for the commands,
reports that count actions opened and closed). An action belongs to the meeting it
was recorded at (``Action.meeting_id``); its reference ``T<number>`` is unique in its
series. Imported history (``Action.imported``) is DONE or UNKNOWN, never OPEN.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cafebot.storage.counters import take_numbers
from cafebot.storage.models import Action, ActionStatus, Meeting, MeetingState, Series

CLOSED = (ActionStatus.DONE, ActionStatus.DROPPED)


def take_number(session: Session, series: Series) -> int:
    """The series' next action number; no two transactions get the same (after its
    actions' highest, should a row restored from an older backup lag behind them)."""

    def highest() -> int:
        if series.id is None:  # not stored yet: it has no actions
            return 0
        query = select(func.max(Action.number)).where(Action.series_id == series.id)
        return session.scalar(query) or 0

    return take_numbers(session, series, "next_action_ref", in_use=highest)


def create(
    session: Session,
    series: Series,
    meeting: Meeting,
    text: str,
    *,
    created_at: dt.datetime,
    owner_id: int | None = None,
    author_id: int | None = None,
    message_id: int | None = None,
    item_ref: int | None = None,
    note_ref: int | None = None,
    due_on: dt.date | None = None,
    status: ActionStatus = ActionStatus.OPEN,
    imported: bool = False,
) -> Action:
    """A new action of ``series`` recorded at ``meeting``, added to the session."""
    if imported and status is ActionStatus.OPEN:
        raise ValueError("imported actions are history: DONE or UNKNOWN, never OPEN")
    action = Action(
        series_id=series.id,
        number=take_number(session, series),
        meeting_id=meeting.id,
        item_ref=item_ref,
        note_ref=note_ref,
        text=text,
        owner_id=owner_id,
        author_id=author_id,
        status=status,
        due_on=due_on,
        message_id=message_id,
        created_at=created_at,
        imported=imported,
    )
    action.meeting = meeting
    session.add(action)
    return action


def by_number(session: Session, series_id: int, number: int) -> Action | None:
    return session.scalar(
        select(Action).where(Action.series_id == series_id, Action.number == number)
    )


def by_message(session: Session, message_id: int) -> list[Action]:
    """The actions a Zulip message made."""
    return list(session.scalars(select(Action).where(Action.message_id == message_id)))


def listing(
    session: Session,
    series_id: int,
    *,
    statuses: Sequence[ActionStatus] | None = (ActionStatus.OPEN,),
    owner_id: int | None = None,
    before: dt.datetime | None = None,
) -> list[Action]:
    """The series' actions, oldest first, with their meeting and people loaded.

    ``statuses`` None gives every status; ``before`` keeps those made before then.
    """
    query = (
        select(Action)
        .where(Action.series_id == series_id)
        .options(
            selectinload(Action.meeting),
            selectinload(Action.owner),
            selectinload(Action.status_by),
        )
        .order_by(Action.created_at, Action.number)
    )
    if statuses is not None:
        query = query.where(Action.status.in_(list(statuses)))
    if owner_id is not None:
        query = query.where(Action.owner_id == owner_id)
    if before is not None:
        query = query.where(Action.created_at < before)
    return list(session.scalars(query))


def count_open(session: Session, series_id: int, *, before: dt.datetime | None = None) -> int:
    """How many of the series' actions are open (made before ``before``, if given)."""
    query = select(func.count(Action.id)).where(
        Action.series_id == series_id, Action.status == ActionStatus.OPEN
    )
    if before is not None:
        query = query.where(Action.created_at < before)
    return session.scalar(query) or 0


def set_status(action: Action, status: ActionStatus, *, by_id: int | None, at: dt.datetime) -> bool:
    """Change the status, recording who and when; False when it already had it."""
    if action.status is status:
        return False
    action.status = status
    action.status_by_id = by_id
    action.status_at = at
    return True


def opened_between(session: Session, series_id: int, start: dt.datetime, end: dt.datetime) -> int:
    """How many actions were recorded in ``[start, end)`` (imported history excluded)."""
    return (
        session.scalar(
            select(func.count(Action.id)).where(
                Action.series_id == series_id,
                Action.imported.is_(False),
                Action.created_at >= start,
                Action.created_at < end,
            )
        )
        or 0
    )


def closed_between(session: Session, series_id: int, start: dt.datetime, end: dt.datetime) -> int:
    """How many actions are done or dropped with the change made in ``[start, end)``."""
    return (
        session.scalar(
            select(func.count(Action.id)).where(
                Action.series_id == series_id,
                Action.imported.is_(False),
                Action.status.in_(CLOSED),
                Action.status_at >= start,
                Action.status_at < end,
            )
        )
        or 0
    )


def count_open_before(session: Session, meeting: Meeting) -> int:
    """How many open actions of ``meeting``'s series were recorded at earlier meetings."""
    origin = Meeting.__table__.alias("origin")
    return (
        session.scalar(
            select(func.count(Action.id))
            .join(origin, origin.c.id == Action.meeting_id)
            .where(
                Action.series_id == meeting.series_id,
                Action.status == ActionStatus.OPEN,
                Action.meeting_id != meeting.id,
                origin.c.starts_at < meeting.starts_at,
            )
        )
        or 0
    )


def reviewed_at(session: Session, meeting: Meeting) -> tuple[list[Action], list[Action]]:
    """What ``meeting``'s review of earlier actions shows: those closed (done or dropped)
    since the meeting before it, and those still open at its end, by reference.

    Counted as of the meeting's end, so that its notes read the same when rendered later.
    """
    end = meeting.ended_at or meeting.ends_at
    previous = session.scalar(
        select(Meeting)
        .where(
            Meeting.series_id == meeting.series_id,
            Meeting.starts_at < meeting.starts_at,
            Meeting.state != MeetingState.CANCELLED,
        )
        .order_by(Meeting.starts_at.desc())
        .limit(1)
    )
    since = (previous.ended_at or previous.ends_at) if previous is not None else None
    origin = Meeting.__table__.alias("origin")
    candidates = session.scalars(
        select(Action)
        .join(origin, origin.c.id == Action.meeting_id)
        .where(
            Action.series_id == meeting.series_id,
            Action.imported.is_(False),
            Action.meeting_id != meeting.id,
            origin.c.starts_at < meeting.starts_at,
            Action.created_at <= end,
        )
        .options(selectinload(Action.owner), selectinload(Action.meeting))
        .order_by(Action.number)
    )
    closed, still_open = [], []
    for action in candidates:
        closed_by_end = action.status_at is not None and action.status_at <= end
        if action.status in CLOSED and closed_by_end:
            if since is None or action.status_at is None or action.status_at > since:
                closed.append(action)
        elif action.status is ActionStatus.OPEN or action.status in CLOSED:
            still_open.append(action)  # open then (closed only after the meeting)
    return closed, still_open
