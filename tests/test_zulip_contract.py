"""Contract tests: the fake Zulip (tests/fakezulip.py) answers as the real Zulip does.

Each test drives the fake over real HTTP, as cafebot does (form-encoded, JSON for the
non-string values, HTTP basic auth), and holds every answer to ../shared/zulip-api/:
``zulip.yaml`` (tests/zulipspec.py :func:`validate`) and, where one exists, the recorded
exchange of ``recorded.json`` (:func:`assert_shape`: keys present and absent, value types,
status, error code). A test that runs the bot itself (:func:`test_every_answer_to_a_running_bot`)
validates every answer the fake gave it.

The scheduled-message endpoints and their tests are in tests/test_scheduled_messages.py
(another branch); they use the same helpers.

Differences found between the fake and Zulip, and fixed in the fake
(endpoint: key: what the fake did -> what Zulip does [source]):

1. all: ``zulip_version``/``zulip_feature_level``: "8.0"/185 -> "9.0-dev+git"/266
   [recorded.json "server"].
2. any authenticated endpoint, wrong key: 401 ``code`` INVALID_API_KEY -> UNAUTHORIZED
   [recorded "wrong api key"].
3. 429: ``Retry-After`` header rounded to whole seconds -> the fractional number of the
   body's ``retry-after`` [recorded "rate limit hit at request 201"]; ``X-RateLimit-Remaining``
   on a 429 -> 0 [same].
4. every answer: ``X-RateLimit-Reset`` a fraction with 3 decimals -> whole seconds since the
   epoch [recorded "an ordinary answer's rate-limit headers", "rate limit hit"].
5. GET /events: counted in the same rate-limit bucket as the rest, headers spelled
   ``X-RateLimit-*`` -> a bucket of its own, headers spelled ``X-Ratelimit-*``
   [zulip-api/README.md "Other facts"].
6. POST /register without ``client_capabilities.notification_settings_null``: refused 400 ->
   200 [recorded "register without notification_settings_null"].
7. POST /register, "realm" fetched: 9 realm keys, plus ``realm_email_address_visibility``
   (which Zulip 9 no longer sends there) -> the 107 keys recorded, each of its recorded type
   [recorded "register, fetch_event_types=[realm] (as cafebot asks)", and "... [realm,
   message]"].
8. POST /register: ``event_queue_longpoll_timeout_seconds`` a float, and sent whatever was
   fetched -> an integer, in the "realm" section only [recorded "register ..." 0 and 2;
   zulip.yaml /register].
9. POST /register, "subscription" fetched (the default when ``fetch_event_types`` is not
   given): nothing -> ``subscriptions``, ``unsubscribed``, ``never_subscribed``
   [recorded "register without notification_settings_null"].
10. POST /register: ``queue_id`` "<time>:<hex>" -> a UUID [recorded "events after a mention"
    request].
11. GET /events: a ``queue_id`` key beside ``events`` -> none [recorded "events after a
    mention"; zulip.yaml allows the key, the recorded server does not send it].
12. GET /messages: ``anchor`` answered "newest" (a string) for anchor=newest -> the integer
    10000000000000000 (LARGER_THAN_MAX_MESSAGE_ID), 0 for oldest [zulip.yaml GET /messages:
    an integer; recorded "messages anchor=newest"].
13. GET /messages: ``found_oldest``/``found_newest`` "no more messages on that side" (so
    num_before=0 from an id could say found_oldest, and a page of exactly num_after said
    found_newest) -> Zulip's rule: anchored at that end, or fewer than num_before/num_after
    messages returned on that side [zerver post_process_limited_query; zulip.yaml
    GET /messages].
14. GET /messages, empty narrow, as a bot: every message the bot received, unmentioned stream
    messages included -> stream messages that mention it (also from streams it is not
    subscribed to), wildcard mentions, DMs and group DMs (and its own) [zulip-api/README.md
    "Other facts"].
15. flags: ``mentioned`` also for a silent ``@_**Name|id**`` mention -> direct, non-silent
    mentions only; wildcard mentions carried no flag -> ``stream_wildcard_mentioned`` /
    ``topic_wildcard_mentioned`` and ``wildcard_mentioned`` [zulip-api/README.md; zulip.yaml
    message flags].
16. GET /messages, a stream narrow with an unknown stream: 200 with no messages -> 400
    BAD_NARROW "Invalid narrow operator: unknown channel X" with ``desc``; an unknown operator
    also carries ``desc`` [recorded "unknown stream in narrow"].
17. messages: ``avatar_url`` null -> a URL string (also with client_gravatar=true on the
    recorded server) [recorded "messages read forward from an anchor", "one message, raw"].
18. POST /messages: over-long content truncated, then its trailing whitespace stripped ->
    stripped, then truncated to 10,000 ending "\\n[message truncated]" [recorded "over-long
    message"].
19. POST /messages by a member starting a topic: ``{id}`` ->
    ``automatic_new_visibility_policy`` too (3, followed); a bot's posts carry none
    [recorded "send a stream message" vs "over-long message", "todo widget message";
    zulip.yaml POST /messages]. Who sent which is not recorded: this rule is inferred.
20. PATCH /messages/{id} past the edit limit: msg "... has passed" -> "The time limit for
    editing this message has past" [zulip.yaml PATCH /messages/{message_id} 400 enum].
21. DELETE /messages/{id}: a member could delete an own message of any age -> only within
    the delete limit (600 s by default) [zulip-api/README.md "Other facts"].
22. POST /messages/{id}/reactions: any emoji name accepted -> an unknown name refused 400
    BAD_REQUEST "Emoji 'white_check_mark' does not exist" [recorded "reaction
    white_check_mark (refused)"; README's list of names]; every reaction's ``emoji_code``
    "2714" -> the emoji's own code.
23. GET /users/me/subscriptions: {name, stream_id, invite_only} -> the subscription objects
    zulip.yaml describes (color, description, notification settings, ...) [zulip.yaml
    GET /users/me/subscriptions].
24. GET /users/me: ``bot_type`` present (zulip.yaml's /users/me has no such key, and refuses
    it) -> absent; ``avatar_url`` and ``is_billing_admin`` absent -> present; one's own
    ``delivery_email`` null where emails are hidden -> one's own address [zulip.yaml
    GET /users/me]. GET /users and /users/{id} gain ``avatar_url``, ``is_billing_admin``,
    ``profile_data`` (people) and ``bot_owner_id`` (bots) likewise [zulip.yaml User].
25. the fake printed a ConnectionResetError traceback (socketserver's handle_error) whenever a
    client went away mid-request (a bot process SIGKILLed) -> quiet for connection errors.

Left as they are, on purpose:

- the fake's default organisation shows real email addresses (``hide_emails=False``: the
  "everyone" email visibility, a setting an organisation may choose), while a Zulip
  organisation's default hides them (zulip-api/README.md: ``user<ID>@<host>``);
  ``FakeZulip(hide_emails=True)`` is that default, and test_hidden_emails holds it.
- injected faults (5xx, the proxy's HTML 502, cut connections) answer what a broken server or
  proxy would; zulip.yaml describes a working server, so they are not validated.
- anchor=first_unread reads as oldest (the bot never asks for it).

zulip.yaml itself is read with three readings (tests/zulipspec.py READINGS): its oneOf as
anyOf, RateLimitedError's ``retry-after`` as a number, and GET /messages' 400 BAD_NARROW with
``desc`` (which it does not describe), each as a real server answers.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests import zulipspec
from tests.fakezulip import LARGER_THAN_MAX_MESSAGE_ID, FakeZulip, Org, User
from tests.test_zulip_transport import Running, make_app


@dataclass
class Answer:
    status: int
    headers: requests.structures.CaseInsensitiveDict[str]
    body: Any


class Client:
    """One user's API calls, encoded as the ``zulip`` client (and so cafebot) encodes them."""

    def __init__(self, fake: FakeZulip, user: User, key: str | None = None) -> None:
        self.fake = fake
        self.session = requests.Session()
        self.session.auth = (user.email, key or user.api_key)

    def call(self, method: str, path: str, **params: Any) -> Answer:
        encoded = {k: v if isinstance(v, str) else json.dumps(v) for k, v in params.items()}
        url = f"{self.fake.url}/api/v1/{path}"
        if method == "GET":
            response = self.session.request(method, url, params=encoded, timeout=10)
        else:
            response = self.session.request(method, url, data=encoded, timeout=10)
        return Answer(response.status_code, response.headers, response.json())

    def checked(self, method: str, path: str, **params: Any) -> Answer:
        """The call, its answer validated against zulip.yaml."""
        answer = self.call(method, path, **params)
        zulipspec.validate(method, path, answer.status, answer.body)
        return answer

    def close(self) -> None:
        self.session.close()


@pytest.fixture(scope="module")
def bot_params(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The parameters the bot itself sends to POST /register (cafebot's ZulipBot, run once)."""
    with FakeZulip(heartbeat=0.3) as fake:
        org = Org.create(fake)
        app = make_app(f"sqlite:///{tmp_path_factory.mktemp('register') / 'cafe.db'}", org)
        try:
            Running(app).wait_ready().stop()
        finally:
            app.close()
        (request, *_) = fake.requests_to("register", "POST")
    assert "event_types" in request.params
    return request.params


@pytest.fixture
def bot(org: Org) -> Iterator[Client]:
    client = Client(org.fake, org.bot)
    org.fake.subscribe(org.bot, org.stream)
    yield client
    client.close()


@pytest.fixture
def ada(org: Org) -> Iterator[Client]:
    client = Client(org.fake, org.ada)
    yield client
    client.close()


def message_shape(name: str = "messages read forward from an anchor") -> dict[str, Any]:
    """A stream message's recorded shape (the first message of a recorded read)."""
    recorded_shape: dict[str, Any] = zulipspec.recorded(name)["body_shape"]["messages"][0]
    return recorded_shape


def replay(client: Client, name: str, path: str | None = None) -> Answer:
    """Send a recorded request again; the answer must be the recorded error, body for body."""
    exchange = zulipspec.recorded(name)
    request = exchange["request"]
    params = request["params"] or {}
    answer = client.checked(request["method"], path or request["path"], **params)
    zulipspec.assert_shape(answer.body, exchange, answer.status)
    assert answer.body == exchange["body"]
    return answer


def test_the_fake_is_the_recorded_server(bot: Client, bot_params: dict[str, str]) -> None:
    server = zulipspec.recorded_server()
    answer = bot.checked("POST", "register", **bot_params)
    assert answer.body["zulip_version"] == server["zulip_version"]
    assert answer.body["zulip_feature_level"] == server["zulip_feature_level"]
    settings = bot.checked("GET", "server_settings")
    assert settings.body["zulip_feature_level"] == server["zulip_feature_level"]


# ---------------------------------------------------------------- register


def test_register_as_the_bot_registers(org: Org, bot: Client, bot_params: dict[str, str]) -> None:
    # What cafebot sends (fetch_event_types decides which keys come back).
    assert json.loads(bot_params["fetch_event_types"]) == ["realm"]
    assert json.loads(bot_params["client_capabilities"])["bulk_message_deletion"] is True
    answer = bot.checked("POST", "register", **bot_params)
    zulipspec.assert_shape(answer.body, zulipspec.recorded("(as cafebot asks)"), answer.status)
    # zulip.yaml: present only if "message" is in fetch_event_types; the bot fetches "realm".
    assert "max_message_id" not in answer.body
    assert answer.body["max_message_length"] == org.fake.max_message_length
    assert answer.body["realm_message_content_edit_limit_seconds"] == 600


def test_register_fetching_messages_too(org: Org, bot: Client, bot_params: dict[str, str]) -> None:
    org.command("hello")
    params = {**bot_params, "fetch_event_types": ["realm", "message"]}
    answer = bot.checked("POST", "register", **params)
    zulipspec.assert_shape(answer.body, zulipspec.recorded("fetch_event_types=[realm, message]"))
    assert answer.body["max_message_id"] == max(org.fake.messages)


def test_register_without_notification_settings_null(org: Org, bot: Client) -> None:
    fake = org.fake
    fake.add_stream("other", subscribers=[org.ada])  # one the bot never subscribed to
    org.fake.streams[org.stream].creator_id = org.olga.id
    org.command("hello")
    fake.post(org.ada, "other", "t", "hi")
    exchange = zulipspec.recorded("register without notification_settings_null")
    answer = bot.checked("POST", "register", **exchange["request"]["params"])
    zulipspec.assert_shape(answer.body, exchange, answer.status)


# ---------------------------------------------------------------- events


def poll(client: Client, queue_id: str, last: int = -1) -> Answer:
    return client.checked("GET", "events", queue_id=queue_id, last_event_id=last, dont_block="true")


@pytest.fixture
def register(bot: Client, bot_params: dict[str, str]) -> Callable[..., str]:
    """Register a queue as the bot does (``params`` override the bot's); its id."""

    def register(**params: Any) -> str:
        answer = bot.checked("POST", "register", **{**bot_params, **params})
        queue_id: str = answer.body["queue_id"]
        return queue_id

    return register


def test_a_message_event(org: Org, bot: Client, register: Callable[..., str]) -> None:
    queue = register()
    org.command("agenda 5m recorded")
    answer = poll(bot, queue)
    zulipspec.assert_shape(answer.body, zulipspec.recorded("events after a mention"), answer.status)
    (event,) = answer.body["events"]
    # The event's message is a message as GET /messages gives it, less the flags (which the
    # event carries beside it).
    want = {k: v for k, v in message_shape().items() if k != "flags"}
    zulipspec.assert_shape(event["message"], {"name": "a message's shape", "body_shape": want})
    assert "mentioned" in event["flags"]


def test_edit_and_delete_events(org: Org, bot: Client, register: Callable[..., str]) -> None:
    queue = register()
    old_style = register(client_capabilities={"notification_settings_null": True})
    message_id = org.command("agenda 5m")
    org.fake.edit(message_id, f"@**{org.bot.full_name}** agenda 10m")
    org.fake.delete(message_id)
    events = poll(bot, queue).body["events"]
    assert [e["type"] for e in events] == ["message", "update_message", "delete_message"]
    edit, delete = events[1], events[2]
    assert edit["message_id"] == message_id and edit["orig_content"].endswith("5m")
    # bulk_message_deletion: message_ids (zulip.yaml, delete_message event)
    assert delete["message_ids"] == [message_id] and "message_id" not in delete
    old = poll(bot, old_style).body["events"]
    assert old[2]["message_id"] == message_id and "message_ids" not in old[2]


def test_a_heartbeat(org: Org, bot: Client, register: Callable[..., str]) -> None:
    queue = register()
    answer = bot.checked("GET", "events", queue_id=queue, last_event_id=-1)
    assert [e["type"] for e in answer.body["events"]] == ["heartbeat"]


def test_a_direct_message_event(org: Org, bot: Client, register: Callable[..., str]) -> None:
    queue = register()
    org.fake.dm(org.ada, [org.bot], "status")
    org.fake.dm(org.ada, [org.bot, org.bob], "hello both")
    events = poll(bot, queue).body["events"]
    assert [e["message"]["type"] for e in events] == ["private", "private"]
    assert all("mentioned" not in e["flags"] for e in events)  # README: DMs do not carry it


def test_a_bad_queue_id(bot: Client) -> None:
    replay(bot, "bad queue id")


def test_a_queue_the_server_forgot(org: Org, bot: Client, register: Callable[..., str]) -> None:
    queue = register()
    org.fake.expire_queues()
    answer = poll(bot, queue)
    zulipspec.assert_shape(answer.body, zulipspec.recorded("bad queue id"), answer.status)
    assert answer.body["queue_id"] == queue


def test_deleting_a_queue(bot: Client, register: Callable[..., str]) -> None:
    queue = register()
    assert bot.checked("DELETE", "events", queue_id=queue).status == 200
    assert poll(bot, queue).body["code"] == "BAD_EVENT_QUEUE_ID"


# ---------------------------------------------------------------- GET /messages


def read(client: Client, anchor: int | str, **params: Any) -> dict[str, Any]:
    request = {"narrow": [], "apply_markdown": False, "client_gravatar": True, **params}
    answer = client.checked("GET", "messages", anchor=anchor, **request)
    assert answer.status == 200
    body: dict[str, Any] = answer.body
    return body


def test_reading_forward_from_an_anchor(org: Org, bot: Client) -> None:
    ids = [org.command(f"agenda item {i}") for i in range(5)]
    exchange = zulipspec.recorded("messages read forward from an anchor")
    page = read(bot, ids[0], include_anchor=False, num_before=0, num_after=100)
    zulipspec.assert_shape(page, exchange)
    assert [m["id"] for m in page["messages"]] == ids[1:]
    assert page["anchor"] == ids[0]
    assert page["found_newest"] is True  # fewer than num_after came
    assert page["found_oldest"] is False  # num_before=0: never (Zulip's rule)
    assert page["found_anchor"] is False  # include_anchor=false
    assert page["history_limited"] is False


def test_a_forward_page_that_is_exactly_full(org: Org, bot: Client) -> None:
    ids = [org.command(f"agenda item {i}") for i in range(4)]
    page = read(bot, ids[0], include_anchor=False, num_before=0, num_after=3)
    assert [m["id"] for m in page["messages"]] == ids[1:]
    assert page["found_newest"] is False  # exactly num_after: Zulip does not promise more
    page = read(bot, ids[-1], include_anchor=False, num_before=0, num_after=3)
    assert page["messages"] == [] and page["found_newest"] is True


def test_reading_back_from_an_anchor(org: Org, bot: Client) -> None:
    ids = [org.command(f"agenda item {i}") for i in range(3)]
    page = read(bot, ids[-1], num_before=100, num_after=0)
    assert [m["id"] for m in page["messages"]] == ids
    assert page["found_anchor"] is True
    assert page["found_oldest"] is True
    assert page["found_newest"] is False  # num_after=0 from an id
    page = read(bot, ids[-1], include_anchor=False, num_before=1, num_after=0)
    assert [m["id"] for m in page["messages"]] == [ids[-2]]
    assert page["found_anchor"] is False and page["found_oldest"] is False


def test_an_edited_message_says_when(org: Org, bot: Client) -> None:
    message_id = org.command("agenda 5m")
    (plain,) = read(bot, message_id, num_before=0, num_after=0)["messages"]
    assert "last_edit_timestamp" not in plain  # zulip.yaml: only if edited
    org.fake.edit(message_id, f"@**{org.bot.full_name}** agenda 10m")
    (edited,) = read(bot, message_id, num_before=0, num_after=0)["messages"]
    assert isinstance(edited["last_edit_timestamp"], int)


def test_the_newest_message(org: Org, bot: Client) -> None:
    ids = [org.command(f"agenda item {i}") for i in range(2)]
    page = read(bot, "newest", num_before=1, num_after=0)
    zulipspec.assert_shape(page, zulipspec.recorded("messages anchor=newest"))
    assert [m["id"] for m in page["messages"]] == [ids[-1]]
    assert page["anchor"] == LARGER_THAN_MAX_MESSAGE_ID
    assert page["found_newest"] is True and page["found_anchor"] is False
    assert page["found_oldest"] is False  # one asked for, one came
    only = read(bot, "oldest", num_before=0, num_after=5)
    assert only["anchor"] == 0 and only["found_oldest"] is True


def test_the_newest_of_none(bot: Client) -> None:
    page = read(bot, "newest", num_before=1, num_after=0)
    assert page["messages"] == []
    assert page["found_newest"] is True and page["found_oldest"] is True


def test_what_an_unnarrowed_read_gives_a_bot(org: Org, bot: Client) -> None:
    fake = org.fake
    name = org.bot.full_name
    fake.add_stream("elsewhere", subscribers=[org.ada])  # the bot is not subscribed
    plain = fake.post(org.ada, org.stream, "t", "no mention here")
    mention = org.command("agenda")
    silent = fake.post(org.ada, org.stream, "t", f"@_**{name}|{org.bot.id}** quoted")
    wildcard = fake.post(org.ada, org.stream, "t", "@**all** meeting soon")
    unsubscribed = fake.post(org.ada, "elsewhere", "t", f"@**{name}** over here")
    dm = fake.dm(org.ada, [org.bot], "status")
    group = fake.dm(org.ada, [org.bot, org.bob], "hello both")
    other_dm = fake.dm(org.ada, [org.bob], "not for the bot")
    own = fake.post(org.bot, org.stream, "t", "the bot's own post")
    page = read(bot, "oldest", num_before=0, num_after=100)
    got = {m["id"]: m["flags"] for m in page["messages"]}
    assert sorted(got) == sorted([mention, wildcard, unsubscribed, dm, group, own])
    assert plain not in got and silent not in got and other_dm not in got
    assert "mentioned" in got[mention] and "mentioned" in got[unsubscribed]
    assert "mentioned" not in got[wildcard] and "wildcard_mentioned" in got[wildcard]
    assert "mentioned" not in got[dm] and "mentioned" not in got[group]


def test_a_stream_narrow_gives_the_whole_stream(org: Org, bot: Client) -> None:
    plain = org.fake.post(org.ada, org.stream, "t", "no mention here")
    narrow = [{"operator": "stream", "operand": org.stream}]
    page = read(bot, "newest", num_before=10, num_after=0, narrow=narrow)
    assert [m["id"] for m in page["messages"]] == [plain]


def test_an_unknown_stream_in_a_narrow(bot: Client) -> None:
    replay(bot, "unknown stream in narrow")


def test_one_message_raw(org: Org, bot: Client) -> None:
    message_id = org.command("agenda **5m**")
    exchange = zulipspec.recorded("one message, raw")
    answer = bot.checked("GET", f"messages/{message_id}", apply_markdown=False)
    zulipspec.assert_shape(answer.body, exchange, answer.status)
    assert answer.body["raw_content"] == f"@**{org.bot.full_name}** agenda **5m**"
    assert answer.body["message"]["content"] == answer.body["raw_content"]


# ---------------------------------------------------------------- sending, editing, deleting


def test_sending_as_the_bot(org: Org, bot: Client) -> None:
    answer = bot.checked("POST", "messages", type="stream", to=org.stream, topic="t", content="hi")
    zulipspec.assert_shape(answer.body, zulipspec.recorded("todo widget message"), answer.status)
    todo = "/todo Actions\nWrite notes: by Friday\nShip 5.0"
    answer = bot.checked("POST", "messages", type="stream", to=org.stream, topic="t", content=todo)
    zulipspec.assert_shape(answer.body, zulipspec.recorded("todo widget message"), answer.status)
    answer = bot.checked("POST", "messages", type="direct", to=[org.ada.id], content="hello")
    assert answer.status == 200 and org.fake.messages[answer.body["id"]].stream is None


def test_a_member_starting_a_topic(org: Org, ada: Client) -> None:
    exchange = zulipspec.recorded("send a stream message")
    params = {"type": "stream", "to": org.stream, "topic": "record", "content": "hello"}
    answer = ada.checked("POST", "messages", **params)
    zulipspec.assert_shape(answer.body, exchange, answer.status)
    again = ada.checked("POST", "messages", **params)
    assert "automatic_new_visibility_policy" not in again.body


def test_an_over_long_message(org: Org, bot: Client) -> None:
    exchange = zulipspec.recorded("over-long message")
    params = {**exchange["request"]["params"], "to": org.stream}
    answer = bot.checked("POST", "messages", **params)
    zulipspec.assert_shape(answer.body, exchange, answer.status)
    stored = org.fake.messages[answer.body["id"]]
    want = exchange["stored"]
    assert len(stored.content) == want["content_length"]
    assert stored.content.endswith(want["content_tail"])
    assert stored.topic == want["topic"]


def test_sending_to_an_unknown_stream(bot: Client) -> None:
    answer = bot.checked("POST", "messages", type="stream", to="nowhere", topic="t", content="x")
    assert answer.status == 400 and answer.body["code"] == "STREAM_DOES_NOT_EXIST"


def test_editing_the_bots_own_message(org: Org, bot: Client) -> None:
    message_id = org.fake.post(org.bot, org.stream, "t", "draft")
    assert bot.checked("PATCH", f"messages/{message_id}", content="final").status == 200
    assert org.fake.messages[message_id].content == "final"


def test_editing_someone_elses_message(org: Org, bot: Client) -> None:
    message_id = org.command("agenda")
    replay(bot, "edit someone else's message", f"messages/{message_id}")
    assert org.fake.messages[message_id].content.endswith("agenda")


def test_editing_past_the_time_limit(org: Org, bot: Client) -> None:
    message_id = org.fake.post(org.bot, org.stream, "t", "draft")
    org.fake.age(message_id, 601)
    answer = bot.checked("PATCH", f"messages/{message_id}", content="late")
    assert answer.status == 400 and answer.body["code"] == "BAD_REQUEST"
    assert answer.body["msg"] == "The time limit for editing this message has past"
    assert org.fake.messages[message_id].content == "draft"


def test_deleting(org: Org, bot: Client) -> None:
    fresh = org.fake.post(org.bot, org.stream, "t", "oops")
    assert bot.checked("DELETE", f"messages/{fresh}").status == 200
    assert fresh not in org.fake.messages
    old = org.fake.post(org.bot, org.stream, "t", "old")
    org.fake.age(old, 601)
    answer = bot.checked("DELETE", f"messages/{old}")
    assert answer.status == 400 and old in org.fake.messages
    theirs = org.command("agenda")
    answer = bot.checked("DELETE", f"messages/{theirs}")
    assert answer.status == 400
    assert answer.body["msg"] == "You don't have permission to delete this message"
    missing = bot.checked("DELETE", "messages/999999")
    assert missing.status == 400 and missing.body["code"] == "BAD_REQUEST"


# ---------------------------------------------------------------- reactions


def test_reactions(org: Org, bot: Client) -> None:
    message_id = org.command("agenda")
    path = f"messages/{message_id}/reactions"
    accepted = bot.checked("POST", path, emoji_name="check")
    zulipspec.assert_shape(accepted.body, zulipspec.recorded("reaction check"), accepted.status)
    assert org.acked(message_id)
    refused = bot.checked("POST", path, emoji_name="white_check_mark")
    exchange = zulipspec.recorded("reaction white_check_mark (refused)")
    zulipspec.assert_shape(refused.body, exchange, refused.status)
    assert refused.body == exchange["body"]
    twice = bot.checked("POST", path, emoji_name="check")
    exchange = zulipspec.recorded("reaction twice")
    zulipspec.assert_shape(twice.body, exchange, twice.status)
    assert twice.body == exchange["body"]
    (shown,) = read(bot, message_id, num_before=0, num_after=0)["messages"][0]["reactions"]
    assert shown["emoji_name"] == "check" and shown["user_id"] == org.bot.id
    assert bot.checked("DELETE", path, emoji_name="check").status == 200
    gone = bot.checked("DELETE", path, emoji_name="check")
    assert gone.status == 400 and gone.body["code"] == "REACTION_DOES_NOT_EXIST"


@pytest.mark.parametrize(
    ("name", "exists"),
    [
        ("check", True),
        ("check_mark", True),
        ("hourglass", True),
        ("hourglass_done", True),
        ("stopwatch", True),
        ("warning", True),
        ("alarm_clock", True),
        ("heavy_check_mark", False),
        ("hourglass_flowing_sand", False),
        ("hourglass_not_done", False),
        ("white_check_mark", False),
    ],
)
def test_emoji_names(org: Org, bot: Client, name: str, exists: bool) -> None:
    message_id = org.command("agenda")
    answer = bot.checked("POST", f"messages/{message_id}/reactions", emoji_name=name)
    assert (answer.status == 200) is exists


# ---------------------------------------------------------------- subscriptions, users


def test_subscriptions(org: Org, bot: Client) -> None:
    listed = bot.checked("GET", "users/me/subscriptions")
    assert [s["name"] for s in listed.body["subscriptions"]] == [org.stream]
    joined = bot.checked("POST", "users/me/subscriptions", subscriptions=[{"name": "fresh"}])
    assert joined.body["subscribed"] == {org.bot.email: ["fresh"]}
    again = bot.checked("POST", "users/me/subscriptions", subscriptions=[{"name": "fresh"}])
    assert again.body["already_subscribed"] == {org.bot.email: ["fresh"]}
    org.fake.add_stream("secret", private=True, subscribers=[org.ada])
    refused = bot.checked(
        "POST",
        "users/me/subscriptions",
        subscriptions=[{"name": "secret"}],
        authorization_errors_fatal=False,
    )
    assert refused.body["unauthorized"] == ["secret"]
    stream_id = bot.checked("GET", "get_stream_id", stream=org.stream)
    assert stream_id.body["stream_id"] == org.fake.streams[org.stream].id


def test_users(org: Org, bot: Client) -> None:
    me = bot.checked("GET", "users/me")
    assert me.body["user_id"] == org.bot.id and me.body["is_bot"] is True
    members = bot.checked("GET", "users").body["members"]
    assert {m["user_id"] for m in members} == set(org.fake.users)
    one = bot.checked("GET", f"users/{org.ada.id}")
    assert one.body["user"]["full_name"] == "Ada Lovelace"
    missing = bot.checked("GET", "users/999999")
    assert missing.status == 400


def test_hidden_emails() -> None:
    with FakeZulip(hide_emails=True) as fake:
        org = Org.create(fake)
        client = Client(fake, org.bot)
        try:
            members = client.checked("GET", "users").body["members"]
        finally:
            client.close()
    ada = next(m for m in members if m["user_id"] == org.ada.id)
    # zulip-api/README.md: with the default email visibility, a bot sees user<ID>@<host>
    assert ada["email"] == f"user{org.ada.id}@zulip.example.org"


# ---------------------------------------------------------------- errors, limits


def test_a_wrong_api_key(org: Org) -> None:
    client = Client(org.fake, org.bot, key="wrong")
    try:
        replay(client, "wrong api key")
    finally:
        client.close()


def test_the_rate_limit(org: Org, bot: Client) -> None:
    org.fake.set_rate_limit(3, 60.0)
    ordinary = [bot.checked("GET", "users/me") for _ in range(3)]
    zulipspec.assert_headers(ordinary[-1].headers, zulipspec.recorded("an ordinary answer's"))
    assert ordinary[-1].headers["X-RateLimit-Remaining"] == "0"
    limited = bot.checked("GET", "users/me")
    exchange = zulipspec.recorded("rate limit hit at request 201")
    zulipspec.assert_shape(limited.body, exchange, limited.status)
    zulipspec.assert_headers(limited.headers, exchange)
    assert float(limited.headers["Retry-After"]) == limited.body["retry-after"]
    assert "." in limited.headers["Retry-After"]


def test_events_are_limited_apart(org: Org, bot: Client, register: Callable[..., str]) -> None:
    queue = register()
    org.fake.set_rate_limit(2, 60.0)
    bot.checked("GET", "users/me")
    bot.checked("GET", "users/me")
    assert bot.checked("GET", "users/me").status == 429
    polled = poll(bot, queue)
    assert polled.status == 200
    names = [n for n in polled.headers if n.lower().startswith("x-ratelimit-")]
    assert sorted(names) == ["X-Ratelimit-Limit", "X-Ratelimit-Remaining", "X-Ratelimit-Reset"]


def test_a_fault_injected_429(org: Org, bot: Client) -> None:
    org.fake.fault("limit", "users/me", retry_after=0.25)
    answer = bot.checked("GET", "users/me")
    zulipspec.assert_shape(answer.body, zulipspec.recorded("rate limit hit"), answer.status)
    assert answer.headers["Retry-After"] == "0.25"


# ---------------------------------------------------------------- the bot's own traffic


def test_every_answer_to_a_running_bot(org: Org, tmp_path: Any) -> None:
    """Every answer the fake gives cafebot in a working day validates against zulip.yaml."""
    fake = org.fake
    app = make_app(f"sqlite:///{tmp_path / 'cafe.db'}", org)
    try:
        running = Running(app).wait_ready()
        try:
            first = org.command("agenda 10m Release plans")
            fake.wait_for(lambda: org.acked(first), what="a check reaction")
            fake.dm(org.ada, [org.bot], "list")
            fake.wait_for(lambda: [m for m in org.replies() if m.stream is None], what="a DM")
            edited = org.command("agenda 5m Docs")
            fake.wait_for(lambda: org.acked(edited), what="the second command")
            fake.edit(edited, f"@**{org.bot.full_name}** agenda 5m Docs sprint")
            fake.delete(first)
        finally:
            running.stop()
        down = org.command("agenda 1m Posted while down")
        running = Running(app).wait_ready()  # catches up: reads back, then forward
        try:
            fake.wait_for(lambda: org.acked(down), what="the command posted while down")
        finally:
            running.stop()
    finally:
        app.close()
    answered = [r for r in fake.requests if r.answer is not None and r.fault is None]
    for request in answered:
        zulipspec.validate(request.method, request.path, int(request.status), request.answer)
    seen = {(r.method, zulipspec.template(r.path)) for r in answered}
    assert {
        ("POST", "/register"),
        ("GET", "/events"),
        ("DELETE", "/events"),
        ("GET", "/messages"),
        ("POST", "/messages"),
        ("POST", "/messages/{message_id}/reactions"),
        ("POST", "/users/me/subscriptions"),
        ("GET", "/users/me"),
    } <= seen
    reads = [r.params for r in answered if r.method == "GET" and r.path == "messages"]
    assert any(p.get("num_after") == "0" and p.get("num_before") != "0" for p in reads)
    assert any(p.get("num_before") == "0" and p.get("include_anchor") == "false" for p in reads)


# ---------------------------------------------------------------- the helpers themselves


def test_the_validator_refuses_what_zulip_does_not_send() -> None:
    with pytest.raises(AssertionError, match="anchor"):
        zulipspec.validate("GET", "messages", 200, {"result": "success", "msg": "", "anchor": "x"})
    with pytest.raises(AssertionError, match="'since' was unexpected"):
        body = {"result": "success", "msg": "", "events": [], "since": 1}
        zulipspec.validate("GET", "events", 200, body)
    with pytest.raises(AssertionError, match="allows no 500"):
        zulipspec.validate("GET", "users/me", 500, {"result": "error", "msg": "x"})
    with pytest.raises(AssertionError, match="describes no endpoint"):
        zulipspec.validate("GET", "no/such/endpoint", 200, {})


def test_the_shape_check_sees_keys_types_status_and_code() -> None:
    exchange = zulipspec.recorded("bad queue id")
    body = dict(exchange["body"])
    zulipspec.assert_shape(body, exchange, 400)
    for wrong, status, said in [
        ({k: v for k, v in body.items() if k != "queue_id"}, 400, "queue_id: recorded present"),
        ({**body, "extra": 1}, 400, "extra: recorded absent"),
        ({**body, "queue_id": 1}, 400, "recorded str, got int"),
        ({**body, "code": "BAD_REQUEST"}, 400, "code: recorded"),
        (body, 401, "status: recorded 400"),
    ]:
        with pytest.raises(AssertionError, match=re.escape(said)):
            zulipspec.assert_shape(wrong, exchange, status)
    with pytest.raises(AssertionError, match="Retry-After"):
        zulipspec.assert_headers({"Retry-After": "49"}, zulipspec.recorded("rate limit hit"))


def test_without_the_data_the_helpers_fail_and_say_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setattr(zulipspec, "DATA", tmp_path)
    with pytest.raises(zulipspec.SpecMissing, match="CI has it"):
        zulipspec._need("zulip.yaml")


def test_a_client_gone_mid_request_prints_no_traceback(
    fake: FakeZulip, capsys: pytest.CaptureFixture[str]
) -> None:
    """socketserver prints a traceback for an error in a request; a client gone away (a bot
    process SIGKILLed) is normal for the fake, any other error still shows."""
    server = fake._server
    assert server is not None

    def error_in_a_request(error: Exception) -> str:
        try:
            raise error  # noqa: TRY301 - handle_error reads the exception being handled
        except Exception:
            server.handle_error(None, ("127.0.0.1", 1))
        return capsys.readouterr().err

    assert "Traceback" not in error_in_a_request(ConnectionResetError(104, "reset by peer"))
    assert "Traceback" not in error_in_a_request(BrokenPipeError(32, "broken pipe"))
    assert "ValueError: a bug in the fake" in error_in_a_request(ValueError("a bug in the fake"))


def test_every_recording_is_held_to() -> None:
    """Each recorded exchange is compared with the fake by a test here (the scheduled-message
    ones by the tests of the scheduled-message endpoints, which are kept apart)."""
    source = Path(__file__).read_text(encoding="utf-8")
    used = {
        zulipspec.recorded(name)["name"]
        for name in re.findall(r'(?:recorded\(|replay\(\w+,)\s*"([^"]+)"', source)
    }
    every = {e["name"] for e in zulipspec.exchanges() if "scheduled" not in e["name"]}
    assert len(every) == 19
    assert sorted(every - used) == []


# ---------------------------------------------------------------- to-do widgets (issue 14)
# A /todo message is a widget: its `submessages` hold the parsed list, a tick is a
# `submessage` event, and the message cannot be edited (see the fake's section).

TODO = "/todo Actions\nWrite notes: by Friday\nShip 5.0"  # recorded.json, "todo widget message"


def test_a_todo_widget_message_and_its_submessages(org: Org, bot: Client) -> None:
    exchange = zulipspec.recorded("todo widget message")
    answer = bot.checked("POST", "messages", **{**exchange["request"]["params"], "to": org.stream})
    zulipspec.assert_shape(answer.body, exchange, answer.status)
    message_id = answer.body["id"]
    got = bot.checked("GET", f"messages/{message_id}", apply_markdown="false").body["message"]
    (widget,) = got["submessages"]  # each validated against MessagesBase.submessages
    assert widget["msg_type"] == "widget" and widget["message_id"] == message_id
    assert widget["sender_id"] == org.bot.id
    assert json.loads(widget["content"]) == {
        "widget_type": "todo",
        "extra_data": {
            "task_list_title": "Actions",
            "tasks": [
                {"task": "Write notes", "desc": "by Friday"},
                {"task": "Ship 5.0", "desc": ""},
            ],
        },
    }
    plain = org.fake.post(org.bot, org.stream, "t", "not /todo at the start")
    assert org.fake.submessages_of(plain) == []


def test_a_tick_is_a_submessage_event(
    org: Org, bot: Client, register: Callable[..., str], bot_params: dict[str, str]
) -> None:
    assert "submessage" in json.loads(bot_params["event_types"])  # the bot asks for them
    message_id = org.fake.post(org.bot, org.stream, "t", TODO)
    queue = register()
    sub_id = org.fake.strike(org.ada, message_id, "1,canned")
    (event,) = poll(bot, queue).body["events"]  # validated against the submessage event
    assert {k: v for k, v in event.items() if k != "id"} == {
        "type": "submessage",
        "msg_type": "widget",
        "message_id": message_id,
        "submessage_id": sub_id,
        "sender_id": org.ada.id,
        "content": '{"type":"strike","key":"1,canned"}',
    }
    got = bot.checked("GET", f"messages/{message_id}").body["message"]
    assert [s["id"] for s in got["submessages"]][1:] == [sub_id]
    only_messages = register(event_types=["message"])
    org.fake.strike(org.ada, message_id, "1,canned")
    assert poll(bot, only_messages).body["events"] == []


def test_a_widget_message_cannot_be_edited(org: Org, bot: Client) -> None:
    message_id = org.fake.post(org.bot, org.stream, "t", TODO)
    answer = bot.checked("PATCH", f"messages/{message_id}", content="/todo Other")
    assert answer.status == 400 and answer.body["msg"] == "Widgets cannot be edited."
    assert org.fake.messages[message_id].content == TODO
