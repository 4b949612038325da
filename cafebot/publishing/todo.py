"""The meeting's open actions as a Zulip to-do widget, posted with its notes.

A message whose content starts with ``/todo`` is a to-do list in Zulip: the first
line after ``/todo`` is its title, each further line a task, ``task: description``
(zerver/lib/widget.py; the recorded "todo widget message"). Zulip keys the tasks of
the message itself ``"<index>,canned"`` (index from 0: web/src/todo_widget.ts), and
sends a ``submessage`` event when someone ticks or unticks one (``cafebot.cafe.todo``).

Zulip cannot edit a widget message. So the list is posted once per meeting, when its
notes are first published with open actions; a re-publish keeps it (and keeps
following it) and posts no second one. Actions recorded later are listed by `actions`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import select

from cafebot.core.text import one_line
from cafebot.storage import actions as store
from cafebot.storage.models import Action, ActionStatus, Meeting, TodoItem, TodoWidget

if TYPE_CHECKING:
    from cafebot.core.chat import Chat
    from cafebot.core.services import Services

TASK_LIMIT = 120  # characters of a task's name; the description says the rest


def canned_key(index: int) -> str:
    """Zulip's key for the ``index``-th task of the widget message itself."""
    return f"{index},canned"


def _task(action: Action) -> str:
    # A task's name ends at its first ": " (Zulip reads the rest as its description) and
    # must be unique in the list (the web app drops a repeated one): the reference does it.
    text = one_line(action.text).replace(": ", " - ")
    name = f"{action.label} {text}"
    return name if len(name) <= TASK_LIMIT else name[: TASK_LIMIT - 1].rstrip() + "…"


def _desc(action: Action) -> str:
    owner = action.owner.display_name if action.owner else "nobody"
    due = f", due by {action.due_on.isoformat()}" if action.due_on else ""
    return one_line(f"{owner}{due}")


def todo_content(meeting: Meeting, actions: list[Action]) -> str:
    """The widget message: ``/todo <title>`` then one ``task: description`` line each."""
    lines = [f"/todo Actions of {meeting.date.isoformat()}"]
    lines += [f"{_task(a)}: {_desc(a)}" for a in actions]
    return "\n".join(lines)


def post_todo(app: Services, chat: Chat, meeting_id: int, stream: str, topic: str) -> str | None:
    """Post the meeting's open actions as a to-do widget; None when there is none to post."""
    now: dt.datetime = app.clock.now()
    with app.unit_of_work() as session:
        if session.scalar(select(TodoWidget.id).where(TodoWidget.meeting_id == meeting_id)):
            return "kept the to-do list posted before (Zulip cannot edit a widget)"
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            return None
        found = [
            a
            for a in store.listing(session, meeting.series_id, statuses=(ActionStatus.OPEN,))
            if a.meeting_id == meeting_id
        ]
        if not found:
            return None
        content = todo_content(meeting, found)
        # Written before Zulip is asked: a crash in between posts no second list.
        widget = TodoWidget(meeting_id=meeting_id, posted_at=now)
        widget.items = [TodoItem(key=canned_key(i), action_id=a.id) for i, a in enumerate(found)]
        session.add(widget)
        session.flush()
        widget_id, count = widget.id, len(found)
    message_id = chat.send(stream, topic, content)
    with app.unit_of_work() as session:
        stored = session.get(TodoWidget, widget_id)
        if stored is not None:
            stored.message_id = message_id
    return f"posted a to-do list of {count} open action(s)"
