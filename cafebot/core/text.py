"""Making user text safe to repeat: in chat replies and in the notes.

Text a user writes is stored as written. When the bot repeats it, mentions
become silent (``@_**Name**``) so nobody is pinged again and again, wildcard
mentions never ping anyone, and a line can neither start a new block (a
heading, a quote, a list, a fence) nor break the list it stands in.

The pieces, from the inside out:

- :func:`clean` drops control characters and normalises line ends;
- :func:`one_line` folds any text into one line;
- :func:`fragment` is user text for the *middle* of a line (one line, silent mentions);
- :func:`escape_line_start` makes a line's start unable to open a block;
- :func:`inline` and :func:`lines_of` do all of that for a line of its own;
- :func:`name_tag_safe`, :func:`strong` and :func:`mention_name_safe` fit a
  name into the pad's ``[name=...]`` tag, Zulip's ``**bold**`` and a
  ``@_**Name|id**`` mention;
- :func:`escape_html` keeps raw HTML tags out of the pad's Markdown;
- :func:`escape_pad_line` does all of that for a line of the pad's archive, and
  exactly: :func:`unescape`, the reading of CommonMark's backslash escapes that the
  archive reader applies, gives the text back unchanged.
"""

from __future__ import annotations

import datetime as dt
import re
import string

from markdown_it.common.html_re import HTML_TAG_RE

# Zulip's own patterns are ``@_?**name**`` (any text but ``*``, newlines included)
# and ``@_?*group*``; a wildcard is ``all``, ``everyone``, ``stream``, ``channel`` or
# ``topic`` as the whole name. Every one that is not silent yet becomes silent.
_USER_MENTION_RE = re.compile(r"@(?!_)(\*\*[^*]+\*\*)")
_GROUP_MENTION_RE = re.compile(r"@(?!_)(\*[^*]+\*)")
WILDCARDS = ("all", "everyone", "stream", "channel", "topic")

# What may start a Markdown block when it opens a line, on Zulip and in the pad.
_BLOCK_START_RE = re.compile(
    r"""^(
        \#{1,6}(?=\s|$)      # ATX heading
      | >                    # block quote
      | [-+*](?=\s|$)        # bullet
      | [-*_=][-*_=\s]*$     # thematic break / setext underline (with a bullet's own -)
      | `{3,} | ~{3,}        # code fence (Zulip's spoiler and quote blocks too)
      | \[(?:[^\]\\]|\\.)*\]:  # link reference or footnote definition
    )""",
    re.VERBOSE,
)
# ... and what only the pad (CommonMark with HTML, tables and containers) reads as one.
_PAD_BLOCK_START_RE = re.compile(
    r"""^(
        :{3,}                # the pad's container (:::spoiler)
      | \|                   # table row
      | <(?=[A-Za-z/!?])     # HTML block (not "<3", not an autolink: see _AUTOLINK_RE)
    )""",
    re.VERBOSE,
)
_AUTOLINK_RE = re.compile(r"<(?:[A-Za-z][A-Za-z0-9+.-]{1,31}:[^\s<>]*|[^\s<>@\\]+@[A-Za-z0-9.-]+)>")
_ORDERED_RE = re.compile(r"^(\d+)([.)])(?=\s|$)")
_HTML_TAG_START_RE = re.compile(r"<(?=[A-Za-z/!?])")
_SPECIAL_RE = re.compile(r"\\|<|`+")
# CommonMark's backslash escapes: a backslash before an ASCII punctuation character
# stands for that character (the set markdown-it-py's escape rule uses); before
# anything else it is a backslash.
_ESCAPABLE = frozenset(string.punctuation)
# Unicode line and paragraph separators end a line as much as "\n" does; the bidi
# embedding, override and isolate controls go (an unbalanced one can make the rest
# of a line display reversed). The plain direction marks (LRM, RLM, ALM) stay.
_LINE_BREAKS = str.maketrans(
    {"\u2028": "\n", "\u2029": "\n"}
    | {chr(c): None for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
)


# Unicode's control characters (category Cc) but tab and newline, and the surrogates
# (category Cs): what clean() drops.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def silence_mentions(text: str) -> str:
    """Turn every user, group and wildcard mention into its silent form."""
    text = _USER_MENTION_RE.sub(r"@_\1", text)
    return _GROUP_MENTION_RE.sub(r"@_\1", text)


def clean(text: str) -> str:
    """Drop control characters (keeping newlines and tabs) and strip each line's end.

    Lone surrogates go too (they cannot be written as UTF-8), and so do the
    bidi embedding, override and isolate controls; the Unicode line and
    paragraph separators become newlines.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_LINE_BREAKS)
    kept = _CONTROL_RE.sub("", text)
    return "\n".join(line.rstrip() for line in kept.split("\n")).strip("\n")


def one_line(text: str) -> str:
    """Collapse all white space (newlines included) into single spaces; drop control chars."""
    return " ".join(clean(text).split())


def fragment(text: str) -> str:
    """User text for the middle of a line: one line, mentions silent.

    Use :func:`inline` instead where the text opens the line.
    """
    return silence_mentions(one_line(text))


def escape_line_start(line: str, *, zulip: bool = False) -> str:
    """Escape what would make ``line`` start a new Markdown block.

    Leading white space is dropped (it would make an indented code block or a
    deeper list level). With ``zulip=True`` only what Zulip's Markdown reads
    as a block is escaped (not HTML, tables or the pad's ``:::`` containers),
    so that Zulip shows no stray backslash.
    """
    stripped = line.lstrip()
    at = _line_start_escape(stripped, zulip=zulip)
    return stripped if at is None else f"{stripped[:at]}\\{stripped[at:]}"


def _line_start_escape(line: str, *, zulip: bool) -> int | None:
    """Where a backslash keeps ``line`` (without leading white space) from starting a
    block: before the character at the index returned (ASCII punctuation), or nowhere."""
    if not line:
        return None
    if _BLOCK_START_RE.match(line):
        return 0
    if not zulip and _PAD_BLOCK_START_RE.match(line) and not _AUTOLINK_RE.match(line):
        return 0
    m = _ORDERED_RE.match(line)
    if m:
        return m.start(2)
    if zulip and line.startswith("/"):
        # A message that starts with /me, /poll or /todo is a Zulip widget.
        return 0
    return None


def inline(text: str, *, zulip: bool = False) -> str:
    """User text for a line of its own (a bullet, a heading-free sentence)."""
    return escape_line_start(fragment(text), zulip=zulip)


# A list marker opening a continuation line: "- ", "* ", "+ ", "• ", "1. " or "1) ".
_LIST_MARKER_RE = re.compile(r"^(?P<indent>[ \t]*)(?:[-*+\u2022]|\d{1,3}[.)])[ \t]+(?=\S)")


def bullet_lines(lines: list[str]) -> list[tuple[int, str]]:
    """The lines after a command's first, as (depth, text).

    A line that opens with a list marker is written as a bullet: the marker goes,
    and its indentation says how deep it is (0 unindented, 1 indented under the
    line before). Other lines are taken as written, at depth 0.
    """
    out: list[tuple[int, str]] = []
    for line in lines:
        m = _LIST_MARKER_RE.match(line)
        if m is None:
            out.append((0, line))
        else:
            out.append((1 if m.group("indent") else 0, line[m.end() :]))
    return out


def continuation_text(lines: list[str]) -> list[str]:
    """The lines after a command's first, list markers dropped (an entry's text nests
    its lines one level: notes-format.md has no deeper nesting under an entry)."""
    return [text for _, text in bullet_lines(lines)]


def counted(number: int, singular: str, plural: str | None = None) -> str:
    """``1 check-in``, ``2 check-ins``, ``0 check-ins``."""
    return f"{number} {singular if number == 1 else (plural or singular + 's')}"


def text_lines(text: str) -> list[str]:
    """The non-empty lines of multi-line user text, as fragments (not yet line-start safe)."""
    return [line for line in (fragment(raw) for raw in clean(text).split("\n")) if line]


def lines_of(text: str, *, zulip: bool = False) -> list[str]:
    """The non-empty lines of multi-line user text, each safe to stand in a bullet."""
    return [escape_line_start(line, zulip=zulip) for line in text_lines(text)]


def name_tag_safe(name: str) -> str:
    """A name that can stand inside the pad's ``[name=...]`` tag: no brackets, no backslash."""
    return fragment(name).replace("[", "(").replace("]", ")").replace("\\", "")


def strong(text: str) -> str:
    """``**text**`` that nothing in ``text`` can end early or turn into a link.

    ``*``, ``\\``, ``` ` ``` and brackets are escaped, and so is a run of two or more
    ``_`` (``__x__`` inside would open a second bold run; a single ``_`` as in
    ``user_name`` cannot, so it is left as written). Empty text gives an empty
    string (``****`` would be a thematic break).
    """
    text = fragment(text)
    if not text:
        return ""
    text = re.sub(r"([\\*`\[\]])", r"\\\1", text)
    text = re.sub(r"_{2,}", lambda m: "\\_" * len(m.group()), text)
    return "**" + text + "**"


def mention_name_safe(name: str) -> str | None:
    """``name`` for Zulip's ``@_**Name|id**`` syntax, or None where it cannot stand there.

    Zulip resolves such a mention only if the name matches the user's full name,
    so a name is not altered to fit: one with ``*``, ``|`` or a line break
    gives None (use the id-only form ``@_**|id**`` then).
    """
    safe = one_line(name)
    if not safe or safe != name.strip() or re.search(r"[*|]", safe):
        return None
    return safe


def escape_html(text: str) -> str:
    """Escape the ``<`` of raw HTML tags (``<div>``, ``</p>``, ``<!--``) outside code spans.

    Autolinks (``<https://example.org>``) and a ``<`` already escaped stay as
    they are. For the pad's flavour: Zulip shows HTML as text by itself.
    The text is scanned left to right as CommonMark does, so that a backtick
    inside an autolink cannot make a tag look like code.
    """
    out: list[str] = []
    pos = 0
    while True:
        m = _SPECIAL_RE.search(text, pos)
        if m is None:
            out.append(text[pos:])
            return "".join(out)
        start = m.start()
        out.append(text[pos:start])
        if m.group() == "\\":
            out.append(text[start : start + 2])  # an escape pair: both characters are text
            pos = start + 2
        elif m.group() == "<":
            link = _AUTOLINK_RE.match(text, start)
            if link:
                out.append(link.group())
                pos = link.end()
            else:
                out.append("\\<" if _HTML_TAG_START_RE.match(text, start) else "<")
                pos = start + 1
        else:
            # A code span runs to the next backtick string of the same length.
            closing = re.compile(rf"(?<!`){m.group()}(?!`)")
            end = closing.search(text, m.end())
            pos = m.end() if end is None else end.end()
            out.append(text[start:pos])


def escape_pad_line(line: str, *, literal_start: bool = False) -> str:
    """User text for a line of its own in the pad's archive: safe, and exact.

    Safe as :func:`escape_html` and :func:`escape_line_start` make it (leading
    white space goes, the line cannot start a block, no raw HTML tag). Exact:
    :func:`unescape` of the result is the text. For that, a backslash that would
    escape the character after it (any ASCII punctuation) is escaped itself, so
    ``\\<b>`` stays ``\\<b>`` when read back instead of turning into ``<b>``. Code
    spans and autolinks stay as they are: a backslash in them is no escape.

    With ``literal_start`` the first character is escaped too if it can be (ASCII
    punctuation): for text whose start the archive format would read as its own
    syntax (a note that opens with ``**Decision**``).

    The line is scanned left to right as CommonMark scans it, and the escape
    at the line's start is part of that scan, so that escaping the first
    backtick of a fence cannot make the rest of the line pair up differently.
    """
    text = line.lstrip()
    at = _line_start_escape(text, zulip=False)
    if literal_start and text[:1] in _ESCAPABLE:
        at = 0
    out: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if pos == at:
            out.append("\\" + char)
            pos += 1
        elif char == "\\":
            # A backslash before punctuation is written as an escaped backslash; the
            # punctuation after it is then read on its own, so it is scanned on its own.
            escapes = pos + 1 < len(text) and text[pos + 1] in _ESCAPABLE
            out.append("\\\\" if escapes else "\\")
            pos += 1
        elif char == "<":
            link = _AUTOLINK_RE.match(text, pos)
            if link:
                out.append(link.group())
                pos = link.end()
            else:
                out.append("\\<" if _HTML_TAG_START_RE.match(text, pos) else "<")
                pos += 1
        elif char == "`":
            end = _code_span_end(text, pos)
            out.append(text[pos:end])
            pos = end
        else:
            out.append(char)
            pos += 1
    return "".join(out)


def unescape(text: str) -> str:
    """Markdown text with its backslash escapes read as CommonMark reads them.

    A backslash before an ASCII punctuation character gives that character;
    in code spans, autolinks and raw HTML a backslash is a backslash, and so is
    one before anything else. Nothing else changes (emphasis, links, entities
    and shortcodes stay as written). Text without a backslash is returned as
    it is. The inverse of :func:`escape_pad_line`.
    """
    if "\\" not in text:
        return text
    out: list[str] = []
    pos = 0
    while pos < len(text):
        char = text[pos]
        if char == "\\" and pos + 1 < len(text) and text[pos + 1] in _ESCAPABLE:
            out.append(text[pos + 1])
            pos += 2
        elif char == "`":
            end = _code_span_end(text, pos)
            out.append(text[pos:end])
            pos = end
        elif char == "<" and (raw := _AUTOLINK_RE.match(text, pos) or HTML_TAG_RE.match(text, pos)):
            out.append(raw.group())
            pos = raw.end()
        else:
            out.append(char)
            pos += 1
    return "".join(out)


def _code_span_end(text: str, start: int) -> int:
    """Where the code span whose backtick string starts at ``start`` ends: after the
    next backtick string of the same length, or (none) after its own backticks."""
    end = start
    while end < len(text) and text[end] == "`":
        end += 1
    closing = re.compile(rf"(?<!`){text[start:end]}(?!`)").search(text, end)
    return end if closing is None else closing.end()


def zulip_time(instant: dt.datetime) -> str:
    """Zulip's global time syntax: every reader sees the instant in their own time zone."""
    return f"<time:{instant.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}>"
