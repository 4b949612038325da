"""Zulip's scheduled messages: the fake answers as Zulip does, and `cafebot run` uses them.

- Contract: each answer of the fake to ``/scheduled_messages`` and
  ``/scheduled_messages/{id}`` validates against Zulip's OpenAPI description
  (``../shared/zulip-api/zulip.yaml``) and has the shape of the exchanges recorded
  on a real server (``recorded.json``): keys, types, status, error code.
- End to end: a real ``cafebot run`` process (offsets of seconds) holds a reminder at
  the fake; the bot is stopped before it is due; Zulip posts it on time; after the
  restart the bot does not post it again.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from openapi_schema_validator import OAS30Validator

from cafebot.bot.app import App
from cafebot.core.config import load_settings
from tests import fakezulip, zulipspec
from tests import test_zulip_run as zr
from tests.fakezulip import FakeZulip, Org, StoredMessage
from tests.harness import add_meeting

ROOT = Path(__file__).resolve().parent.parent

# ====================================================================== the contract


def valid_for_operation(method: str, path: str, status: int, body: dict[str, Any]) -> None:
    """The answer is one zulip.yaml allows for that operation and status (tests/zulipspec.py)."""
    zulipspec.validate(method, path, status, body)


def valid_for_component(name: str, body: dict[str, Any]) -> None:
    """The answer validates against one of zulip.yaml's error schemas.

    A missing parameter is answered with ``var_name`` (Zulip's MissingArgumentError), which
    the 400 alternatives of these operations do not list (each is exact): it is held to
    that schema of the description.
    """
    schema = {"components": zulipspec.spec()["components"], "$ref": f"#/components/schemas/{name}"}
    errors = [e.message for e in OAS30Validator(schema).iter_errors(body)]
    assert errors == [], f"{name}: {errors}"


RECORDED = {
    "POST": "scheduled message as a bot",
    "PATCH": "edit a scheduled message",
    "DELETE": "delete a scheduled message",
}


def as_recorded(method: str, status: int, body: dict[str, Any]) -> None:
    """Same status and shape as the exchange recorded on the real server."""
    zulipspec.assert_shape(body, zulipspec.recorded(RECORDED[method]), status)


class Api:
    """Plain HTTP calls on the fake, as a user's client makes them."""

    def __init__(self, fake: FakeZulip, user: Any) -> None:
        self.base = f"{fake.url}/api/v1/"
        self.auth = (user.email, user.api_key)

    def __call__(
        self, method: str, path: str, data: dict[str, Any] | None = None
    ) -> tuple[int, dict[str, Any]]:
        form = {k: v if isinstance(v, str) else json.dumps(v) for k, v in (data or {}).items()}
        answer = requests.request(method, self.base + path, data=form, auth=self.auth, timeout=10)
        assert answer.headers["Content-Type"] == "application/json"
        return answer.status_code, answer.json()


def _create(api: Api, stream_id: int, at: float, content: str = "later") -> int:
    params = {"type": "stream", "to": stream_id, "topic": "t", "content": content}
    status, body = api(
        "POST", "scheduled_messages", {**params, "scheduled_delivery_timestamp": int(at)}
    )
    assert status == 200, body
    return int(body["scheduled_message_id"])


def test_create_edit_list_and_delete_answer_as_zulip(org: Org) -> None:
    fake, api = org.fake, Api(org.fake, org.bot)
    stream = fake.streams["jupyterhub"].id
    later = time.time() + 3600
    # Create: as recorded (a bot may), and as the description says.
    params = {"type": "stream", "to": stream, "topic": "t", "content": "later"}
    status, body = api(
        "POST", "scheduled_messages", {**params, "scheduled_delivery_timestamp": int(later)}
    )
    valid_for_operation("POST", "scheduled_messages", status, body)
    as_recorded("POST", status, body)
    first = body["scheduled_message_id"]
    second = _create(api, stream, later - 60, "sooner")
    # List: the user's undelivered ones, by delivery time.
    status, body = api("GET", "scheduled_messages")
    valid_for_operation("GET", "scheduled_messages", status, body)
    listed = body["scheduled_messages"]
    assert [m["scheduled_message_id"] for m in listed] == [second, first]
    assert listed[1] == {
        "scheduled_message_id": first,
        "type": "stream",
        "to": stream,
        "topic": "t",
        "content": "later",
        "rendered_content": "<p>later</p>",
        "scheduled_delivery_timestamp": int(later),
        "failed": False,
    }
    assert Api(fake, org.ada)("GET", "scheduled_messages")[1]["scheduled_messages"] == []
    # Edit: as recorded.
    status, body = api("PATCH", f"scheduled_messages/{first}", {"content": "later (edited)"})
    valid_for_operation("PATCH", f"scheduled_messages/{first}", status, body)
    as_recorded("PATCH", status, body)
    assert fake.scheduled[first].content == "later (edited)"
    # Delete: as recorded; then it is gone.
    status, body = api("DELETE", f"scheduled_messages/{first}")
    valid_for_operation("DELETE", f"scheduled_messages/{first}", status, body)
    as_recorded("DELETE", status, body)
    assert [
        m["scheduled_message_id"] for m in api("GET", "scheduled_messages")[1]["scheduled_messages"]
    ] == [second]


def test_refusals_answer_as_zulip(org: Org) -> None:
    fake, api = org.fake, Api(org.fake, org.bot)
    stream = fake.streams["jupyterhub"].id
    mine = _create(api, stream, time.time() + 3600)
    past = int(time.time()) - 60
    base = {"type": "stream", "to": stream, "topic": "t", "content": "x"}
    # A time that has passed (Zulip: DeliveryTimeNotInFutureError).
    status, body = api("POST", "scheduled_messages", {**base, "scheduled_delivery_timestamp": past})
    assert (status, body["code"]) == (400, "BAD_REQUEST")
    assert body["msg"] == "Scheduled delivery time must be in the future."
    valid_for_operation("POST", "scheduled_messages", status, body)
    status, body = api(
        "PATCH", f"scheduled_messages/{mine}", {"scheduled_delivery_timestamp": past}
    )
    assert (status, body["msg"]) == (400, "Scheduled delivery time must be in the future.")
    valid_for_operation("PATCH", f"scheduled_messages/{mine}", status, body)
    # An unknown channel id: the description's own error, with the id.
    status, body = api(
        "POST",
        "scheduled_messages",
        {**base, "to": 9999, "scheduled_delivery_timestamp": past + 7200},
    )
    valid_for_operation("POST", "scheduled_messages", status, body)
    assert (status, body["code"], body["stream_id"]) == (400, "STREAM_DOES_NOT_EXIST", 9999)
    # Empty content, and an edit that changes nothing.
    status, body = api(
        "POST",
        "scheduled_messages",
        {**base, "content": " ", "scheduled_delivery_timestamp": past + 7200},
    )
    assert (status, body["msg"]) == (400, "Message must not be empty")
    status, body = api("PATCH", f"scheduled_messages/{mine}")
    assert (status, body["msg"]) == (400, "Nothing to change")
    valid_for_operation("PATCH", f"scheduled_messages/{mine}", status, body)
    # Unknown ids, and another user's: 404, as the description says.
    for method, user in (("PATCH", org.bot), ("DELETE", org.bot), ("DELETE", org.ada)):
        target = 424242 if user is org.bot else mine
        data = {"content": "y"} if method == "PATCH" else None
        status, body = Api(fake, user)(method, f"scheduled_messages/{target}", data)
        valid_for_operation(method, f"scheduled_messages/{target}", status, body)
        assert (status, body) == (
            404,
            {"result": "error", "msg": "Scheduled message does not exist", "code": "BAD_REQUEST"},
        )
    assert mine in fake.scheduled  # Ada could not delete the bot's


def test_a_scheduled_message_is_posted_at_its_time_as_the_sender_s_message(org: Org) -> None:
    fake, api = org.fake, Api(org.fake, org.bot)
    stream = fake.streams["jupyterhub"].id
    fake.subscribe(org.bot, "jupyterhub")
    status, reg = Api(fake, org.ada)("POST", "register", {"event_types": ["message"]})
    assert status == 200
    at = time.time() + 1
    scheduled = _create(api, stream, at, "Posted by Zulip")
    (posted,) = fake.wait_for(
        lambda: [m for m in fake.sent_by(org.bot) if m.content == "Posted by Zulip"],
        5,
        "the delivery",
    )
    assert posted.timestamp >= int(at) and (posted.stream, posted.topic) == ("jupyterhub", "t")
    # An ordinary message: in Ada's event queue, and no longer in the sender's list.
    status, events = Api(fake, org.ada)(
        "GET", "events", {"queue_id": reg["queue_id"], "last_event_id": -1, "dont_block": True}
    )
    assert [e["message"]["id"] for e in events["events"] if e["type"] == "message"] == [posted.id]
    assert api("GET", "scheduled_messages")[1]["scheduled_messages"] == []
    # Editing it now: Zulip says it was sent; deleting removes only the record.
    status, body = api("PATCH", f"scheduled_messages/{scheduled}", {"content": "too late"})
    assert (status, body["msg"]) == (400, "Scheduled message was already sent")
    assert api("DELETE", f"scheduled_messages/{scheduled}")[0] == 200
    assert posted.id in fake.messages


def test_a_missing_parameter_is_answered_with_its_name() -> None:
    # A server of its own: the fake fixture holds every answer to the operation's own 400
    # alternatives, which (each exact) do not list the common MissingArgumentError.
    with FakeZulip() as fake:
        org = Org.create(fake)
        base = {"type": "stream", "to": fake.streams["jupyterhub"].id, "topic": "t"}
        status, body = Api(fake, org.bot)("POST", "scheduled_messages", {**base, "content": "x"})
        assert (status, body["code"], body["var_name"]) == (
            400,
            "REQUEST_VARIABLE_MISSING",
            "scheduled_delivery_timestamp",
        )
        valid_for_component("MissingArgumentError", body)
        assert fake.scheduled == {}


def test_a_server_before_feature_level_179_cannot_create_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fakezulip, "FEATURE_LEVEL", 170)
    # A server of its own: zulip.yaml (level 266) has no answer for an endpoint not made yet.
    with FakeZulip() as fake:
        org = Org.create(fake)
        api = Api(fake, org.bot)
        params = {"type": "stream", "to": 1, "topic": "t", "content": "x"}
        when = {"scheduled_delivery_timestamp": int(time.time()) + 60}
        status, body = api("POST", "scheduled_messages", {**params, **when})
        assert status == 404 and body["result"] == "error"
        assert fake.scheduled == {}
        status, settings = api("GET", "server_settings")
        assert settings["zulip_feature_level"] == 170


# ====================================================================== end to end


def _config(tmp_path: Path, fake: FakeZulip, org: Org, reminders: str) -> Path:
    config = tmp_path / "config.ini"
    config.write_text(
        f"[zulip]\nsite = {fake.url}\nemail = {org.bot.email}\n"
        f"[database]\nurl = sqlite:///{tmp_path / 'cafe.db'}\n"
        "[series:cafe]\nstream = jupyterhub\norganizers = olga@example.org\n"
        f"reminders = {reminders}\nduration = 4s\npublish_delay = 1h\n"
        f"archive_dir = {tmp_path / 'notes'}\n",
        encoding="utf-8",
    )
    return config


@pytest.mark.slow
def test_a_reminder_due_while_the_bot_is_stopped_goes_out_on_time_once(
    tmp_path: Path, fake: FakeZulip
) -> None:
    org = Org.create(fake)
    config = _config(tmp_path, fake, org, "16s, 0s")
    settings = load_settings(config, environ={})
    (series,) = settings.series
    # 14 s for the bot to start and hold the first reminder before it is due, on a busy machine.
    start = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(seconds=30)
    first_due = start - dt.timedelta(seconds=16)
    app = App.create(settings)
    meeting_id = add_meeting(app, series, start)
    app.close()
    topic = series.topic_for(start.date())

    def in_topic() -> list[StoredMessage]:
        return [m for m in org.replies() if m.stream == "jupyterhub" and m.topic == topic]

    bot = zr.Process(config, org)
    try:
        (held,) = fake.wait_for(lambda: fake.scheduled_of(org.bot), 10, "the held reminder")
    finally:
        assert bot.terminate()[0] == 0
    stopped_at = time.time()
    assert held.timestamp == int(first_due.timestamp())
    assert "reminders are sent by Zulip scheduled messages" in bot.output()
    assert in_topic() == [] and stopped_at < first_due.timestamp()  # stopped before it is due

    # Zulip posts it at its time, the bot being down.
    (first,) = fake.wait_for(in_topic, 30, "the reminder posted by Zulip")
    assert first.timestamp >= first_due.timestamp() > stopped_at
    late_by = first.timestamp - int(first_due.timestamp())
    assert "is in 16 seconds" in first.content and "late" not in first.content
    # Out of the catch-up's reach (a real server's unnarrowed fetch does not return a bot's
    # own channel messages): only Zulip's list of scheduled messages tells the bot.
    fake.age(first.id, 2 * 86400)

    bot = zr.Process(config, org)  # back: it must not post the first one again
    try:
        # Once the start's reminder is held, a burst of agenda changes.
        fake.wait_for(
            lambda: [
                r for r in fake.scheduled_of(org.bot) if r.timestamp == int(start.timestamp())
            ],
            10,
            "the start's reminder held",
        )
        changes = [org.command(f"agenda 1m Item {n}", topic=topic) for n in range(6)]
        fake.wait_for(lambda: all(org.acked(m) for m in changes), 15, "the agenda items")
        fake.wait_for(lambda: len(in_topic()) >= 2, 25, "the reminder at the start")
        time.sleep(1.0)  # a reminder sent twice would be there by now
    finally:
        assert bot.terminate()[0] == 0
    reminders = [m for m in in_topic() if m.sender_id == org.bot.id and "Cafe is" in m.content]
    assert [m.content.split("**")[1] for m in reminders] == [
        "The Collaboration Cafe is in 16 seconds",
        "The Collaboration Cafe is starting now",
    ]
    # The start's reminder was held too, and edited once the burst of changes was over.
    assert all(f"Item {n}" in reminders[1].content for n in range(6))
    patches = [r for r in fake.requests_to("scheduled_messages/", "PATCH") if r.status == 200]
    assert 1 <= len(patches) < len(changes)
    assert zr.db_count(config, "SELECT count(*) FROM held_reminder") == 0
    sent = zr.db_count(
        config,
        "SELECT count(*) FROM sent_notice WHERE meeting_id = :m AND status = 'sent'",
        m=meeting_id,
    )
    assert sent == 2
    assert org.bot.api_key not in bot.output()
    assert "Zulip sent the held reminder of meeting" in bot.output()
    calls = {
        m: len([r for r in fake.requests_to("scheduled_messages", m) if r.user_id == org.bot.id])
        for m in ("POST", "PATCH", "GET", "DELETE")
    }
    assert calls["GET"] >= 1  # the restart looked at Zulip's list
    print(  # to be seen with pytest -s
        f"\nscheduled-message requests for 2 reminders, {len(changes)} changes and a restart: "
        f"{calls}; Zulip posted the first {late_by:.2f} s "
        "after its time"
    )


# ====================================================================== cafebot check


def _check(config: Path, key: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "cafebot", "check", "--config", str(config)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT), "CAFEBOT_ZULIP_KEY": key},
        timeout=60,
        check=False,
    )
    return result.stdout


def test_cafebot_check_says_which_path_sends_the_reminders(
    tmp_path: Path, org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _config(tmp_path, org.fake, org, "1d, 0m")
    out = _check(config, org.bot.api_key)
    assert "OK       reminders: Zulip holds them as scheduled messages (feature level" in out
    monkeypatch.setattr(fakezulip, "FEATURE_LEVEL", 170)
    out = _check(config, org.bot.api_key)
    assert "WARNING  reminders: this Zulip (feature level 170) has no scheduled messages" in out, (
        out
    )
    assert "the bot's own timer sends them" in out
