"""The command language, driven through the real handler on a real database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import event

from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    ItemState,
    Meeting,
    NoteKind,
    Person,
    ProcessedMessage,
    ShoutOut,
)
from tests.harness import BOB, BOOK, CAFE, OLGA, OTHER_BOT, OTTO, Answer, Harness

JUNE_17 = dt.date(2031, 6, 17)
JULY_15 = dt.date(2031, 7, 15)


@pytest.fixture
def bot(db_url: str) -> Iterator[Harness]:
    harness = Harness(db_url)
    yield harness
    harness.close()


def items(bot: Harness) -> list[AgendaItem]:
    return sorted(bot.rows(AgendaItem), key=lambda i: (i.meeting_id, i.position, i.ref))


# ---------------------------------------------------------------- check-ins


def test_first_checkin_is_welcomed_and_remembered(bot: Harness) -> None:
    answer = bot.send("checkin Ada / @ada / Analytical Engines")
    assert answer.reactions == ["check"]
    assert "intro" in answer.text  # first-timers are invited to introduce themselves
    (entry,) = bot.rows(CheckIn)
    assert (entry.name, entry.github, entry.affiliation, entry.ref) == (
        "Ada",
        "ada",
        "Analytical Engines",
        1,
    )
    (meeting,) = bot.rows(Meeting)
    assert meeting.date == JUNE_17
    assert meeting.starts_at == dt.datetime(2031, 6, 17, 14, 0, tzinfo=dt.UTC)  # 16:00 CEST

    # Next month, `checkin` alone is enough, and no second welcome.
    bot.clock.set(dt.datetime(2031, 7, 1, tzinfo=dt.UTC))
    assert bot.send("checkin").acked
    july = [c for c in bot.rows(CheckIn) if c.meeting_id != meeting.id]
    assert [(c.name, c.github, c.affiliation) for c in july] == [
        ("Ada", "ada", "Analytical Engines")
    ]


def test_checkin_again_updates_the_entry(bot: Harness) -> None:
    bot.send("checkin Ada / @ada / Engines")
    assert bot.send("checkin Ada L. / @ada / Difference Engines").acked
    (entry,) = bot.rows(CheckIn)
    assert (entry.name, entry.affiliation, entry.ref) == ("Ada L.", "Difference Engines", 1)
    (person,) = bot.rows(Person)
    assert (person.name, person.affiliation) == ("Ada L.", "Difference Engines")


def test_checkin_without_fields_uses_the_zulip_name(bot: Harness) -> None:
    bot.send("checkin", BOB)
    (entry,) = bot.rows(CheckIn)
    assert (entry.name, entry.github, entry.affiliation) == ("Bob Builder", None, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("Ada", ("Ada", None, None), id="name"),
        pytest.param("Ada / @ada", ("Ada", "ada", None), id="name-handle"),
        pytest.param("Ada / ada", ("Ada", "ada", None), id="handle-without-at"),
        pytest.param("Ada / Harbour Lab", ("Ada", None, "Harbour Lab"), id="name-affiliation"),
        pytest.param("Ada / / Harbour Lab", ("Ada", None, "Harbour Lab"), id="empty-handle"),
        pytest.param(
            "Ada / [@ada](https://github.com/ada) / Lab", ("Ada", "ada", "Lab"), id="handle-link"
        ),
        pytest.param("Ada / @ada / Lab / Sub", ("Ada", "ada", "Lab / Sub"), id="slash-in-aff"),
    ],
)
def test_checkin_fields(bot: Harness, text: str, expected: tuple[str | None, ...]) -> None:
    assert bot.send(f"checkin {text}").reactions == ["check"]
    (entry,) = bot.rows(CheckIn)
    assert (entry.name, entry.github, entry.affiliation) == expected


def test_bad_github_handle_is_refused_and_nothing_written(bot: Harness) -> None:
    answer = bot.send("checkin Ada / @not a handle! / Lab")
    assert answer.reactions == []
    assert "not a GitHub handle" in answer.text
    assert "checkin Ada Lovelace / @ada / Analytical Engines" in answer.text
    assert bot.rows(CheckIn) == []
    assert bot.rows(Person) == []  # not even the sender's person row: one transaction


# ---------------------------------------------------------------- intros and shout-outs


def test_intro_and_shoutouts(bot: Harness) -> None:
    assert bot.send("intro I build engines.\nAnd I like poetry.").acked
    assert bot.send("intro Actually: I design engines.").acked  # replaces
    (intro,) = bot.rows(Introduction)
    assert intro.text == "Actually: I design engines."

    assert bot.send("shoutout [Jupyter Book] Site footers landed!").acked
    assert bot.send("kudos Thanks for the reviews!", BOB).acked
    assert bot.send("celebrate [Lattice]   Proxy 3 beta").acked
    shoutouts = sorted(bot.rows(ShoutOut), key=lambda s: s.ref)
    assert [(s.ref, s.project, s.text) for s in shoutouts] == [
        (1, "Jupyter Book", "Site footers landed!"),
        (2, None, "Thanks for the reviews!"),
        (3, "Lattice", "Proxy 3 beta"),
    ]


def test_missing_text_gets_usage(bot: Harness) -> None:
    answer = bot.send("intro")
    assert "`intro` needs <text> text" in answer.text
    assert "intro I maintain a small plotting library." in answer.text
    assert bot.rows(Introduction) == []


# ---------------------------------------------------------------- agenda


@pytest.mark.parametrize(
    ("estimate", "low", "high"),
    [
        pytest.param("5m", 5, None, id="5m"),
        pytest.param("5 min", 5, None, id="5-min"),
        pytest.param("(10 mins)", 10, None, id="paren-mins"),
        pytest.param("10min", 10, None, id="10min"),
        pytest.param("10-15 mins", 10, 15, id="range"),
        pytest.param("5 - 10 mins", 5, 10, id="spaced-range"),
        pytest.param("1h", 60, None, id="hour"),
        pytest.param("(5 min):", 5, None, id="pad-colon"),
    ],
)
def test_agenda_estimates(bot: Harness, estimate: str, low: int, high: int | None) -> None:
    assert bot.send(f"agenda {estimate} Release plans").acked
    (item,) = items(bot)
    assert (item.estimate_min, item.estimate_max, item.topic) == (low, high, "Release plans")


def test_agenda_without_estimate_and_with_first_notes(bot: Harness) -> None:
    assert bot.send("agenda Release plans\nwhat goes into 5.0\n\nwho cuts it").acked
    (item,) = items(bot)
    assert (item.estimate_min, item.topic) == (None, "Release plans")
    notes = sorted(bot.rows(ItemNote), key=lambda n: n.position)
    assert [(n.kind, n.text) for n in notes] == [
        (NoteKind.NOTE, "what goes into 5.0"),
        (NoteKind.NOTE, "who cuts it"),
    ]


@pytest.mark.parametrize(
    ("command", "complaint"),
    [
        pytest.param("agenda 0m Nothing", "not a usable estimate", id="zero"),
        pytest.param("agenda 15-10m Backwards", "not a usable estimate", id="backwards-range"),
        pytest.param("agenda 10h Too long", "longer than 8 hours", id="too-long"),
        pytest.param("agenda 10m", "What is the topic?", id="no-topic"),
        pytest.param("agenda 10m " + "x" * 400, "the limit is 300", id="over-long"),
    ],
)
def test_bad_agenda_input(bot: Harness, command: str, complaint: str) -> None:
    answer = bot.send(command)
    assert complaint in answer.text
    assert "agenda 10m Release plans" in answer.text  # a correct example
    assert answer.reactions == []
    assert items(bot) == []
    assert bot.rows(Meeting) == []  # nothing half-written, not even the meeting


def test_listing_shows_references_and_total(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send("agenda 10-15m Docs sprint", BOB)
    bot.send("checkin Ada / @ada / Engines")
    bot.send("shoutout [Quill] New docs!", BOB)
    text = bot.send("agenda").text
    assert "**A1** (10 min) Release plans — Ada" in text  # the name she checked in with
    assert "**A2** (10-15 min) Docs sprint — Bob Builder" in text
    assert "Estimated time: 20-25 min of 60 min" in text
    assert "**C1** Ada / @ada / Engines" in text
    assert "**S1** [Quill] New docs! — Bob Builder" in text
    assert "<time:2031-06-17T14:00:00Z>" in text
    assert bot.send("list").text == text


def test_agenda_overflow_is_a_second_reaction_not_a_message(bot: Harness) -> None:
    assert bot.send("agenda 45m Big topic").acked  # within the 60 min slot
    # Over the slot: a check and an hourglass (a name Zulip has), and no message,
    # however many proposals there are.
    for n in range(3):
        answer = bot.send(f"agenda 30m Another big topic {n}")
        assert answer.reactions == ["check", "hourglass"]
        assert answer.replies == []
    # The listing still shows the total against the slot, and says it is over.
    assert "Estimated time: 135 min of 60 min — more than the meeting's length" in (
        bot.send("list").text
    )
    # Back within the slot: the check alone again.
    for ref in ("A2", "A3", "A4"):
        bot.send(f"remove {ref}")
    assert bot.send("agenda 10m Small one").acked


def test_mentions_are_silent_when_repeated(bot: Harness) -> None:
    bot.send("agenda 5m Ask @**all** and @**Bob Builder|12** about @*team*")
    text = bot.send("list").text
    assert "@_**all**" in text and "@_**Bob Builder|12**" in text and "@_*team*" in text
    assert "@**" not in text.replace("@_**", "")
    (item,) = items(bot)
    assert item.topic == "Ask @**all** and @**Bob Builder|12** about @*team*"  # kept as written


# ---------------------------------------------------------------- references


def test_references_are_stable_and_never_reused(bot: Harness) -> None:
    for topic in ("One", "Two", "Three"):
        bot.send(f"agenda 5m {topic}")
    assert bot.send("remove A2").acked
    bot.send("agenda 5m Four")
    assert bot.send("remove A4").acked
    bot.send("agenda 5m Five")
    # Removing an item leaves the others where they are (their positions keep the order).
    assert [(i.ref, i.topic) for i in items(bot)] == [(1, "One"), (3, "Three"), (5, "Five")]
    shown = bot.send("list").text
    assert shown.index("**A1**") < shown.index("**A3**") < shown.index("**A5**")
    assert bot.send("move A5 1").acked
    assert [(i.ref, i.position) for i in items(bot)] == [(5, 1), (1, 2), (3, 3)]
    assert bot.send("move A1 last").acked
    assert [i.ref for i in items(bot)] == [5, 3, 1]


def test_unknown_reference(bot: Harness) -> None:
    answer = bot.send("remove A7")
    assert "There is no A7 in the meeting of 2031-06-17" in answer.text
    answer = bot.send("remove Z1")
    assert "is not a reference" in answer.text and "remove A2" in answer.text


def test_edit_each_kind(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    bot.send("shoutout [Quill] Docs")
    bot.send("intro Hello")
    bot.send("checkin Ada / @ada / Engines")
    assert bot.send("edit A1 15-20m Release plans for 5.0").acked
    assert bot.send("edit A1 Release plans for 5.1").acked  # the estimate stays
    assert bot.send("edit S1 [Quill Book] Docs, improved").acked
    assert bot.send("edit I1 Hello again").acked
    assert bot.send("edit C1 Ada / @ada / Difference Engines").acked
    (item,) = items(bot)
    assert (item.estimate_min, item.estimate_max, item.topic) == (15, 20, "Release plans for 5.1")
    assert [(s.project, s.text) for s in bot.rows(ShoutOut)] == [("Quill Book", "Docs, improved")]
    assert [i.text for i in bot.rows(Introduction)] == ["Hello again"]
    assert [c.affiliation for c in bot.rows(CheckIn)] == ["Difference Engines"]
    assert [p.affiliation for p in bot.rows(Person)] == ["Difference Engines"]


def test_defer_moves_an_item_to_the_following_meeting(bot: Harness) -> None:
    bot.send("agenda 10m Release plans\nfirst thoughts")
    bot.send("agenda 5m Docs")
    answer = bot.send("defer A1")
    assert "Moved A1 to the meeting of 2031-07-15 as A1" in answer.text
    moved, docs, copy = sorted(bot.rows(AgendaItem), key=lambda i: (i.meeting_id, i.ref))
    assert (moved.state, moved.moved_to) == (ItemState.DEFERRED, JULY_15)
    assert (docs.position, docs.ref) == (1, 2)
    assert (copy.topic, copy.carried_from, copy.estimate_min) == ("Release plans", JUNE_17, 10)
    assert [n.text for n in bot.rows(ItemNote, item_id=copy.id)] == ["first thoughts"]
    text = bot.send("list").text
    assert "moved to 2031-07-15" in text
    assert "Estimated time: 5 min" in text
    assert "already moved" in bot.send("defer A1").text
    july = bot.send("notes 2031-07-15").text
    assert "Release plans" in july and "carried over from 2031-06-17" in july


# ---------------------------------------------------------------- notes under items


def test_notes_decisions_and_actions(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    assert bot.send("note A1 The release is planned for May", BOB).acked
    assert bot.send("decision A1 Ship 5.0 on 1 May").acked
    assert bot.send("action A1 @**Bob Builder|12** write the release notes").acked
    assert bot.send("action A1 Book the room").acked
    notes = sorted(bot.rows(ItemNote), key=lambda n: n.position)
    assert [(n.kind, n.text) for n in notes] == [
        (NoteKind.NOTE, "The release is planned for May"),
        (NoteKind.DECISION, "Ship 5.0 on 1 May"),
        (NoteKind.ACTION, "write the release notes"),
        (NoteKind.ACTION, "Book the room"),
    ]
    bob = next(p for p in bot.rows(Person) if p.zulip_user_id == BOB.id)
    assert notes[2].owner_id == bob.id and notes[3].owner_id is None


def _reads(bot: Harness, table: str, text: str) -> tuple[list[str], Answer]:
    """The SELECTs from ``table`` that the command ``text`` runs, and its answer."""
    reads: list[str] = []

    def capture(conn: object, cursor: object, sql: str, *_: object) -> None:
        if sql.lstrip().upper().startswith("SELECT") and f"FROM {table}" in sql:
            reads.append(sql)

    event.listen(bot.app.engine, "before_cursor_execute", capture)
    try:
        answer = bot.send(text)
    finally:
        event.remove(bot.app.engine, "before_cursor_execute", capture)
    return reads, answer


def test_a_note_reads_its_item_once(bot: Harness) -> None:
    """The item a note goes under is read once per command (the flush, which checks its
    meeting, does not read it again)."""
    bot.send("agenda 10m Release plans")
    reads, answer = _reads(bot, "agenda_item", "note A1 The release is planned for May")
    assert answer.acked
    assert len(reads) == 1, reads
    assert [n.text for n in bot.rows(ItemNote)] == ["The release is planned for May"]


def test_the_series_row_is_read_once(bot: Harness) -> None:
    assert _reads(bot, "series", "agenda 10m Release plans")[0]
    reads, answer = _reads(bot, "series", "agenda 5m Docs sprint")
    assert answer.acked
    assert reads == []
    items = bot.rows(AgendaItem)
    assert sorted(i.topic for i in items) == ["Docs sprint", "Release plans"]
    assert len({i.meeting_id for i in items}) == 1


def test_note_without_reference_outside_a_live_meeting(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    answer = bot.send("note We agreed")
    assert "Which agenda item" in answer.text and "note A1" in answer.text
    assert bot.rows(ItemNote) == []
    assert "is not an agenda item" in bot.send("note S1 hello").text


# ---------------------------------------------------------------- permissions


def test_attendees_change_only_their_own_entries(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")  # Ada's
    for command in ("edit A1 Hijacked", "remove A1", "move A1 1", "defer A1"):
        answer = bot.send(command, BOB)
        assert "only its author (Ada Lovelace) or an organiser" in answer.text, command
        assert answer.reactions == []
    (item,) = items(bot)
    assert (item.topic, item.state) == ("Release plans", ItemState.OPEN)
    # Anyone may take notes on any item.
    assert bot.send("note A1 Bob's note", BOB).acked
    # Organisers may change anyone's entries: one listed by email, one by user id.
    assert bot.send("edit A1 Release plans (organiser edit)", OLGA).acked
    assert bot.send("remove A1", OTTO).acked
    assert items(bot) == []


def test_organiser_emails_do_not_match_placeholder_senders(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    impostor = BOB.__class__(15, "Olga Organiser", "user15@chat.example.org")
    assert "only its author" in bot.send("remove A1", impostor).text


# ---------------------------------------------------------------- which meeting


def test_current_meeting_then_ended_until_published(bot: Harness) -> None:
    bot.clock.set(dt.datetime(2031, 6, 17, 14, 10, tzinfo=dt.UTC))  # during the meeting
    bot.send("agenda 10m Live topic")
    bot.clock.set(dt.datetime(2031, 6, 17, 15, 5, tzinfo=dt.UTC))  # it has ended
    bot.send("agenda 10m Next month's topic")
    june, july = sorted(items(bot), key=lambda i: i.meeting_id)
    assert (june.topic, june.ref) == ("Live topic", 1)
    assert (july.topic, july.ref) == ("Next month's topic", 1)
    # Notes and edits still reach the ended meeting (until it is published) ...
    assert bot.send("note A1 Finished early").acked
    assert [n.item_id for n in bot.rows(ItemNote)] == [june.id]
    # ... and a date names the other meeting.
    assert bot.send("note 2031-07-15/A1 Prepare slides").acked
    assert sorted(n.item_id for n in bot.rows(ItemNote)) == sorted([june.id, july.id])
    assert "2031-07-15" in bot.send("list").text  # new entries go to the next meeting


def test_dates_that_have_no_meeting(bot: Harness) -> None:
    answer = bot.send("notes 2031-06-18")
    assert "has no meeting on 2031-06-18" in answer.text
    assert "not a date on the calendar" in bot.send("notes 2031-02-30").text
    assert "not a date on the calendar" in bot.send("note 2031-02-30/A1 x").text


# ---------------------------------------------------------------- addressing


def test_direct_messages_with_one_series(bot: Harness) -> None:
    assert bot.dm("agenda 10m From a DM").acked
    (item,) = items(bot)
    assert item.topic == "From a DM"


def test_several_series(db_url: str) -> None:
    bot = Harness(db_url, series=(CAFE, BOOK))
    try:
        assert bot.send("agenda 5m Cafe topic").acked  # the stream's series
        assert bot.send("agenda 5m Book topic", stream="jupyterbook").acked
        answer = bot.dm("agenda 5m Where does this go?")
        assert "Which series" in answer.text and "`jupyterbook`" in answer.text
        assert bot.dm("agenda @jupyterbook 5m Named in the DM").acked
        assert bot.dm("use jupyterbook").reactions == ["check"]
        assert bot.dm("agenda 5m Default now").acked
        assert "no series 'nope'" in bot.dm("agenda @nope 5m x").text
        meetings = {m.id: m for m in bot.rows(Meeting)}
        by_topic = {i.topic: meetings[i.meeting_id].date for i in items(bot)}
        # The first Thursday of July 2031 is the 3rd; the cafe meets on 17 June.
        assert by_topic == {
            "Cafe topic": JUNE_17,
            "Book topic": dt.date(2031, 6, 5),
            "Named in the DM": dt.date(2031, 6, 5),
            "Default now": dt.date(2031, 6, 5),
        }
        assert "has no meeting series" in bot.send("agenda 5m x", stream="random").text
    finally:
        bot.close()


def test_bots_are_never_answered(bot: Harness) -> None:
    answer = bot.send("agenda 5m Bot topic", OTHER_BOT)
    assert answer.reactions == [] and answer.replies == []
    from tests.harness import BOT_ID, User

    itself = User(BOT_ID, "cafe", "cafe-bot@example.org")
    assert bot.send("agenda 5m Talking to myself", itself).replies == []
    assert items(bot) == []


def test_a_message_is_handled_once(bot: Harness) -> None:
    raw = bot.message("agenda 5m Once", msg_id=4242)
    assert bot.deliver(raw).acked
    assert bot.deliver(dict(raw)).reactions == []  # redelivered: no second effect
    assert len(items(bot)) == 1
    assert [p.message_id for p in bot.rows(ProcessedMessage)] == [4242]
    (item,) = items(bot)
    assert item.message_id == 4242


def test_mention_forms_and_case(bot: Harness) -> None:
    for content in ("@**cafe|99** AGENDA 5m One", "@**cafe**  Agenda 5m Two", "agenda 5m Three"):
        raw = bot.message(content, mention=False)
        assert bot.deliver(raw).acked, content
    assert [i.topic for i in items(bot)] == ["One", "Two", "Three"]


# ---------------------------------------------------------------- help and errors


def test_unknown_command_suggests(bot: Harness) -> None:
    answer = bot.send("agnda 5m typo")
    assert "I don't know the command `agnda`" in answer.text and "`agenda`" in answer.text


def test_help(bot: Harness) -> None:
    text = bot.send("help").text
    for word in (
        "checkin",
        "intro",
        "shoutout",
        "agenda",
        "list",
        "edit",
        "remove",
        "move",
        "defer",
        "note",
        "decision",
        "action",
        "next",
        "notes",
        "help",
    ):
        assert f"`{word}" in text, word
    detail = bot.send("help kudos").text
    assert "`shoutout [project] <text>`" in detail and "shoutout [Jupyter Book]" in detail
    assert "Who may use it: anyone" in detail
    assert "I don't know the command `frobnicate`" in bot.send("help frobnicate").text
    assert "`help`" in bot.send("").text


def test_next(bot: Harness) -> None:
    bot.send("agenda 10m Release plans")
    text = bot.send("when").text
    assert "The next Collaboration Cafe is <time:2031-06-17T14:00:00Z> (60 min)" in text
    assert "https://meet.example.org/cafe" in text and "A1 (10 min) Release plans" in text
