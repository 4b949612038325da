"""After an import: people from the archive become one with Zulip users, and `search`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cafebot.cafe import search
from cafebot.cafe.meetings import series_row
from cafebot.notes.archive import import_archive, parse_archive
from cafebot.storage.models import AgendaItem, CheckIn, Introduction, Meeting, Person
from tests.harness import ADA, BOB, CAFE, OLGA, Harness, User
from tests.test_archive_reader import fixture

NOW = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)
CAROL = User(15, "Carol Sam", "carol@example.org")


def load(bot: Harness, text: str) -> None:
    with bot.app.unit_of_work() as session:
        import_archive(session, CAFE, parse_archive(text), NOW)


@pytest.fixture
def bot(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    load(harness, fixture("2030.md"))
    yield harness
    harness.close()


def person_of(bot: Harness, user: User) -> Person:
    (found,) = bot.rows(Person, zulip_user_id=user.id)
    return found


# ---------------------------------------------------------------- becoming one person


def test_checking_in_with_an_archive_handle_takes_over_that_history(bot: Harness) -> None:
    archived = bot.rows(Person, github="adab")[0]
    answer = bot.send("checkin Ada Byron / @adab")
    assert answer.reactions == ["check"]
    assert "Welcome back to the Collaboration Cafe, Ada Byron!" in answer.text
    assert "@adab (3 meetings, the last on 2030-12-15)" in answer.text
    assert "First time here" not in answer.text  # no newcomer greeting for a regular
    ada = person_of(bot, ADA)
    assert bot.rows(Person, id=archived.id) == []  # the two became one
    assert len(bot.rows(CheckIn, person_id=ada.id)) == 4  # three imported, one new
    # The items Ada proposed in the archive are hers; what she gave before is remembered.
    assert {i.topic for i in bot.rows(AgendaItem, proposer_id=ada.id)} >= {
        "Release checklist for 4.0",
        "Release checklist follow-up",
    }
    assert ada.affiliation == "Difference Engines Ltd"
    assert bot.send("checkin").acked  # and next time, just a check-in


def test_a_remembered_handle_links_too(db_url: str) -> None:
    bot = Harness(db_url)
    try:
        bot.send("checkin Ada Byron / @adab")  # before the import: a newcomer
        load(bot, fixture("2030.md"))  # the import finds her by handle at once
        ada = person_of(bot, ADA)
        assert len(bot.rows(CheckIn, person_id=ada.id)) == 4
        assert [p.id for p in bot.rows(Person, github="adab")] == [ada.id]
    finally:
        bot.close()


def test_the_same_name_is_offered_and_itsme_confirms_it(bot: Harness) -> None:
    answer = bot.send("checkin Joan Clarke", BOB)
    assert answer.reactions == ["check"]
    assert "The notes archive has Joan Clarke (@jclarke, Hut 8): 1 meeting, on 2030-10-20" in (
        answer.text
    )
    assert "say `itsme`" in answer.text
    bob = person_of(bot, BOB)
    assert len(bot.rows(CheckIn, person_id=bob.id)) == 1  # nothing joined without a yes
    answer = bot.send("itsme", BOB)
    assert answer.reactions == ["check"]
    assert "Done: the notes archive's Joan Clarke (1 meeting, on 2030-10-20) is you now." in (
        answer.text
    )
    bob = person_of(bot, BOB)
    assert len(bot.rows(CheckIn, person_id=bob.id)) == 2
    assert len(bot.rows(Introduction, person_id=bob.id)) == 1  # her introduction of November
    assert (bob.github, bob.affiliation) == ("jclarke", "Hut 8")
    assert [p.id for p in bot.rows(Person, name="Joan Clarke")] == [bob.id]
    assert bot.send("checkin", BOB).acked  # a regular now
    answer = bot.send("itsme", BOB)
    assert "nobody called Joan Clarke waiting to be linked" in answer.text
    assert "For example: `checkin Ines / @ines-r`" in answer.text


def test_a_different_handle_is_someone_else(bot: Harness) -> None:
    answer = bot.send("checkin Joan Clarke / @joan-c", BOB)
    assert "itsme" not in answer.text
    assert "First time here?" in answer.text


def test_several_people_of_that_name(db_url: str) -> None:
    bot = Harness(db_url)
    try:
        load(
            bot,
            "## 2031-01-20\n\n### Check-in\n\n- Sam / Lab A\n\n"
            "## 2030-01-21\n\n### Check-in\n\n- Sam / @sam-b / Lab B\n- Sam / @sam-c\n",
        )
        # "Sam / Lab A" and "Sam / @sam-b" are one person by name; "@sam-c" is another.
        answer = bot.send("checkin Sam", CAROL)
        assert "The notes archive has 2 people called Sam:" in answer.text
        assert "1. Sam (@sam-b, Lab A): 2 meetings, the last on 2031-01-20" in answer.text
        assert "2. Sam (@sam-c): 1 meeting, on 2030-01-21" in answer.text
        assert "say `itsme 1`" in answer.text
        assert "people called Sam" in bot.send("itsme", CAROL).text  # which one?
        refused = bot.send("itsme 3", CAROL)
        assert "Give the number of the person from the list: 1 to 2." in refused.text
        assert bot.send("itsme 2", CAROL).reactions == ["check"]
        carol = person_of(bot, CAROL)
        assert carol.github == "sam-c"
        assert len(bot.rows(CheckIn, person_id=carol.id)) == 2
        assert len(bot.rows(Person, name="Sam")) == 2  # Carol (as Sam), and the other
    finally:
        bot.close()


def test_a_newcomer_with_no_namesake_is_welcomed_as_before(bot: Harness) -> None:
    answer = bot.send("checkin Barbara / @bliskov / MIT", BOB)
    assert "Welcome to the Collaboration Cafe, Barbara! First time here?" in answer.text


# ---------------------------------------------------------------- search


def test_search_finds_imported_and_new_entries_newest_first(bot: Harness) -> None:
    assert bot.send("agenda 10m Paper club budget").acked  # 17 June 2031
    answer = bot.send("search paper club")
    lines = answer.text.split("\n")
    assert lines[0] == "**6 found** for paper club, newest first:"
    assert lines[1:] == [
        "- **2031-06-17/A1** (10 min) Paper club budget — Ada Lovelace",
        "- **2030-11-17/A5** (10-15 min) Proposal: a monthly paper club — Alan T",
        "- **2030-10-20/A2** (5 min) Paper club venue — Joan Clarke",
        "- **2030-10-20/S3** [Paper Club] First meeting had twelve people!",
        "- **2030-10-20** notes: Paper club venue",  # a subsection's heading
        "- **2030-10-20** notes: Room A talked about the checklist; room B about the paper club.",
    ]


def test_search_looks_in_notes_people_and_kept_text(bot: Harness) -> None:
    text = bot.send('search "close the issue"').text
    assert "- **2030-10-20/A1** decision: done, close the issue (on “Release checklist" in text
    text = bot.send("search hut 8").text
    assert "- **2030-10-20/C2** checked in: Joan Clarke / @jclarke / Hut 8" in text
    text = bot.send("search Room B wants").text
    assert "- **2030-10-20** notes: - Room B wants a reading list" not in text
    assert "- **2030-10-20** notes: Room B wants a reading list" in text
    text = bot.send("search whiteboard").text  # an introduction, with who gave it
    assert "- **2030-11-17/I2** Edsger: Structured programming enthusiast" in text


def test_search_with_nothing_found(bot: Harness) -> None:
    answer = bot.send("search zebra crossing")
    assert answer.text == (
        "Nothing found for zebra crossing in the meetings of Collaboration Cafe. "
        "Try fewer or shorter words."
    )
    assert "`search` needs the words to look for." in bot.send("search").text


def test_search_reads_wildcards_as_text(bot: Harness) -> None:
    bot.send("agenda Budget at 100% now")
    bot.send("agenda Budget at 1000 now")
    assert "**1 found**" in bot.send("search 100%").text
    assert "Nothing found" in bot.send("search 1_0").text


def test_search_shows_the_newest_and_says_how_many(bot: Harness) -> None:
    for n in range(20):
        bot.send(f"shoutout Thanks, reviewer number {n}!", OLGA)
    answer = bot.send("search reviewer")
    lines = answer.text.split("\n")
    assert lines[0] == (
        "**21 found** for reviewer, newest first "  # one is from the archive
        "(the 15 newest shown; add words to narrow it down):"
    )
    assert len(lines) == 16
    assert "reviewer number 0!" in lines[1]


@pytest.mark.parametrize("first_batch", [1, 2, 16])
def test_the_sites_search_by_batches_finds_what_the_command_finds(
    bot: Harness, monkeypatch: pytest.MonkeyPatch, first_batch: int
) -> None:
    # newest_in (the site's) looks a batch of meetings at a time and stops when it has
    # enough; what it finds is find_in's newest hits (the command's), in the same order.
    monkeypatch.setattr(search, "FIRST_BATCH", first_batch)
    load(bot, fixture("2029.md"))
    load(bot, fixture("2031.md"))
    bot.send("agenda 10m Release the reviewer guide", ADA)
    with bot.app.unit_of_work() as session:
        series_id = series_row(session, CAFE).id
        meetings = session.scalars(select(Meeting).where(Meeting.series_id == series_id))
        assert len(list(meetings)) > 5  # several batches of 1 (1, 2, 4 ...) and of 2 (2, 4 ...)
        for words in (["e"], ["a", "o"], ["reviewer"], ["paper club"], ["no-such-word"]):
            for limit in (1, 7, 20, 1000):
                for published_only in (False, True):
                    hits, total = search.find_in(
                        session, series_id, words, limit, published_only=published_only
                    )
                    assert hits == search.newest_in(
                        session, series_id, words, limit, published_only=published_only
                    ), (words, limit, published_only)
                    assert len(hits) == min(limit, total)
        every, _ = search.find_in(session, series_id, ["e"], 1000)
        assert len({h.date for h in every}) > 5  # the hits span the batches
