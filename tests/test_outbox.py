"""A command's reply is stored in the command's own transaction (``cafebot run``).

The outbox writes a reply's row where the command writes its changes, and queues
it only once that transaction has committed: a crash or a failed commit can keep
neither, or both, never one without the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import zulip
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from cafebot.bot.app import APOLOGY, App, Bot
from cafebot.core.chat import Message, StagesReplies
from cafebot.core.config import Settings
from cafebot.edge.client import NETWORK_ERRORS
from cafebot.edge.outbox import Outbox, Target, _React
from cafebot.edge.pacing import Api, RateLimiter, Stopper, Tuning
from cafebot.storage.models import CheckIn, OutgoingMessage, OutgoingState, ProcessedMessage
from tests.fakezulip import Org
from tests.harness import ADA, CAFE, JUNE_1, FakeClock


class StagingChat:
    """The chat of ``cafebot run`` without its network: what it queues stays queued."""

    notes_flavour = "zulip"

    def __init__(self, outbox: Outbox) -> None:
        self.outbox = outbox
        self.reactions: list[str] = []

    def reply(self, message: Message, text: str) -> None:
        self.outbox.queue_reply(message, text)

    def stage_reply(self, session: Session, message: Message, text: str) -> Callable[[], None]:
        return self.outbox.stage_reply(session, message, text)

    def react(self, message: Message, emoji: str) -> None:
        self.reactions.append(emoji)

    def send(self, stream: str, topic: str, text: str) -> int | None:
        raise AssertionError("not sent in these tests")

    def edit(self, message_id: int, text: str) -> None:
        raise AssertionError("not edited in these tests")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = App.create(
        Settings(database_url=f"sqlite:///{tmp_path / 'cafe.db'}", series=(CAFE,)),
        FakeClock(JUNE_1),
    )
    yield app
    app.close()


@pytest.fixture
def chat(app: App) -> StagingChat:
    outbox = Outbox(app, RateLimiter(), Tuning())
    outbox.account, outbox.bot_id = "test", 99
    return StagingChat(outbox)


def message(message_id: int, text: str) -> Message:
    return Message(
        id=message_id,
        sender_id=ADA.id,
        sender_name=ADA.name,
        sender_email=ADA.email,
        content=f"@**cafe** {text}",
        stream=CAFE.stream,
        topic="Collaboration Cafe",
    )


def outgoing(app: App) -> list[OutgoingMessage]:
    with app.unit_of_work() as session:
        return list(session.scalars(select(OutgoingMessage).order_by(OutgoingMessage.id)))


def test_the_chat_of_cafebot_run_stages_replies(chat: StagingChat) -> None:
    assert isinstance(chat, StagesReplies)


def test_a_reply_is_written_with_its_command_and_queued_after_the_commit(
    app: App, chat: StagingChat
) -> None:
    Bot(app).handle(message(1, "next"), "next", chat)
    (row,) = outgoing(app)
    assert row.state is OutgoingState.PENDING and row.after_message_id == 1
    assert row.content.startswith("The next Collaboration Cafe is")
    assert chat.outbox.pending == 1  # queued once committed, with its row's id
    with app.unit_of_work() as session:
        assert session.get(ProcessedMessage, 1) is not None


def test_a_failed_commit_keeps_neither_the_command_nor_its_reply(
    app: App, chat: StagingChat
) -> None:
    """The first transaction that holds a reply fails to commit: the check-in it
    answers is not kept either (before, the check-in was kept and its reply lost)."""
    failures = [RuntimeError("the disk is full")]

    def fail_once(session: Session) -> None:
        holds_reply = any(
            isinstance(o, OutgoingMessage) for o in [*session.new, *session.identity_map.values()]
        )
        if holds_reply and failures:
            raise failures.pop()

    event.listen(app.sessions, "before_commit", fail_once)
    text = "checkin Ada Lovelace / @ada / Engines"  # a first check-in is welcomed in a reply
    Bot(app).handle(message(1, text), text, chat)
    with app.unit_of_work() as session:
        assert session.scalars(select(CheckIn)).all() == []
        assert session.get(ProcessedMessage, 1) is not None
    # The apology was stored with the record that the message was handled.
    assert [r.content for r in outgoing(app)] == [APOLOGY]
    Bot(app).handle(message(2, text), text, chat)  # said again: it takes effect, answered
    with app.unit_of_work() as session:
        assert len(session.scalars(select(CheckIn)).all()) == 1
    assert len(outgoing(app)) == 2


# ---------------------------------------------------- answered from the handling thread


def _api(org: Org, stopper: Stopper) -> Api:
    client = zulip.Client(
        email=org.bot.email, api_key=org.bot.api_key, site=org.fake.url, retry_on_errors=False
    )
    return Api(
        client,
        RateLimiter(),
        stopper,
        Tuning(),
        paced=True,
        secret=org.bot.api_key,
        network_errors=NETWORK_ERRORS,
    )


def _zulip_message(org: Org, text: str) -> Message:
    message_id = org.command(text)
    return replace(message(message_id, text), sender_id=org.ada.id)


@pytest.fixture
def live_outbox(app: App, org: Org) -> Iterator[Outbox]:
    outbox = Outbox(app, RateLimiter(), Tuning())
    outbox.account, outbox.bot_id = "test", org.bot.id
    yield outbox
    outbox.close(2.0)


def test_an_idle_outbox_lets_the_handling_thread_answer_at_once(
    live_outbox: Outbox, org: Org
) -> None:
    outbox = live_outbox
    outbox.send_here(_api(org, outbox.outbound_stop))  # no sender thread: only this one
    made = _zulip_message(org, "agenda 10m Release plans")
    react(outbox, made, org)
    assert org.acked(made.id)  # already there when enqueue returned
    with outbox.app.unit_of_work() as session:
        send = outbox.stage_reply(session, made, "A reply")
    send()
    assert [m.content for m in org.replies()] == ["A reply"]
    assert outbox.pending == 0


def test_with_commands_waiting_the_answer_goes_to_the_sender(live_outbox: Outbox, org: Org) -> None:
    outbox = live_outbox
    outbox.send_here(_api(org, outbox.outbound_stop), only_if=lambda: False)
    made = _zulip_message(org, "agenda 10m Release plans")
    react(outbox, made, org)
    assert outbox.pending == 1
    assert not org.acked(made.id)
    outbox.start(_api(org, outbox.outbound_stop))
    org.fake.wait_for(lambda: org.acked(made.id), what="the sender's reaction")


def test_a_post_whose_quick_try_failed_is_sent_once_by_the_sender(
    live_outbox: Outbox, org: Org, app: App
) -> None:
    outbox = live_outbox
    outbox.send_here(_api(org, outbox.outbound_stop))
    made = _zulip_message(org, "next")
    # The post reaches Zulip, but its answer is lost: the quick try cannot know.
    org.fake.fault("drop_after", "messages", method="POST")
    with app.unit_of_work() as session:
        send = outbox.stage_reply(session, made, "The next meeting is on 17 June")
    send()
    assert outbox.pending == 1
    outbox.start(_api(org, outbox.outbound_stop))
    org.fake.wait_for(lambda: outbox.pending == 0 and outbox.wait_idle(0.1), what="the sender")
    outbox.close(2.0)
    assert [m.content for m in org.replies()] == ["The next meeting is on 17 June"]
    ((row,),) = [outgoing(app)]
    assert row.state is OutgoingState.SENT
    assert row.zulip_message_id == org.replies()[0].id


def react(outbox: Outbox, made: Message, org: Org) -> None:
    outbox.enqueue(_React(made, "check", Target.of(made, org.bot.id)))


def test_throttled_acknowledgements_become_one_reply_that_says_what_the_hourglass_meant(
    live_outbox: Outbox, org: Org
) -> None:
    outbox = live_outbox
    made = [_zulip_message(org, f"agenda 30m Topic {n}") for n in range(3)]
    outbox.limiter.hit(30.0)  # throttled: the queue is not sent as it comes
    for item in made:
        outbox.enqueue(_React(item, "check", Target.of(item, org.bot.id)))
        outbox.enqueue(_React(item, "hourglass", Target.of(item, org.bot.id)))
    outbox.start(_api(org, outbox.outbound_stop))  # its own limiter: it may post at once
    (reply,) = org.fake.wait_for(org.replies, what="the combined reply")
    assert reply.content.startswith(":check: Done, all 3 of them: Ada Lovelace (x3).")
    # The hourglass of each is said once, in words, instead of three more requests.
    assert reply.content.count(":hourglass:") == 1
    assert "needs more time than the meeting has" in reply.content
    assert outbox.wait_idle(5.0)
    assert all(org.fake.reactions(m.id or 0) == [] for m in made)
