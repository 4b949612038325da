"""Property tests: generated archives that mix every variation of notes-format.md.

The generator writes an archive and, as it goes, what it wrote: how many
check-ins, introductions, shout-outs and agenda items each meeting has, how
many nested notes each item has, and how many free-text blocks stand in it.
The reader must recognise exactly that; import then export must give the text
back (after fidelity rule 2's normalisation) with no line of content lost; and
once the meetings are rendered anew, every free-text block is still there
verbatim and every record is read back.
"""

from __future__ import annotations

import datetime as dt
import itertools
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from cafebot.core.config import SeriesSettings
from cafebot.notes.archive import (
    import_archive,
    normalise,
    parse_archive,
    write_year_file,
    year_text,
)
from cafebot.storage import db
from cafebot.storage.models import ArchiveMeeting

NOW = dt.datetime(2040, 1, 1, tzinfo=dt.UTC)

PLAIN = ["release", "docs", "sprint", "review", "plans", "budget", "the", "and", "café", "naïve"]
EXTRA = [
    *PLAIN,
    "v2.0",
    "https://example.org/x",
    "[link](https://example.org/y)",
    ":tada:",
    "**bold**",
    "`code`",
    "50%",
    "a_b",
    "#3",
    "C++",
    "🎉",
    "(maybe)",
]
NAMES = ["Ada Byron", "Grace", "Linus", "Joan Clarke", "Mae Jemison", "Alan T", "Hedy"]
HANDLES = ["adab", "ghopper", "ltorvalds", "jclarke", "mae-j", "aturing", "hlamarr"]
AFFILIATIONS = ["Navy Labs", "Hut 8", "Difference Engines Ltd", "Independent", "MIT"]
PROJECTS = ["Analytical Engine", "Paper Club", "Jupyter Book"]
ESTIMATES = ["(10m)", "(5 min)", "(10min)", "(5 mins)", "10 mins", "10-15 mins", "5 - 10 mins"]


@dataclass
class Expected:
    """What the generator wrote into one meeting."""

    date: dt.date
    checkins: int = 0
    intros: int = 0
    shoutouts: int = 0
    item_notes: list[int] = field(default_factory=list)  # nested notes of each item
    blocks: int = 0


class Writer:
    """Lines of an archive, with the blank lines and trailing spaces drawn at random."""

    def __init__(self, draw: st.DrawFn) -> None:
        self.draw = draw
        self.lines: list[str] = []

    def line(self, text: str) -> None:
        self.lines.append(text + self.draw(st.sampled_from(["", "", "", " ", "   "])))

    def gap(self) -> None:
        self.lines.extend([""] * self.draw(st.integers(1, 2)))

    def words(self, low: int = 1, high: int = 6) -> str:
        first = self.draw(st.sampled_from(PLAIN))
        rest = self.draw(st.lists(st.sampled_from(EXTRA), min_size=low - 1, max_size=high - 1))
        last = self.draw(st.sampled_from(PLAIN))
        return " ".join([first.capitalize(), *rest, last])


def nested(w: Writer, draw: st.DrawFn, *, parent_indent: int = 0) -> int:
    """Nested bullets under an item: 2, 4 or 8 spaces, - or *, up to three levels."""
    count = draw(st.integers(0, 3))
    step = draw(st.sampled_from([2, 4, 8]))
    marker = draw(st.sampled_from(["-", "*"]))
    for _ in range(count):
        w.line(" " * (parent_indent + step) + f"{marker} {w.words()}")
        for depth in range(draw(st.integers(0, 2))):
            w.line(" " * (parent_indent + step * (depth + 2)) + f"{marker} {w.words()}")
    return count


def free_paragraph(w: Writer, *, sentence: bool = False) -> None:
    text = w.words(2, 8) + ("." if sentence else "")
    w.line(text)
    w.gap()


@st.composite
def archives(draw: st.DrawFn) -> tuple[str, list[Expected]]:
    year = draw(st.integers(2020, 2039))
    days = draw(st.lists(st.integers(0, 364), min_size=1, max_size=4, unique=True))
    dates = sorted((dt.date(year, 1, 1) + dt.timedelta(days=d) for d in days), reverse=True)
    w = Writer(draw)
    if draw(st.booleans()):
        w.line(f"# {year} Collaboration Cafe Notes Archive")
        w.gap()
    expected = []
    for date in dates:
        e = Expected(date)
        expected.append(e)
        w.line(f"## {date.isoformat()}")
        w.gap()
        if draw(st.booleans()):  # text before the first section
            free_paragraph(w)
            e.blocks += 1
        emoji = draw(st.booleans())
        if draw(st.booleans()):
            checkins(w, draw, e, emoji)
        if draw(st.booleans()):
            intros(w, draw, e)
        if draw(st.booleans()):
            shoutouts(w, draw, e, emoji)
        if draw(st.booleans()):
            agenda(w, draw, e, emoji)
        if draw(st.booleans()):  # a section the meeting invented
            w.line("### Breakout notes")
            w.gap()
            free_paragraph(w)
            if draw(st.booleans()):
                w.line(f"- {w.words()}")
                w.gap()
            e.blocks += 1
    return "\n".join(w.lines) + "\n", expected


def checkins(w: Writer, draw: st.DrawFn, e: Expected, emoji: bool) -> None:
    w.line("### Check-in :raising_hand:" if emoji else "### Check-in")
    w.gap()
    prompt = draw(st.sampled_from(["none", "bullet", "plain"]))
    if prompt == "plain":
        w.line("_Name / GitHub handle / affiliation_")
        w.gap()
    if prompt == "bullet":
        w.line("- _Name / GitHub handle / affiliation_")
    count = draw(st.integers(0 if prompt == "bullet" else 1, 5))
    for _ in range(count):
        n = draw(st.integers(0, len(NAMES) - 1))
        handle = draw(
            st.sampled_from(
                [f"@{HANDLES[n]}", HANDLES[n], f"[@{HANDLES[n]}](https://github.com/{HANDLES[n]})"]
            )
        )
        fields = draw(st.sampled_from(["name", "handle", "affiliation", "all"]))
        parts = {
            "name": [NAMES[n]],
            "handle": [NAMES[n], handle],
            "affiliation": [NAMES[n], draw(st.sampled_from(AFFILIATIONS))],
            "all": [NAMES[n], handle, draw(st.sampled_from(AFFILIATIONS))],
        }[fields]
        w.line("- " + " / ".join(parts))
    e.checkins += count
    w.gap()


def intros(w: Writer, draw: st.DrawFn, e: Expected) -> None:
    w.line(draw(st.sampled_from(["### Introduce yourself! :wave:", "### Introductions"])))
    w.gap()
    if draw(st.booleans()):
        w.line("_First time here? Add your name and a line about yourself._")
        w.gap()
    count = draw(st.integers(1, 3))
    for _ in range(count):
        n = draw(st.integers(0, len(NAMES) - 1))
        form = draw(st.sampled_from(["colon", "bold", "handle"]))
        text = w.words()
        w.line(
            {
                "colon": f"- {NAMES[n]}: {text}",
                "bold": f"- **{NAMES[n]}** {text}",
                "handle": f"- `{HANDLES[n]}` — {text}",
            }[form]
        )
        nested(w, draw)
    e.intros += count
    w.gap()


def shoutouts(w: Writer, draw: st.DrawFn, e: Expected, emoji: bool) -> None:
    w.line("### Celebrations and Shout-Outs :tada:" if emoji else "### Celebrations and Shout-Outs")
    w.gap()
    if draw(st.booleans()):
        w.line("_Celebrate something great that someone in the community did!_")
        w.gap()

    def bullets() -> None:
        count = draw(st.integers(1, 3))
        for _ in range(count):
            tag = f"[name={draw(st.sampled_from(NAMES))}] " if draw(st.booleans()) else ""
            w.line(f"- {tag}{w.words()}")
            nested(w, draw)
        e.shoutouts += count
        w.gap()

    if draw(st.booleans()):
        bullets()
    for project in draw(st.lists(st.sampled_from(PROJECTS), max_size=2, unique=True)):
        w.line(project)  # a project line, then its own bullets
        w.gap()
        bullets()


def agenda(w: Writer, draw: st.DrawFn, e: Expected, emoji: bool) -> None:
    w.line("### Agenda :clock2:" if emoji else "### Agenda")
    w.gap()
    if draw(st.booleans()):
        w.line("_Add a topic with your name and a rough time estimate._")
        w.gap()
    free = False  # free text stands right before: it and the next join one block
    if draw(st.booleans()):
        w.line(":::spoiler Tools for breakouts, if required")
        w.line(f"- {w.words()}")
        w.line(":::")
        w.gap()
        free = True
    for _ in range(draw(st.integers(0, 3))):
        if draw(st.booleans()):  # a paragraph before or between the bullets
            free_paragraph(w, sentence=True)
            free = True
        if free:
            e.blocks += 1
            free = False
        for _ in range(draw(st.integers(1, 3))):
            author = draw(
                st.sampled_from(
                    [
                        "",
                        f"[name={draw(st.sampled_from(NAMES))}] ",
                        f"**{draw(st.sampled_from(NAMES))}** ",
                    ]
                )
            )
            estimate = draw(st.sampled_from(["", *ESTIMATES]))
            if author.startswith("**") and not estimate:
                author = ""  # a bold name counts only before an estimate
            colon = ":" if estimate and draw(st.booleans()) else ""
            line = f"{author}{estimate}{colon} {w.words()}".strip()
            if draw(st.booleans()):
                line = f"_{line}_"  # done, or postponed
            w.line(f"- {line}")
            e.item_notes.append(nested(w, draw))
        w.gap()
    if draw(st.booleans()):  # after the list
        free_paragraph(w, sentence=True)
        free = True
    if free:
        e.blocks += 1
    for _ in range(draw(st.integers(0, 2))):  # long-form discussion of an item
        w.line(f"#### {w.words(1, 3)}")
        w.gap()
        w.line(f"* {w.words()}")
        w.line(f"* {w.words()}")
        w.gap()
        e.blocks += 1


def summary(e: Expected) -> tuple[dt.date, int, int, int, list[int], int]:
    return (e.date, e.checkins, e.intros, e.shoutouts, e.item_notes, e.blocks)


# ---------------------------------------------------------------- the reader


@settings(max_examples=300, deadline=None)
@given(archives())
def test_the_reader_recognises_what_was_written(generated: tuple[str, list[Expected]]) -> None:
    text, expected = generated
    archive = parse_archive(text)
    got = [
        (
            m.date,
            len(m.checkins),
            len(m.intros),
            len(m.shoutouts),
            [len(i.notes) for i in m.items],
            m.free_text_blocks,
        )
        for m in archive.meetings
    ]
    assert got == [summary(e) for e in expected]
    assert archive.head + "".join(m.source for m in archive.meetings) == text


# ---------------------------------------------------------------- import, export, and anew

_series = itertools.count()


def content_lines(text: str) -> list[str]:
    return [line for line in normalise(text).split("\n") if line.strip()]


def is_subsequence(needles: list[str], haystack: list[str]) -> bool:
    it = iter(haystack)
    return all(any(n == h for h in it) for n in needles)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(generated=archives())
def test_import_export_round_trip(tmp_path: Path, generated: tuple[str, list[Expected]]) -> None:
    text, expected = generated
    engine = db.make_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    db.ensure_schema(engine)
    sessions = db.session_factory(engine)
    series = SeriesSettings(key=f"s{next(_series)}", name="Collaboration Cafe")
    archive = parse_archive(text)
    year = archive.meetings[0].date.year
    try:
        with db.unit_of_work(sessions) as session:
            import_archive(session, series, archive, NOW)
        with db.unit_of_work(sessions) as session:
            exported = write_year_file(session, series, year, tmp_path / series.key).read_text()
        if archive.title is None:
            assert normalise(exported) == normalise(text)
        else:
            assert exported == text or normalise(exported) == normalise(text)
        assert is_subsequence(content_lines(text), content_lines(exported))  # no line lost

        # Rendered anew (as after a change by the bot): all free text is still there,
        # verbatim, and reading the canonical form back finds the same records.
        with db.unit_of_work(sessions) as session:
            session.execute(update(ArchiveMeeting).values(source=None))
            anew = year_text(session, series, year)
        for m in archive.meetings:
            for block in m.blocks:
                if block.kind == "text":  # verbatim, but for trailing white space
                    assert "\n".join(line.rstrip() for line in block.text.split("\n")) in anew
        again = parse_archive(anew)
        assert [
            (m.date, len(m.checkins), len(m.intros), len(m.shoutouts), len(m.items))
            for m in again.meetings
        ] == [(e.date, e.checkins, e.intros, e.shoutouts, len(e.item_notes)) for e in expected]
    finally:
        engine.dispose()
