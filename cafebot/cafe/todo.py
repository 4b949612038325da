"""Ticks in a meeting's Zulip to-do widget: the action's status follows.

Zulip sends a ``submessage`` event for each tick or untick (zulip.yaml, the
submessage event; its content ``{"type": "strike", "key": "0,canned"}``). A strike
toggles the task, as Zulip's web app shows it: ticked, the action is done (by whoever
ticked it); unticked, it is open again. The widget is the meeting's shared list, so,
as in Zulip, anyone who sees it may tick it; the action records who did.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from cafebot.storage import actions as store
from cafebot.storage.models import ActionStatus, Person, TodoWidget

log = logging.getLogger("cafebot.todo")

#: What :func:`follow_strike` says of a tick in a widget whose id the bot has not yet
#: recorded (Zulip's answer to the post is on its way): try again in a moment.
PENDING = "pending"


def follow_strike(
    session: Session,
    message_id: int,
    sender_id: int,
    content: str,
    now: dt.datetime,
    submessage_id: int | None = None,
) -> str | None:
    """Follow one submessage of a widget message; what changed (``T3 done``), or None.

    ``submessage_id``: Zulip's id of it; one followed already (or older) is skipped.
    """
    widget = session.scalar(select(TodoWidget).where(TodoWidget.message_id == message_id))
    if widget is None:
        waiting = session.scalar(select(TodoWidget.id).where(TodoWidget.message_id.is_(None)))
        return PENDING if waiting is not None else None
    if submessage_id is not None:
        if widget.last_submessage_id is not None and submessage_id <= widget.last_submessage_id:
            return None
        widget.last_submessage_id = submessage_id
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if not isinstance(data, dict) or data.get("type") != "strike":
        return None  # a new task someone added, a title: nothing of an action
    key = str(data.get("key", ""))
    item = next((i for i in widget.items if i.key == key), None)
    if item is None:
        return None  # a task someone added to the list: no action of ours
    item.ticked = not item.ticked
    by = session.scalar(select(Person.id).where(Person.zulip_user_id == sender_id))
    action = item.action
    status = ActionStatus.DONE if item.ticked else ActionStatus.OPEN
    if action.status is ActionStatus.DROPPED and not item.ticked:
        return None  # unticking a dropped action leaves it dropped
    if not store.set_status(action, status, by_id=by, at=now):
        return None
    return f"{action.label} {status.value}"


CATCH_UP_DAYS = 90  # widgets younger than this are read again after a restart


def recent_widgets(session: Session, now: dt.datetime) -> list[int]:
    """The message ids of the to-do lists whose ticks a restart reads again."""
    since = now - dt.timedelta(days=CATCH_UP_DAYS)
    return list(
        session.scalars(
            select(TodoWidget.message_id)
            .where(TodoWidget.message_id.is_not(None), TodoWidget.posted_at >= since)
            .order_by(TodoWidget.message_id)
        )
    )
