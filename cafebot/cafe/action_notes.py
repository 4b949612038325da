"""An action's note and its record kept together: the due date in the text, edits.

Below both :mod:`cafebot.cafe.entries` (whose `edit` and `remove` reach an action by
its note) and :mod:`cafebot.cafe.actions` (the action commands).
"""

from __future__ import annotations

import datetime as dt
import re

from cafebot.commands.errors import UserError
from cafebot.storage.models import ItemNote

EXAMPLE = "action A2 @**Bob Builder** write the release notes by 2031-07-01"
# A due date at the end of the action's text (or right at its start): "by 2031-07-01".
_DUE_END_RE = re.compile(
    r"(?:^|[\s,;(])(?:by|due)\s+(?P<date>\d{4}-\d{1,2}-\d{1,2})\)?\s*\.?$", re.I
)
_DUE_START_RE = re.compile(r"^(?:by|due)\s+(?P<date>\d{4}-\d{1,2}-\d{1,2})\s*[:,-]?\s+", re.I)


def parse_due(text: str) -> tuple[str, dt.date | None]:
    """The action's text without its due date, and the date (``… by 2031-07-01``)."""
    for pattern in (_DUE_END_RE, _DUE_START_RE):
        m = pattern.search(text)
        if m is None:
            continue
        try:
            due = dt.date.fromisoformat(_padded(m.group("date")))
        except ValueError:
            raise UserError(
                f"'{m.group('date')}' is not a date on the calendar: write the due date "
                "as year-month-day.",
                example=EXAMPLE,
            ) from None
        rest = (text[: m.start()] + text[m.end() :]).strip()
        return rest.rstrip(",;(").strip() or text, due
    return text, None


def _padded(date: str) -> str:
    year, month, day = date.split("-")
    return f"{year}-{int(month):02d}-{int(day):02d}"


def follow_note(note: ItemNote) -> None:
    """An action's note was edited (by `edit A2.3 …` or an edit of its message): the
    action follows, and so do its notes in other meetings."""
    action = note.action
    if action is None:
        return
    body, due = parse_due(note.text)
    action.text = body
    action.due_on = due
    if note.owner_id is not None or note.owner is not None:
        action.owner = note.owner
    elif note.message_id is not None:  # the message no longer names an owner: its author
        action.owner_id = action.author_id
    for other in action.notes:
        if other is not note:
            other.text, other.owner = note.text, note.owner
