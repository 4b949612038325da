"""A meeting's notes, rendered: the pad's archive format, or for posting on Zulip.

:func:`render` is a pure function of a meeting (its ORM object and the
entries hanging from it) and the series settings. The archive flavour writes
the canonical forms of ``notes-format.md``; the Zulip flavour carries the same
content in Zulip's dialect (bold names instead of ``[name=...]`` tags, silent
mentions for action owners, ``*italics*``, Zulip's emoji names).

All user text goes through :mod:`cafebot.core.text`: whatever people type, it
cannot open a heading, a fence, a quote, a table or a ``:::`` block, cannot
break the list it stands in, and cannot ping anyone.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import emoji
from sqlalchemy.orm import object_session

from cafebot.core.config import SeriesSettings
from cafebot.core.estimates import format_estimate
from cafebot.core.text import (
    escape_html,
    escape_line_start,
    escape_pad_line,
    fragment,
    mention_name_safe,
    name_tag_safe,
    one_line,
    silence_mentions,
    strong,
    text_lines,
)
from cafebot.notes.records import opens_like_a_head, opens_like_a_note_kind
from cafebot.storage.actions import reviewed_at
from cafebot.storage.models import (
    Action,
    AgendaItem,
    CheckIn,
    Introduction,
    ItemState,
    Meeting,
    NoteKind,
    Person,
    ShoutOut,
)

INDENT = "    "  # one level of nested bullets
EMPTY = "(empty)"  # what an entry with no text at all shows

CHECKIN_HEADING = "### Check-in :raising_hand:"
INTRO_HEADING = "### Introduce yourself! :wave:"
SHOUTOUT_HEADING = "### Celebrations and Shout-Outs :tada:"
AGENDA_HEADING = "### Agenda :clock2:"
ZULIP_AGENDA_HEADING = "### Agenda :time:"  # Zulip has no :clock2:; :time: is its clock
# Earlier meetings' actions, reviewed (README, "Action items"); Zulip's ✅ is :check:.
REVIEW_HEADING = "### Action items :white_check_mark:"
ZULIP_REVIEW_HEADING = "### Action items :check:"
REVIEW_PROMPT = "Actions from earlier meetings: done since last time, and still open."

_BULLET_PROMPT_RE = re.compile(r"^[-*+]\s+")
_UNDERSCORE_ITALIC_RE = re.compile(r"^_(\S(?:.*\S)?)_$")
# A second check-in field that reads as a GitHub handle (the archive has handles without @).
_HANDLE_LIKE_RE = re.compile(r"^@?[A-Za-z0-9-]+$")


def _shortcode(char: str, data: dict[str, Any]) -> str:
    """An emoji's shortcode in the pad: the shortest of its names, which is the one the
    pads and GitHub know (``:tada:`` rather than ``:party_popper:``, ``:heart:``)."""
    names = [data.get("en", ""), *data.get("alias", [])]
    return min((n for n in names if n), key=len, default=char)


# A block is a run of lines with no blank line in it; blocks are joined by one blank line.
Block = list[str]


class Flavour(enum.StrEnum):
    ARCHIVE = "archive"  # the pad's Markdown, for the archive file
    ZULIP = "zulip"  # for a Zulip message


def render(
    meeting: Meeting, flavour: Flavour, series: SeriesSettings | None = None, *, refs: bool = False
) -> str:
    """The notes of one meeting, as Markdown ending with a newline.

    A meeting imported from the archive keeps its source until the bot changes it
    (notes-format.md, fidelity rule 2): the archive flavour is that source then.
    ``refs``: a preview, which ends each note's first line with its sub-reference
    (`A2.1`); the format has no place for them, so published notes never show them.
    """
    flavour = Flavour(flavour)
    archive = meeting.archive
    if flavour is Flavour.ARCHIVE and archive is not None and archive.source is not None:
        source = archive.source
        return source if source.endswith("\n") else source + "\n"
    kept = _Kept.of(meeting)
    names = {id(c.person): c.name for c in meeting.checkins if c.name and c.person is not None}
    renderer = _Renderer(flavour, series or SeriesSettings(key="cafe"), kept, names, refs)
    return renderer.meeting(meeting)


def render_archive_file(
    title: str, meetings: Sequence[Meeting], series: SeriesSettings | None = None
) -> str:
    """A whole archive file: the title, then each meeting in the order given (newest first)."""
    parts = [f"# {escape_html(fragment(title))}".rstrip() + "\n"]
    parts += [render(m, Flavour.ARCHIVE, series) for m in meetings]
    return "\n".join(parts)


# ---------------------------------------------------------------- rendering

# An entry's lines, after the line (a shout-out's project) that starts a new group, if any.
Entry = tuple[str | None, Block]


@dataclass(frozen=True)
class _Kept:
    """What an imported meeting kept besides its records (cafebot.notes.archive).

    Its free text, by section, with how many entries of the section stood before
    each block; and its own prompts, which replace the series' (an imported section
    without a prompt gets none).
    """

    imported: bool = False
    prompts: Mapping[str, str] = field(default_factory=dict)
    blocks: Mapping[str, Sequence[tuple[int, str]]] = field(default_factory=dict)

    @classmethod
    def of(cls, meeting: Meeting) -> _Kept:
        if meeting.archive is None:
            return _NOTHING_KEPT
        prompts: dict[str, str] = {}
        blocks: dict[str, list[tuple[int, str]]] = {}
        for block in meeting.archive_blocks:
            if block.kind == "prompt":
                prompts.setdefault(block.section, block.text)
            else:
                blocks.setdefault(block.section, []).append((block.after_entries, block.text))
        return cls(True, prompts, blocks)

    def at(self, section: str, index: int, *, last: bool = False) -> list[str]:
        """The blocks before entry ``index`` (``last``: after the final entry, all the rest)."""
        return [
            text
            for after, text in self.blocks.get(section, ())
            if after == index or (last and after > index)
        ]


_NOTHING_KEPT = _Kept()


@dataclass(frozen=True)
class _Renderer:
    flavour: Flavour
    series: SeriesSettings
    kept: _Kept = _NOTHING_KEPT
    # Each person's name at this meeting, by the person object (one per session): the
    # one they checked in with (models.name_at).
    names: Mapping[int, str] = field(default_factory=dict)
    refs: bool = False  # a preview: each note shows its sub-reference

    def name(self, person: Person) -> str:
        return self.names.get(id(person)) or person.display_name

    @property
    def zulip(self) -> bool:
        return self.flavour is Flavour.ZULIP

    def meeting(self, meeting: Meeting) -> str:
        blocks: list[Block] = [[self.heading(meeting)]]
        blocks += [self.free(text) for text in self.kept.at("top", 0, last=True)]
        blocks += self.checkins(meeting.checkins)
        if meeting.introductions or self.kept.blocks.get("intro"):
            blocks += self.introductions(meeting.introductions)
        blocks += self.shoutouts(meeting.shoutouts)
        blocks += self.agenda(meeting.agenda_items)
        blocks += self.action_review(meeting)
        # Pieces put side by side on a line must not make a mention either (``@`` +
        # ``**all**``). A mention is looked for within a line, not across lines: a line is a
        # block of its own (a heading, a list item; Zulip reads no mention across two) or
        # part of one piece, silenced whole already (free() and each entry's text).
        text = "\n\n".join("\n".join(block) for block in blocks if block)
        return "\n".join(silence_mentions(line).rstrip() for line in text.split("\n")) + "\n"

    def heading(self, meeting: Meeting) -> str:
        date = meeting.date.isoformat()
        if not self.zulip:
            return f"## {date}"
        name = fragment(self.series.name)
        return f"## {name} notes: {date}" if name else f"## Notes: {date}"

    # -------------------------------------------------------- sections

    def section(self, heading: str, key: str, entries: Sequence[Entry]) -> list[Block]:
        """A heading, its prompt, and its entries as one list (a bullet prompt joins the list).

        A line that starts a group (a shout-out's project) and the free text an
        imported meeting kept in the section stand between the entries as blocks.
        """
        blocks: list[Block] = [[heading]]
        prompt, is_bullet = self.prompt(key)
        current: Block = [prompt] if prompt and is_bullet else []
        if prompt and not is_bullet:
            blocks.append([prompt])
        for index, (opener, lines) in enumerate(entries):
            for text in self.kept.at(key, index):
                blocks += [current, self.free(text)]
                current = []
            if opener is not None:
                blocks += [current, [opener]]
                current = []
            current = current + lines
        for text in self.kept.at(key, len(entries), last=True):
            blocks += [current, self.free(text)]
            current = []
        blocks.append(current)
        return blocks

    def free(self, text: str) -> Block:
        """Free text an imported meeting kept, mentions silent: verbatim otherwise in the pad,
        in Zulip's dialect there."""
        lines = silence_mentions(text).split("\n")
        return [_zulip_free_line(line) for line in lines] if self.zulip else lines

    def prompt(self, key: str) -> tuple[str, bool]:
        """The section's prompt (trusted, but still kept to one safe line).

        The series' prompt; for an imported meeting, the one it had (if any).
        """
        raw = self.kept.prompts.get(key, "") if self.kept.imported else self.series.prompt(key)
        text = silence_mentions(one_line(raw))
        bullet = _BULLET_PROMPT_RE.match(text)
        if bullet:
            text = text[bullet.end() :]
        if self.zulip:
            # Zulip reads only *asterisks* as italics.
            text = _UNDERSCORE_ITALIC_RE.sub(r"*\1*", text)
        text = escape_line_start(text, zulip=self.zulip)
        if not text:
            return "", False
        return (f"- {text}", True) if bullet else (text, False)

    def checkins(self, checkins: Iterable[CheckIn]) -> list[Block]:
        entries: list[Entry] = []
        for checkin in sorted(checkins, key=lambda c: c.ref):
            handle = self.text(checkin.github or "").lstrip("@")
            affiliation = self.text(checkin.affiliation or "")
            fields = [self.text(checkin.name), f"@{handle}" if handle else "", affiliation]
            line = " / ".join(f for f in fields if f)
            if not handle and _HANDLE_LIKE_RE.match(affiliation):
                line = f"{fields[0]} / / {affiliation}"  # Google is no handle here
            entries.append((None, [self.bullet(0, line)]))
        return self.section(CHECKIN_HEADING, "checkin", entries)

    def introductions(self, introductions: Iterable[Introduction]) -> list[Block]:
        entries: list[Entry] = []
        for intro in sorted(introductions, key=lambda i: i.ref):
            name = self.text(self.name(intro.person)) if intro.person is not None else ""
            first, more = self.first_and_more(intro.text)
            lines = [self.bullet(0, f"{name}: {first}" if name and first else name or first)]
            lines += [self.bullet(1, line) for line in more]
            entries.append((None, lines))
        return self.section(INTRO_HEADING, "intro", entries)

    def shoutouts(self, shoutouts: Iterable[ShoutOut]) -> list[Block]:
        """Shout-outs without a project first, then each project's under its line."""
        ungrouped: list[Entry] = []
        groups: dict[str, list[Entry]] = {}  # by case-folded project
        for shout in sorted(shoutouts, key=lambda s: s.ref):
            first, more = self.first_and_more(shout.text)
            lines = [self.bullet(0, _words(self.tag(shout.author), first))]
            lines += [self.bullet(1, line) for line in more]
            project = self.text(shout.project or "")
            if not project:
                ungrouped.append((None, lines))
                continue
            group = groups.setdefault(project.casefold(), [])
            group.append((self.paragraph(project) if not group else None, lines))
        entries = ungrouped + [entry for group in groups.values() for entry in group]
        return self.section(SHOUTOUT_HEADING, "shoutout", entries)

    def agenda(self, items: Iterable[AgendaItem]) -> list[Block]:
        entries: list[Entry] = [
            (None, self.agenda_item(item))
            for item in sorted(items, key=lambda i: (i.position, i.ref))
        ]
        heading = ZULIP_AGENDA_HEADING if self.zulip else AGENDA_HEADING
        return self.section(heading, "agenda", entries)

    def action_review(self, meeting: Meeting) -> list[Block]:
        """The review of earlier meetings' actions, in a meeting run live (where `start`
        reviewed them), when there is any: those closed since last time, those still open."""
        session = object_session(meeting)
        if session is None or meeting.started_at is None or meeting.archive is not None:
            return []
        closed, still_open = reviewed_at(session, meeting)
        if not closed and not still_open:
            return []
        lines = [self.review_line(a, a.status.value.capitalize()) for a in closed]
        lines += [self.review_line(a, "Open") for a in still_open]
        heading = ZULIP_REVIEW_HEADING if self.zulip else REVIEW_HEADING
        return [[heading], [self.italic(REVIEW_PROMPT)], lines]

    def review_line(self, action: Action, status: str) -> str:
        first, _ = self.first_and_more(action.text)
        due = f", due by {action.due_on.isoformat()}" if action.due_on else ""
        where = f"({action.label}, from {action.meeting.date.isoformat()}{due})"
        return self.bullet(0, _words(f"**{status}** -", self.owner(action.owner), first, where))

    # -------------------------------------------------------- entries

    def agenda_item(self, item: AgendaItem) -> Block:
        estimate = format_estimate(item.estimate_min, item.estimate_max)
        first, more = self.first_and_more(item.topic)
        tag = self.tag(item.proposer)
        if estimate:
            head = f"({estimate}):"
        elif tag and opens_like_a_head(first):
            # "[name=Ada] 10 min of fun" would read as a 10-minute estimate, and
            # "[name=Ada] - x" as a separator: a separator of our own keeps the topic whole.
            head = "-"
        else:
            head = ""
        line = _words(tag, head, first)
        carried = f"(carried over from {item.carried_from})" if item.carried_from else ""
        moved = item.state in (ItemState.DEFERRED, ItemState.CARRIED_OVER) and item.moved_to
        if moved:
            marker = _words(carried, f"(moved to {item.moved_to})")
            # The pad shows a moved item as a whole italic line; Zulip cannot nest
            # italics around bold names, so there only the marker is italic.
            line = _words(line, self.italic(marker)) if self.zulip else f"_{_words(line, marker)}_"
        elif carried:
            line = _words(line, self.italic(carried))
        out = [self.bullet(0, line)]
        out += [self.bullet(1, extra) for extra in more]
        for note in sorted(item.notes, key=lambda n: n.position):
            first, more = self.first_and_more(note.text)
            if note.kind is NoteKind.DECISION:
                line = _words("**Decision** -", first)
            elif note.kind is NoteKind.ACTION:
                line = _words("**Action** -", self.owner(note.owner), first)
            else:
                line = first
            if not line:
                continue  # an empty note says nothing
            # A note of its own that opens like "**Decision**" must not read as a decision.
            literal = note.kind is NoteKind.NOTE and opens_like_a_note_kind(line)
            ref = f" `A{item.ref}.{note.position}`" if self.refs else ""
            if self.refs and note.action is not None:
                ref += f" `{note.action.label}`"  # the action's own reference
            out.append(self.bullet(1, line, literal_start=literal) + ref)
            out += [self.bullet(2, extra) for extra in more]
        return out

    # -------------------------------------------------------- pieces

    def text(self, raw: str) -> str:
        """User text for the middle of a line (made safe as part of the whole line)."""
        return fragment(raw)

    def first_and_more(self, raw: str) -> tuple[str, list[str]]:
        """Multi-line user text: its first line (for the bullet) and the others (nested)."""
        lines = text_lines(raw)
        return (lines[0], lines[1:]) if lines else ("", [])

    def paragraph(self, content: str, *, literal_start: bool = False) -> str:
        """A line of its own, made safe as a whole.

        HTML is escaped over the whole line, not piece by piece: a backtick in
        one piece could otherwise pair with one in the next and leave a tag
        that the piece's own scan took for code outside the code span.

        In the pad, the escaping is exact as well: the archive reader undoes
        the backslash escapes (cafebot.core.text.unescape) and gets the text back,
        a backslash the user wrote included (:func:`escape_pad_line`).
        ``literal_start`` escapes the first character too (see there).
        """
        if self.zulip:
            return escape_line_start(content, zulip=True)
        # notes-format.md: "Emoji are written as shortcodes (:tada:, ...), not as Unicode
        # characters" in the pad; Zulip shows Unicode emoji as they are.
        content = emoji.replace_emoji(content, replace=_shortcode)
        return escape_pad_line(content, literal_start=literal_start)

    def bullet(self, depth: int, content: str, *, literal_start: bool = False) -> str:
        # A bare "-" could underline the line above into a heading (Zulip's Markdown).
        line = self.paragraph(content, literal_start=literal_start)
        return f"{INDENT * depth}- {line or EMPTY}"

    def italic(self, text: str) -> str:
        if not text:
            return ""
        return f"*{text}*" if self.zulip else f"_{text}_"

    def tag(self, person: Person | None) -> str:
        """Who proposed or gave the entry: ``[name=Who]`` in the pad, ``**Who**`` on Zulip."""
        if person is None:
            return ""
        if self.zulip:
            return strong(self.name(person))
        name = name_tag_safe(self.name(person))
        return f"[name={name}]" if name else ""

    def owner(self, person: Person | None) -> str:
        """An action's owner: a silent mention on Zulip where we know their Zulip account."""
        if person is None:
            return ""
        if self.zulip and person.zulip_user_id is not None:
            # Zulip resolves @_**Name|id** only when Name is the user's Zulip full name;
            # without it (or where it cannot be written so) the id alone does.
            name = mention_name_safe(person.zulip_name or "") or ""
            return f"@_**{name}|{person.zulip_user_id}**"
        return self.tag(person)


def _words(*parts: str) -> str:
    return " ".join(p for p in parts if p)


_CONTAINER_OPEN_RE = re.compile(r"^(\s*):{3,}\s*(\w+)\s*(.*)$")
_CONTAINER_CLOSE_RE = re.compile(r"^(\s*):{3,}\s*$")
_NAME_TAG_RE = re.compile(r"\[name=([^\]\n]*)\]")


def _zulip_free_line(line: str) -> str:
    """A line of the pad's free text in Zulip's dialect: its blocks, author tags and emoji."""
    if m := _CONTAINER_OPEN_RE.match(line):
        indent, kind, title = m.groups()
        if kind.lower() == "spoiler":
            return f"{indent}```spoiler {title}".rstrip()
        return f"{indent}```quote"
    if m := _CONTAINER_CLOSE_RE.match(line):
        return f"{m.group(1)}```"
    line = _NAME_TAG_RE.sub(lambda m: strong(m.group(1)), line)
    return line.replace(":clock2:", ":time:")


# ---------------------------------------------------------------- splitting for Zulip


def _starts_section(line: str, previous: str) -> bool:
    return line.startswith("### ")


def _starts_entry(line: str, previous: str) -> bool:
    """A top-level line after a list (a heading, prompt or project line keeps its first entry)."""
    in_list = previous.startswith("- ") or previous[:1].isspace()
    return bool(line) and not line[0].isspace() and in_list


def _starts_line(line: str, previous: str) -> bool:
    return True


# Where a message may be split, best first: before a section, an entry, any line.
_BOUNDARIES: tuple[Callable[[str, str], bool], ...] = (_starts_section, _starts_entry, _starts_line)


def split_message(text: str, limit: int) -> list[str]:
    """Split Zulip-flavour notes into messages of at most ``limit`` characters.

    Splits fall between sections (before a ``### `` heading) where possible;
    a section too long for one message is split between its top-level entries
    (an agenda item stays with its notes, a heading, prompt or project line
    with the entry after it), then between lines; only a single line longer
    than ``limit`` is cut inside, before a letter where possible.
    Whole sections are packed greedily into each message. The blank lines and
    newline at a split are dropped, nothing else: no chunk starts or ends with
    a newline, and removing the newlines from the text and from the joined
    chunks gives the same string.
    """
    if limit < 1:
        raise ValueError("the limit must be at least one character")
    return _pack(text.split("\n"), limit, 0)


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines).strip("\n")


def _pack(lines: list[str], limit: int, level: int) -> list[str]:
    whole = _join(lines)
    if len(whole) <= limit:
        return [whole] if whole else []
    if level == len(_BOUNDARIES):
        return _cut(whole, limit)
    chunks: list[str] = []
    current: list[str] = []
    for unit in _units(lines, _BOUNDARIES[level]):
        if len(_join(current + unit)) <= limit:
            current += unit
            continue
        if _join(current):
            chunks.append(_join(current))
        current = []
        if len(_join(unit)) <= limit:
            current = unit
        else:
            chunks += _pack(unit, limit, level + 1)
    if _join(current):
        chunks.append(_join(current))
    return chunks


def _units(lines: list[str], starts: Callable[[str, str], bool]) -> list[list[str]]:
    """The lines grouped into runs that each begin at a line where ``starts`` is true.

    ``starts`` sees the line and the last non-blank line before it.
    """
    units: list[list[str]] = []
    previous = ""
    for line in lines:
        if not units or starts(line, previous):
            units.append([line])
        else:
            units[-1].append(line)
        previous = line or previous
    return units


def _cut(line: str, limit: int) -> list[str]:
    """Cut one over-long line into pieces of at most ``limit`` characters.

    A cut goes before a letter that follows a space where there is one in the
    second half of the piece, else before any letter there, else at the limit:
    a piece then never starts with a character that could open a block (``#``,
    ``-``, ``>``, a digit, ``/``) or split a letter from its combining marks.
    """
    pieces: list[str] = []
    while len(line) > limit:
        cut = _cut_point(line, limit)
        pieces.append(line[:cut])
        line = line[cut:]
    if line:
        pieces.append(line)
    return pieces


def _cut_point(line: str, limit: int) -> int:
    low = max(1, limit // 2)
    for prefer_word_start in (True, False):
        for i in range(limit, low - 1, -1):
            if line[i].isalpha() and (not prefer_word_start or line[i - 1].isspace()):
                return i
    return limit
