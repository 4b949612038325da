"""Making user text safe to repeat: in chat replies and in the notes.

Text a user writes is stored as written. When the bot repeats it, mentions
become silent (``@_**Name**``) so nobody is pinged again and again, wildcard
mentions never ping anyone, and a line can neither start a new block (a
heading, a quote, a list, a fence) nor break the list it stands in.
"""

from __future__ import annotations

import re
import unicodedata

# @**Name**, @**Name|42**, @*group* -> their silent forms. Already silent ones stay.
_USER_MENTION_RE = re.compile(r"@(?!_)(\*\*[^*\n]+?\*\*)")
_GROUP_MENTION_RE = re.compile(r"@(?!_)(\*[^*\n]+?\*)(?!\*)")
WILDCARDS = ("all", "everyone", "stream", "channel", "topic")

# What may start a Markdown block when it opens a line.
_BLOCK_START_RE = re.compile(
    r"""^(
        \#{1,6}(?=\s|$)      # ATX heading
      | >                    # block quote
      | [-+*](?=\s|$)        # bullet
      | [-*_=](?:\s*[-*_=]){2,}\s*$   # thematic break / setext underline
      | `{3,} | ~{3,}        # code fence
      | :{3,}                # the pad's container (:::spoiler)
      | \|                   # table row
      | <                    # HTML block
    )""",
    re.VERBOSE,
)
_ORDERED_RE = re.compile(r"^(\d{1,9})([.)])(?=\s|$)")


def silence_mentions(text: str) -> str:
    """Turn every user, group and wildcard mention into its silent form."""
    text = _USER_MENTION_RE.sub(r"@_\1", text)
    return _GROUP_MENTION_RE.sub(r"@_\1", text)


def clean(text: str) -> str:
    """Drop control characters (keeping newlines and tabs) and strip each line's end."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    out = []
    for ch in text:
        if ch in "\n\t":
            out.append(ch)
        elif unicodedata.category(ch) == "Cc":
            continue
        else:
            out.append(ch)
    return "\n".join(line.rstrip() for line in "".join(out).split("\n")).strip("\n")


def one_line(text: str) -> str:
    """Collapse all white space (newlines included) into single spaces."""
    return " ".join(text.split())


def escape_line_start(line: str) -> str:
    """Escape what would make ``line`` start a new Markdown block."""
    stripped = line.lstrip()
    if not stripped:
        return stripped
    if _BLOCK_START_RE.match(stripped):
        return "\\" + stripped
    m = _ORDERED_RE.match(stripped)
    if m:
        return f"{m.group(1)}\\{m.group(2)}{stripped[m.end() :]}"
    return stripped


def inline(text: str) -> str:
    """User text for a place inside one line (a bullet, a heading-free sentence)."""
    return escape_line_start(silence_mentions(one_line(text)))


def name_tag_safe(name: str) -> str:
    """A name that can stand inside the pad's ``[name=...]`` tag."""
    return one_line(name).replace("[", "(").replace("]", ")")


def lines_of(text: str) -> list[str]:
    """The non-empty lines of multi-line user text, each safe to stand in a bullet."""
    return [inline(line) for line in clean(text).split("\n") if line.strip()]
