"""Property-based fuzzing, thousands of examples each (``CAFEBOT_RELIABILITY=1``):

- the command parser, through the real handler: no exception escapes (no apology),
  every reply fits Zulip's message limit and pings nobody, nothing stored keeps a
  control character;
- the renderer: any text in any field of a meeting gives notes with only the
  format's headings, no wildcard mention, and Zulip messages within the limit;
- the archive round trip: a meeting exported and imported again gives back every
  field the format carries (check-in fields, introductions, shout-outs with their
  project, agenda items with proposer, estimate, topic, and notes with their kind;
  not references, states or ids).

tests/test_fuzz_commands.py, tests/test_notes.py and tests/test_archive_roundtrip.py
run smaller versions of these in the default run. The last tests here, in the
default run too, pin down round-trip gaps these found (fixed since).
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
import string
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from cafebot.bot.app import APOLOGY
from cafebot.commands.registry import REGISTRY
from cafebot.core.config import SeriesSettings
from cafebot.core.text import silence_mentions
from cafebot.notes.archive import import_archive, parse_archive, year_text
from cafebot.notes.render import Flavour, render, split_message
from cafebot.storage import db
from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    MeetingState,
    NoteKind,
    Person,
    Series,
    ShoutOut,
)
from tests.harness import ADA, BOB, OLGA, Harness

RELIABILITY = os.environ.get("CAFEBOT_RELIABILITY") == "1"
long_run = pytest.mark.skipif(
    not RELIABILITY, reason="thousands of examples: set CAFEBOT_RELIABILITY=1 (.ci/run does)"
)
MAX_MESSAGE_LENGTH = 10_000
WILDCARD = re.compile(r"@(?!_)\*\*(all|everyone|stream|channel|topic)\*\*", re.IGNORECASE)
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
NOW = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)
MANY = settings(
    max_examples=3000,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# ---------------------------------------------------------------- the command parser

WORDS = sorted({w for spec in REGISTRY for w in (spec.name, *spec.aliases)})
PIECES = st.sampled_from(
    [
        "A1",
        "A2",
        "S1",
        "C1",
        "I1",
        "2031-06-17/A1",
        "2031-06-17",
        "10m",
        "(5 min)",
        "10-15 mins",
        "0m",
        "999h",
        "[Proj]",
        "[",
        "]",
        "@**Ada Lovelace|11**",
        "@**all**",
        "@*everyone*",
        "/",
        "@ada",
        "last",
        "next",
        "1",
        "\n",
        "# h",
        "```",
        "-",
        "> q",
        "<b>",
        "\\",
        "é漢字🎉",
        "\u202e",
        "\u200f",
        "\x00",
        "\ud800",
        "'; DROP TABLE meeting; --",
        "@cafe",
        ":tada:",
        "meeting",
        "16:00",
        "4pm",
        "x" * 300,
    ]
)
TEXT = st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=10).map(" ".join)


@long_run
def test_no_command_text_breaks_the_bot(db_url: str) -> None:
    bot = Harness(db_url)
    for text in ("agenda 5m Release plans", "shoutout Yay", "checkin Ada / @ada"):
        bot.send(text, ADA)

    @MANY
    @given(
        word=st.one_of(st.sampled_from(WORDS), st.text(max_size=10)),
        rest=TEXT,
        more=st.lists(TEXT, max_size=3),
        user=st.sampled_from([ADA, BOB, OLGA]),
        dm=st.booleans(),
    )
    def check(word: str, rest: str, more: list[str], user: object, dm: bool) -> None:
        text = "\n".join([f"{word} {rest}", *more])
        answer = bot.send(text, user, stream=None if dm else "jupyterhub")  # type: ignore[arg-type]
        assert APOLOGY not in answer.text, text
        for reply in answer.replies:
            assert not WILDCARD.search(reply), reply
            # A long listing goes out in parts, as cafebot run sends it (cafebot.edge.outbox).
            parts = split_message(reply, MAX_MESSAGE_LENGTH)
            assert parts and all(len(part) <= MAX_MESSAGE_LENGTH for part in parts)

    try:
        check()
        with bot.app.unit_of_work() as session:
            for model, column in (
                (AgendaItem, AgendaItem.topic),
                (ItemNote, ItemNote.text),
                (ShoutOut, ShoutOut.text),
                (CheckIn, CheckIn.name),
            ):
                for value in session.scalars(select(column)):
                    assert not CONTROL.search(value), (model.__name__, value)
    finally:
        bot.close()


# ---------------------------------------------------------------- the renderer

HOSTILE = [
    "# h",
    "## ",
    "@**all**",
    "@**everyone**",
    "@*admins*",
    "- x",
    "1. x",
    "```",
    "~~~",
    ":::spoiler",
    "> q",
    "<div>",
    "</p>",
    "[x]: u",
    "|a|",
    "===",
    "---",
    "    ",
    "\t",
    "\n",
    "\r",
    "\u2028",
    "[",
    "]",
    "\\",
    "`",
    "_",
    "*",
    "**",
    "\x00",
    "/poll",
    "é漢🎉",
    "[name=Eve]",
    "**Decision** - ",
    "(5 min):",
    "@_**Ada|11**",
]
hostile = st.lists(st.one_of(st.sampled_from(HOSTILE), st.text(max_size=6)), max_size=6).map(
    "".join
)
T0 = dt.datetime(2031, 6, 17, 16, 0, tzinfo=dt.UTC)
SECTION_HEADINGS = {
    "Check-in :raising_hand:",
    "Introduce yourself! :wave:",
    "Celebrations and Shout-Outs :tada:",
    "Agenda :clock2:",
    "Agenda :time:",
}
PARSER = MarkdownIt("commonmark")


@st.composite
def people(draw: st.DrawFn) -> Person | None:
    if draw(st.booleans()):
        return None
    return Person(
        name=draw(st.none() | hostile),
        zulip_user_id=draw(st.none() | st.integers(1, 10**6)),
        zulip_name=draw(st.none() | hostile),
        github=draw(st.none() | hostile),
        created_at=T0,
    )


@st.composite
def hostile_meetings(draw: st.DrawFn) -> Meeting:
    items = []
    for ref in range(1, draw(st.integers(0, 4)) + 1):
        low = draw(st.none() | st.integers(1, 480))
        notes = [
            ItemNote(
                kind=draw(st.sampled_from(list(NoteKind))),
                text=draw(hostile),
                position=position,
                owner=draw(people()),
                created_at=T0,
            )
            for position in range(draw(st.integers(0, 3)))
        ]
        items.append(
            AgendaItem(
                ref=ref,
                position=ref,
                topic=draw(hostile),
                proposer=draw(people()),
                estimate_min=low,
                estimate_max=draw(st.none() | st.integers(1, 480)) if low else None,
                carried_from=draw(st.none() | st.dates(dt.date(2030, 1, 1), dt.date(2032, 1, 1))),
                notes=notes,
                created_at=T0,
            )
        )
    return Meeting(
        date=T0.date(),
        checkins=[
            CheckIn(
                ref=ref,
                name=draw(hostile),
                github=draw(st.none() | hostile),
                affiliation=draw(st.none() | hostile),
                created_at=T0,
            )
            for ref in range(1, draw(st.integers(0, 3)) + 1)
        ],
        introductions=[
            Introduction(ref=ref, person=draw(people()), text=draw(hostile), created_at=T0)
            for ref in range(1, draw(st.integers(0, 2)) + 1)
        ],
        shoutouts=[
            ShoutOut(
                ref=ref,
                author=draw(people()),
                project=draw(st.none() | hostile),
                text=draw(hostile),
                created_at=T0,
            )
            for ref in range(1, draw(st.integers(0, 3)) + 1)
        ],
        agenda_items=items,
    )


@long_run
@MANY
@given(meeting=hostile_meetings(), name=hostile, limit=st.integers(200, 10_000))
def test_no_text_breaks_the_notes(meeting: Meeting, name: str, limit: int) -> None:
    series = SeriesSettings(key="cafe", name=name or "Cafe")
    for flavour in Flavour:
        text = render(meeting, flavour, series)
        assert not WILDCARD.search(text), text
        tokens = PARSER.parse(text)
        headings = [
            (tok.tag, tokens[i + 1].content)
            for i, tok in enumerate(tokens)
            if tok.type == "heading_open"
        ]
        assert headings[0][0] == "h2", headings
        assert all(tag == "h3" and h in SECTION_HEADINGS for tag, h in headings[1:]), headings
        if flavour is Flavour.ZULIP:
            parts = split_message(text, limit)
            assert all(0 < len(part) <= limit for part in parts)


# ---------------------------------------------------------------- the archive round trip
# Free text (introductions, shout-outs, topics, notes) is anything one line holds: letters,
# digits, every ASCII punctuation character, emoji shortcodes, and Markdown that the renderer
# must escape and the reader unescape ("<b>", "\\", "# h" at a line's start, "`code`"), or
# that the format itself uses ("[name=Eve]", "(5 min)", "**Decision**", a separator).
# A field opens with any of them. Names, handles, affiliations and projects stay plain:
# the format gives "/" and a handle-like word in a check-in, and the punctuation that
# ends or opens a project line, a meaning of their own.
LETTERS = st.characters(categories=["Lu", "Ll", "Lo"], exclude_characters="ǅǈǋǲ")
MARKDOWN = [
    ":tada:",
    ":wave:",
    ":+1:",
    ":",
    "-",
    "\u2013",
    "\u2014",
    "\\",
    "\\*",
    "\\\\",
    "\\<b>",
    "<b>",
    "</b>",
    "<!--",
    "<https://example.org/a_b>",
    "`",
    "```",
    "`<b>`",
    "`a\\*b`",
    "*",
    "**",
    "_",
    "#",
    "1.",
    ">",
    "|",
    ":::",
    "[x](https://example.org/y)",
    "[x]:",
    "[name=Eve]",
    "**Decision**",
    "**todo**",
    "(5 min)",
    "10 mins",
    "@**all**",
    "&amp;",
]
words = st.one_of(
    st.text(
        st.one_of(
            LETTERS,
            st.characters(categories=["Nd"]),
            st.sampled_from(list(string.punctuation)),
        ),
        min_size=1,
        max_size=8,
    ),
    st.sampled_from(MARKDOWN),
)
plain = st.lists(words, min_size=1, max_size=7).map(" ".join)
NAMES = ["Ada Byron", "Grace Hopper", "Linus Torvald", "Joan Clarke", "Mae Jemison", "Hedy L"]
HANDLES = ["adab", "ghopper", "ltorvalds", "jclarke", "mae-j", "hlamarr"]


@st.composite
def archive_meetings(draw: st.DrawFn) -> dict[str, list[tuple[object, ...]]]:
    """A meeting's fields, as plain data (each example stores its own)."""
    who = st.sampled_from(range(len(NAMES)))
    return {
        "checkins": [
            (
                NAMES[n],
                draw(st.none() | st.just(HANDLES[n])),
                draw(st.none() | st.text(LETTERS, min_size=1, max_size=12)),
            )
            for n in draw(st.lists(who, unique=True, max_size=4))
        ],
        "intros": [(NAMES[draw(who)], draw(plain)) for _ in range(draw(st.integers(0, 2)))],
        "shoutouts": [
            (
                NAMES[draw(who)],
                draw(st.none() | st.text(LETTERS, min_size=1, max_size=10)),
                draw(plain),
            )
            for _ in range(draw(st.integers(0, 3)))
        ],
        "items": [
            (
                NAMES[draw(who)],
                *draw(st.sampled_from([(None, None), (5, None), (10, 15), (60, None)])),
                draw(plain),
                [
                    (draw(st.sampled_from(list(NoteKind))), draw(plain), draw(st.none() | who))
                    for _ in range(draw(st.integers(0, 3)))
                ],
            )
            for _ in range(draw(st.integers(0, 4)))
        ],
    }


_example = itertools.count()


def store(session: Session, fields: dict[str, list[tuple[object, ...]]], key: str) -> Series:
    series = Series(key=key, name="Collaboration Cafe")
    person = {name: Person(name=name, created_at=NOW) for name in NAMES}
    meeting = Meeting(
        series=series,
        date=dt.date(2031, 6, 17),
        starts_at=T0,
        ends_at=T0 + dt.timedelta(hours=1),
        state=MeetingState.PUBLISHED,
    )
    for ref, (name, github, affiliation) in enumerate(fields["checkins"], start=1):
        meeting.checkins.append(
            CheckIn(
                ref=ref,
                person=person[str(name)],
                name=name,
                github=github,
                affiliation=affiliation,
                created_at=NOW,
            )
        )
    for ref, (name, text) in enumerate(fields["intros"], start=1):
        meeting.introductions.append(
            Introduction(ref=ref, person=person[str(name)], text=text, created_at=NOW)
        )
    for ref, (name, project, text) in enumerate(fields["shoutouts"], start=1):
        meeting.shoutouts.append(
            ShoutOut(ref=ref, author=person[str(name)], project=project, text=text, created_at=NOW)
        )
    for ref, (name, low, high, topic, notes) in enumerate(fields["items"], start=1):
        item = AgendaItem(
            ref=ref,
            position=ref,
            proposer=person[str(name)],
            topic=topic,
            estimate_min=low,
            estimate_max=high,
            created_at=NOW,
        )
        for position, (kind, text, owner) in enumerate(notes, start=1):  # type: ignore[attr-defined]
            item.notes.append(
                ItemNote(
                    kind=kind,
                    text=text,
                    position=position,
                    created_at=NOW,
                    owner=person[NAMES[owner]] if owner is not None else None,
                )
            )
        meeting.agenda_items.append(item)
    session.add(meeting)
    session.flush()
    return series


def read_back(session: Session, key: str) -> dict[str, list[tuple[object, ...]]]:
    meeting = session.scalars(select(Meeting).join(Series).where(Series.key == key)).one()
    name = lambda p: p.display_name if p is not None else None  # noqa: E731
    return {
        "checkins": [(c.name, c.github, c.affiliation) for c in meeting.checkins],
        "intros": [(name(i.person), i.text) for i in meeting.introductions],
        "shoutouts": sorted(
            ((name(s.author), s.project, s.text) for s in meeting.shoutouts), key=repr
        ),
        "items": [
            (
                name(i.proposer),
                i.estimate_min,
                i.estimate_max,
                i.topic,
                [(n.kind, n.text, name(n.owner)) for n in i.notes],
            )
            for i in meeting.agenda_items
        ],
    }


def carried(fields: dict[str, list[tuple[object, ...]]]) -> dict[str, list[tuple[object, ...]]]:
    """What the format carries of ``fields``: shout-outs are grouped by project (their order
    is not kept), an action's owner is a ``[name=…]`` tag in its text, and a mention in any
    text is silent (the notes never ping anyone: cafebot.core.text.silence_mentions)."""
    said = silence_mentions
    items = []
    for name, low, high, topic, notes in fields["items"]:
        kept = []
        for kind, text, owner in notes:  # type: ignore[attr-defined]
            text = said(text)
            if kind is NoteKind.ACTION and owner is not None:
                text = f"[name={NAMES[owner]}] {text}"
            kept.append((kind, text, None))
        items.append((name, low, high, said(str(topic)), kept))
    return {
        "checkins": fields["checkins"],
        "intros": [(name, said(str(text))) for name, text in fields["intros"]],
        "shoutouts": sorted(
            ((name, project, said(str(text))) for name, project, text in fields["shoutouts"]),
            key=repr,
        ),
        "items": items,
    }


@pytest.fixture(scope="module")
def archive_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine: Engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('rt') / 'rt.db'}")
    db.upgrade_database(engine)
    try:
        yield db.session_factory(engine)
    finally:
        engine.dispose()


@long_run
@settings(MANY, max_examples=1000)
@given(fields=archive_meetings())
# A clean CI run found it: the notes silenced a "mention" from one item's "@*" to the next
# item's "**", across two list items, so "@*" came back as "@_*".
@example(
    fields={
        "checkins": [],
        "intros": [],
        "shoutouts": [],
        "items": [(NAMES[0], None, None, "@*", []), (NAMES[0], None, None, "**Decision**", [])],
    }
)
def test_import_of_export_gives_back_every_field(
    archive_db: sessionmaker[Session], fields: dict[str, list[tuple[object, ...]]]
) -> None:
    n = next(_example)
    original, copy = f"orig{n}", f"copy{n}"
    with db.unit_of_work(archive_db) as session:
        store(session, fields, original)
        text = year_text(session, SeriesSettings(key=original), 2031)
    with db.unit_of_work(archive_db) as session:
        import_archive(session, SeriesSettings(key=copy), parse_archive(text), NOW)
    with db.unit_of_work(archive_db) as session:
        assert read_back(session, original) == fields_as_stored(fields), "stored as generated"
        assert read_back(session, copy) == carried(fields), text


def fields_as_stored(
    fields: dict[str, list[tuple[object, ...]]],
) -> dict[str, list[tuple[object, ...]]]:
    items = [
        (
            name,
            low,
            high,
            topic,
            [
                (kind, text, NAMES[owner] if owner is not None else None)
                for kind, text, owner in notes
            ],
        )  # type: ignore[attr-defined]
        for name, low, high, topic, notes in fields["items"]
    ]
    return {**fields, "shoutouts": sorted(fields["shoutouts"], key=repr), "items": items}


# ---------------------------------------------------------------- gaps found (fixed)
# The property above found these (issue 5); they stay here as examples in the default run.


def _round_trip(meeting: Meeting) -> list[object]:
    text = "# 2031 Collaboration Cafe Notes Archive\n\n" + render(meeting, Flavour.ARCHIVE)
    parsed = parse_archive(text).meetings[0]
    return [*parsed.intros, *parsed.shoutouts, *parsed.items]


def test_a_topic_opening_with_an_emoji_survives_the_round_trip() -> None:
    ada = Person(name="Ada Byron", created_at=NOW)
    item = AgendaItem(ref=1, position=1, proposer=ada, topic=":tada: launch", estimate_min=5)
    meeting = Meeting(
        date=T0.date(), checkins=[], introductions=[], shoutouts=[], agenda_items=[item]
    )
    assert _round_trip(meeting)[0].topic == ":tada: launch"  # type: ignore[attr-defined]


def test_escaped_text_survives_the_round_trip() -> None:
    ada = Person(name="Ada Byron", created_at=NOW)
    shout = ShoutOut(ref=1, author=ada, project=None, text="<b>bold</b> move", created_at=NOW)
    meeting = Meeting(
        date=T0.date(), checkins=[], introductions=[], shoutouts=[shout], agenda_items=[]
    )
    assert _round_trip(meeting)[0].text == "<b>bold</b> move"  # type: ignore[attr-defined]
