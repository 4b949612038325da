"""The archive's backslash escapes: what the renderer writes, the reader reads back.

cafebot.core.text.escape_pad_line makes user text safe for a line of the pad and
escapes exactly what Markdown would otherwise read differently;
cafebot.core.text.unescape, which the archive reader applies to every field, undoes
CommonMark's backslash escapes and nothing else. The pair must be exact for any
text, and text without a backslash (the community's own archive) must be read
as it stands.
"""

from __future__ import annotations

import datetime as dt
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st
from markdown_it import MarkdownIt

from cafebot.core.text import escape_pad_line, fragment, unescape
from cafebot.notes.reader import parse_archive
from cafebot.notes.render import Flavour, render
from cafebot.storage.models import (
    AgendaItem,
    Introduction,
    ItemNote,
    Meeting,
    NoteKind,
    Person,
    ShoutOut,
)

# The pad's Markdown: CommonMark with HTML, plus tables.
PAD = MarkdownIt("commonmark").enable("table")
NOW = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)

MARKDOWN = [
    "\\",
    "\\\\",
    "\\*",
    "\\<b>",
    "<b>",
    "</p>",
    "<!--",
    "<?x?>",
    "<https://e.org/a\\_b>",
    "<a@b.org>",
    "<3",
    "`",
    "``",
    "```",
    "~~~",
    "# ",
    "> ",
    "- ",
    "+ ",
    "1. ",
    "2) ",
    "|",
    ":::",
    "[x]: ",
    "===",
    "---",
    ":tada:",
    "&amp;",
]
line_text = st.lists(
    st.one_of(
        st.sampled_from(MARKDOWN),
        st.sampled_from(list(string.punctuation)),
        st.text(max_size=4),
    ),
    max_size=8,
).map("".join)


# ---------------------------------------------------------------- unescape


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("\\<b>bold\\</b> move", "<b>bold</b> move", id="tags"),
        pytest.param("\\# heading", "# heading", id="line-start"),
        pytest.param("1\\. first", "1. first", id="ordered"),
        pytest.param("a \\\\ b", "a \\ b", id="escaped-backslash"),
        pytest.param("C:\\Users\\ada", "C:\\Users\\ada", id="no-punctuation-after"),
        pytest.param("\\é \\🎉", "\\é \\🎉", id="not-ascii-punctuation"),
        pytest.param("ends with \\", "ends with \\", id="at-the-end"),
        pytest.param("`a\\*b` \\*", "`a\\*b` *", id="code-span"),
        pytest.param("``a`\\*`` \\*", "``a`\\*`` *", id="long-code-span"),
        pytest.param("\\`a\\*b`", "`a*b`", id="escaped-backtick-opens-no-span"),
        pytest.param("<https://e.org/a\\_b> \\_", "<https://e.org/a\\_b> _", id="autolink"),
        pytest.param('<a href="x\\_y">\\_', '<a href="x\\_y">_', id="raw-html"),
        pytest.param(
            ":tada: &amp; **bold** [x](y)", ":tada: &amp; **bold** [x](y)", id="no-escape"
        ),
    ],
)
def test_unescape(text: str, expected: str) -> None:
    assert unescape(text) == expected


# ---------------------------------------------------------------- escape_pad_line


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("<b>bold</b> move", "\\<b>bold\\</b> move", id="tags"),
        pytest.param("\\<b>", "\\\\\\<b>", id="a-user's-backslash-is-kept"),
        pytest.param("C:\\Users", "C:\\Users", id="no-punctuation-after"),
        pytest.param("# h", "\\# h", id="heading"),
        pytest.param("1. x", "1\\. x", id="ordered"),
        pytest.param("<div>", "\\<div>", id="html-block"),
        pytest.param("<https://e.org>", "<https://e.org>", id="autolink"),
        pytest.param("`<b>` and `a\\*b`", "`<b>` and `a\\*b`", id="code-spans"),
        # The fence's first backtick is escaped; the rest of the line is scanned after it.
        pytest.param("``` x `` <b> ``", "\\``` x `` \\<b> ``", id="fence"),
        pytest.param("plain text: as it was", "plain text: as it was", id="plain"),
    ],
)
def test_escape_pad_line(text: str, expected: str) -> None:
    assert escape_pad_line(text) == expected


def test_literal_start_escapes_punctuation_only() -> None:
    assert escape_pad_line("**Decision** x", literal_start=True) == "\\**Decision** x"
    assert escape_pad_line("Decision", literal_start=True) == "Decision"


@given(line_text, st.booleans())
def test_the_reader_reads_back_what_the_renderer_escaped(text: str, literal: bool) -> None:
    line = fragment(text)
    assert unescape(escape_pad_line(line, literal_start=literal)) == line


@given(line_text)
def test_an_escaped_line_is_one_paragraph_without_html(text: str) -> None:
    line = escape_pad_line(fragment(text))
    tokens = PAD.parse(f"- {line}\n")
    blocks = [t.type for t in tokens if t.level >= 2 and t.block and t.type != "inline"]
    assert set(blocks) <= {"paragraph_open", "paragraph_close"}, line
    inline = [t for t in tokens if t.type == "inline"]
    assert all(c.type != "html_inline" for t in inline for c in t.children or []), line


@given(st.text(st.characters(exclude_characters="\\")))
def test_text_without_a_backslash_is_read_as_it_stands(text: str) -> None:
    assert unescape(text) == text


# ---------------------------------------------------------------- through the renderer


def parsed(meeting: Meeting) -> list[object]:
    text = "# 2031 Collaboration Cafe Notes Archive\n\n" + render(meeting, Flavour.ARCHIVE)
    m = parse_archive(text).meetings[0]
    return [*m.intros, *m.shoutouts, *m.items]


ADA = Person(name="Ada Byron", created_at=NOW)


def a_meeting(
    *,
    items: list[AgendaItem] | None = None,
    intros: list[Introduction] | None = None,
    shoutouts: list[ShoutOut] | None = None,
) -> Meeting:
    return Meeting(
        date=dt.date(2031, 6, 17),
        checkins=[],
        introductions=intros or [],
        shoutouts=shoutouts or [],
        agenda_items=items or [],
    )


@pytest.mark.parametrize(
    ("topic", "estimate", "line"),
    [
        pytest.param(":tada: launch", 5, "- [name=Ada Byron] (5 min): :tada: launch", id="emoji"),
        pytest.param(":tada: launch", None, "- [name=Ada Byron] :tada: launch", id="emoji-bare"),
        pytest.param("- a dash", 5, "- [name=Ada Byron] (5 min): - a dash", id="dash"),
        # A topic that would read as an estimate or a separator gets a separator of its own.
        pytest.param("10 mins of fun", None, "- [name=Ada Byron] - 10 mins of fun", id="est"),
        pytest.param("- a dash", None, "- [name=Ada Byron] - - a dash", id="dash-bare"),
        pytest.param("\u2014 aside", None, "- [name=Ada Byron] - \u2014 aside", id="em-dash"),
        pytest.param("<b>bold</b>", None, "- [name=Ada Byron] \\<b>bold\\</b>", id="html"),
        pytest.param("a \\* b", None, "- [name=Ada Byron] a \\\\* b", id="backslash"),
    ],
)
def test_agenda_topics_survive_the_round_trip(topic: str, estimate: int | None, line: str) -> None:
    item = AgendaItem(ref=1, position=1, proposer=ADA, topic=topic, estimate_min=estimate)
    meeting = a_meeting(items=[item])
    assert line in render(meeting, Flavour.ARCHIVE).split("\n")
    (parsed_item,) = parsed(meeting)
    assert parsed_item.topic == topic  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "text", [":wave: hello", "- dash first", ": colon first", "\\<b> and <b>", "1. ordered"]
)
def test_introductions_and_shout_outs_survive_the_round_trip(text: str) -> None:
    intro = Introduction(ref=1, person=ADA, text=text, created_at=NOW)
    shout = ShoutOut(ref=1, author=ADA, project=None, text=text, created_at=NOW)
    got_intro, got_shout = parsed(a_meeting(intros=[intro], shoutouts=[shout]))
    assert got_intro.text == text  # type: ignore[attr-defined]
    assert got_shout.text == text  # type: ignore[attr-defined]


@pytest.mark.parametrize("text", ["**Decision** not really", "**todo**: later", "# h", "\\*"])
def test_a_note_of_its_own_stays_a_note(text: str) -> None:
    note = ItemNote(kind=NoteKind.NOTE, text=text, position=1, created_at=NOW)
    item = AgendaItem(ref=1, position=1, proposer=ADA, topic="Topic", notes=[note])
    (parsed_item,) = parsed(a_meeting(items=[item]))
    assert [(n.kind, n.text) for n in parsed_item.notes] == [(NoteKind.NOTE, text)]  # type: ignore[attr-defined]
