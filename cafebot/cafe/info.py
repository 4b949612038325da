"""Commands that show things: help, the agenda listing, the next meeting, notes previews."""

from __future__ import annotations

from cafebot.cafe import meetings
from cafebot.cafe.agenda import estimate_prefix, listing, open_items, total_line
from cafebot.cafe.context import Context
from cafebot.commands.converters import MeetingDate
from cafebot.commands.errors import UserError
from cafebot.commands.registry import REGISTRY, Outcome, command, help_for, help_overview
from cafebot.core.text import fragment, one_line, zulip_time


@command("list", aliases=("ls", "entries"), examples=("list",), group="Meetings")
def list_entries(ctx: Context) -> Outcome:
    """Show the entries of the meeting that new entries go to, with their references."""
    return Outcome(reply=listing(ctx, ctx.target_meeting()))


@command("next", aliases=("when",), examples=("next",), group="Meetings")
def next_meeting(ctx: Context) -> Outcome:
    """When the next meeting is (in your own time zone), its link and agenda."""
    meeting = ctx.target_meeting()
    name = fragment(ctx.series.name)
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
            estimate = estimate_prefix(item.estimate_min, item.estimate_max)
            lines.append(f"- A{item.ref} {estimate}{fragment(item.topic)}")
        lines.append(total_line(ctx, meeting))
    else:
        lines.append("The agenda is empty so far: `agenda 10m Your topic` adds an item.")
    if ctx.series.calendar_url:
        lines.append(f"Calendar (subscribe in your calendar app): {ctx.series.calendar_url}")
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
    from cafebot.notes.render import Flavour, render

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
        from cafebot.commands.registry import unknown_command

        raise unknown_command(word)
    return Outcome(reply=help_for(spec))


@command("use", examples=("use jupyterbook",), needs_series=False, group="Help")
def use(ctx: Context, series: str) -> Outcome:
    """Choose the series your direct messages to the bot address."""
    from cafebot.cafe.meetings import series_row

    chosen = ctx.settings.series_by_key(series.strip().lstrip("@"))
    if chosen is None:
        known = ", ".join(f"`{s.key}`" for s in ctx.settings.series)
        raise UserError(f"There is no series '{one_line(series)[:40]}'. The series are: {known}.")
    ctx.person.default_series_id = series_row(ctx.session, chosen).id
    return Outcome(
        reply=f"Your direct messages now address the {chosen.name} (`{chosen.key}`).",
        reactions=("check",),
    )
