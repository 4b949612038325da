"""Action items in imported notes: recognised, and stored as history.

The bot's own form, a nested bullet ``**Action** - [name=Who] text`` (and the bold
markers the reader takes for actions), and the free forms people write at the start
of a note: ``Action:``, ``Action item:``, ``AI:``, ``Todo:`` (in any letter case),
possibly with a name (``AI: [name=Bob] …``, ``Todo (Bob): …``, ``Action: @bob …``,
``AI: Bob to …``, ``Todo Bob: …``). A ticked box (``[x]``), a struck-through text (``~~…~~``) or a
closing ``(done)`` mark it done.

The note keeps its text exactly as written (the archive exports it back as it was);
the action record (:class:`~cafebot.storage.models.Action`) beside it has the owner,
matched to a person as check-ins are, and a status of DONE or UNKNOWN: imported
actions are history, never followed up.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, bindparam, func, insert, update
from sqlalchemy.orm import Session

from cafebot.core.text import unescape
from cafebot.storage.models import Action, ActionStatus, ItemNote, NoteKind, Series

# "Action:", "Action item -", "AI:", "Todo:", "To-do (Bob):", "todo Bob:" at a note's start
# (any letter case).
_PREFIX_RE = re.compile(
    r"^(?:action(?:\s+items?)?|ai|todo|to-do|to\s+do)"
    r"(?:\s*\((?P<paren>[^()\n]{1,80})\)"
    r"|\s+@(?P<handle>[A-Za-z0-9][A-Za-z0-9-]{0,38})(?=\s*:)"
    r"|\s+(?P<named>[^\W\d_][\w.'-]*(?:\s[^\W\d_][\w.'-]*){0,3})(?=\s*:))?"
    r"\s*[:\u2013\u2014-](?:\s+|$)",
    re.IGNORECASE,
)
_TAG_RE = re.compile(r"^\[name=(?P<name>[^\]\n]{1,100})\]\s*[:\u2013\u2014-]?\s*")
_BOLD_RE = re.compile(r"^\*\*(?P<name>[^*\n]{1,80}?)\*\*\s*[:\u2013\u2014-]?\s*")
_HANDLE_RE = re.compile(r"^@(?P<handle>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))\b[:,]?\s*")
# "Bob to write the notes", "Ada Lovelace will ask": a capitalised name, then "to"/"will".
_NAME_TO_RE = re.compile(r"^(?P<name>[A-Z][\w.'-]*(?:\s[A-Z][\w.'-]*){0,3})\s+(?:to|will)\s+")
_NAME_COLON_RE = re.compile(r"^(?P<name>[A-Z][\w.'-]*(?:\s[A-Z][\w.'-]*){0,3}):\s+")
_CHECKBOX_RE = re.compile(r"^\[(?P<mark>[ xX])\]\s*")
_STRUCK_RE = re.compile(r"^~~(?P<text>.+)~~\s*$", re.DOTALL)
_DONE_RE = re.compile(r"\s*[(\[](?:done|completed|closed)[)\]]\s*\.?$", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedAction:
    """An action recognised in an imported note."""

    text: str
    owner: str | None = None  # a name as written
    github: str | None = None  # or a handle
    done: bool = False


def recognise(kind: NoteKind, text: str) -> ParsedAction | None:
    """The action a note records, if it is one; None for other notes and decisions."""
    if kind is NoteKind.DECISION:
        return None
    first, _, more = text.partition("\n")
    rest = first.strip()
    owner = handle = None
    if kind is NoteKind.NOTE:
        m = _PREFIX_RE.match(rest)
        if m is None:
            return None
        owner = (m.group("paren") or m.group("named") or "").strip() or None
        handle = m.group("handle")
        rest = rest[m.end() :]
    done = False
    if m := _CHECKBOX_RE.match(rest):
        done, rest = m.group("mark") != " ", rest[m.end() :]
    github = handle
    if owner is None and github is None:
        owner, github, rest = _owner(rest)
    if m := _STRUCK_RE.match(rest):
        done, rest = True, m.group("text")
    if m := _DONE_RE.search(rest):
        done, rest = True, rest[: m.start()]
    body = "\n".join(part for part in (rest.strip(), more.strip()) if part)
    if not body:
        return None
    return ParsedAction(unescape(body), _clean_name(owner), github, done)


def _owner(rest: str) -> tuple[str | None, str | None, str]:
    """A name or handle at the start of an action's text: (name, handle, the rest)."""
    for pattern in (_TAG_RE, _BOLD_RE):
        if m := pattern.match(rest):
            return m.group("name"), None, rest[m.end() :]
    if m := _HANDLE_RE.match(rest):
        return None, m.group("handle"), rest[m.end() :]
    if m := _NAME_COLON_RE.match(rest):
        return m.group("name"), None, rest[m.end() :]
    if m := _NAME_TO_RE.match(rest):
        return m.group("name"), None, rest  # "Bob to write …" reads best whole
    return None, None, rest


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    value = unescape(name.strip().removeprefix("@"))
    return value or None


def _table(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - every model maps one table
    return table


@dataclass(frozen=True)
class ImportedAction:
    """A recognised action with what the importer knows of it: its note, meeting, owner."""

    note_id: int
    meeting_id: int
    item_ref: int
    note_ref: int
    created_at: dt.datetime
    parsed: ParsedAction
    owner_id: int | None


def store_imported(session: Session, row: Series, found: Sequence[ImportedAction]) -> None:
    """Store the actions of an import (bulk, as the importer writes), linked to their notes."""
    if not found:
        return
    series = _table(Series)
    counter = series.c.next_action_ref
    end: int = session.execute(
        update(series)
        .where(series.c.id == row.id)
        .values({counter: func.coalesce(counter, 1) + len(found)})
        .returning(counter)
    ).scalar_one()
    first = end - len(found)
    table = _table(Action)
    rows = [
        {
            "series_id": row.id,
            "number": first + index,
            "meeting_id": a.meeting_id,
            "item_ref": a.item_ref,
            "note_ref": a.note_ref,
            "text": a.parsed.text,
            "owner_id": a.owner_id,
            "author_id": None,
            "status": ActionStatus.DONE if a.parsed.done else ActionStatus.UNKNOWN,
            "status_by_id": None,
            "status_at": a.created_at if a.parsed.done else None,
            "due_on": None,
            "message_id": None,
            "created_at": a.created_at,
            "imported": True,
        }
        for index, a in enumerate(found)
    ]
    ids = session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
    ).scalars()
    notes = _table(ItemNote)
    session.execute(
        update(notes).where(notes.c.id == bindparam("note")).values(action_id=bindparam("action")),
        [{"note": a.note_id, "action": action_id} for action_id, a in zip(ids, found, strict=True)],
    )
