"""The agenda as it reads: its open items in order, their total, and the listing.

The read side shared by the entry commands, the live meeting, the reminders and
the informational commands; it imports none of them.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from cafebot.cafe import meetings
from cafebot.cafe.context import Context
from cafebot.commands.converters import format_estimate
from cafebot.core.text import fragment, one_line, zulip_time
from cafebot.storage import actions as store_actions
from cafebot.storage.models import AgendaItem, ItemNote, Meeting, NoteKind, name_at


def open_items(meeting: Meeting) -> list[AgendaItem]:
    """The items still on the meeting's agenda (not moved elsewhere), in order."""
    return [
        i
        for i in sorted(meeting.agenda_items, key=lambda i: (i.position, i.ref))
        if i.moved_to is None
    ]


def renumber(items: list[AgendaItem]) -> None:
    for position, item in enumerate(items, start=1):
        item.position = position


def agenda_total(items: list[AgendaItem]) -> tuple[int, int]:
    """The agenda's total estimate as (low, high) minutes; items without one count zero."""
    low = sum(i.estimate_min or 0 for i in items if i.moved_to is None)
    high = sum((i.estimate_max or i.estimate_min or 0) for i in items if i.moved_to is None)
    return low, high


def item_line(item: AgendaItem) -> str:
    estimate = (
        f"({format_estimate(item.estimate_min, item.estimate_max)}) " if item.estimate_min else ""
    )
    who = f" — {fragment(name_at(item.meeting, item.proposer))}" if item.proposer else ""
    return f"A{item.ref} {estimate}{fragment(item.topic)}{who}"


def estimate_prefix(low: int | None, high: int | None) -> str:
    return f"({format_estimate(low, high)}) " if low is not None else ""


def total_line(ctx: Context, meeting: Meeting) -> str:
    low, high = agenda_total(open_items(meeting))
    slot = int(ctx.series.duration.total_seconds() // 60)
    total = format_estimate(low, high if high != low else None) if low else "0 min"
    warning = " — more than the meeting's length" if low > slot else ""
    return f"Estimated time: {total} of {slot} min{warning}"


def listing(ctx: Context, meeting: Meeting) -> str:
    """Every entry of ``meeting`` with its reference, and the agenda's total estimate."""
    state = meetings.status(meeting, ctx.now).value
    lines = [
        f"**{fragment(ctx.series.name)} · {meeting.date.isoformat()}** "
        f"({zulip_time(meeting.starts_at)}, {state})",
        "",
        "**Agenda**",
    ]
    items = open_items(meeting)
    if not items:
        lines.append("No items yet. Propose one: `agenda 10m Release plans`")
    for item in items:
        who = f" — {fragment(name_at(meeting, item.proposer))}" if item.proposer else ""
        carried = f" _(carried over from {item.carried_from})_" if item.carried_from else ""
        done = " ✔" if item.state.value == "done" else ""
        lines.append(
            f"- **A{item.ref}** {estimate_prefix(item.estimate_min, item.estimate_max)}"
            f"{fragment(item.topic)}{who}{carried}{done}"
        )
        lines += [f"    - {note_line(item, note)}" for note in item.notes]
    moved = [i for i in meeting.agenda_items if i.moved_to is not None]
    for item in sorted(moved, key=lambda i: i.ref):
        lines.append(f"- ~~A{item.ref} {fragment(item.topic)}~~ moved to {item.moved_to}")
    lines.append(total_line(ctx, meeting))
    still_open = open_actions_line(ctx.session, meeting)
    if still_open:
        lines.append(still_open)
    if meeting.checkins:
        lines += ["", f"**Check-ins** ({len(meeting.checkins)})"]
        for c in meeting.checkins:
            fields = [c.name] + ([f"@{c.github}"] if c.github else [])
            fields += [c.affiliation] if c.affiliation else []
            lines.append(f"- **C{c.ref}** {fragment(' / '.join(fields))}")
    if meeting.introductions:
        lines += ["", "**Introductions**"]
        for i in meeting.introductions:
            lines.append(f"- **I{i.ref}** {fragment(name_at(meeting, i.person))}: {_short(i.text)}")
    if meeting.shoutouts:
        lines += ["", "**Shout-outs**"]
        for s in meeting.shoutouts:
            project = f"[{fragment(s.project)}] " if s.project else ""
            who = f" — {fragment(name_at(meeting, s.author))}" if s.author else ""
            lines.append(f"- **S{s.ref}** {project}{_short(s.text)}{who}")
    return "\n".join(lines)


def open_actions_line(session: Session, meeting: Meeting) -> str | None:
    """How many actions are still open from earlier meetings (`list`, the reminders)."""
    count = store_actions.count_open_before(session, meeting)
    if not count:
        return None
    were = "action is" if count == 1 else "actions are"
    return f"{count} {were} still open from earlier meetings: `actions` lists them."


def note_line(item: AgendaItem, note: ItemNote) -> str:
    """A note, decision or action under an item, by its sub-reference: ``**A2.1** text``."""
    kind = {NoteKind.DECISION: "**Decision**: ", NoteKind.ACTION: "**Action**: "}
    owner = f"{fragment(note.owner.display_name)} — " if note.owner else ""
    label = f" (**{note.action.label}**, {note.action.status.value})" if note.action else ""
    return (
        f"**A{item.ref}.{note.position}** {kind.get(note.kind, '')}{owner}{_short(note.text)}"
        f"{label}"
    )


def _short(text: str, limit: int = 200) -> str:
    flat = one_line(text)
    return fragment(flat if len(flat) <= limit else flat[: limit - 1] + "…")
