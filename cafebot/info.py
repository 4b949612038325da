"""Commands that show things: help, the agenda listing, the next meeting, notes previews."""

from __future__ import annotations

from cafebot import meetings
from cafebot.commands import REGISTRY, Outcome, command, help_for, help_overview
from cafebot.context import Context
from cafebot.converters import MeetingDate, format_estimate
from cafebot.entries import agenda_total, open_items
from cafebot.errors import UserError
from cafebot.models import AgendaItem, ItemNote, Meeting, NoteKind
from cafebot.text import inline, one_line, zulip_time


def _estimate(low: int | None, high: int | None) -> str:
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
        f"**{inline(ctx.series.name)} · {meeting.date.isoformat()}** "
        f"({zulip_time(meeting.starts_at)}, {state})",
        "",
        "**Agenda**",
    ]
    items = open_items(meeting)
    if not items:
        lines.append("No items yet. Propose one: `agenda 10m Release plans`")
    for item in items:
        who = f" — {inline(item.proposer.display_name)}" if item.proposer else ""
        carried = f" _(carried over from {item.carried_from})_" if item.carried_from else ""
        done = " ✔" if item.state.value == "done" else ""
        lines.append(
            f"- **A{item.ref}** {_estimate(item.estimate_min, item.estimate_max)}"
            f"{inline(item.topic)}{who}{carried}{done}"
        )
        lines += [f"    - {note_line(item, note)}" for note in item.notes]
    moved = [i for i in meeting.agenda_items if i.moved_to is not None]
    for item in sorted(moved, key=lambda i: i.ref):
        lines.append(f"- ~~A{item.ref} {inline(item.topic)}~~ moved to {item.moved_to}")
    lines.append(total_line(ctx, meeting))
    if meeting.checkins:
        lines += ["", f"**Check-ins** ({len(meeting.checkins)})"]
        for c in meeting.checkins:
            fields = [c.name] + ([f"@{c.github}"] if c.github else [])
            fields += [c.affiliation] if c.affiliation else []
            lines.append(f"- **C{c.ref}** {inline(' / '.join(fields))}")
    if meeting.introductions:
        lines += ["", "**Introductions**"]
        for i in meeting.introductions:
            lines.append(f"- **I{i.ref}** {inline(i.person.display_name)}: {_short(i.text)}")
    if meeting.shoutouts:
        lines += ["", "**Shout-outs**"]
        for s in meeting.shoutouts:
            project = f"[{inline(s.project)}] " if s.project else ""
            who = f" — {inline(s.author.display_name)}" if s.author else ""
            lines.append(f"- **S{s.ref}** {project}{_short(s.text)}{who}")
    return "\n".join(lines)


def note_line(item: AgendaItem, note: ItemNote) -> str:
    """A note, decision or action under an item, by its sub-reference: ``**A2.1** text``."""
    kind = {NoteKind.DECISION: "**Decision**: ", NoteKind.ACTION: "**Action**: "}
    owner = f"{inline(note.owner.display_name)} — " if note.owner else ""
    return f"**A{item.ref}.{note.position}** {kind.get(note.kind, '')}{owner}{_short(note.text)}"


def _short(text: str, limit: int = 200) -> str:
    flat = one_line(text)
    return inline(flat if len(flat) <= limit else flat[: limit - 1] + "…")


@command("list", aliases=("ls", "entries"), examples=("list",), group="Meetings")
def list_entries(ctx: Context) -> Outcome:
    """Show the entries of the meeting that new entries go to, with their references."""
    return Outcome(reply=listing(ctx, ctx.target_meeting()))


@command("next", aliases=("when",), examples=("next",), group="Meetings")
def next_meeting(ctx: Context) -> Outcome:
    """When the next meeting is (in your own time zone), its link and agenda."""
    meeting = ctx.target_meeting()
    name = inline(ctx.series.name)
    minutes = int(ctx.series.duration.total_seconds() // 60)
    if meetings.status(meeting, ctx.now) is meetings.Status.CURRENT:
        head = f"The {name} is on now: it started {zulip_time(meeting.starts_at)}."
    else:
        head = f"The next {name} is {zulip_time(meeting.starts_at)} ({minutes} min)."
    lines = [head]
    if ctx.series.link:
        lines.append(f"Join: {ctx.series.link}")
    items = open_items(meeting)
    if items:
        lines.append(f"Agenda ({len(items)} item{'s' if len(items) != 1 else ''}):")
        for item in items:
            estimate = _estimate(item.estimate_min, item.estimate_max)
            lines.append(f"- A{item.ref} {estimate}{inline(item.topic)}")
        lines.append(total_line(ctx, meeting))
    else:
        lines.append("The agenda is empty so far: `agenda 10m Your topic` adds an item.")
    return Outcome(reply="\n".join(lines))


@command(
    "notes",
    aliases=("preview",),
    examples=("notes", "notes last", "notes 2031-06-17"),
    group="Meetings",
)
def notes(ctx: Context, which: MeetingDate | None) -> Outcome:
    """Preview a meeting's notes: the current or next meeting, `last`, or a date.

    Each note, decision and action shows its sub-reference (`A2.1`), which
    `edit` and `remove` take; the published notes do not show them.
    """
    from cafebot.notes import Flavour, render

    if which is None or which.relative == "next":
        meeting = ctx.target_meeting()
    elif which.relative == "last":
        found = meetings.last(ctx.session, ctx.series_row, ctx.now)
        if found is None:
            raise UserError(
                f"The {ctx.series.name} has not met yet.", show_usage=False, example="notes next"
            )
        meeting = found
    else:
        assert which.date is not None  # noqa: S101 - MeetingDate has a date or a relative
        meeting = ctx.meeting_on(which.date)
    # A preview shows each note's sub-reference (A2.1), for `edit` and `remove`.
    return Outcome(reply=render(meeting, Flavour(ctx.notes_flavour), ctx.series, refs=True))


@command(
    "help",
    aliases=("?", "commands"),
    examples=("help", "help agenda"),
    needs_series=False,
    group="Help",
)
def help_command(ctx: Context, topic: str | None) -> Outcome:
    """List the commands, or explain one."""
    if topic is None:
        return Outcome(reply=help_overview())
    word = topic.split()[0].lower()
    spec = REGISTRY.find(word)
    if spec is None:
        from cafebot.commands import unknown_command

        raise unknown_command(word)
    return Outcome(reply=help_for(spec))


@command("use", examples=("use jupyterbook",), needs_series=False, group="Help")
def use(ctx: Context, series: str) -> Outcome:
    """Choose the series your direct messages to the bot address."""
    from cafebot.meetings import series_row

    chosen = ctx.settings.series_by_key(series.strip().lstrip("@"))
    if chosen is None:
        known = ", ".join(f"`{s.key}`" for s in ctx.settings.series)
        raise UserError(f"There is no series '{one_line(series)[:40]}'. The series are: {known}.")
    ctx.person.default_series_id = series_row(ctx.session, chosen).id
    return Outcome(
        reply=f"Your direct messages now address the {chosen.name} (`{chosen.key}`).",
        reaction="check",
    )
