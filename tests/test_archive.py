"""cafebot.notes.archive: import into a real database (SQLite and PostgreSQL) and export again."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cafebot.notes.archive import (
    ImportReport,
    import_archive,
    normalise,
    parse_archive,
    write_year_file,
    year_text,
)
from cafebot.notes.importer import CONFLICT, IMPORTED, REPLACED, UNCHANGED
from cafebot.storage.models import (
    AgendaItem,
    ArchiveBlock,
    ArchiveMeeting,
    Base,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    MeetingState,
    NoteKind,
    Person,
    ShoutOut,
)
from tests.harness import ADA, CAFE, OLGA, Harness
from tests.test_archive_reader import FIXTURES, SUMMARIES, fixture
from tests.webdata import sample_archive

NOW = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)


def run_import(
    sessions: sessionmaker[Session], text: str, *, replace: bool = False
) -> ImportReport:
    with sessions() as session, session.begin():
        return import_archive(session, CAFE, parse_archive(text), NOW, replace=replace)


def export(sessions: sessionmaker[Session], year: int, directory: Path) -> str:
    with sessions() as session, session.begin():
        return write_year_file(session, CAFE, year, directory).read_text(encoding="utf-8")


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with sessions() as session:
        return {
            table.name: sorted(map(tuple, session.execute(select(table))), key=repr)
            for table in Base.metadata.sorted_tables
        }


def meeting_on(session: Session, date: str) -> Meeting:
    found = session.scalar(select(Meeting).where(Meeting.date == dt.date.fromisoformat(date)))
    assert found is not None
    return found


# ---------------------------------------------------------------- import and export


def test_import_reports_each_meeting_and_export_gives_the_files_back(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    for name in ("2029.md", "2030.md", "2031.md", "odd.md"):
        report = run_import(session_factory, fixture(name))
        assert [o.line() for o in report.outcomes] == SUMMARIES[name]
        assert {o.status for o in report.outcomes} == {IMPORTED}
    for name, year in (("2029.md", 2029), ("2030.md", 2030), ("2031.md", 2031), ("odd.md", 2028)):
        written = export(session_factory, year, tmp_path / "notes")
        assert normalise(written) == normalise(fixture(name)), name
        assert written == fixture(name), name  # in fact, byte for byte
    written_files = sorted(p.name for p in (tmp_path / "notes").iterdir())
    assert written_files == ["2028.md", "2029.md", "2030.md", "2031.md"]


def test_imported_records_have_their_fields(session_factory: sessionmaker[Session]) -> None:
    run_import(session_factory, fixture("2031.md"))
    with session_factory() as session:
        may = meeting_on(session, "2031-05-20")
        assert may.state is MeetingState.PUBLISHED
        assert [(c.ref, c.name, c.github, c.affiliation) for c in may.checkins][:2] == [
            (1, "Ada Byron", "adab", "Difference Engines Ltd"),
            (2, "Grace", "ghopper", "Navy Labs"),
        ]
        assert [(i.person.name, i.text) for i in may.introductions][1] == (
            "Hedy",
            "Frequency hopping, and now documentation.\nHappy to review translations",
        )
        assert [(s.ref, s.project, s.author.name if s.author else None) for s in may.shoutouts] == [
            (1, "Analytical Engine", "Ada Byron"),
            (2, "Analytical Engine", None),
            (3, "Paper Club", "Alan T"),
        ]
        items = may.agenda_items
        assert [(i.ref, i.position, i.estimate_min, i.estimate_max) for i in items] == [
            (1, 1, 5, None),
            (2, 2, 10, None),
            (3, 3, 5, None),
            (4, 4, 10, 15),
            (5, 5, 5, None),
        ]
        # "[name=Ada]" is the Ada Byron who checked in; "**Hedy**" the Hedy who did.
        assert items[0].proposer is not None and items[0].proposer.github == "adab"
        assert items[3].proposer is not None and items[3].proposer.github == "hlamarr"
        assert [(n.kind, n.text) for n in items[2].notes] == [
            (NoteKind.NOTE, "All modules done but two"),
            (NoteKind.DECISION, "finish by June"),
        ]
        assert (may.next_agenda_ref, may.next_checkin_ref) == (6, 6)
        kept = [(b.section, b.after_entries, b.kind) for b in may.archive_blocks]
        assert kept == [
            ("checkin", 0, "prompt"),
            ("intro", 0, "prompt"),
            ("shoutout", 0, "prompt"),
            ("agenda", 0, "prompt"),
            ("agenda", 0, "text"),
            ("agenda", 5, "text"),
        ]


def test_importing_the_same_file_again_changes_nothing(
    session_factory: sessionmaker[Session],
) -> None:
    for name in ("2030.md", "odd.md"):
        run_import(session_factory, fixture(name))
    before = snapshot(session_factory)
    for name in ("2030.md", "odd.md"):
        report = run_import(session_factory, fixture(name))
        assert {o.status for o in report.outcomes} == {UNCHANGED}
        assert all(o.line().endswith("(unchanged: imported before)") for o in report.outcomes)
    assert snapshot(session_factory) == before


def test_a_meeting_with_other_content_is_skipped_unless_replace(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    original = fixture("2030.md")
    run_import(session_factory, original)
    changed = original.replace("- Linus\n", "- Linus\n- Barbara / @bliskov / MIT\n", 1)
    before = snapshot(session_factory)
    report = run_import(session_factory, changed)
    statuses = {o.meeting.date.isoformat(): o.status for o in report.outcomes}
    assert statuses.pop("2030-12-15") == CONFLICT
    assert set(statuses.values()) == {UNCHANGED}
    assert (
        "skipped: the database holds this meeting with other content" in report.conflicts[0].line()
    )
    assert snapshot(session_factory) == before  # nothing written

    with session_factory() as session:
        meeting_id = meeting_on(session, "2030-12-15").id
    report = run_import(session_factory, changed, replace=True)
    assert [o.status for o in report.outcomes].count(REPLACED) == 1
    with session_factory() as session:
        december = meeting_on(session, "2030-12-15")
        assert december.id == meeting_id  # the same meeting, its entries replaced
        assert [c.name for c in december.checkins][2:4] == ["Linus", "Barbara"]
    assert export(session_factory, 2030, tmp_path) == changed


def test_a_meeting_the_bot_ran_conflicts_but_an_empty_one_is_filled(db_url: str) -> None:
    bot = Harness(db_url)  # 1 June 2031: the next meeting is 17 June
    try:
        assert bot.send("agenda 10m Release plans").acked
        bot.send("next")  # makes 15 July's meeting exist too, still empty
        bot.send("defer A1", OLGA)
        bot.send("remove 2031-07-15/A1", OLGA)
        archive = "# 2031\n\n## 2031-07-15\n\n### Agenda\n\n- Imported\n\n## 2031-06-17\n\n- x\n"
        with bot.app.unit_of_work() as session:
            report = import_archive(session, CAFE, parse_archive(archive), NOW)
        statuses = {o.meeting.date.isoformat(): o.status for o in report.outcomes}
        assert statuses == {"2031-07-15": IMPORTED, "2031-06-17": CONFLICT}
    finally:
        bot.close()


def test_imported_meetings_are_history_that_takes_no_new_entries(db_url: str) -> None:
    bot = Harness(db_url)
    try:
        # An archive that already has the meeting of 17 June (the next one on the clock).
        archive = "# 2031\n\n## 2031-06-17\n\n### Agenda :clock2:\n\n- [name=Ines] (5m): Old\n"
        with bot.app.unit_of_work() as session:
            import_archive(session, CAFE, parse_archive(archive), NOW)
        assert bot.send("agenda 10m New topic").acked
        (new,) = bot.rows(AgendaItem, topic="New topic")
        (imported,) = bot.rows(Meeting, date=dt.date(2031, 6, 17))
        assert imported.state is MeetingState.PUBLISHED
        assert new.meeting_id != imported.id  # it went to 15 July
        assert "2031-07-15" in bot.send("list").text
    finally:
        bot.close()


# ---------------------------------------------------------------- people


def test_people_are_matched_by_handle_then_name_and_remember_their_latest_fields(
    session_factory: sessionmaker[Session],
) -> None:
    run_import(session_factory, fixture("2030.md"))
    with session_factory() as session:
        people = {p.name: p for p in session.scalars(select(Person))}
        assert sorted(people, key=str) == [
            "Ada Byron",
            "Alan T",
            "Edsger",
            "Grace",
            "Joan Clarke",
            "Katherine",
            "Linus",
            None,  # known by the handle of an introduction only
        ]
        # "Linus" (December, no handle) and "Linus / @ltorvalds" (August): one person,
        # whose handle comes from the latest check-in that gives one.
        assert people["Linus"].github == "ltorvalds"
        # December's "Grace / @ghopper" gives no affiliation: November's is remembered.
        assert (people["Grace"].github, people["Grace"].affiliation) == ("ghopper", "Navy Labs")
        assert people["Joan Clarke"].github == "jclarke"  # her introduction, then her check-in
        assert people[None].github == "mhamilton"
        # Authors: "**Ada**" is the Ada Byron who checked in; "**Edsger**" the one introduced.
        proposers = {
            i.topic: i.proposer.name if i.proposer else None
            for i in session.scalars(select(AgendaItem))
        }
        assert proposers["Release checklist for 4.0"] == "Ada Byron"
        assert proposers["[Goto considered harmful](#goto-considered-harmful)"] == "Edsger"
        assert proposers["Orbit maths refresher"] == "Katherine"
        assert proposers["Docs sprint planning"] is None
    # An older year matches the same people by handle and changes nothing they remember.
    run_import(session_factory, fixture("2029.md"))
    with session_factory() as session:
        grace = session.scalar(select(Person).where(Person.github == "ghopper"))
        assert grace is not None and grace.name == "Grace"
        assert session.scalar(select(Person).where(Person.name == "Grace Hopper")) is None


# ---------------------------------------------------------------- the bot changes a meeting


@pytest.mark.parametrize(
    ("command", "user"),
    [
        pytest.param("note 2030-11-17/A2 Revisit in spring", ADA, id="note"),
        pytest.param("decision 2030-11-17/A2 Revisit in spring", ADA, id="decision"),
        pytest.param("edit 2030-11-17/S2 Thanks to all the triagers!", OLGA, id="edit"),
        pytest.param("remove 2030-11-17/C1", OLGA, id="remove"),
        pytest.param("move 2030-11-17/A7 1", OLGA, id="move"),
    ],
)
def test_a_change_by_the_bot_renders_the_meeting_anew(
    db_url: str, tmp_path: Path, command: str, user: Any
) -> None:
    bot = Harness(db_url)
    try:
        with bot.app.unit_of_work() as session:
            import_archive(session, CAFE, parse_archive(fixture("2030.md")), NOW)
        answer = bot.send(command, user)
        assert answer.reactions == ["check"], answer.text
        sources = {
            m.date.isoformat(): a.source is not None
            for m in bot.rows(Meeting)
            for a in bot.rows(ArchiveMeeting, meeting_id=m.id)
        }
        assert sources.pop("2030-11-17") is False
        assert all(sources.values())  # the other meetings keep theirs
        with bot.app.unit_of_work() as session:
            text = write_year_file(session, CAFE, 2030, tmp_path).read_text()
    finally:
        bot.close()
    original = fixture("2030.md")
    november = text[text.index("## 2030-11-17") : text.index("## 2030-10-20")]
    assert november != original[original.index("## 2030-11-17") : original.index("## 2030-10-20")]
    # Canonical now: standard headings and entry forms, the meeting's own prompt kept ...
    for line in (
        "### Check-in :raising_hand:",
        "_Name / GitHub handle / affiliation_",
        "### Introduce yourself! :wave:",
        "- @mhamilton: Flight software, here for the release talk.",
        "    - Works on onboard guidance",
        "- [name=Grace] (10 min): Compiler warnings as errors?",
        "    - **Decision** - enable in CI next month",
        "- [name=Edsger] (5-10 min): [Goto considered harmful](#goto-considered-harmful)",
    ):
        assert f"\n{line}\n" in november, line
    # ... and the other meetings exactly as they were.
    assert text.replace(november, "") == original.replace(
        original[original.index("## 2030-11-17") : original.index("## 2030-10-20")], ""
    )
    # Importing the file again does not undo the change silently.
    with bot_session(db_url) as session:
        report = import_archive(session, CAFE, parse_archive(original), NOW)
    assert "the bot has changed this imported meeting since" in report.conflicts[0].line()


@contextmanager
def bot_session(db_url: str) -> Iterator[Session]:
    """A unit of work on ``db_url``, through a fresh app."""
    harness = Harness(db_url)
    try:
        with harness.app.unit_of_work() as session:
            yield session
    finally:
        harness.close()


def drop_sources(sessions: sessionmaker[Session]) -> None:
    """As if the bot had changed every imported meeting."""
    with sessions() as session, session.begin():
        for kept in session.scalars(select(ArchiveMeeting)):
            kept.source = None


def test_canonical_rendering_of_a_canonical_archive_is_that_archive(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    run_import(session_factory, fixture("2029.md"))
    drop_sources(session_factory)
    assert export(session_factory, 2029, tmp_path) == fixture("2029.md")


@pytest.mark.parametrize("name", ["2030.md", "2031.md", "odd.md"])
def test_canonical_rendering_keeps_every_record_and_all_free_text(
    session_factory: sessionmaker[Session], name: str
) -> None:
    run_import(session_factory, fixture(name))
    original = parse_archive(fixture(name))
    drop_sources(session_factory)
    with session_factory() as session:
        text = year_text(session, CAFE, original.year)
    for m in original.meetings:
        for block in m.blocks:
            if block.kind == "text":
                assert block.text in text  # verbatim
    # Read back, the canonical form holds the same records.
    again = parse_archive(text)
    assert [m.summary() for m in again.meetings] == SUMMARIES[name]


# ---------------------------------------------------------------- export


def test_year_file_with_a_default_title_and_a_meeting_the_bot_ran(
    db_url: str, tmp_path: Path
) -> None:
    bot = Harness(db_url, now=dt.datetime(2032, 3, 1, tzinfo=dt.UTC))
    try:
        archive = "## 2031-05-20\n\n### Agenda\n\n- [name=Ines] (5m): Imported item\n"
        with bot.app.unit_of_work() as session:
            import_archive(session, CAFE, parse_archive(archive), NOW)
        bot.send("checkin Ada / @ada / Engines")
        bot.send("agenda 10m Run by the bot")
        with bot.app.unit_of_work() as session:
            march = session.scalar(select(Meeting).where(Meeting.date == dt.date(2032, 3, 16)))
            assert march is not None
            march.state = MeetingState.PUBLISHED
            path_2032 = write_year_file(session, CAFE, 2032, tmp_path / "notes")
            path_2031 = write_year_file(session, CAFE, 2031, tmp_path / "notes")
    finally:
        bot.close()
    assert path_2032 == tmp_path / "notes" / "2032.md"
    text = path_2032.read_text()
    assert text.startswith("# 2032 Collaboration Cafe Notes Archive\n\n## 2032-03-16\n\n")
    assert "- [name=Ada] (10 min): Run by the bot\n" in text
    assert path_2031.read_text() == archive  # no title was imported: none is made up


def test_year_file_orders_meetings_newest_first(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    # Two files for one year, read in any order.
    run_import(session_factory, "# 2031 Notes\n\n## 2031-02-18\n\n- b\n")
    run_import(session_factory, "# 2031 Notes\n\n## 2031-09-16\n\n- c\n\n## 2031-01-21\n\n- a\n")
    text = export(session_factory, 2031, tmp_path)
    assert (
        text
        == "# 2031 Notes\n\n## 2031-09-16\n\n- c\n\n## 2031-02-18\n\n- b\n\n## 2031-01-21\n\n- a\n"
    )


def test_notes_of_an_imported_meeting(db_url: str) -> None:
    pad = Harness(db_url, notes_flavour="archive")
    try:
        with pad.app.unit_of_work() as session:
            import_archive(session, CAFE, parse_archive(fixture("2030.md")), NOW)
        original = fixture("2030.md")
        october = original[original.index("## 2030-10-20") : original.index("## 2030-09-15")]
        assert pad.send("notes 2030-10-20").text.rstrip("\n") == october.rstrip("\n")
    finally:
        pad.close()
    zulip = Harness(db_url)
    try:
        text = zulip.send("notes 2030-10-20", msg_id=5000).text  # a message of its own
    finally:
        zulip.close()
    for line in (
        "## Collaboration Cafe notes: 2030-10-20",
        "```spoiler Links for the breakout rooms",
        "- **Ada Byron** (10 min): Release checklist follow-up",
        "    - **Decision** - done, close the issue `A1.2`",  # a preview shows sub-references
        "#### Paper club venue",
        "### Breakout notes",
        "- Room B wants a reading list",
    ):
        assert f"\n{line}\n" in f"\n{text}\n", line


def test_item_notes_cascade_with_a_replaced_meeting(session_factory: sessionmaker[Session]) -> None:
    run_import(session_factory, fixture("2031.md"))
    changed = fixture("2031.md").replace("finish by June", "finish by July")
    run_import(session_factory, changed, replace=True)
    with session_factory() as session:
        notes = sorted(n.text for n in session.scalars(select(ItemNote)))
        assert notes == ["All modules done but two", "finish by July"]
        assert len(list(session.scalars(select(CheckIn)))) == 5
        assert len(list(session.scalars(select(Introduction)))) == 2
        assert len(list(session.scalars(select(ShoutOut)))) == 3
        assert len(list(session.scalars(select(ArchiveBlock)))) == 6


def test_fixtures_are_our_own() -> None:
    # The shared example archive (../shared/examples/sample-archive.md, read where it is by
    # tests/webdata.py) is copied nowhere under tests/fixtures, in whole or in part.
    sample = sample_archive().read_text(encoding="utf-8")
    marker = "Harbour Lab"
    assert marker in sample
    # Its longer lines, less the template's italic prompts that every archive shares.
    lines = {
        line.strip()
        for line in sample.splitlines()
        if len(line.strip()) > 40 and not re.fullmatch(r"([-*] )?_[^_]+_", line.strip())
    }
    files = [p for p in FIXTURES.parent.rglob("*") if p.is_file()]
    assert FIXTURES.parent.name == "fixtures" and files
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not a text file
        assert marker not in text, path
        assert not lines & {line.strip() for line in text.splitlines()}, path
