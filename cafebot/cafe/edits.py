"""Edited and deleted messages: the entry a message made follows it.

A user who edits or deletes the Zulip message that made an entry (or recorded a
note) edits or deletes the entry; the dispatcher (:mod:`cafebot.bot.app`) calls
these in the edit's own unit of work.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cafebot.cafe import action_notes, people
from cafebot.cafe.context import Context, Entry
from cafebot.cafe.entries import add_notes, note_lines, update_entry
from cafebot.commands.converters import Mention, Ref
from cafebot.commands.errors import UserError
from cafebot.commands.registry import Spec
from cafebot.core.text import clean, continuation_text
from cafebot.storage.models import AgendaItem, CheckIn, Introduction, ItemNote, NoteKind, ShoutOut

# The command that makes each kind of entry, by its name in the registry.
_MADE_BY: dict[str, type[Entry]] = {
    "agenda": AgendaItem,
    "shoutout": ShoutOut,
    "intro": Introduction,
    "checkin": CheckIn,
}
_NOTE_COMMANDS = {"note": NoteKind.NOTE, "decision": NoteKind.DECISION, "action": NoteKind.ACTION}
_LETTER = {AgendaItem: "A", ShoutOut: "S", Introduction: "I", CheckIn: "C"}


def entry_label(entry: Entry) -> str:
    return f"{_LETTER[type(entry)]}{entry.ref}"


def made_by_message(session: Session, message_id: int) -> tuple[list[Entry], list[ItemNote]]:
    """The entries a chat message made, and the notes it recorded (an agenda item's first notes
    carry its message too)."""
    found: list[Entry] = []
    for model in (AgendaItem, ShoutOut, Introduction, CheckIn):
        found.extend(session.scalars(select(model).where(model.message_id == message_id)))
    notes = list(
        session.scalars(
            select(ItemNote).where(ItemNote.message_id == message_id).order_by(ItemNote.position)
        )
    )
    return found, notes


def follow_edit(
    ctx: Context,
    entry: Entry | None,
    notes: list[ItemNote],
    spec: Spec | None,
    rest: str,
    more: list[str],
) -> str:
    """The message that made ``entry`` (or recorded ``notes``) now reads ``spec rest / more``.

    The entry is re-parsed with its command's own grammar and updated in place,
    keeping its reference. A :class:`UserError` (nothing changed) says why an
    edit that no longer parses was not followed. Returns the label of what changed.
    """
    if entry is not None:
        label = entry_label(entry)
        maker = next(name for name, model in _MADE_BY.items() if isinstance(entry, model))
        _require_same_command(spec, maker, label)
        assert spec is not None  # noqa: S101 - checked just above
        args = spec.parse(rest, more)  # the command's own grammar and limits
        if isinstance(entry, AgendaItem):
            if args.get("topic") is None:
                raise UserError(
                    f"After your edit the message has no topic, so {label} stays as it was.",
                    example="agenda 10m Release plans",
                )
            update_entry(ctx, entry, rest, whole=True)
            _replace_own_notes(ctx, entry, note_lines(more))
        else:
            lines = continuation_text(more)
            text = "\n".join([rest, *lines]).strip() if spec.more_lines == "text" else rest
            update_entry(ctx, entry, text, whole=True)
        return label
    note = notes[0]
    word = note.kind.value
    _require_same_command(spec, word, f"your {word} under A{note.item.ref}")
    assert spec is not None  # noqa: S101 - checked just above
    args = spec.parse(rest, more)
    ref: Ref | None = args.get("ref")
    if ref is not None and (ref.kind != "A" or ref.number != note.item.ref):
        raise UserError(
            f"A {word} cannot move to another agenda item by an edit, so it stays under "
            f"A{note.item.ref}. Delete the message and post the {word} again.",
            show_usage=False,
        )
    text = clean(args.get("text") or "")
    if not text:
        raise UserError(f"What should the {word} say? It stays as it was.")
    note.text = text
    if note.kind is NoteKind.ACTION:
        owner: Mention | None = args.get("owner")
        note.owner = people.for_mention(ctx.session, owner, ctx.now) if owner else None
        if note.action is not None:
            action_notes.follow_note(note)
    return f"the {word} under A{note.item.ref}"


def _require_same_command(spec: Spec | None, word: str, what: str) -> None:
    if spec is None or spec.name != word:
        raise UserError(
            f"Your message made {what}; after your edit it is no longer a `{word}` command, "
            f"so {what} stays as it was. Delete the message to remove it.",
            show_usage=False,
        )


def _replace_own_notes(ctx: Context, item: AgendaItem, texts: list[str]) -> None:
    """The item's first notes (made by its message) become ``texts``, keeping their places."""
    own = [n for n in item.notes if n.message_id is not None and n.message_id == ctx.message.id]
    for note, text in zip(own, texts, strict=False):
        note.text = text
    for note in own[len(texts) :]:
        item.notes.remove(note)
    if len(texts) > len(own):
        add_notes(ctx, item, NoteKind.NOTE, texts[len(own) :])


def follow_delete(session: Session, message_id: int) -> list[str]:
    """The message that made entries was deleted: remove them. Returns what was removed."""
    found, notes = made_by_message(session, message_id)
    removed = []
    for entry in found:
        removed.append(entry_label(entry))
        meeting = entry.meeting
        session.delete(entry)
        if isinstance(entry, AgendaItem) and meeting.current_item_ref == entry.ref:
            meeting.current_item_ref = None
    for note in notes:
        if note.item in found:
            continue  # went with its item
        removed.append(f"the {note.kind.value} under A{note.item.ref}")
        gone = note.action
        note.item.notes.remove(note)
        if gone is not None:
            session.delete(gone)  # and, with it, its notes in every meeting
    return removed
