"""The registry: every command has its usage, help and examples, and bugs never escape."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from cafebot.bot.app import APOLOGY
from cafebot.cafe.context import Context
from cafebot.commands.converters import Estimate
from cafebot.commands.registry import REGISTRY, Outcome, Spec, command, help_for
from cafebot.storage.models import AgendaItem, Meeting, ProcessedMessage
from tests.harness import Harness

SPECS = [pytest.param(spec, id=spec.name) for spec in REGISTRY]


@pytest.mark.parametrize("spec", SPECS)
def test_every_command_has_usage_help_and_working_examples(spec: Spec) -> None:
    assert spec.usage.startswith(spec.name)
    assert spec.summary and spec.summary.endswith(".")
    assert spec.examples
    assert spec.usage in help_for(spec)
    for example in spec.examples:
        word, _, rest = example.partition(" ")
        assert REGISTRY.find(word) is spec
        spec.parse(rest, [])  # every example parses


def test_usage_is_generated_from_signatures() -> None:
    usage = {spec.name: spec.usage for spec in REGISTRY}
    assert usage["agenda"] == "agenda [estimate] [topic]"
    assert usage["shoutout"] == "shoutout [project] <text>"
    assert usage["action"] == "action [ref] [@person] <text>"
    assert usage["move"] == "move <ref> <position>"
    assert usage["notes"] == "notes [date]"


@pytest.fixture
def boom() -> Iterator[None]:
    """A command with a bug in it, registered for one test."""

    @command("boom", examples=("boom 10m",))
    def boom_command(ctx: Context, estimate: Estimate) -> Outcome:
        """Fail half-way, after writing."""
        item = AgendaItem(
            meeting=ctx.target_meeting(),
            ref=1,
            topic="half-written",
            position=1,
            created_at=ctx.now,
        )
        ctx.session.add(item)
        ctx.session.flush()
        raise RuntimeError("a bug")

    yield
    del REGISTRY.specs["boom"]
    del REGISTRY.lookup["boom"]


def test_a_bug_is_logged_answered_and_rolled_back(
    db_url: str, boom: None, caplog: pytest.LogCaptureFixture
) -> None:
    bot = Harness(db_url)
    try:
        with caplog.at_level(logging.ERROR, logger="cafebot"):
            answer = bot.send("boom 10m", msg_id=777)
        assert answer.replies == [APOLOGY]
        assert "RuntimeError: a bug" in caplog.text  # the traceback is logged
        assert bot.rows(AgendaItem) == [] and bot.rows(Meeting) == []
        # Recorded as handled, so a redelivery is not answered twice ...
        assert [p.message_id for p in bot.rows(ProcessedMessage)] == [777]
        # ... and the bot goes on with the next command.
        assert bot.send("agenda 5m Still working").acked
    finally:
        bot.close()


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("agenda 5m " + "x" * 100_000, id="100KB"),
        pytest.param("shoutout " + "y" * 5000, id="5KB-shoutout"),
    ],
)
def test_hostile_sizes_are_refused_cleanly(db_url: str, text: str) -> None:
    bot = Harness(db_url)
    try:
        answer = bot.send(text)
        assert "Please shorten it" in answer.text or "the limit is" in answer.text
        assert bot.rows(AgendaItem) == [] and bot.rows(Meeting) == []
    finally:
        bot.close()


def test_control_characters_and_markup_are_stored_safely(db_url: str) -> None:
    bot = Harness(db_url)
    try:
        assert bot.send("shoutout \x07Bell\u202e and <b>html</b> '; DROP TABLE meeting; --").acked
        assert bot.send("agenda 5m # Not a heading").acked
        text = bot.send("list").text
        assert "\x07" not in text
        assert "'; DROP TABLE meeting; --" in text
        # In the middle of a list line "#" cannot open a heading: shown as written.
        assert "\n- **A1** (5 min) # Not a heading" in text
        assert not [line for line in text.splitlines() if line.startswith("#")]
        assert len(bot.rows(Meeting)) == 1
    finally:
        bot.close()


def test_one_structured_log_line_per_command(db_url: str) -> None:
    import io
    import json

    from cafebot.ops.logs import setup_logging

    stream = io.StringIO()
    setup_logging("INFO", "json", stream)
    bot = Harness(db_url)
    try:
        bot.send("agenda 5m Logged", msg_id=31)
        bot.send("remove A9", msg_id=32)
    finally:
        bot.close()
        logging.getLogger().handlers.clear()
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    commands = [r for r in records if "command" in r]
    assert [(r["command"], r["message_id"], r["outcome"]) for r in commands] == [
        ("agenda", 31, "ok"),
        ("remove", 32, "error"),
    ]
    assert all(r["sender_id"] == 11 and r["ms"] >= 0 for r in commands)
    assert commands[0]["message"].startswith("agenda from user 11: ok in ")
