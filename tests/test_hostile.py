"""Hostile input: every command that takes text, given text meant to break something.

100 KB messages, control characters, right-to-left and bidi-override marks, Markdown
and HTML injection, wildcard mentions, SQL-looking text, emoji and code points no
font knows, lone surrogates: each gets a clear reply or a clean refusal. A refused
command leaves the database as it was (nothing half-way); an accepted one stores no
control character or bidi override, and the notes it ends up in keep their
headings and ping nobody. Both backends (PostgreSQL refuses NUL and surrogates
outright, so the same text can fail there and not on SQLite).

tests/test_registry.py covers oversized texts and markup for single commands;
tests/test_fuzz_commands.py throws random text at the parser.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator

import pytest
from markdown_it import MarkdownIt
from sqlalchemy import select

from cafebot.bot.app import APOLOGY
from cafebot.notes.render import Flavour, render
from cafebot.storage.models import (
    AgendaItem,
    Base,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    OutgoingMessage,
    Person,
    ProcessedMessage,
    ShoutOut,
)
from tests.harness import ADA, CAFE, OLGA, Answer, Harness

MAX_MESSAGE_LENGTH = 10_000  # Zulip's default max_message_length

PAYLOADS = [
    pytest.param("x" * 100_000, id="100KB"),
    pytest.param("word " * 20_000, id="100KB-words"),
    pytest.param("\x00\x07\x1b[31mred\x1b[0m \x7f\x85bell", id="control-characters"),
    pytest.param("\u202eevil\u202c \u2067isolate\u2069 \u200fRLM\u200e \u061c", id="bidi-marks"),
    pytest.param("# Heading\n## Another\n---", id="markdown-headings"),
    pytest.param("```\ncode\n```\n> quote\n1. one\n    indented", id="markdown-blocks"),
    pytest.param("@**all** @**everyone** @**stream** @**topic** @*admins*", id="wildcards"),
    pytest.param("[click](javascript:alert(1)) ![x](https://evil.example/x.png)", id="links"),
    pytest.param("<script>alert(1)</script><img src=x onerror=alert(1)></p>", id="html"),
    pytest.param("'; DROP TABLE meeting; --", id="sql"),
    pytest.param("Robert'); DELETE FROM agenda_item WHERE ('1'='1", id="sql-2"),
    pytest.param("\U0001fae8\U0001fae9 \U000e0001\U000e0041 \U0010fffd \uffff", id="unknown-emoji"),
    pytest.param(
        "e\u0301\u0301\u0301 Z\u0337\u0322\u031ba\u0336l\u0337g\u0338o\u0335", id="combining"
    ),
    pytest.param("line\u2028separator\u2029paragraph", id="unicode-line-breaks"),
    pytest.param("lone \ud800 surrogate \udfff", id="lone-surrogates"),
    pytest.param(":tada: :not_an_emoji_at_all: :clock2:", id="shortcodes"),
]

# Each command that takes text, with where the hostile text goes; Olga (an organiser,
# so that nothing is refused for want of rights) runs them on Ada's A1 and S1.
TEMPLATES = [
    "checkin {x}",
    "checkin Ada / @ada / {x}",
    "intro {x}",
    "shoutout [Proj] {x}",
    "shoutout [{x}] text",
    "agenda 5m {x}",
    "agenda 5m Topic\n{x}",
    "note A1 {x}",
    "decision A1 {x}",
    "action A1 {x}",
    "action A1 @**{x}** follow up",
    "action A1 @**Ada Lovelace|{x}** follow up",
    "edit A1 {x}",
    "edit S1 {x}",
    "edit C1 {x}",
    "search {x}",
    "help {x}",
    "use {x}",
    "itsme {x}",
    "notes {x}",
    "cancel 2031-07-15 {x}",
    "add meeting {x}",
    "{x}",
]

FORBIDDEN = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
WILDCARD = re.compile(r"@(?!_)\*\*(all|everyone|stream|channel|topic)\*\*", re.IGNORECASE)
HEADINGS = {
    "Check-in :raising_hand:",
    "Introduce yourself! :wave:",
    "Celebrations and Shout-Outs :tada:",
    "Agenda :clock2:",
    "Agenda :time:",
}
PARSER = MarkdownIt("commonmark")
TEXT_COLUMNS = {
    CheckIn: ("name", "github", "affiliation"),
    Introduction: ("text",),
    ShoutOut: ("project", "text"),
    AgendaItem: ("topic",),
    ItemNote: ("text",),
    Meeting: ("cancel_reason",),
    Person: ("name", "github", "affiliation"),
}


@pytest.fixture
def bot(db_url: str) -> Iterator[Harness]:
    bot = Harness(db_url)
    try:
        for text in ("checkin Ada / @ada / Engines", "agenda 5m Release plans", "shoutout Yay"):
            assert bot.send(text, ADA).reactions == ["check"]
        bot.send("help", OLGA)
        yield bot
    finally:
        bot.close()


def snapshot(bot: Harness) -> dict[str, list[str]]:
    skip = {ProcessedMessage.__tablename__, OutgoingMessage.__tablename__}
    with bot.app.engine.connect() as connection:
        return {
            table.name: sorted(repr(tuple(row)) for row in connection.execute(select(table)))
            for table in Base.metadata.sorted_tables
            if table.name not in skip
        }


def stored_texts(bot: Harness) -> Iterator[str]:
    with bot.app.unit_of_work() as session:
        for model, columns in TEXT_COLUMNS.items():
            for row in session.scalars(select(model)):
                for column in columns:
                    value = getattr(row, column)
                    if value:
                        yield value


def assert_notes_are_sound(bot: Harness) -> None:
    with bot.app.unit_of_work() as session:
        for meeting in session.scalars(select(Meeting)):
            for flavour in Flavour:
                text = render(meeting, flavour, CAFE)
                assert not WILDCARD.search(text), text
                tokens = PARSER.parse(text)
                headings = [
                    (tok.tag, tokens[i + 1].content)
                    for i, tok in enumerate(tokens)
                    if tok.type == "heading_open"
                ]
                assert headings[0][0] == "h2"
                assert [h for _, h in headings[1:]] == [
                    h for _, h in headings[1:] if h in HEADINGS
                ], headings
                assert all(tag == "h3" for tag, _ in headings[1:]), headings
                kinds = {tok.type for tok in tokens if tok.block}
                assert not kinds & {"fence", "code_block", "blockquote_open"}, kinds
                if flavour is Flavour.ARCHIVE:  # (Zulip shows HTML as text)
                    assert "html_block" not in kinds, text


def send(bot: Harness, text: str, caplog: pytest.LogCaptureFixture) -> tuple[Answer, str]:
    """Send as Olga; the answer, and the outcome the bot logged ("ok", "error" ...)."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="cafebot"):
        answer = bot.send(text, OLGA)
    outcomes = [r.outcome for r in caplog.records if hasattr(r, "outcome")]
    assert len(outcomes) == 1, outcomes
    return answer, str(outcomes[0])


@pytest.mark.parametrize("payload", PAYLOADS)
def test_hostile_text_gets_a_clear_answer_and_nothing_half_way(
    bot: Harness, payload: str, caplog: pytest.LogCaptureFixture
) -> None:
    for template in TEMPLATES:
        before = snapshot(bot)
        answer, outcome = send(bot, template.format(x=payload), caplog)
        where = f"{template!r} with {payload[:40]!r}"
        assert outcome in ("ok", "error"), (where, outcome)  # not "bug", not "refused"
        assert answer.reactions or answer.replies, where
        assert APOLOGY not in answer.text, where
        for reply in answer.replies:
            assert 0 < len(reply) <= MAX_MESSAGE_LENGTH, (where, len(reply))
            assert not WILDCARD.search(reply), (where, reply)
        if outcome == "error":  # a clear reply, and nothing stored half-way
            assert answer.reactions == [] and answer.replies, where
            assert snapshot(bot) == before, where
    for text in stored_texts(bot):
        assert not FORBIDDEN.search(text), repr(text)
    assert_notes_are_sound(bot)


def test_a_refused_100kb_command_stores_nothing_and_says_the_limit(bot: Harness) -> None:
    before = snapshot(bot)
    for template in ("agenda 5m {x}", "agenda 5m Topic\n{x}", "note A1 {x}", "intro {x}"):
        answer = bot.send(template.format(x="y" * 100_000), ADA)
        assert answer.reactions == [], template
        assert "characters long; the limit is" in answer.text, answer.text
    assert snapshot(bot) == before


def test_an_empty_mention_handled_twice_is_answered_once(bot: Harness) -> None:
    raw = bot.message("", ADA, msg_id=4242)
    first = bot.deliver(raw)
    assert first.replies and "help" in first.text
    assert bot.deliver(raw).replies == []  # a redelivery (catch-up, a second instance)
