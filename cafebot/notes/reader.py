"""Reading the community's notes archive (``notes-format.md``) into plain records.

The document's structure comes from a CommonMark parser: markdown-it-py's block
tokens and their source line maps say where each meeting (``## 2031-05-20``),
section (``### Agenda``), list, list item, paragraph and ``:::spoiler`` block
begins and ends. Small regular expressions then read the fields of one entry
(name / handle / affiliation, author tag, estimate, topic). Nothing here touches
the database: :func:`parse_archive` is a pure function of the text.

Every line of a meeting ends up in exactly one place: its heading, a section
heading, a prompt, an entry (with the nested lines under it) or a free-text
block that keeps the lines verbatim where they stood (fidelity rule 1). The
meeting's whole source is kept as well, for a lossless export.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.token import Token

from cafebot.notes.records import (
    AGENDA,
    CHECKIN,
    INTRO,
    PROMPT,
    SECTIONS,
    SHOUTOUT,
    TEXT,
    TOP,
    ArchiveError,
    ParsedArchive,
    ParsedBlock,
    ParsedMeeting,
    is_italic,
    parse_agenda_line,
    parse_checkin_line,
    parse_intro_line,
    parse_shoutout_line,
)

_SECTION_NAMES = {
    CHECKIN: {"check in", "checkin", "check ins", "checkins", "check in here"},
    INTRO: {
        "introduce yourself",
        "introductions",
        "introduction",
        "intros",
        "introduce yourselves",
    },
    SHOUTOUT: {
        "celebrations and shout outs",
        "celebrations and shoutouts",
        "celebrations",
        "shout outs",
        "shoutouts",
        "shout outs and celebrations",
    },
    AGENDA: {"agenda"},
}


# ---------------------------------------------------------------- reading a file


def read_archive_file(path: Path) -> str:
    """The text of an archive file, or an :class:`ArchiveError` that says what is wrong."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArchiveError("no such file") from None
    except IsADirectoryError:
        raise ArchiveError("is a directory, not an archive file") from None
    except OSError as exc:
        raise ArchiveError(f"cannot be read: {exc.strerror or exc}") from exc
    if not data.strip():
        raise ArchiveError("the file is empty")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ArchiveError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "save the file as UTF-8 and import it again"
        ) from None
    if "\x00" in text:
        raise ArchiveError("holds NUL bytes: this is not a text file")
    return text


def parse_archive(text: str) -> ParsedArchive:
    """The archive's meetings and their records; an :class:`ArchiveError` if it has none."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").removeprefix("\ufeff")
    if not text.strip():
        raise ArchiveError("the file is empty")
    reader = _Reader(text)
    archive = reader.read()
    if not archive.meetings and reader.bad_dates:
        line, heading = reader.bad_dates[0]
        more = len(reader.bad_dates) - 1
        raise ArchiveError(
            f"no meetings found: line {line}, `## {heading}`, is not a date on the calendar"
            + (f" (and {more} more such heading{'s' if more > 1 else ''})" if more else "")
            + "; a meeting's heading is its date, like `## 2031-05-20`"
        )
    if not archive.meetings:
        raise ArchiveError(
            "no meetings found: an archive has a level-2 heading with the date of each "
            "meeting, like `## 2031-05-20`"
        )
    return archive


# ---------------------------------------------------------------- the parser


def _line_start_is_heading(text: str) -> bool:
    return re.match(r"#{1,6}(?:\s|$)", text) is not None


def _pad_container(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    """The pad's ``:::spoiler Title`` … ``:::`` block, kept as one token over its lines.

    An opening line with no closing ``:::`` before the next heading is no block
    (it stays a paragraph), so a stray ``:::`` never swallows the meetings after it.
    """
    if state.is_code_block(start):
        return False
    pos = state.bMarks[start] + state.tShift[start]
    maximum = state.eMarks[start]
    if not state.src.startswith(":::", pos):
        return False
    after = state.skipCharsStr(pos, ":")
    length = after - pos
    params = state.src[after:maximum].strip()
    if not params:
        return False  # a bare ":::" closes a block; it opens none
    line = start + 1
    while line < end:
        first = state.bMarks[line] + state.tShift[line]
        last = state.eMarks[line]
        if first < last and state.sCount[line] < state.blkIndent:
            return False
        content = state.src[first:last]
        if _line_start_is_heading(content):
            return False
        if content.startswith(":" * length) and not content.strip(":").strip():
            break
        line += 1
    else:
        return False
    if silent:
        return True
    token = state.push("pad_container", "div", 0)
    token.info = params
    token.markup = state.src[pos:after]
    token.map = [start, line + 1]
    state.line = line + 1
    return True


def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark")
    md.block.ruler.before(
        "fence",
        "pad_container",
        _pad_container,
        {"alt": ["paragraph", "reference", "blockquote", "list"]},
    )
    # Only the block structure and its line maps are read: inline parsing is skipped.
    md.core.ruler.disable(["inline", "text_join"])
    return md


_MD = _parser()

_DATE_RE = re.compile(r"^(\d{4}-\d{2}-\d{2})(?!\d)")
_LIST_MARKER_RE = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])(?:[ \t]+|$)")
_BULLET_RE = re.compile(r"^([ \t]*)[-*+](?:[ \t]+(.*)|)$")
_SHORTCODE_RE = re.compile(r":[a-z0-9_+-]+:")


def _section_kind(heading: str) -> str | None:
    """Which standard section a level-3 heading opens, in any of its drifted forms.

    Emoji, punctuation and letter case aside, the heading is a section's name or
    starts with it (``### Agenda (add yours!)``); anything else is a section of its own.
    """
    words = _SHORTCODE_RE.sub(" ", heading.lower()).replace("-", " ")
    words = " ".join(re.sub(r"[^\w\s]", " ", words).split())
    for kind, names in _SECTION_NAMES.items():
        if any(words == name or words.startswith(name + " ") for name in names):
            return kind
    return None


@dataclass
class _Lines:
    """An entry's text: (depth, text) pairs, depth 0 for the item's own first line."""

    lines: list[tuple[int, str]] = field(default_factory=list)

    def add(self, depth: int, text: str) -> None:
        self.lines.append((depth, text))

    def continue_last(self, text: str) -> None:
        """A paragraph's continuation line belongs to the text before it."""
        if not self.lines:
            self.lines.append((0, text))
            return
        depth, before = self.lines[-1]
        self.lines[-1] = (depth, f"{before} {text}".strip())

    @property
    def first(self) -> str:
        return self.lines[0][1] if self.lines and self.lines[0][0] == 0 else ""

    @property
    def nested(self) -> list[tuple[int, str]]:
        return self.lines[1:] if self.lines and self.lines[0][0] == 0 else self.lines


class _Reader:
    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.tokens = _MD.parse(text)
        self.close = self._closing_indices()
        self.meetings: list[ParsedMeeting] = []
        self.warnings: list[str] = []
        # (line, heading text) of each level-2 heading whose date is not on the calendar.
        self.bad_dates: list[tuple[int | str, str]] = []
        self.builder: _MeetingBuilder | None = None
        self.title: str | None = None
        self.head_end = len(self.lines)
        self.starts: list[int] = []  # the first line of each meeting

    def _closing_indices(self) -> list[int]:
        close = list(range(len(self.tokens)))
        stack: list[int] = []
        for index, token in enumerate(self.tokens):
            if token.nesting == 1:
                stack.append(index)
            elif token.nesting == -1:
                close[stack.pop()] = index
        return close

    def children(self, index: int) -> Iterator[int]:
        """The direct children of the token opened at ``index``."""
        child = index + 1
        end = self.close[index]
        while child < end:
            yield child
            child = self.close[child] + 1

    def read(self) -> ParsedArchive:
        index = 0
        seen: set[dt.date] = set()
        while index < len(self.tokens):
            token = self.tokens[index]
            if token.type == "heading_open":
                text = self.tokens[index + 1].content.strip()
                level = int(token.tag[1])
                date = self._date(text, token) if level == 2 else None
                if date is not None and date in seen:
                    self.warnings.append(
                        f"line {token.map[0] + 1 if token.map else '?'}: a second meeting on "
                        f"{date}; its lines are kept as text of the meeting before it"
                    )
                    date = None
                if date is not None:
                    seen.add(date)
                    self._start_meeting(date, token)
                elif level == 1 and self.builder is None and self.title is None:
                    self.title = text
                elif self.builder is not None:
                    self.builder.heading(level, text, token)
            elif self.builder is not None:
                self.builder.content(index)
            index = self.close[index] + 1
        self._finish_meeting(len(self.lines))
        head = "\n".join(self.lines[: self.head_end])
        if self.starts:
            head = head + "\n" if self.head_end else ""
        return ParsedArchive(head, self.title, self.meetings, self.warnings)

    def _date(self, text: str, token: Token) -> dt.date | None:
        m = _DATE_RE.match(text)
        if not m:
            return None
        try:
            return dt.date.fromisoformat(m.group(1))
        except ValueError:
            line = token.map[0] + 1 if token.map else "?"
            self.bad_dates.append((line, text))
            self.warnings.append(
                f"line {line}: '{m.group(1)}' is not a date on the calendar; the heading is "
                "kept as text"
            )
            return None

    def _start_meeting(self, date: dt.date, token: Token) -> None:
        assert token.map is not None  # noqa: S101 - block tokens carry their lines
        start = token.map[0]
        if not self.starts:
            self.head_end = start
        self._finish_meeting(start)
        self.starts.append(start)
        self.builder = _MeetingBuilder(self, ParsedMeeting(date=date, line=start + 1))

    def _finish_meeting(self, end: int) -> None:
        if self.builder is None:
            return
        meeting = self.builder.finish()
        start = meeting.line - 1
        source = "\n".join(self.lines[start:end])
        meeting.source = source + "\n" if end < len(self.lines) else source
        self.meetings.append(meeting)
        self.builder = None

    # ------------------------------------------------------------ entries' lines

    def raw(self, start: int, end: int) -> str:
        """Lines ``start`` to ``end`` (exclusive), verbatim, without blank lines at the end."""
        while end > start and not self.lines[end - 1].strip():
            end -= 1
        return "\n".join(self.lines[start:end])

    def item_lines(self, index: int, depth: int = 0, out: _Lines | None = None) -> _Lines:
        """A list item's text: its first line at ``depth``, nested lines deeper.

        Nested lists come from the parser. Lines that CommonMark reads as the
        continuation of a paragraph but that look like bullets (the pad's
        8-space-indented bullets under a ``- `` item) are nested bullets too:
        their depth follows their indentation.
        """
        out = out if out is not None else _Lines()
        first = True
        for child in self.children(index):
            token = self.tokens[child]
            if token.type == "paragraph_open" and token.map:
                self._paragraph(token.map, depth if first else depth + 1, out, strip_marker=first)
            elif token.type == "heading_open" and token.map and first:
                # "- text" over a line "-" is a setext heading to CommonMark; to the pad's
                # authors it is a bullet with an empty bullet under it.
                self._paragraph(token.map, depth, out, strip_marker=True)
            elif token.type in ("bullet_list_open", "ordered_list_open"):
                for item in self.children(child):
                    self.item_lines(item, depth + 1, out)
            elif token.map:
                for line in self.lines[token.map[0] : token.map[1]]:
                    if line.strip():
                        out.add(depth + 1, line.strip())
            first = False
        if first:
            out.add(depth, "")  # an empty item
        return out

    def _paragraph(self, span: list[int], depth: int, out: _Lines, *, strip_marker: bool) -> None:
        start, end = span
        head = self.lines[start]
        if strip_marker:
            head = _LIST_MARKER_RE.sub("", head, count=1)
        out.add(depth, head.strip())
        indents: list[int] = []
        for line in self.lines[start + 1 : end]:
            m = _BULLET_RE.match(line)
            if m is None:
                out.continue_last(line.strip())
                continue
            indent = len(m.group(1).expandtabs(4))
            while indents and indents[-1] >= indent:
                indents.pop()
            indents.append(indent)
            out.add(depth + len(indents), (m.group(2) or "").strip())


class _MeetingBuilder:
    """Reads the blocks of one meeting, in order."""

    def __init__(self, reader: _Reader, meeting: ParsedMeeting) -> None:
        self.reader = reader
        self.meeting = meeting
        self.section = TOP
        self.seen: set[str] = set()
        self.mode = "section"  # or "extra" (an invented section), "sub" (a #### subsection)
        self.pending: list[int] | None = None  # [first, end) lines of free text not yet stored
        self.counts = dict.fromkeys(SECTIONS, 0)
        self.prompt_allowed = False
        self.project: str | None = None

    # ------------------------------------------------------------ free text

    def _keep(self, span: list[int] | None) -> None:
        if span is None:
            return
        if self.pending is None:
            self.pending = [span[0], span[1]]
        else:
            self.pending[1] = max(self.pending[1], span[1])

    def _flush(self) -> None:
        if self.pending is None:
            return
        text = self.reader.raw(*self.pending)
        self.pending = None
        if text.strip():
            self._block(TEXT, text)

    def _block(self, kind: str, text: str) -> None:
        self.meeting.blocks.append(ParsedBlock(self.section, self.counts[self.section], kind, text))

    def finish(self) -> ParsedMeeting:
        self._flush()
        return self.meeting

    # ------------------------------------------------------------ structure

    def heading(self, level: int, text: str, token: Token) -> None:
        kind = _section_kind(text) if level == 3 else None
        if level <= 3:
            self._flush()
            if kind is not None and kind not in self.seen:
                self.section = kind
                self.seen.add(kind)
                self.mode = "section"
                self.prompt_allowed = True
                self.project = None
                return
            self.mode = "extra"  # an invented section: kept whole, where it stands
        elif self.mode != "extra":
            self._flush()
            self.mode = "sub"  # a subsection runs to the next heading
        self._keep(token.map)

    def content(self, index: int) -> None:
        token = self.reader.tokens[index]
        prompt_allowed, self.prompt_allowed = self.prompt_allowed, False
        if self.mode != "section" or self.section == TOP:
            self._keep(token.map)
            return
        if token.type == "bullet_list_open":
            self._list(index, prompt_allowed)
            return
        if token.type == "paragraph_open" and token.map:
            raw = self.reader.raw(*token.map)
            if prompt_allowed and is_italic(raw):
                self._flush()
                self._block(PROMPT, raw)
                return
            if self.section == SHOUTOUT and self._is_project(raw, index):
                self._flush()
                self.project = raw.strip()
                return
        self._keep(token.map)

    def _is_project(self, raw: str, index: int) -> bool:
        """A short plain line right before a list of shout-outs names their project."""
        following = self.reader.close[index] + 1
        tokens = self.reader.tokens
        if following >= len(tokens) or tokens[following].type != "bullet_list_open":
            return False
        line = raw.strip()
        return (
            "\n" not in line
            and len(line) <= 80
            and not is_italic(line)
            and line[-1] not in ".!?:;,"
            and not line.startswith(("[", "<", "http"))
        )

    def _list(self, index: int, prompt_allowed: bool) -> None:
        reader = self.reader
        for item_index in reader.children(index):
            item = reader.tokens[item_index]
            assert item.map is not None  # noqa: S101 - block tokens carry their lines
            span = [item.map[0], item.map[1]]
            lines = reader.item_lines(item_index)
            is_prompt = prompt_allowed and self.section == CHECKIN and not lines.nested
            if is_prompt and is_italic(lines.first):
                self._flush()
                self._block(PROMPT, reader.raw(*span))
                prompt_allowed = False
                continue
            prompt_allowed = False
            if self._entry(lines, span):
                self.meeting.entry_lines.append((self.section, span[0]))
            else:
                self._keep(span)

    def _entry(self, lines: _Lines, span: list[int]) -> bool:
        """Record the item as an entry of the section; False if it is no such entry."""
        meeting = self.meeting
        first, nested = lines.first, lines.nested
        if self.section == CHECKIN:
            checkin = parse_checkin_line(first)
            if checkin is None:
                return False
            self._flush()
            meeting.checkins.append(checkin)
            self.counts[CHECKIN] += 1
            if nested:  # a check-in has no nested lines of its own: keep them as text
                extra = self.reader.raw(span[0] + 1, span[1])
                if extra.strip():
                    self._block(TEXT, extra)
            return True
        if self.section == INTRO:
            intro = parse_intro_line(first, nested)
            if intro is None:
                return False
            self._flush()
            meeting.intros.append(intro)
        elif self.section == SHOUTOUT:
            self._flush()
            meeting.shoutouts.append(parse_shoutout_line(first, nested, self.project))
        else:
            self._flush()
            meeting.items.append(parse_agenda_line(first, nested))
        self.counts[self.section] += 1
        return True
