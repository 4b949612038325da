"""The archive's records: what one meeting of a notes archive holds, as plain data.

The records come from :mod:`cafebot.notes.reader`, which finds the document's
structure with a CommonMark parser; this module holds what it produces, the
small regular expressions that read the fields of one entry (name / handle /
affiliation, author tag, estimate, topic, decision), and :func:`normalise`,
the comparison of notes-format.md's fidelity rule 2.

An entry's fields are read from its Markdown source: first its structure (the
author tag, the estimate, the one separator after them), then the text of each
field with its backslash escapes undone as CommonMark reads them
(:func:`cafebot.core.text.unescape`), so that text the renderer escaped (``\\<b>``,
``\\# heading``) comes back as it was written. Text without a backslash, as in
the community's own archive, is read exactly as it stands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import re
from dataclasses import dataclass, field

from cafebot.core.estimates import ConversionError, Estimate
from cafebot.core.text import counted, unescape
from cafebot.storage.models import NoteKind

# The standard sections, and where text before the first of them belongs.
TOP = "top"
CHECKIN = "checkin"
INTRO = "intro"
SHOUTOUT = "shoutout"
AGENDA = "agenda"
SECTIONS = (TOP, CHECKIN, INTRO, SHOUTOUT, AGENDA)

MAX_NAME = 200  # the longest name a person's record holds

TEXT = "text"  # a free-text block
PROMPT = "prompt"  # a section's italic template line: not content, not counted


class ArchiveError(ValueError):
    """The file cannot be imported; the message says why, for a person."""


# ---------------------------------------------------------------- records


@dataclass(frozen=True)
class ParsedCheckin:
    name: str
    github: str | None
    affiliation: str | None


@dataclass(frozen=True)
class ParsedIntro:
    name: str | None  # one of name and github is set
    github: str | None
    text: str  # the first line, then the nested lines, one per line


@dataclass(frozen=True)
class ParsedShoutout:
    author: str | None
    project: str | None
    text: str


@dataclass(frozen=True)
class ParsedNote:
    kind: NoteKind
    text: str  # a nested bullet; deeper bullets under it follow on lines of their own


@dataclass(frozen=True)
class ParsedItem:
    proposer: str | None
    estimate: tuple[int, int | None] | None
    topic: str
    notes: tuple[ParsedNote, ...]
    italic: bool  # the whole line was wrapped in underscores


@dataclass(frozen=True)
class ParsedBlock:
    section: str
    after: int  # how many entries of the section came before it
    kind: str  # TEXT or PROMPT
    text: str  # verbatim lines


@dataclass
class ParsedMeeting:
    date: dt.date
    line: int  # 1-based line of its heading in the file
    source: str = ""
    checkins: list[ParsedCheckin] = field(default_factory=list)
    intros: list[ParsedIntro] = field(default_factory=list)
    shoutouts: list[ParsedShoutout] = field(default_factory=list)
    items: list[ParsedItem] = field(default_factory=list)
    blocks: list[ParsedBlock] = field(default_factory=list)
    # Where each entry stands: its section and the 0-based line of its bullet in the text
    # read, in the order of the text (the site puts each entry's anchor there).
    entry_lines: list[tuple[str, int]] = field(default_factory=list)

    @property
    def free_text_blocks(self) -> int:
        return sum(1 for b in self.blocks if b.kind == TEXT)

    @property
    def digest(self) -> str:
        return hashlib.sha256(normalise(self.source).encode("utf-8")).hexdigest()

    def summary(self) -> str:
        """``2031-05-20: 5 check-ins, 1 introduction, 3 shout-outs, 5 agenda items, 2 free-text
        blocks`` (a fixed form, so that scripts can read it: every count is there, singular
        for 1)."""
        return (
            f"{self.date.isoformat()}: {counted(len(self.checkins), 'check-in')}, "
            f"{counted(len(self.intros), 'introduction')}, "
            f"{counted(len(self.shoutouts), 'shout-out')}, "
            f"{counted(len(self.items), 'agenda item')}, "
            f"{counted(self.free_text_blocks, 'free-text block')}"
        )


@dataclass
class ParsedArchive:
    head: str  # the lines before the first meeting (the title among them), verbatim
    title: str | None  # the text of the level-1 heading before the first meeting
    meetings: list[ParsedMeeting]  # in the order of the file
    warnings: list[str] = field(default_factory=list)

    @property
    def year(self) -> int:
        """The year the file is about: the title's, if a meeting has it, else the newest's."""
        years = {m.date.year for m in self.meetings}
        named = re.search(r"\b(\d{4})\b", self.title or "")
        if named and int(named.group(1)) in years:
            return int(named.group(1))
        return max(m.date for m in self.meetings).year


# ---------------------------------------------------------------- normalisation


_NORM_BULLET_RE = re.compile(r"^([ \t]*)([-*+])([ \t]+.*)?$")


def normalise(text: str) -> str:
    """The text as notes-format.md's fidelity rule 2 compares it.

    Trailing white space goes; runs of blank lines become one (none at the ends);
    a ``*`` bullet marker reads as ``-``; a bullet's indentation becomes two spaces
    per nesting level. Nothing else changes.
    """
    out: list[str] = []
    indents: list[int] = []  # the indentation of the bullets the current line is nested in
    blank = False
    for raw in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = raw.rstrip()
        if not line:
            blank = bool(out)
            continue
        if blank:
            out.append("")
            blank = False
        m = _NORM_BULLET_RE.match(line)
        if m:
            indent = len(m.group(1).expandtabs(4))
            while indents and indents[-1] >= indent:
                indents.pop()
            depth = len(indents)
            indents.append(indent)
            marker = "+" if m.group(2) == "+" else "-"
            out.append("  " * depth + marker + (m.group(3) or ""))
            continue
        if not line[0].isspace():
            indents.clear()  # a line at the margin ends every list
        out.append(line)
    return "\n".join(out) + "\n" if out else ""


def is_italic(text: str) -> bool:
    """A whole line (or paragraph) in italics: ``_like this_`` or ``*like this*``."""
    text = text.strip()
    if len(text) < 3:
        return False
    for mark in "_*":
        if text[0] == mark and text[-1] == mark and text[1] != mark and text[-2] != mark:
            return True
    return False


def _strip_italic(text: str) -> tuple[str, bool]:
    return (text.strip()[1:-1].strip(), True) if is_italic(text) else (text, False)


# ---------------------------------------------------------------- entry fields

GITHUB_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
# A "/" separates fields, except inside a Markdown link's (address).
_FIELD_SPLIT_RE = re.compile(r"/(?![^(]*\))")
_GITHUB_LINK_RE = re.compile(r"^\[@?([^\]]+)\]\(\s*<?https?://(?:www\.)?github\.com/[^)]*\)$")
_TAG_RE = re.compile(r"^\[name=([^\]\n]*)\]\s*")
_BOLD_RE = re.compile(r"^\*\*([^*\n]{1,80}?)\s*:?\*\*\s*")
_CODE_HANDLE_RE = re.compile(r"^`@?([A-Za-z0-9-]{1,39})`\s*")
_AT_HANDLE_RE = re.compile(r"^@([A-Za-z0-9-]{1,39}):\s*")  # how an intro of a handle is written
_NAME_COLON_RE = re.compile(r"^([^:\[\]()*_`<>/\\#|]{1,80}?)\s*:(?:\s+|$)")
# ``Name - text`` or ``Name — text``: a dash with white space on both sides after the name.
_NAME_DASH_RE = re.compile(r"^([^:\[\]()*_`<>/\\#|]{1,80}?)\s+[-\u2013\u2014]\s+")
# A name written as a Markdown link, ``[Name](https://…)``, ``[@handle](https://github.com/…)``.
_LINK_NAME_RE = re.compile(r"^\[([^\[\]\n]{1,200})\]\(\s*<?(https?://[^)\s>]+)>?\s*\)")
_URL_RE = re.compile(r"<?https?://[^\s/][^\s]*")
# A GitHub profile's address: ``https://github.com/handle`` (a trailing ``/`` allowed).
_GITHUB_URL_RE = re.compile(r"^<?https?://(?:www\.)?github\.com/([A-Za-z0-9-]{1,39})/?>?$")
# "Hi all - I'm new here": a greeting before the separator is no name.
_GREETING_RE = re.compile(
    r"(?i)^(?:hi|hello|hey|hiya|howdy|greetings|welcome|thanks|thank you|good (?:morning|"
    r"afternoon|evening|day))\b"
)
# One to five words, each starting with a letter: "Ada", "Joan Clarke", "Mary-Kate O'Neil".
_NAME_RE = re.compile(r"^[^\W\d_][\w.'\u2019-]*(?: [^\W\d_][\w.'\u2019-]*){0,4}$")
# The one separator between an entry's head (a name, a tag, an estimate) and its text:
# a colon or a dash with white space after it. A colon with a word right after it
# opens the text (an emoji shortcode, ":tada: launch"); so does a second separator.
_SEPARATOR_RE = re.compile(r"^[:\-\u2013\u2014](?:\s+|$)")
_NOTE_KIND_RE = re.compile(
    r"^\*\*(decisions?|decided|actions?|action items?|todo)\s*:?\*\*"
    r"\s*:?\s*(?:[-\u2013\u2014]\s*)?",
    re.IGNORECASE,
)


def _handle(raw: str) -> str | None:
    value = raw.strip().strip("`")
    link = _GITHUB_LINK_RE.match(value) or _GITHUB_URL_RE.match(value)
    if link:
        value = link.group(1)
    value = value.removeprefix("@")
    return value if GITHUB_RE.match(value) else None


def _looks_like_handle(raw: str) -> bool:
    value = raw.strip()
    return (
        value.startswith(("@", "`@", "[@"))
        or bool(_GITHUB_LINK_RE.match(value) or _GITHUB_URL_RE.match(value))
        or (" " not in value and GITHUB_RE.match(value) is not None and not value[:1].isupper())
    )


def _linked_name(text: str) -> tuple[str | None, str | None, int] | None:
    """A name written as a Markdown link at the start of ``text``: (name, GitHub handle,
    where the link ends), or None when ``text`` opens with no such link.

    ``[Ada Lovelace](https://example.org/ada)`` names Ada Lovelace; a link to a GitHub
    profile gives the handle too, and ``[@ada](https://github.com/ada)`` the handle alone.
    """
    m = _LINK_NAME_RE.match(text)
    if m is None:
        return None
    label, url = m.group(1).strip(), m.group(2)
    profile = _GITHUB_URL_RE.match(url)
    github = profile.group(1) if profile else None
    if label.startswith("@") and GITHUB_RE.match(label[1:]):
        return None, github or label[1:], m.end()
    if not _is_name(unescape(label)):
        return None
    return unescape(label), github, m.end()


def _fields(text: str) -> list[str]:
    """A check-in's fields, split at its first two ``/`` (none inside a bare address)."""
    urls = [m.span() for m in _URL_RE.finditer(text)]
    cuts = [
        m.start()
        for m in _FIELD_SPLIT_RE.finditer(text)
        if not any(start <= m.start() < end for start, end in urls)
    ][:2]
    bounds = [-1, *cuts, len(text)]
    return [text[a + 1 : b].strip() for a, b in itertools.pairwise(bounds)]


def parse_checkin_line(text: str) -> ParsedCheckin | None:
    """``Name / @handle / Affiliation`` with one, two or three fields; None if it is no check-in."""
    parts = _fields(text)
    name = parts[0]
    if not name or len(name) > MAX_NAME or is_italic(name):
        return None
    linked = _linked_name(name)
    if linked is not None and linked[0] is not None and linked[2] == len(name):
        name = linked[0]  # [Name](https://…): the name is the link's text
        if linked[1] is not None and len(parts) == 1:
            parts.append(f"@{linked[1]}")  # a link to a GitHub profile gives the handle
    github = affiliation = None
    if len(parts) == 2:
        if _looks_like_handle(parts[1]):
            github = _handle(parts[1])
            if github is None:
                return None
        else:
            affiliation = parts[1] or None
    elif len(parts) == 3:
        if parts[1]:
            github = _handle(parts[1])
            if github is None:
                return None
        affiliation = parts[2] or None
    if affiliation is not None and len(affiliation) > MAX_NAME:
        return None
    if github is None and linked is not None and linked[0] is not None:
        github = linked[1]
    return ParsedCheckin(name if linked else unescape(name), github, _unescaped(affiliation))


def _author(line: str, *, bold: bool, bold_then_estimate: bool = False) -> tuple[str | None, str]:
    """An author tag at the start of ``line``: ``[name=Who]``, or ``**Who**`` if ``bold``.

    With ``bold_then_estimate`` (agenda items) a bold name counts only before an
    estimate or a colon: ``**Ines** 10 mins: topic``, not ``**Release** today``.
    """
    if (m := _TAG_RE.match(line)) and m.group(1).strip() and len(m.group(1)) <= MAX_NAME:
        return unescape(m.group(1).strip()), line[m.end() :]
    if bold and (m := _BOLD_RE.match(line)) and _is_name(m.group(1).strip()):
        rest = line[m.end() :]
        if bold_then_estimate and not (":" in m.group(0) or rest.startswith(":")):
            try:
                Estimate.consume(rest)
            except ConversionError:
                return None, line
        return m.group(1).strip(), rest
    return None, line


def _ends_with_colon(head: str) -> bool:
    """Whether the head of an entry (``Name:``, ``**Name:**``, ``(10 min):``) ends with its
    own separator colon: then the text starts right after it, whatever it starts with."""
    return head.rstrip().removesuffix("**").rstrip().endswith(":")


def _text_after(head: str, rest: str) -> str:
    """The text after an entry's head: one separator, unless the head ended with its colon."""
    rest = rest.strip()
    return rest if _ends_with_colon(head) else _SEPARATOR_RE.sub("", rest, count=1)


def opens_like_a_head(text: str) -> bool:
    """Whether ``text``, right after an author tag, would be read as part of the entry's
    head (an estimate, a separator) rather than as the start of its text.

    The renderer asks, to write a separator of its own before such a topic.
    """
    if _SEPARATOR_RE.match(text):
        return True
    try:
        Estimate.consume(text)
    except ConversionError:
        return False
    return True


def opens_like_a_note_kind(text: str) -> bool:
    """Whether a nested bullet's text would be read as a decision or an action."""
    return _NOTE_KIND_RE.match(text) is not None


def _is_name(text: str) -> bool:
    return len(text) <= 80 and _NAME_RE.match(text) is not None


def _unescaped(text: str | None) -> str | None:
    return None if text is None else unescape(text)


def _nested_text(nested: list[tuple[int, str]]) -> list[str]:
    return [unescape(text) for _, text in nested if text]


def parse_intro_line(first: str, nested: list[tuple[int, str]]) -> ParsedIntro | None:
    """``Name: text``, ``Name - text``, ``Name — text``, ``**Name** text``,
    ``[Name](https://…): text``, `` `handle` — text``, ``@handle: text`` or
    ``[name=Name] text``; None if the line names nobody."""
    name = github = None
    if m := _CODE_HANDLE_RE.match(first) or _AT_HANDLE_RE.match(first):
        github, rest = m.group(1), first[m.end() :]
    elif (linked := _linked_name(first)) is not None and _opens_text(first[linked[2] :]):
        name, github, end = linked
        rest = first[end:]
    else:
        name, rest = _author(first, bold=True)
        if name is None:
            for pattern in (_NAME_COLON_RE, _NAME_DASH_RE):
                head = m.group(1).strip() if (m := pattern.match(first)) else ""
                if m and _is_name(head) and not _GREETING_RE.match(head):
                    name, rest = head, first[m.end() :]
                    break
        if name is None:
            return None
    rest = _text_after(first[: len(first) - len(rest)], rest)
    text = "\n".join([unescape(rest), *_nested_text(nested)]).strip("\n")
    return ParsedIntro(name, github, text)


def _opens_text(rest: str) -> bool:
    """After a linked name, the separator that makes it an introduction's head: a colon
    or a dash (``[Ada](https://…): text``), not a sentence going on (``[Ada](…) and I``)."""
    rest = rest.lstrip()
    return not rest or rest.startswith(":") or _SEPARATOR_RE.match(rest) is not None


def parse_shoutout_line(
    first: str, nested: list[tuple[int, str]], project: str | None
) -> ParsedShoutout:
    author, rest = _author(first, bold=False)
    text = "\n".join([unescape(rest.strip()), *_nested_text(nested)]).strip("\n")
    return ParsedShoutout(author, _unescaped(project), text)


def parse_agenda_line(first: str, nested: list[tuple[int, str]]) -> ParsedItem:
    """``[name=Who] (10 min): topic`` and its drifted forms, with the nested notes."""
    line, italic = _strip_italic(first)
    proposer, rest = _author(line, bold=True, bold_then_estimate=True)
    head, line = line[: len(line) - len(rest)], rest
    estimate = None
    try:
        value, rest = Estimate.consume(line)
    except ConversionError:
        pass
    else:
        estimate, head, line = (value.low, value.high), line[: len(line) - len(rest)], rest
    topic = _text_after(head, line) if proposer or estimate else line.strip()
    return ParsedItem(proposer, estimate, unescape(topic), _notes(nested), italic)


def _notes(nested: list[tuple[int, str]]) -> tuple[ParsedNote, ...]:
    """Nested bullets: each at the first level is a note; deeper ones follow their note."""
    notes: list[tuple[NoteKind, list[str]]] = []
    top = min((depth for depth, _ in nested), default=1)
    for depth, text in nested:
        if depth == top or not notes:
            kind = NoteKind.NOTE
            if m := _NOTE_KIND_RE.match(text):
                word = m.group(1).lower()
                kind = NoteKind.DECISION if word.startswith("deci") else NoteKind.ACTION
                text = text[m.end() :]
            notes.append((kind, [unescape(text)]))
        elif text:
            notes[-1][1].append(unescape(text))
    parsed = (ParsedNote(kind, "\n".join(lines).strip("\n")) for kind, lines in notes)
    return tuple(note for note in parsed if note.text)
