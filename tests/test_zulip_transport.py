"""`cafebot run`'s transport, in-process: the real zulip client against the fake Zulip server.

The bot runs in a thread on a real database (SQLite and PostgreSQL); the fake
server plays the users. Timings are shortened through :class:`Tuning`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select, update

from cafebot.bot.app import App
from cafebot.core.chat import Chat, EditNotAllowed
from cafebot.core.clock import FakeClock
from cafebot.core.config import Settings, ZulipSettings
from cafebot.edge.pacing import Tuning
from cafebot.edge.transport import ZulipBot
from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    OutgoingMessage,
    OutgoingState,
    ProcessedMessage,
    ZulipCursor,
)
from tests.fakezulip import FakeZulip, Org
from tests.harness import CAFE, JUNE_1

FAST = Tuning(
    backoff_base=0.02,
    backoff_max=0.3,
    request_timeout=2.0,
    shutdown_grace=3.0,
    anchor_every=0.0,
)


class Running:
    """A ZulipBot in a thread, on ``app``."""

    def __init__(
        self,
        app: App,
        tuning: Tuning = FAST,
        on_ready: Callable[[Chat], Callable[[], None]] | None = None,
    ) -> None:
        self.bot = ZulipBot(app, tuning=tuning)
        self.code: int | None = None
        self.thread = threading.Thread(target=self._run, args=(on_ready,), daemon=True)
        self.thread.start()

    def _run(self, on_ready: Callable[[Chat], Callable[[], None]] | None) -> None:
        self.code = self.bot.run(on_ready)

    def wait_ready(self) -> Running:
        assert self.bot.ready.wait(10), "the bot did not become ready"
        return self

    def stop(self) -> int | None:
        self.bot.stop()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the bot did not stop"
        return self.code


def make_app(db_url: str, org: Org, *, key: str | None = None) -> App:
    settings = Settings(
        database_url=db_url,
        zulip=ZulipSettings(site=org.fake.url, email=org.bot.email, key=key or org.bot.api_key),
        series=(CAFE,),
    )
    return App.create(settings, FakeClock(JUNE_1))


@pytest.fixture
def app(db_url: str, org: Org) -> Iterator[App]:
    app = make_app(db_url, org)
    yield app
    app.close()


@pytest.fixture
def bot(app: App) -> Iterator[Running]:
    running = Running(app).wait_ready()
    yield running
    running.stop()


# The fault matrix exercises the transport, not the database: SQLite alone keeps it fast.


@pytest.fixture
def lite_app(tmp_path: Any, org: Org) -> Iterator[App]:
    app = make_app(f"sqlite:///{tmp_path / 'cafe.db'}", org)
    yield app
    app.close()


@pytest.fixture
def lite_bot(lite_app: App) -> Iterator[Running]:
    running = Running(lite_app).wait_ready()
    yield running
    running.stop()


def rows(app: App, model: type[Any]) -> list[Any]:
    with app.unit_of_work() as session:
        return list(session.scalars(select(model)))


def topics(app: App) -> list[str]:
    return sorted(i.topic for i in rows(app, AgendaItem))


# ------------------------------------------------------------------ the event loop


def test_commands_in_a_stream_and_in_a_direct_message(org: Org, app: App, bot: Running) -> None:
    fake = org.fake
    first = org.command("agenda 10m Release plans")
    fake.wait_for(lambda: org.acked(first), what="a check reaction")
    by_id = fake.post(org.bob, org.stream, org.topic, f"@**cafe|{org.bot.id}** agenda Docs sprint")
    fake.wait_for(lambda: org.acked(by_id), what="the @**cafe|id** form")
    assert topics(app) == ["Docs sprint", "Release plans"]

    dm = fake.dm(org.ada, [org.bot], "list")
    reply = fake.wait_for(lambda: [m for m in org.replies() if m.stream is None], what="a DM")
    assert reply[0].recipients == {org.ada.id, org.bot.id}
    assert "Release plans" in reply[0].content and "Docs sprint" in reply[0].content
    assert not fake.reactions(dm)
    # The person is known by user id, not by the email the message shows.
    with app.unit_of_work() as session:
        item = session.scalars(select(AgendaItem).where(AgendaItem.topic == "Docs sprint")).one()
        assert item.proposer is not None and item.proposer.zulip_user_id == org.bob.id


def test_only_messages_addressed_to_the_bot_are_commands(org: Org, app: App, bot: Running) -> None:
    fake = org.fake
    carol = fake.add_user("Carol", "carol@example.org")
    ignored = [
        fake.post(org.ada, org.stream, org.topic, "agenda 10m No mention"),
        fake.post(org.ada, org.stream, org.topic, "hello @**cafe** agenda 10m Mention later"),
        # A quote-and-reply starts with a silent mention: not a command.
        fake.post(org.ada, org.stream, org.topic, "@_**cafe|10** [said](#):\nagenda 10m Quoted"),
        fake.post(org.other_bot, org.stream, org.topic, "@**cafe** agenda 10m From a bot"),
        fake.dm(org.ada, [org.bot, carol], "agenda 10m Group DM without mention"),
        fake.dm(org.other_bot, [org.bot], "agenda 10m A bot's DM"),
    ]
    group = fake.dm(org.ada, [org.bot, carol], "@**cafe** agenda 10m Group DM with mention")
    fake.wait_for(lambda: org.acked(group), what="the group DM command")
    assert topics(app) == ["Group DM with mention"]
    for message_id in ignored:
        assert not fake.reactions(message_id)
    assert not org.replies()  # and the bot never answers a bot


def test_organisers_resolved_by_email_and_streams_joined(org: Org, app: App, bot: Running) -> None:
    assert org.olga.id in app.organizer_ids["cafe"]
    assert org.bot.id in org.fake.streams["jupyterhub"].subscribers
    started = org.command("start", org.olga)
    org.fake.wait_for(lambda: org.acked(started) or org.replies(), what="an answer to start")
    assert "Only the organisers" not in " ".join(m.content for m in org.replies())


def test_a_refused_subscription_is_said_clearly(
    org: Org, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    org.fake.refuse_subscriptions = True
    with caplog.at_level(logging.INFO, "cafebot"):
        running = Running(app).wait_ready()
        running.stop()
    assert "does not let the bot join stream 'jupyterhub'" in caplog.text
    assert "Insufficient permission" in caplog.text


def test_wrong_credentials_stop_with_a_clear_error_and_no_key(
    db_url: str, org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(db_url, org, key="wrong-key-1234567890")
    try:
        with caplog.at_level(logging.INFO):
            running = Running(app)
            running.thread.join(10)
        assert running.code == 1
        assert "refused the bot's credentials (HTTP 401)" in caplog.text
        assert "wrong-key-1234567890" not in caplog.text
    finally:
        app.close()


def test_a_bug_in_one_command_is_logged_and_answered_and_the_loop_goes_on(
    org: Org, app: App, bot: Running, caplog: pytest.LogCaptureFixture, monkeypatch: Any
) -> None:
    from cafebot.cafe import info

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(info, "listing", broken)
    with caplog.at_level(logging.ERROR):
        org.command("list")
        org.fake.wait_for(lambda: org.replies(), what="the apology")
    assert "Sorry, something went wrong" in org.replies()[0].content
    assert "RuntimeError: boom" in caplog.text
    after = org.command("agenda 10m Still alive")
    org.fake.wait_for(lambda: org.acked(after), what="the next command")


# ------------------------------------------------------------------ faults


@pytest.mark.parametrize(
    ("kind", "path", "method", "extra"),
    [
        pytest.param("status", "events", "GET", {"status": 500, "times": 3}, id="5xx-on-poll"),
        pytest.param("status", "events", "GET", {"status": 502, "times": 2}, id="502-page"),
        pytest.param("drop", "events", "GET", {"times": 3}, id="dropped-poll"),
        pytest.param("slow", "events", "GET", {"delay": 2.5}, id="poll-slower-than-timeout"),
        pytest.param("limit", "events", "GET", {"retry_after": 0.4}, id="429-on-poll"),
        pytest.param("bad_queue", "events", "GET", {}, id="BAD_EVENT_QUEUE_ID"),
        pytest.param("status", "messages/", "POST", {"status": 503}, id="5xx-on-reaction"),
        pytest.param("drop_after", "messages/", "POST", {}, id="lost-reaction-response"),
        pytest.param("limit", "messages/", "POST", {"retry_after": 0.35}, id="429-on-reaction"),
    ],
)
def test_each_fault_costs_no_command(
    org: Org,
    lite_app: App,
    lite_bot: Running,
    kind: str,
    path: str,
    method: str,
    extra: dict[str, Any],
) -> None:
    fake = org.fake
    fake.fault(kind, path, method=method, **extra)
    first = org.command("agenda 10m First")
    second = org.command("agenda 5m Second")
    fake.wait_for(lambda: org.acked(first) and org.acked(second), 15, "both acknowledged")
    assert topics(lite_app) == ["First", "Second"]
    assert fake.reactions(first) == [(org.bot.id, "check")]


@pytest.mark.parametrize(
    ("kind", "extra"),
    [
        pytest.param("status", {"status": 500, "times": 2}, id="5xx"),
        pytest.param("drop", {"times": 2}, id="dropped-before"),
        pytest.param("drop_after", {}, id="response-lost"),
        pytest.param("drop_after", {"times": 3}, id="response-lost-thrice"),
        pytest.param("limit", {"retry_after": 0.3}, id="429"),
    ],
)
def test_a_reply_is_posted_exactly_once_whatever_happens_to_its_request(
    org: Org, lite_app: App, lite_bot: Running, kind: str, extra: dict[str, Any]
) -> None:
    fake = org.fake
    fake.fault(kind, "messages", method="POST", **extra)
    org.command("list")
    listing = fake.wait_for(lambda: org.replies(), what="the listing")
    time.sleep(0.5)  # a second copy would be posted within this time
    assert len(org.replies()) == 1
    assert "Collaboration Cafe" in listing[0].content
    fake.wait_for(
        lambda: [r for r in rows(lite_app, OutgoingMessage) if r.state is OutgoingState.SENT],
        what="the outgoing row confirmed",
    )
    (row,) = rows(lite_app, OutgoingMessage)
    assert row.zulip_message_id == listing[0].id


def test_two_identical_replies_are_told_apart_after_a_lost_response(
    org: Org, lite_app: App, lite_bot: Running
) -> None:
    fake = org.fake
    org.command("list")
    fake.wait_for(lambda: len(org.replies()) == 1, what="the first listing")
    fake.fault("drop_after", "messages", method="POST")
    org.command("list")  # the same text again; its response is lost
    fake.wait_for(lambda: len(org.replies()) == 2, what="the second listing")
    time.sleep(0.5)
    assert len(org.replies()) == 2


def test_an_outage_costs_a_bounded_number_of_requests_and_no_command(
    org: Org, app: App, bot: Running
) -> None:
    fake = org.fake
    fake.outage(2.0)
    time.sleep(0.1)
    during = org.command("agenda 10m Posted during the outage")
    fake.wait_for(lambda: org.acked(during), 15, "the command after the outage")
    cut = [r for r in fake.requests if r.status == "outage"]
    # Backoff from 20 ms doubling to 300 ms: a tight loop would make hundreds.
    assert 1 <= len(cut) <= 40, len(cut)
    assert topics(app) == ["Posted during the outage"]


def test_a_lost_queue_is_registered_again_and_caught_up(org: Org, app: App, bot: Running) -> None:
    fake = org.fake
    before = len(fake.requests_to("register"))
    fake.expire_queues()
    gap = org.command("agenda 10m While the queue was gone")
    fake.wait_for(lambda: org.acked(gap), what="the command from the gap")
    assert len(fake.requests_to("register")) == before + 1
    assert topics(app) == ["While the queue was gone"]


# ------------------------------------------------------------------ catch-up and exactly once


def test_commands_posted_while_down_are_handled_in_order_once(org: Org, app: App) -> None:
    fake = org.fake
    Running(app).wait_ready().stop()
    posted = [org.command(f"agenda {n}m Item {n}") for n in range(1, 6)]
    old = org.command("agenda 1m Too old")
    fake.age(old, 25 * 3600)  # outside the 24 h catch-up window
    running = Running(app).wait_ready()
    try:
        fake.wait_for(lambda: all(org.acked(m) for m in posted), what="the catch-up")
        with app.unit_of_work() as session:
            items = session.scalars(select(AgendaItem).order_by(AgendaItem.ref)).all()
            assert [(i.ref, i.topic) for i in items] == [(n, f"Item {n}") for n in range(1, 6)]
        assert not org.acked(old)
        catch_up = fake.requests_to("messages", "GET")
        assert catch_up and all(r.params.get("apply_markdown") == "false" for r in catch_up)
    finally:
        running.stop()


def test_a_message_seen_twice_has_no_second_effect(org: Org, app: App) -> None:
    fake = org.fake
    running = Running(app).wait_ready()
    done = [org.command("agenda 10m Once"), org.command("list")]
    fake.wait_for(lambda: org.acked(done[0]) and org.replies(), what="both handled")
    running.stop()
    # Forget how far the bot read: the next start fetches both again.
    with app.unit_of_work() as session:
        session.execute(update(ZulipCursor).values(last_message_id=done[0] - 1))
    replies = len(org.replies())
    running = Running(app).wait_ready()
    later = org.command("agenda 5m Later")
    fake.wait_for(lambda: org.acked(later), what="a later command")
    running.stop()
    assert topics(app) == ["Later", "Once"]
    assert len(org.replies()) == replies
    assert {p.message_id for p in rows(app, ProcessedMessage)} >= set(done)


def test_a_reply_left_pending_by_a_crash_is_sent_after_the_restart_once(org: Org, app: App) -> None:
    fake = org.fake
    Running(app).wait_ready().stop()
    account = f"{fake.url}/api/#{org.bot.id}"
    already = fake.post(org.bot, org.stream, org.topic, "It was sent before the crash")
    with app.unit_of_work() as session:
        for text, attempts in (("It was sent before the crash", 1), ("It was never sent", 0)):
            session.add(
                OutgoingMessage(
                    account=account,
                    stream=org.stream,
                    topic=org.topic,
                    content=text,
                    after_message_id=already - 1,
                    state=OutgoingState.PENDING,
                    attempts=attempts,
                    created_at=JUNE_1,
                )
            )
    running = Running(app).wait_ready()
    fake.wait_for(lambda: len(org.replies()) == 2, what="the pending reply")
    running.stop()
    assert [m.content for m in org.replies()] == [
        "It was sent before the crash",
        "It was never sent",
    ]
    assert {r.state for r in rows(app, OutgoingMessage)} == {OutgoingState.SENT}
    assert {r.zulip_message_id for r in rows(app, OutgoingMessage)} == {m.id for m in org.replies()}


# ------------------------------------------------------------------ sending within limits


def test_a_burst_of_200_commands_under_a_rate_limit_each_takes_effect_once(
    org: Org, app: App
) -> None:
    fake = org.fake
    fake.set_rate_limit(40, 1.0)
    running = Running(app).wait_ready()
    people = [org.ada, org.bob, org.olga]
    try:
        posted = [org.command(f"agenda 1m Burst {n}", people[n % 3]) for n in range(200)]
        fake.wait_for(lambda: len(rows(app, AgendaItem)) == 200, 60, "200 agenda items")

        def acknowledged() -> bool:
            combined = " ".join(m.content for m in org.replies())
            done = sum(1 for m in posted if org.acked(m))
            named = combined.count("Done, all")
            return done == 200 or (named and done + _combined_count(combined) >= 200)

        fake.wait_for(acknowledged, 60, "every command acknowledged")
    finally:
        running.stop()
    items = rows(app, AgendaItem)
    assert sorted(i.ref for i in items) == list(range(1, 201))
    assert sorted(i.topic for i in items) == sorted(f"Burst {n}" for n in range(200))
    hits = [r for r in fake.requests if r.status == 429 and r.user_id == org.bot.id]
    assert len(hits) <= 5, f"{len(hits)} requests over the limit: the bot did not pace itself"


def _combined_count(text: str) -> int:
    import re

    return sum(int(n) for n in re.findall(r"Done, all (\d+) of them", text))


def test_long_replies_are_split_within_the_servers_limit(db_url: str) -> None:
    with FakeZulip(heartbeat=0.5, max_message_length=400) as fake:
        org = Org.create(fake)
        app = make_app(db_url, org)
        running = Running(app).wait_ready()
        try:
            org.command("help")
            fake.wait_for(lambda: len(org.replies()) >= 2, what="a split reply")
            time.sleep(0.3)
        finally:
            running.stop()
            app.close()
        parts = org.replies()
        assert all(len(m.content) <= 400 for m in parts)
        assert not any("[message truncated]" in m.content for m in parts)
        assert "cafebot commands" in parts[0].content


def test_the_first_start_anchors_at_the_newest_message_and_catches_nothing_up(
    org: Org, app: App
) -> None:
    fake = org.fake
    before = org.command("agenda 10m Posted before the bot ever ran")
    running = Running(app).wait_ready()
    try:
        after = org.command("agenda 5m Posted once it runs")
        fake.wait_for(lambda: org.acked(after), what="the command after the start")
    finally:
        running.stop()
    assert not org.acked(before)
    assert topics(app) == ["Posted once it runs"]
    reads = fake.requests_to("messages", "GET")
    assert [r.params.get("anchor") for r in reads] == ["newest"]
    assert [c.last_message_id for c in rows(app, ZulipCursor)] == [after]


def test_a_command_both_read_and_on_the_queue_is_handled_once(org: Org, app: App) -> None:
    fake = org.fake
    Running(app).wait_ready().stop()
    down = org.command("agenda 1m Posted while down")
    # Both catch-up reads answer slowly: a command posted meanwhile is on the new queue
    # and in the forward read.
    fake.fault("slow", "messages", method="GET", times=2, delay=1.0)
    registered = len(fake.requests_to("register"))
    running = Running(app)
    try:
        fake.wait_for(lambda: len(fake.requests_to("register")) > registered, what="register")
        both = org.command("agenda 2m Posted during the catch-up")
        running.wait_ready()
        fake.wait_for(lambda: org.acked(down) and org.acked(both), what="both commands")
        later = org.command("agenda 3m Later")
        fake.wait_for(lambda: org.acked(later), what="a later command")
    finally:
        running.stop()
    forward = [r for r in fake.requests_to("messages", "GET") if r.params.get("num_before") == "0"]
    # Posted before the forward read was answered (it waits 1 s, then reads): in both.
    assert forward and fake.messages[both].timestamp < forward[0].at + 1.0
    assert topics(app) == ["Later", "Posted during the catch-up", "Posted while down"]
    assert fake.reactions(both).count((org.bot.id, "check")) == 1
    assert org.replies() == []


def test_the_catch_up_reads_forward_from_the_anchor_until_the_newest(org: Org, app: App) -> None:
    fake = org.fake
    Running(app).wait_ready().stop()
    posted = [org.command(f"agenda {n}m Item {n}") for n in range(1, 8)]
    quick = Tuning(**{**FAST.__dict__, "page_size": 3})
    running = Running(app, tuning=quick).wait_ready()
    try:
        fake.wait_for(lambda: all(org.acked(m) for m in posted), what="the catch-up")
    finally:
        running.stop()
    forward = [
        r.params
        for r in fake.requests_to("messages", "GET")
        if r.params.get("num_before") == "0" and r.params.get("include_anchor") == "false"
    ]
    # Three pages of three: from the stored anchor, then from the last id of each page.
    assert len(forward) == 3
    assert [int(p["anchor"]) for p in forward[1:]] == [posted[2], posted[5]]
    assert all(p["num_after"] == "3" for p in forward)
    assert len(topics(app)) == 7


def test_a_command_edited_while_down_is_followed_after_the_restart(org: Org, app: App) -> None:
    fake = org.fake
    running = Running(app).wait_ready()
    made = org.command("agenda 10m Relase plans")
    fake.wait_for(lambda: org.acked(made), what="the item")
    running.stop()
    fake.edit(made, "@**cafe** agenda 15m Release plans")
    running = Running(app).wait_ready()
    try:
        fake.wait_for(lambda: topics(app) == ["Release plans"], what="the edit followed")
    finally:
        running.stop()
    with app.unit_of_work() as session:
        assert session.get(ProcessedMessage, made).edit_timestamp == int(
            fake.messages[made].last_edit_timestamp or 0
        )
    assert org.replies() == []


def test_an_edit_answered_before_a_restart_is_not_answered_again(org: Org, app: App) -> None:
    fake = org.fake
    running = Running(app).wait_ready()
    made = org.command("agenda 10m Release plans")
    fake.wait_for(lambda: org.acked(made), what="the item")
    fake.edit(made, "@**cafe** shoutout Thanks all")
    fake.wait_for(lambda: org.replies(), what="the answer to the edit")
    running.stop()
    running = Running(app).wait_ready()
    try:
        later = org.command("agenda 5m Later")
        fake.wait_for(lambda: org.acked(later), what="a later command")
    finally:
        running.stop()
    assert [r.content.count("A1 stays as it was") for r in org.replies()] == [1]
    assert topics(app) == ["Later", "Release plans"]


def test_the_look_for_edits_goes_back_only_as_far_as_the_edit_limit(org: Org, app: App) -> None:
    fake = org.fake
    running = Running(app).wait_ready()
    made = [org.command(f"agenda {n}m Item {n}") for n in (1, 2, 3, 4)]
    fake.wait_for(lambda: all(org.acked(m) for m in made), what="the items")
    running.stop()
    # Sent 2000 s and more before the last one read: past the 600 s edit limit when the
    # bot went away, they cannot have been edited since, and are not read again.
    fake.age(made[0], 3000)
    fake.age(made[1], 2000)
    fake.age(made[2], 100)
    one = Tuning(**{**FAST.__dict__, "page_size": 1})
    Running(app, tuning=one).wait_ready().stop()
    backward = [
        r.params
        for r in fake.requests_to("messages", "GET")
        if r.params["num_after"] == "0" and r.params["anchor"] != "newest"
    ]
    assert [(int(p["anchor"]), p["include_anchor"]) for p in backward] == [
        (made[3], "true"),  # the page holds the anchor and the one before it
        (made[2], "false"),  # this one is past the limit: the read stops there
    ]


# ------------------------------------------------------------------ edits and deletes


def test_an_edited_command_updates_its_entry_in_place(org: Org, app: App, bot: Running) -> None:
    fake = org.fake
    first = org.command("agenda 10m Release plans")
    second = org.command("agenda 5m Docs sprint\nfirst note")
    fake.wait_for(lambda: org.acked(first) and org.acked(second), what="both items")
    fake.edit(second, "@**cafe** agenda 15-20m Docs sprint, part two\nchanged note")

    def edited() -> AgendaItem | None:
        with app.unit_of_work() as session:
            item = session.scalars(select(AgendaItem).where(AgendaItem.ref == 2)).one()
            return item if item.topic == "Docs sprint, part two" else None

    item = fake.wait_for(edited, what="the edit followed")
    assert (item.estimate_min, item.estimate_max) == (15, 20)
    with app.unit_of_work() as session:
        item = session.scalars(select(AgendaItem).where(AgendaItem.ref == 2)).one()
        assert [n.text for n in item.notes] == ["changed note"]
    assert topics(app) == ["Docs sprint, part two", "Release plans"]


def test_an_edit_that_no_longer_parses_is_answered_and_changes_nothing(
    org: Org, app: App, bot: Running
) -> None:
    fake = org.fake
    made = org.command("agenda 10m Release plans")
    fake.wait_for(lambda: org.acked(made), what="the item")
    fake.edit(made, "@**cafe** shoutout Thanks all")
    reply = fake.wait_for(lambda: org.replies(), what="the answer to the edit")
    assert "A1 stays as it was" in reply[0].content
    assert topics(app) == ["Release plans"]
    assert len(rows(app, ProcessedMessage)) == 1


def test_an_edit_that_makes_a_message_a_command_runs_it(org: Org, app: App, bot: Running) -> None:
    fake = org.fake
    plain = fake.post(org.ada, org.stream, org.topic, "agenda 10m Forgot the mention")
    fake.edit(plain, "@**cafe** agenda 10m Forgot the mention")
    fake.wait_for(lambda: org.acked(plain), what="the edited command")
    assert topics(app) == ["Forgot the mention"]


def test_a_deleted_command_removes_its_entry(org: Org, app: App, bot: Running) -> None:
    fake = org.fake
    keep = org.command("agenda 10m Keep")
    drop = org.command("agenda 10m Drop")
    checkin = fake.dm(org.bob, [org.bot], "checkin Bob / @bob")
    fake.wait_for(lambda: org.acked(keep) and org.acked(drop) and org.acked(checkin), what="all")
    fake.delete(drop)
    fake.delete(checkin)
    fake.wait_for(lambda: topics(app) == ["Keep"] and not rows(app, CheckIn), what="removed")
    later = org.command("agenda 5m Later")
    fake.wait_for(lambda: org.acked(later), what="a later item")
    with app.unit_of_work() as session:
        refs = {i.topic: i.ref for i in session.scalars(select(AgendaItem))}
    assert refs == {"Keep": 1, "Later": 3}  # a reference is never given again


# ------------------------------------------------------------------ the Chat for the scheduler


def test_on_ready_gets_a_chat_that_sends_and_edits(org: Org, app: App) -> None:
    fake = org.fake
    got: dict[str, Any] = {}
    stopped = threading.Event()

    def on_ready(chat: Chat) -> Callable[[], None]:
        got["chat"] = chat
        return stopped.set

    running = Running(app, on_ready=on_ready).wait_ready()
    try:
        chat: Chat = got["chat"]
        long_topic = "Collaboration Cafe 2031-06-17 — a topic much longer than Zulip allows"
        new_id = chat.send(org.stream, long_topic, "Reminder: the cafe is today")
        assert new_id is not None
        (posted,) = [m for m in org.replies() if m.id == new_id]
        assert len(posted.topic) <= 60 and posted.content == "Reminder: the cafe is today"
        chat.edit(new_id, "Reminder: the cafe is today, at 16:00")
        assert fake.messages[new_id].content.endswith("at 16:00")
        fake.age(new_id, 3600)  # past the organisation's edit time limit
        with pytest.raises(EditNotAllowed, match="time limit"):
            chat.edit(new_id, "too late")
    finally:
        assert running.stop() == 0
    assert stopped.is_set()


def test_stopping_deregisters_the_queue_and_keeps_the_anchor(org: Org, app: App) -> None:
    fake = org.fake
    running = Running(app).wait_ready()
    seen = org.command("agenda 10m Before stopping")
    fake.wait_for(lambda: org.acked(seen), what="the command")
    started = time.monotonic()
    assert running.stop() == 0
    assert time.monotonic() - started < 5
    assert fake.requests_to("events", "DELETE")
    assert not fake.queues
    (cursor,) = rows(app, ZulipCursor)
    assert cursor.last_message_id >= seen


def test_the_api_key_never_reaches_the_logs(
    org: Org, app: App, caplog: pytest.LogCaptureFixture
) -> None:
    fake = org.fake
    with caplog.at_level(logging.DEBUG):
        running = Running(app).wait_ready()
        fake.fault("status", "events", method="GET", status=500)
        fake.fault("drop_after", "messages", method="POST")
        org.command("list")
        fake.wait_for(lambda: org.replies(), what="the reply")
        running.stop()
    assert org.bot.api_key not in caplog.text
