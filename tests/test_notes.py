"""cafebot.notes.render: the rendered notes, against golden files and Markdown parsers.

The golden files in ``tests/golden/`` are the reviewed output. After a deliberate
change of the format, regenerate them with

    CAFEBOT_UPDATE_GOLDEN=1 pytest tests/test_notes.py

and review the diff line by line before committing it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from markdown_it.token import Token

from cafebot.core.config import SeriesSettings
from cafebot.core.text import one_line
from cafebot.notes.render import Flavour, render, render_archive_file, split_message
from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    ItemState,
    Meeting,
    NoteKind,
    Person,
    ShoutOut,
)

GOLDEN = Path(__file__).parent / "golden"
UPDATE_GOLDEN = os.environ.get("CAFEBOT_UPDATE_GOLDEN") == "1"

SECTIONS = {
    "checkin": "Check-in :raising_hand:",
    "intro": "Introduce yourself! :wave:",
    "shoutout": "Celebrations and Shout-Outs :tada:",
}
AGENDA = {Flavour.ARCHIVE: "Agenda :clock2:", Flavour.ZULIP: "Agenda :time:"}

# The pad's Markdown: CommonMark with HTML, plus tables. Zulip's has tables but no HTML.
PAD = MarkdownIt("commonmark").enable("table")
ZULIP_LIKE = MarkdownIt("commonmark", {"html": False}).enable("table")
PARSERS = {Flavour.ARCHIVE: PAD, Flavour.ZULIP: ZULIP_LIKE}

# Zulip's mention pattern (zerver/lib/mention.py), without its look-behind.
ZULIP_MENTION = re.compile(r"@(?P<silent>_?)(?:\*\*(?P<user>[^*]+)\*\*|\*(?P<group>[^*]+)\*)")
WILDCARDS = {"all", "everyone", "stream", "channel", "topic"}


def mentions_as_zulip_reads_them(tokens: list[Token]) -> list[re.Match[str]]:
    """The mentions in the notes as Zulip finds them: its pattern, newlines included, within
    each block's text (a paragraph, a heading, a list item's), never across two blocks."""
    return [
        m for tok in tokens if tok.type == "inline" for m in ZULIP_MENTION.finditer(tok.content)
    ]


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE_GOLDEN:
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8", newline="\n")
    assert path.read_text(encoding="utf-8") == text, f"differs from {path}"


# ---------------------------------------------------------------- fixtures
# Transient ORM objects: no database needed to render.

T0 = dt.datetime(2031, 6, 17, 16, 0, tzinfo=dt.UTC)


def person(
    name: str | None = None,
    *,
    zulip_id: int | None = None,
    zulip_name: str | None = None,
    github: str | None = None,
) -> Person:
    return Person(
        name=name, zulip_user_id=zulip_id, zulip_name=zulip_name, github=github, created_at=T0
    )


def note(kind: NoteKind, text: str, position: int, owner: Person | None = None) -> ItemNote:
    return ItemNote(kind=kind, text=text, position=position, owner=owner, created_at=T0)


def item(
    ref: int,
    topic: str,
    *,
    position: int | None = None,
    proposer: Person | None = None,
    estimate: tuple[int | None, int | None] = (None, None),
    state: ItemState = ItemState.OPEN,
    carried_from: dt.date | None = None,
    moved_to: dt.date | None = None,
    notes: list[ItemNote] | None = None,
) -> AgendaItem:
    return AgendaItem(
        ref=ref,
        position=ref if position is None else position,
        topic=topic,
        proposer=proposer,
        estimate_min=estimate[0],
        estimate_max=estimate[1],
        state=state,
        carried_from=carried_from,
        moved_to=moved_to,
        notes=notes or [],
        created_at=T0,
    )


def meeting(
    date: dt.date = dt.date(2031, 6, 17),
    *,
    checkins: list[CheckIn] | None = None,
    introductions: list[Introduction] | None = None,
    shoutouts: list[ShoutOut] | None = None,
    agenda: list[AgendaItem] | None = None,
) -> Meeting:
    return Meeting(
        date=date,
        checkins=checkins or [],
        introductions=introductions or [],
        shoutouts=shoutouts or [],
        agenda_items=agenda or [],
    )


def checkin(ref: int, name: str, github: str | None = None, affil: str | None = None) -> CheckIn:
    return CheckIn(ref=ref, name=name, github=github, affiliation=affil, created_at=T0)


def intro(ref: int, who: Person | None, text: str) -> Introduction:
    return Introduction(ref=ref, person=who, text=text, created_at=T0)


def shout(ref: int, author: Person | None, text: str, project: str | None = None) -> ShoutOut:
    return ShoutOut(ref=ref, author=author, text=text, project=project, created_at=T0)


def full_meeting() -> Meeting:
    """Every section and every form of entry the format knows."""
    ines = person("Ines", zulip_id=11, zulip_name="Ines Rocha", github="ines-r")
    tomasz = person("Tomasz", github="tkowal")
    priya = person("Priya Raman", zulip_id=13)
    ada = person(None, zulip_name="Ada Lovelace", zulip_id=14)
    bob = person("Bob", zulip_id=42, zulip_name="Bob Jones")
    carla = person("Carla")  # no Zulip account (imported from the archive)
    jonas = person(None, github="jonas-b")  # known by the GitHub handle only
    return meeting(
        checkins=[
            checkin(2, "Tomasz", "tkowal"),
            checkin(1, "Ines", "ines-r", "Harbour Lab"),
            checkin(3, "Marta", None, "Riverside Hospital"),
            checkin(4, "Yusuf"),
            checkin(5, "Lena", "@lena-k", "Open Atlas Foundation"),
        ],
        introductions=[
            intro(
                1,
                priya,
                "Community manager for [Open Atlas](https://example.org/atlas). "
                "I like rock climbing :mountain: and sourdough.",
            ),
            intro(
                2,
                person("Ola Nilsen"),
                "Maintainer of a small plotting library.\n"
                "Interested in reproducible builds\n\n"
                "  Here to learn how releases work  ",
            ),
        ],
        shoutouts=[
            shout(1, ines, "The nightly builds are green again: https://example.org/builds/412"),
            shout(
                2,
                tomasz,
                "Proxy 3 beta, please test: https://example.org/lattice/pull/88",
                "Lattice",
            ),
            shout(3, None, "Thanks to everyone who reviewed the governance draft!"),
            shout(
                4,
                priya,
                "New contributions!\n[Page footers](https://example.org/quill/pull/12)\n"
                "[Edit buttons](https://example.org/quill/pull/15)",
                "Quill Book",
            ),
            shout(5, ines, "The docs have a shorter, easier URL!", "Lattice"),
            shout(6, jonas, "Release notes are out", "  lattice "),
        ],
        agenda=[
            item(
                1,
                "Welcome and how the cafe works",
                proposer=ines,
                estimate=(10, None),
                state=ItemState.DONE,
                notes=[
                    note(NoteKind.NOTE, "Round of names", 1),
                    note(NoteKind.DECISION, "one more week, then switch.", 2),
                    note(NoteKind.ACTION, "write the migration guide", 3, owner=bob),
                    note(NoteKind.ACTION, "update the wiki", 4),
                    note(NoteKind.ACTION, "book the room", 5, owner=carla),
                    note(NoteKind.NOTE, "  \n ", 6),  # empty: not shown
                ],
            ),
            item(3, "Intro to Lattice", position=2, proposer=tomasz),
            item(
                2,
                "Switch the team pages to folder-style URLs?",
                position=3,
                estimate=(5, None),
                notes=[
                    note(
                        NoteKind.NOTE,
                        "Question: full time or part time?\n100%, 50%, 20%\n"
                        "Inspiration: https://example.org/careers",
                        1,
                    ),
                    note(NoteKind.DECISION, "yes, after the\nredirects are checked", 2),
                ],
            ),
            item(
                4,
                "Container build packs",
                proposer=ada,
                estimate=(10, 15),
                carried_from=dt.date(2031, 5, 20),
                notes=[
                    note(NoteKind.NOTE, "Tried before: https://example.org/r2d/issues/868", 1),
                    note(NoteKind.ACTION, "share the survey", 2, owner=priya),  # no Zulip name
                ],
            ),
            item(
                6,
                "Funding a developer-in-residence",
                position=5,
                proposer=ada,
                estimate=(5, None),
                state=ItemState.DEFERRED,
                moved_to=dt.date(2031, 7, 15),
            ),
            item(
                5,
                "Release 5.3\nhttps://example.org/lattice/pull/5048",
                position=5,
                proposer=jonas,
                estimate=(5, 10),
                state=ItemState.CARRIED_OVER,
                carried_from=dt.date(2031, 5, 20),
                moved_to=dt.date(2031, 7, 15),
                notes=[note(NoteKind.NOTE, "Waiting for CI", 1)],
            ),
            item(7, "Security settings pilot", proposer=carla, estimate=(60, None)),
        ],
    )


def empty_meeting() -> Meeting:
    return meeting(dt.date(2031, 7, 15))


def unicode_meeting() -> Meeting:
    li = person("李小龙", zulip_id=21, zulip_name="李小龙")
    zoe = person("Zoë Ñúñez")
    mohammed = person("محمد الأحمد", zulip_id=22, zulip_name="محمد الأحمد")
    unicorn = person("🦄 Unicorn")
    return meeting(
        dt.date(2031, 8, 19),
        checkins=[
            checkin(1, "李小龙", "lxl", "北京大学"),
            checkin(2, "محمد الأحمد", "m-ahmad", "جامعة القاهرة"),
            checkin(3, "Zoë Ñúñez", None, "Universidad de Córdoba"),
            checkin(4, "Σωκράτης\u00a0Π.", "sokr"),
        ],
        introductions=[
            intro(1, mohammed, "مرحبا! أعمل على\nالبيانات المفتوحة"),  # noqa: RUF001 - Arabic on purpose
            intro(2, unicorn, "Hi 👋🏽 I'm a 👩\u200d💻 who loves e\u0301mojis"),
        ],
        shoutouts=[
            shout(1, li, "文档翻译完成了 🎉", "数据科学"),
            shout(2, zoe, "¡Gracias a todas! ❤️"),
            shout(3, mohammed, "شكراً لكم", "数据科学"),
        ],
        agenda=[
            item(1, "Übersetzungen: 日本語 und العربية", proposer=zoe, estimate=(10, None)),
            item(
                2,
                "Emoji in names 🦄\u2028and a line separator",
                proposer=unicorn,
                notes=[
                    note(NoteKind.ACTION, "follow up \u202eon bidi\u202c text", 1, owner=mohammed),
                    note(NoteKind.DECISION, "keep \x1b[31mcolour\x1b[0m codes out\x00", 2),
                ],
            ),
        ],
    )


def hostile_meeting() -> Meeting:
    """User text that tries to break out of its place."""
    eve = person("Eve] [name=Mallory", zulip_id=66, zulip_name="Eve*|1")
    star = person("Ann*", github="**all**")
    blank = person("   ")  # sanitises to nothing: falls back to no tag
    return meeting(
        dt.date(2031, 9, 16),
        checkins=[
            checkin(1, "# heading", "**all**", "@**everyone**"),
            checkin(2, "- x", None, "> quote"),
            checkin(3, "1. x", "@_**all**", "<div>"),
            checkin(4, "", None, None),
        ],
        introductions=[
            intro(1, person("> Quote"), "```\ncode\n```"),
            intro(2, person("@**channel**"), "~~~\n:::spoiler secrets\n:::"),
        ],
        shoutouts=[
            shout(1, eve, "@**all** look at this"),
            shout(2, star, "- fake bullet", "# Project"),
            shout(3, None, "---", "- bullet project"),
            shout(4, blank, "===", ":::spoiler"),
            shout(5, None, "| a | b |\n|---|---|\n| 1 | 2 |", "1. ordered"),
            shout(6, None, "[x]: https://evil.example", "/poll Vote now"),
            shout(7, None, "<script>alert(1)</script>", "<details>"),
        ],
        agenda=[
            item(
                1,
                "```python",
                proposer=eve,
                estimate=(5, None),
                notes=[
                    note(NoteKind.NOTE, "<div>", 1),
                    note(NoteKind.NOTE, "</div>\n> nested quote\n# nested heading", 2),
                    note(NoteKind.NOTE, "--", 3),
                    note(NoteKind.NOTE, "@*admins* @**stream** @**channel** @**topic**", 4),
                    note(NoteKind.DECISION, "@**everyone** ships it", 5),
                    note(NoteKind.ACTION, "fix [x]: it", 6, owner=eve),
                    note(NoteKind.ACTION, "- ~~~", 7, owner=star),
                ],
            ),
            item(2, "# Not a heading", proposer=star),
            item(3, "    indented code", estimate=(1, None)),
            item(4, "\t\x00", proposer=None),  # nothing left: shows as (empty)
            item(5, "`<b>` is fine in code, <b> is not", proposer=blank),
            item(
                6,
                "@**all** moved_",
                proposer=eve,
                state=ItemState.DEFERRED,
                moved_to=dt.date(2031, 10, 21),
            ),
        ],
    )


def custom_series() -> SeriesSettings:
    return SeriesSettings(
        key="book",
        name="Quill Book Cafe",
        prompts=(
            ("checkin", "_Who are you? Name / handle / team_"),  # a paragraph, not a bullet
            ("intro", ""),
            ("shoutout", "# Celebrate! @**all**"),  # even the operator cannot add a heading
            ("agenda", "   "),
        ),
    )


FIXTURES: dict[str, Callable[[], Meeting]] = {
    "full": full_meeting,
    "empty": empty_meeting,
    "unicode": unicode_meeting,
    "hostile": hostile_meeting,
}


# ---------------------------------------------------------------- golden files


@pytest.mark.parametrize("flavour", list(Flavour))
@pytest.mark.parametrize("name", list(FIXTURES))
def test_golden(name: str, flavour: Flavour) -> None:
    check_golden(f"{name}.{flavour}.md", render(FIXTURES[name](), flavour))


@pytest.mark.parametrize("flavour", list(Flavour))
def test_golden_custom_prompts(flavour: Flavour) -> None:
    check_golden(f"prompts.{flavour}.md", render(full_meeting(), flavour, custom_series()))


def test_golden_archive_file() -> None:
    text = render_archive_file(
        "2031 Collaboration Cafe Notes Archive", [empty_meeting(), full_meeting()]
    )
    check_golden("archive-file.md", text)


def test_archive_file_parts() -> None:
    first, second = full_meeting(), empty_meeting()
    text = render_archive_file("Title", [first, second])
    assert text == (
        "# Title\n\n" + render(first, Flavour.ARCHIVE) + "\n" + render(second, Flavour.ARCHIVE)
    )
    assert render_archive_file("Title", []) == "# Title\n"


def test_default_series_is_used_when_none_given() -> None:
    m = full_meeting()
    assert render(m, Flavour.ZULIP) == render(m, Flavour.ZULIP, SeriesSettings(key="cafe"))
    assert render(m, Flavour.ZULIP).startswith("## Collaboration Cafe notes: 2031-06-17\n")


def test_flavour_may_be_given_as_its_value() -> None:
    m = full_meeting()
    assert render(m, Flavour("zulip")) == render(m, Flavour.ZULIP)


def test_render_changes_nothing() -> None:
    m = full_meeting()
    before = [(i.ref, i.position, i.topic, len(i.notes)) for i in m.agenda_items]
    render(m, Flavour.ARCHIVE)
    render(m, Flavour.ZULIP)
    assert [(i.ref, i.position, i.topic, len(i.notes)) for i in m.agenda_items] == before


# ---------------------------------------------------------------- structure


def headings(tokens: list[Token]) -> list[tuple[str, str]]:
    return [
        (tok.tag, tokens[i + 1].content)
        for i, tok in enumerate(tokens)
        if tok.type == "heading_open"
    ]


def sections(tokens: list[Token]) -> dict[str, list[Token]]:
    """The top-level tokens under each level-3 heading, by heading text."""
    out: dict[str, list[Token]] = {}
    current: list[Token] | None = None
    for i, tok in enumerate(tokens):
        if tok.type == "heading_open":
            current = out.setdefault(tokens[i + 1].content, []) if tok.tag == "h3" else None
        elif current is not None:
            current.append(tok)
    return out


def top_level_items(tokens: list[Token]) -> int:
    """How many items the top-level bullet lists of a section hold."""
    return sum(1 for t in tokens if t.type == "list_item_open" and t.level == 1)


def bullet_prompt(series: SeriesSettings, key: str) -> bool:
    """Whether the section's prompt is a bullet (and so the list's first item)."""
    return bool(re.match(r"^[-*+]\s+\S", one_line(series.prompt(key))))


def expected_headings(m: Meeting, flavour: Flavour, series: SeriesSettings) -> list[str]:
    date = m.date.isoformat()
    top = f"{series.name} notes: {date}" if flavour is Flavour.ZULIP else date
    names = [SECTIONS["checkin"]]
    if m.introductions:
        names.append(SECTIONS["intro"])
    return [top, *names, SECTIONS["shoutout"], AGENDA[flavour]]


# Block tokens allowed anywhere in the notes; anything else (a fence, a quote, a
# table, raw HTML, a rule, a numbered list, a code block) came from user text.
ALLOWED_BLOCKS = {
    "heading_open",
    "heading_close",
    "paragraph_open",
    "paragraph_close",
    "bullet_list_open",
    "bullet_list_close",
    "list_item_open",
    "list_item_close",
    "inline",
}
# What Zulip's Markdown (Python-Markdown) would read as a block at a line start,
# after the bullet marker: the pad's parser is not Zulip's, so check the lines too.
ZULIP_BLOCK_START = re.compile(
    r"^(?:#{1,6}\s|>|[-*+](?:\s|$)|\d+\.\s|\s*(?:`{3,}|~{3,})|[-=]+\s*$"
    r"|(?:-+ {0,2}){3,}$|(?:_+ {0,2}){3,}$|(?:\*+ {0,2}){3,}$)"
)


def assert_well_formed(m: Meeting, flavour: Flavour, series: SeriesSettings) -> None:
    text = render(m, flavour, series)
    tokens = PARSERS[flavour].parse(text)

    # Only the headings the format has, and no block that user text opened.
    expected = expected_headings(m, flavour, series)
    assert headings(tokens) == [("h2", expected[0])] + [("h3", h) for h in expected[1:]]
    assert not [t.type for t in tokens if t.block and t.type not in ALLOWED_BLOCKS]
    # No raw HTML in the pad (Zulip shows HTML as text anyway).
    for tok in tokens:
        if tok.type == "inline":
            assert "html_inline" not in [c.type for c in tok.children or []], tok.content

    # Each entry is one top-level list item.
    by_section = sections(tokens)
    for key, heading, entries in (
        ("checkin", SECTIONS["checkin"], m.checkins),
        ("intro", SECTIONS["intro"], m.introductions),
        ("shoutout", SECTIONS["shoutout"], m.shoutouts),
        ("agenda", AGENDA[flavour], m.agenda_items),
    ):
        if entries or key != "intro":
            count = len(entries) + bullet_prompt(series, key)
            assert top_level_items(by_section[heading]) == count, heading

    # Nobody is pinged, least of all everybody.
    for mention in mentions_as_zulip_reads_them(tokens):
        assert mention.group("silent"), mention.group()

    # Line by line, as Zulip's Markdown and the pad's containers would see it.
    for line in text.splitlines():
        if not line or line.startswith(("## ", "### ")):
            continue
        content = re.sub(r"^(?: {4})*- ", "", line)
        assert not ZULIP_BLOCK_START.match(content), line
        assert re.match(r"^(?: {4})*- \S", line) or not line[0].isspace(), line
        if flavour is Flavour.ARCHIVE:
            assert not content.startswith(":::"), line  # the pad's containers
        elif content == line:
            # A paragraph line may open a message after a split: no /poll, /todo or /me.
            assert not line.startswith("/"), line


@pytest.mark.parametrize("flavour", list(Flavour))
@pytest.mark.parametrize("name", list(FIXTURES))
def test_structure(name: str, flavour: Flavour) -> None:
    assert_well_formed(FIXTURES[name](), flavour, SeriesSettings(key="cafe"))


@pytest.mark.parametrize("flavour", list(Flavour))
def test_structure_custom_prompts(flavour: Flavour) -> None:
    assert_well_formed(full_meeting(), flavour, custom_series())


def outline(tokens: list[Token]) -> list[tuple[int, str]]:
    """(nesting depth, text) of each list item's text: 0 for top-level items."""
    return [((t.level - 3) // 2, t.content) for t in tokens if t.type == "inline" and t.level >= 3]


def test_agenda_item_notes_are_nested_under_their_item() -> None:
    tokens = PAD.parse(render(full_meeting(), Flavour.ARCHIVE))
    agenda = outline(sections(tokens)[AGENDA[Flavour.ARCHIVE]])
    assert agenda[:10] == [
        (0, "[name=Ines] (10 min): Welcome and how the cafe works"),
        (1, "Round of names"),
        (1, "**Decision** - one more week, then switch."),
        (1, "**Action** - [name=Bob] write the migration guide"),
        (1, "**Action** - update the wiki"),
        (1, "**Action** - [name=Carla] book the room"),
        (0, "[name=Tomasz] Intro to Lattice"),
        (0, "(5 min): Switch the team pages to folder-style URLs?"),
        (1, "Question: full time or part time?"),
        (2, "100%, 50%, 20%"),
    ]


def test_a_backtick_in_one_piece_cannot_unlock_html_in_the_next() -> None:
    m = meeting(
        checkins=[checkin(1, "Ann`", None, "`<b>` team")],
        shoutouts=[shout(1, person("Bo`"), "`<i>` yes", "Proj`")],
        agenda=[item(1, "`<b>` and <i>", proposer=person("Ann`"), estimate=(5, None))],
    )
    tokens = PAD.parse(render(m, Flavour.ARCHIVE))
    inline_types = [c.type for t in tokens if t.type == "inline" for c in t.children or []]
    assert "code_inline" in inline_types
    assert "html_inline" not in inline_types


# ---------------------------------------------------------------- property


HOSTILE = [
    "# heading",
    "#",
    "@**all**",
    "@**everyone**",
    "@**stream**",
    "@**channel**",
    "@**topic**",
    "@*admins*",
    "@",
    "**",
    "*",
    "- x",
    "-",
    "--",
    "* x",
    "1. x",
    "```",
    "~~~",
    ":::spoiler",
    "> quote",
    "<div>",
    "[x]: u",
    "|a|b|",
    "===",
    "    ",
    "\t",
    "\n",
    "\r",
    "\u2028",
    "]",
    "[",
    "\\",
    "`",
    "_",
    "\x00",
    "/poll",
]
texts = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=5)), max_size=5).map("".join)
maybe_texts = st.none() | texts
dates = st.none() | st.dates(dt.date(2030, 1, 1), dt.date(2032, 12, 31))


@st.composite
def people(draw: st.DrawFn) -> Person | None:
    if draw(st.booleans()):
        return None
    return person(
        draw(maybe_texts),
        zulip_id=draw(st.none() | st.integers(1, 10**6)),
        zulip_name=draw(maybe_texts),
        github=draw(maybe_texts),
    )


@st.composite
def meetings(draw: st.DrawFn) -> Meeting:
    n_items = draw(st.integers(0, 4))
    agenda = []
    for ref in range(1, n_items + 1):
        low = draw(st.none() | st.integers(1, 120))
        agenda.append(
            item(
                ref,
                draw(texts),
                position=draw(st.integers(0, 5)),
                proposer=draw(people()),
                estimate=(low, draw(st.none() | st.integers(1, 240)) if low else None),
                state=draw(st.sampled_from(list(ItemState))),
                carried_from=draw(dates),
                moved_to=draw(dates),
                notes=[
                    note(draw(st.sampled_from(list(NoteKind))), draw(texts), pos, draw(people()))
                    for pos in range(draw(st.integers(0, 3)))
                ],
            )
        )
    return meeting(
        checkins=[
            checkin(ref, draw(texts), draw(maybe_texts), draw(maybe_texts))
            for ref in range(1, draw(st.integers(0, 3)) + 1)
        ],
        introductions=[
            intro(ref, draw(people()), draw(texts)) for ref in range(1, draw(st.integers(0, 2)) + 1)
        ],
        shoutouts=[
            shout(ref, draw(people()), draw(texts), draw(maybe_texts))
            for ref in range(1, draw(st.integers(0, 4)) + 1)
        ],
        agenda=agenda,
    )


@st.composite
def series_settings(draw: st.DrawFn) -> SeriesSettings:
    prompts = tuple((key, draw(texts)) for key in ("checkin", "intro", "shoutout", "agenda"))
    return SeriesSettings(key="x", name=draw(texts), prompts=prompts)


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meetings(), st.sampled_from(list(Flavour)))
def test_any_text_keeps_the_structure(m: Meeting, flavour: Flavour) -> None:
    assert_well_formed(m, flavour, SeriesSettings(key="cafe"))


@settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(meetings(), series_settings(), st.sampled_from(list(Flavour)))
def test_any_prompts_and_series_name_keep_the_structure(
    m: Meeting, series: SeriesSettings, flavour: Flavour
) -> None:
    text = render(m, flavour, series)
    tokens = PAD.parse(text)
    assert [h for h in headings(tokens) if h[0] == "h3"] == [
        ("h3", h) for h in expected_headings(m, flavour, series)[1:]
    ]
    assert [tag for tag, _ in headings(tokens)] == ["h2"] + ["h3"] * (len(headings(tokens)) - 1)
    agenda_items = len(m.agenda_items) + bullet_prompt(series, "agenda")
    assert top_level_items(sections(tokens)[AGENDA[flavour]]) == agenda_items
    assert all(found.group("silent") for found in mentions_as_zulip_reads_them(tokens))


@settings(deadline=None)
@given(meetings())
def test_notes_are_utf8_text_without_control_characters(m: Meeting) -> None:
    for flavour in Flavour:
        text = render(m, flavour)
        text.encode("utf-8")
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\r\u2028\u2029]", text)
        assert text.endswith("\n")
        assert not text.endswith("\n\n")
        assert "\n\n\n" not in text
        assert all(line == line.rstrip() for line in text.split("\n"))


# ---------------------------------------------------------------- splitting


def rejoined(chunks: list[str]) -> str:
    return "".join(chunks).replace("\n", "")


def test_short_notes_are_one_message() -> None:
    text = render(full_meeting(), Flavour.ZULIP)
    assert split_message(text, 10_000) == [text.rstrip("\n")]


def test_split_at_sections() -> None:
    text = render(full_meeting(), Flavour.ZULIP)
    blocks = re.split(r"\n\n(?=### )", text.rstrip("\n"))
    limit = max(len(b) for b in blocks) + 10
    chunks = split_message(text, limit)
    assert len(chunks) > 1
    assert all(len(c) <= limit for c in chunks)
    assert chunks[0].startswith("## Collaboration Cafe notes: 2031-06-17\n")
    assert all(c.startswith("### ") for c in chunks[1:])
    assert "\n\n".join(chunks) == text.rstrip("\n")


def test_split_a_long_section_between_entries() -> None:
    m = full_meeting()
    m.agenda_items.extend(item(100 + i, f"Topic number {i} " + "x" * 60) for i in range(40))
    text = render(m, Flavour.ZULIP)
    chunks = split_message(text, 500)
    assert all(len(c) <= 500 for c in chunks)
    assert rejoined(chunks) == text.replace("\n", "")
    # A chunk begins at a section, an entry or a project line, never inside an agenda
    # item's notes; and a heading, prompt or project line stays with the entry after it.
    assert all(not c[0].isspace() for c in chunks)
    assert any(c.startswith("- ") for c in chunks)
    assert any(c.startswith("Quill Book\n") for c in chunks)
    assert all(c.split("\n")[-1].startswith(("- ", "    ")) for c in chunks)


def test_split_an_entry_between_lines_then_inside_a_line() -> None:
    text = "## T\n\n### A\n\n- item\n    - " + "word " * 30 + "\n    - short"
    chunks = split_message(text, 40)
    assert all(0 < len(c) <= 40 for c in chunks)
    assert rejoined(chunks) == text.replace("\n", "")
    # The section does not fit: it starts a message of its own.
    assert chunks[:2] == ["## T", "### A\n\n- item"]
    assert chunks[2].startswith("    - word")
    assert all(c.startswith("word") for c in chunks[3:-1])
    assert chunks[-1] == "    - short"


def test_a_long_line_is_cut_before_a_word() -> None:
    line = "- " + " ".join(["alpha", "# beta", "- gamma", "1. delta"] * 20)
    chunks = split_message(line, 50)
    assert "".join(chunks) == line
    assert all(len(c) <= 50 for c in chunks)
    assert all(c[0].isalpha() for c in chunks[1:])


def test_a_line_without_letters_is_cut_at_the_limit() -> None:
    assert split_message("1" * 25, 10) == ["1" * 10, "1" * 10, "1" * 5]


def test_split_edge_cases() -> None:
    assert split_message("", 10) == []
    assert split_message("\n\n", 10) == []
    assert split_message("abc\n", 3) == ["abc"]
    with pytest.raises(ValueError, match="limit"):
        split_message("abc", 0)


@given(
    st.lists(
        st.one_of(
            st.sampled_from(["", "## T", "### Agenda :time:", "- entry", "    - note"]),
            st.text(st.characters(exclude_characters="\n"), max_size=80),
        ),
        max_size=40,
    ).map("\n".join),
    st.integers(1, 200),
)
def test_split_property(text: str, limit: int) -> None:
    chunks = split_message(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert all(not c.startswith("\n") and not c.endswith("\n") for c in chunks)
    assert rejoined(chunks) == text.replace("\n", "")


@settings(deadline=None)
@given(meetings(), st.integers(60, 2000))
def test_split_rendered_notes_property(m: Meeting, limit: int) -> None:
    text = render(m, Flavour.ZULIP)
    chunks = split_message(text, limit)
    assert all(0 < len(c) <= limit for c in chunks)
    assert rejoined(chunks) == text.replace("\n", "")
    blocks = re.split(r"\n\n(?=### )", text.rstrip("\n"))
    if all(len(b) <= limit for b in blocks):
        # Every section fits: splits fall only before a section heading.
        assert all(c.startswith("### ") for c in chunks[1:])
        assert "\n\n".join(chunks) == text.rstrip("\n")
