"""cafebot.notes.reader: every variation of notes-format.md read into records.

Pure tests (no database) on our own fixture archives in tests/fixtures/archives/
and on tables of single lines.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cafebot.notes.reader import parse_archive, read_archive_file
from cafebot.notes.records import (
    ArchiveError,
    ParsedCheckin,
    ParsedItem,
    ParsedMeeting,
    ParsedNote,
    normalise,
    parse_agenda_line,
    parse_checkin_line,
    parse_intro_line,
)
from cafebot.storage.models import NoteKind

FIXTURES = Path(__file__).parent / "fixtures" / "archives"

# What each fixture holds: the import's summary line per meeting, in file order.
SUMMARIES = {
    "2029.md": [
        "2029-12-18: 2 check-ins, 1 introduction, 2 shout-outs, 3 agenda items, 0 free-text blocks",
        "2029-11-20: 1 check-in, 0 introductions, 0 shout-outs, 0 agenda items, 0 free-text blocks",
    ],
    "2030.md": [
        "2030-12-15: 5 check-ins, 0 introductions, 0 shout-outs, 0 agenda items, "
        "0 free-text blocks",
        "2030-11-17: 2 check-ins, 4 introductions, 2 shout-outs, 7 agenda items, "
        "0 free-text blocks",
        "2030-10-20: 2 check-ins, 0 introductions, 3 shout-outs, 4 agenda items, "
        "5 free-text blocks",
        "2030-09-15: 0 check-ins, 0 introductions, 0 shout-outs, 0 agenda items, 1 free-text block",
        "2030-08-18: 2 check-ins, 1 introduction, 0 shout-outs, 3 agenda items, 1 free-text block",
    ],
    # The issue's own example line, from a meeting of our own.
    "2031.md": [
        "2031-05-20: 5 check-ins, 2 introductions, 3 shout-outs, 5 agenda items, "
        "2 free-text blocks",
    ],
    "odd.md": [
        "2028-06-20: 1 check-in, 0 introductions, 0 shout-outs, 1 agenda item, 4 free-text blocks",
        "2028-05-16: 0 check-ins, 0 introductions, 0 shout-outs, 1 agenda item, 2 free-text blocks",
    ],
}


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def meeting(name: str, date: str) -> ParsedMeeting:
    archive = parse_archive(fixture(name))
    return next(m for m in archive.meetings if m.date == dt.date.fromisoformat(date))


# ---------------------------------------------------------------- whole files


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_fixture_meetings_are_recognised(name: str) -> None:
    archive = parse_archive(fixture(name))
    assert [m.summary() for m in archive.meetings] == SUMMARIES[name]


@pytest.mark.parametrize("name", sorted(SUMMARIES))
def test_every_line_belongs_to_the_head_or_one_meeting(name: str) -> None:
    text = fixture(name)
    archive = parse_archive(text)
    assert archive.head + "".join(m.source for m in archive.meetings) == text
    for m in archive.meetings:
        assert m.source.startswith(f"## {m.date.isoformat()}")


def test_title_head_and_year() -> None:
    archive = parse_archive(fixture("2030.md"))
    assert archive.title == "2030 Collaboration Cafe Notes Archive"
    assert archive.year == 2030
    assert archive.head == (
        "# 2030 Collaboration Cafe Notes Archive\n\n"
        "Notes of the monthly cafe, newest first. Older years are in 2029.md.\n\n"
    )
    odd = parse_archive(fixture("odd.md"))
    assert odd.title is None
    assert odd.head == "Notes kept by the organisers. Older notes are in the wiki.\n\n"
    assert odd.year == 2028


def test_odd_headings_are_kept_as_text_with_a_warning() -> None:
    archive = parse_archive(fixture("odd.md"))
    assert [m.date for m in archive.meetings] == [dt.date(2028, 6, 20), dt.date(2028, 5, 16)]
    assert any("'2028-02-30' is not a date" in w for w in archive.warnings)
    assert any("a second meeting on 2028-05-16" in w for w in archive.warnings)
    june = archive.meetings[0]
    texts = [b.text for b in june.blocks]
    assert "## Template (not a meeting)\n\n- copy this for next time" in texts
    assert "## 2028-02-30\n\nNot a calendar date: kept as text." in texts
    # Check-in lines that are no check-ins stay where they stood, verbatim.
    assert "- / @nobody /\n- Weird / not a handle! / Somewhere" in texts
    may = archive.meetings[1]
    assert (
        may.blocks[-1].text
        == "## 2028-05-16\n\nDuplicate heading: kept with the meeting before it."
    )
    # An unclosed spoiler is no block: it cannot swallow what follows.
    assert may.blocks[0].text == ":::spoiler never closed"
    assert may.items[0].topic == "kept as plain text"


# ---------------------------------------------------------------- sections and prompts


def test_headings_without_emoji_or_with_trailing_spaces_and_introductions() -> None:
    november = meeting("2030.md", "2030-11-17")  # "### Check-in", "### Introductions", "### Agenda"
    assert [c.name for c in november.checkins] == ["Ada Byron", "Grace"]
    assert len(november.intros) == 4 and len(november.items) == 7
    december = meeting("2030.md", "2030-12-15")  # "### Check-in :raising_hand:   "
    assert len(december.checkins) == 5


@pytest.mark.parametrize(
    ("heading", "kind"),
    [
        pytest.param("Check-in :raising_hand:", "checkin", id="checkin"),
        pytest.param("Check-in", "checkin", id="checkin-bare"),
        pytest.param("check in :raising_hand: (add yourself)", "checkin", id="checkin-more"),
        pytest.param("Introduce yourself! :wave:", "intro", id="intro"),
        pytest.param("Introductions", "intro", id="introductions"),
        pytest.param("Celebrations and Shout-Outs :tada:", "shoutout", id="shoutouts"),
        pytest.param("Shout-outs 🎉", "shoutout", id="shoutouts-unicode"),
        pytest.param("Agenda :clock2:", "agenda", id="agenda"),
        pytest.param("Agenda (please add your items)", "agenda", id="agenda-more"),
        pytest.param("Breakout notes", None, id="extra"),
        pytest.param("Agendas elsewhere", None, id="not-agenda"),
    ],
)
def test_section_headings(heading: str, kind: str | None) -> None:
    (m,) = parse_archive(f"## 2031-05-20\n\n### {heading}\n\n- Ada: hi / @ada / Lab\n").meetings
    found = {
        "checkin": len(m.checkins),
        "intro": len(m.intros),
        "shoutout": len(m.shoutouts),
        "agenda": len(m.items),
    }
    assert found == {k: int(k == kind) for k in found}
    assert m.free_text_blocks == (kind is None)


def test_prompts_are_kept_but_not_counted() -> None:
    october = meeting("2030.md", "2030-10-20")
    prompts = {b.section: b.text for b in october.blocks if b.kind == "prompt"}
    assert prompts == {
        "checkin": "- _Name / GitHub handle / affiliation_",  # as a bullet
        "shoutout": "_Share something worth celebrating!_",
        "agenda": "_Put your topic below with your name and how long you need._",
    }
    november = meeting("2030.md", "2030-11-17")  # as a plain italic line
    assert [(b.section, b.text) for b in november.blocks if b.kind == "prompt"] == [
        ("checkin", "_Name / GitHub handle / affiliation_")
    ]


def test_a_meeting_with_only_some_sections_or_an_empty_agenda() -> None:
    cancelled = meeting("2030.md", "2030-09-15")
    assert (cancelled.checkins, cancelled.items) == ([], [])
    assert [(b.section, b.text) for b in cancelled.blocks] == [
        ("top", "Cancelled: most of us were at the conference.")
    ]
    only_checkins = meeting("2030.md", "2030-12-15")
    assert only_checkins.items == [] and only_checkins.shoutouts == []


# ---------------------------------------------------------------- entries


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param("Ada / @ada / Engines", ParsedCheckin("Ada", "ada", "Engines"), id="three"),
        pytest.param("Ada / ada / Engines", ParsedCheckin("Ada", "ada", "Engines"), id="no-at"),
        pytest.param(
            "Lena / [@lena-k](https://github.com/lena-k) / Atlas",
            ParsedCheckin("Lena", "lena-k", "Atlas"),
            id="link",
        ),
        pytest.param("Grace / @ghopper", ParsedCheckin("Grace", "ghopper", None), id="handle"),
        pytest.param("Grace / ghopper", ParsedCheckin("Grace", "ghopper", None), id="bare-handle"),
        pytest.param(
            "Katherine / Flight Research",
            ParsedCheckin("Katherine", None, "Flight Research"),
            id="affiliation",
        ),
        pytest.param("Linus / Helsinki", ParsedCheckin("Linus", None, "Helsinki"), id="place"),
        pytest.param("Yusuf", ParsedCheckin("Yusuf", None, None), id="name"),
        pytest.param("Tomasz / @tkowal ", ParsedCheckin("Tomasz", "tkowal", None), id="spaces"),
        pytest.param("Ann /  / Lab", ParsedCheckin("Ann", None, "Lab"), id="empty-handle"),
        pytest.param("/ @nobody /", None, id="no-name"),
        pytest.param("Weird / not a handle! / X", None, id="bad-handle"),
        pytest.param("_Name / GitHub handle / affiliation_", None, id="prompt"),
    ],
)
def test_checkin_fields(line: str, expected: ParsedCheckin | None) -> None:
    assert parse_checkin_line(line) == expected


@pytest.mark.parametrize(
    ("first", "name", "github", "text"),
    [
        pytest.param("Grace: Compilers, mostly.", "Grace", None, "Compilers, mostly.", id="colon"),
        pytest.param("**Edsger** Goto fan", "Edsger", None, "Goto fan", id="bold"),
        pytest.param("**Edsger:** Goto fan", "Edsger", None, "Goto fan", id="bold-colon"),
        pytest.param(
            "`mhamilton` — Flight software", None, "mhamilton", "Flight software", id="handle"
        ),
        pytest.param("[name=Ada] Engines", "Ada", None, "Engines", id="tag"),
        pytest.param("[name=Ada] - Engines", "Ada", None, "Engines", id="tag-dash"),
        # The colon after the name is the separator: the text starts right after it.
        pytest.param("Grace: :wave: Compilers", "Grace", None, ":wave: Compilers", id="emoji"),
        pytest.param("Grace: - a list", "Grace", None, "- a list", id="colon-then-dash"),
        pytest.param("Grace: \\<b> is a tag", "Grace", None, "<b> is a tag", id="escaped"),
    ],
)
def test_introduction_forms(first: str, name: str | None, github: str | None, text: str) -> None:
    intro = parse_intro_line(first, [(1, "more"), (2, "deeper")])
    assert intro is not None
    assert (intro.name, intro.github, intro.text) == (name, github, f"{text}\nmore\ndeeper")


def test_a_bullet_that_names_nobody_is_no_introduction() -> None:
    assert parse_intro_line("Hi all, happy to be here, see https://example.org", []) is None


def test_introduction_with_nested_bullets() -> None:
    november = meeting("2030.md", "2030-11-17")
    assert november.intros[2].github == "mhamilton"
    assert november.intros[2].text == (
        "Flight software, here for the release talk.\n"
        "Works on onboard guidance\n...and on error recovery"
    )
    # "- Joan Clarke: ...\n    -": CommonMark reads a setext heading; it is a bullet.
    assert november.intros[3].name == "Joan Clarke"


@pytest.mark.parametrize(
    ("line", "proposer", "estimate", "topic"),
    [
        pytest.param("[name=Ines] (10min): Welcome", "Ines", (10, None), "Welcome", id="10min"),
        pytest.param("[name=Ines] (10m): Welcome", "Ines", (10, None), "Welcome", id="10m"),
        pytest.param("[name=Ines] (5 min): Welcome", "Ines", (5, None), "Welcome", id="5-min"),
        pytest.param("[name=Ines] (5 mins) Welcome", "Ines", (5, None), "Welcome", id="no-colon"),
        pytest.param("**Ines** 10 mins: Welcome", "Ines", (10, None), "Welcome", id="bold"),
        pytest.param("**Sam** 10-15 mins: Voices", "Sam", (10, 15), "Voices", id="range"),
        pytest.param("**Marta** 5 - 10 mins: Health", "Marta", (5, 10), "Health", id="spaced"),
        pytest.param(
            "[name=Ann] 10-15 mins Paper club", "Ann", (10, 15), "Paper club", id="range-bare"
        ),
        pytest.param("[name=Kat] (15 min) - Orbits", "Kat", (15, None), "Orbits", id="dash"),
        pytest.param("[name=Tomasz] cut a release", "Tomasz", None, "cut a release", id="no-est"),
        pytest.param("[name=Grace]: Warnings", "Grace", None, "Warnings", id="tag-colon"),
        # One separator, with white space after it: an emoji shortcode's colon is text.
        pytest.param(
            "[name=Ada] (5 min): :tada: Launch", "Ada", (5, None), ":tada: Launch", id="emoji"
        ),
        pytest.param("[name=Ada] :tada: Launch", "Ada", None, ":tada: Launch", id="emoji-bare"),
        pytest.param("[name=Ada] (5 min): - dash", "Ada", (5, None), "- dash", id="colon-dash"),
        pytest.param("[name=Ada] - - dash", "Ada", None, "- dash", id="dash-dash"),
        pytest.param("[name=Ada] - 10 mins", "Ada", None, "10 mins", id="dash-estimate"),
        pytest.param("**Ines:** - dash", "Ines", None, "- dash", id="bold-colon-dash"),
        pytest.param("[name=Ada] \\<b> \\# x", "Ada", None, "<b> # x", id="escapes"),
        pytest.param("\\[name=Eve] topic", None, None, "[name=Eve] topic", id="escaped-tag"),
        pytest.param(
            "10 mins Move the calendar", None, (10, None), "Move the calendar", id="no-tag"
        ),
        pytest.param("Moving packages", None, None, "Moving packages", id="plain"),
        pytest.param("[name=Ada] (0 min): Zero", "Ada", None, "(0 min): Zero", id="zero"),
        pytest.param(
            "**Release 5.3 today** for real",
            None,
            None,
            "**Release 5.3 today** for real",
            id="bold-not-a-name",
        ),
    ],
)
def test_agenda_line_forms(
    line: str, proposer: str | None, estimate: tuple[int, int | None] | None, topic: str
) -> None:
    item = parse_agenda_line(line, [])
    assert (item.proposer, item.estimate, item.topic) == (proposer, estimate, topic)


def test_an_agenda_line_wrapped_in_underscores_is_an_item() -> None:
    item = parse_agenda_line("_[name=Ines] (10m): Pilot the settings_", [])
    assert item == ParsedItem("Ines", (10, None), "Pilot the settings", (), italic=True)


def test_nested_notes_decisions_and_actions() -> None:
    item = parse_agenda_line(
        "[name=Ada] (10 min): Year in review",
        [
            (1, "Twelve meetings"),
            (2, "forty topics"),
            (1, "**Decision** - keep the third Tuesday"),
            (1, "**Decision**: and the room"),
            (1, "**Action** - [name=Grace] book the room"),
        ],
    )
    assert item.notes == (
        ParsedNote(NoteKind.NOTE, "Twelve meetings\nforty topics"),
        ParsedNote(NoteKind.DECISION, "keep the third Tuesday"),
        ParsedNote(NoteKind.DECISION, "and the room"),
        ParsedNote(NoteKind.ACTION, "[name=Grace] book the room"),
    )


def test_escaped_notes_are_read_as_written() -> None:
    item = parse_agenda_line(
        "[name=Ada] (10 min): Year",
        [(1, "\\**Decision** is a word"), (2, "\\# deeper"), (1, "**Decision** - \\<b>")],
    )
    assert item.notes == (
        ParsedNote(NoteKind.NOTE, "**Decision** is a word\n# deeper"),
        ParsedNote(NoteKind.DECISION, "<b>"),
    )


def test_eight_space_bullets_under_an_item_are_its_nested_notes() -> None:
    text = (
        "## 2031-05-20\n\n### Agenda\n\n"
        "- [name=Ines] (5min): Switch URLs?\n"
        "        - Group agreed\n"
        "            - deeper still\n"
        "        - **Decision** - one more week\n"
        "- [name=Jonas] (10m): Build packs\n"
    )
    (m,) = parse_archive(text).meetings
    assert [i.topic for i in m.items] == ["Switch URLs?", "Build packs"]
    assert m.items[0].notes == (
        ParsedNote(NoteKind.NOTE, "Group agreed\ndeeper still"),
        ParsedNote(NoteKind.DECISION, "one more week"),
    )


@pytest.mark.parametrize("indent", [2, 4, 8])
@pytest.mark.parametrize("marker", ["-", "*"])
def test_nested_bullets_of_any_indent_and_marker(indent: int, marker: str) -> None:
    pad = " " * indent
    text = (
        f"## 2031-05-20\n\n### Agenda\n\n- Topic one\n{pad}{marker} first\n"
        f"{pad}{pad}{marker} second\n{pad}{marker} third\n- Topic two\n"
    )
    (m,) = parse_archive(text).meetings
    assert [i.topic for i in m.items] == ["Topic one", "Topic two"]
    assert [n.text for n in m.items[0].notes] == ["first\nsecond", "third"]


def test_shout_outs_grouped_under_project_lines() -> None:
    october = meeting("2030.md", "2030-10-20")
    assert [(s.project, s.author) for s in october.shoutouts] == [
        ("Analytical Engine", "Ada Byron"),
        ("Analytical Engine", None),
        ("Paper Club", None),
    ]
    assert october.shoutouts[1].text == (
        "Loop support landed\nThanks to the reviewers\nFollow-up: https://example.org/engine/issues/9"
    )


def test_free_text_where_it_stood() -> None:
    october = meeting("2030.md", "2030-10-20")
    kept = [(b.section, b.after, b.text.split("\n")[0]) for b in october.blocks if b.kind == "text"]
    assert kept == [
        ("agenda", 0, ":::spoiler Links for the breakout rooms"),  # spoiler + paragraph before
        ("agenda", 2, "Item two ran long; the rest moved to next month."),  # between bullets
        ("agenda", 4, "That's all for today."),  # after the list
        ("agenda", 4, "#### Paper club venue"),  # a level-4 subsection
        ("agenda", 4, "### Breakout notes"),  # a section of its own, bullets and all
    ]
    spoiler = october.blocks[3].text
    assert spoiler.endswith(":::\n\nBefore we start: the recording is on.")
    assert [i.italic for i in october.items] == [True, False, True, False]


# ---------------------------------------------------------------- files that are no archive


def test_read_errors(tmp_path: Path) -> None:
    cases = {
        "empty.md": (b"", "the file is empty"),
        "blank.md": (b"  \n\n", "the file is empty"),
        "latin1.md": ("## 2031-05-20\n\nCaf\xe9\n".encode("latin-1"), "not UTF-8 text"),
        "nul.md": (b"## 2031-05-20\n\x00\n", "NUL"),
    }
    for name, (data, message) in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(ArchiveError, match=message):
            read_archive_file(tmp_path / name)
    with pytest.raises(ArchiveError, match="no such file"):
        read_archive_file(tmp_path / "missing.md")
    with pytest.raises(ArchiveError, match="directory"):
        read_archive_file(tmp_path)
    with pytest.raises(ArchiveError, match="line 1"):
        (tmp_path / "bad.md").write_bytes(b"\xff\xfe## x")
        read_archive_file(tmp_path / "bad.md")


def test_a_file_without_dated_meetings_is_no_archive() -> None:
    with pytest.raises(ArchiveError, match=r"no meetings found.*## 2031-05-20"):
        parse_archive("# Shopping list\n\n- milk\n- bread\n")


def test_windows_line_ends_and_a_byte_order_mark(tmp_path: Path) -> None:
    text = fixture("2030.md")
    (tmp_path / "crlf.md").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    archive = parse_archive(read_archive_file(tmp_path / "crlf.md"))
    assert [m.summary() for m in archive.meetings] == SUMMARIES["2030.md"]


# ---------------------------------------------------------------- normalisation


def test_normalise_is_fidelity_rule_two() -> None:
    original = "# T  \n\n\n\n- a\n        * b\n            - c\n  * d\n\ntext   \n* e\n"
    assert normalise(original) == "# T\n\n- a\n  - b\n    - c\n  - d\n\ntext\n- e\n"
    # Nothing else changes: not the order, not a character of the text.
    assert normalise("- a\n- b\n") != normalise("- b\n- a\n")
    assert normalise("- a\n  - b\n") != normalise("- a\n- b\n")
    assert normalise("- A\n") != normalise("- a\n")
