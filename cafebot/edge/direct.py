"""One-off Zulip calls without an event queue: the Chat of ``cafebot publish``, and
``cafebot check``'s look at the server."""

from __future__ import annotations

from typing import IO, Any

from cafebot.core.chat import EditNotAllowed, Message, SendFailed
from cafebot.core.config import Settings, ZulipSettings
from cafebot.edge.client import (
    NETWORK_ERRORS,
    SCHEDULED_MESSAGES_LEVEL,
    make_client,
    upload_path,
)
from cafebot.edge.pacing import named_file


class DirectChat:
    """A :class:`~cafebot.core.chat.Chat` for one-off commands (``cafebot publish``): plain API
    calls on the bot's account, without an event queue."""

    notes_flavour = "zulip"

    def __init__(self, settings: ZulipSettings) -> None:
        self._client = make_client(settings)
        self._secret = settings.key or ""
        self.max_message_length = 10_000

    def _call(
        self,
        method: str,
        endpoint: str,
        request: dict[str, Any],
        files: list[IO[bytes]] | None = None,
    ) -> dict[str, Any]:
        try:
            result: dict[str, Any] = self._client.call_endpoint(
                url=endpoint, method=method, request=request, files=files
            )
        except NETWORK_ERRORS as exc:
            raise SendFailed(f"Zulip could not be reached: {type(exc).__name__}") from exc
        return result

    def connect(self) -> None:
        """Read the server's limits; a refused account fails here, clearly."""
        # zulip.yaml, /register: max_message_length is in the "realm" section, sent only
        # when "realm" is fetched (recorded.json, exchange 0).
        result = self._call(
            "POST",
            "register",
            {"event_types": '["message"]', "fetch_event_types": '["realm"]'},
        )
        if result.get("result") != "success":
            raise SendFailed(f"Zulip refused the bot's account: {result.get('msg', '')}")
        self.max_message_length = int(result.get("max_message_length", 10_000))
        queue_id = result.get("queue_id")
        if queue_id:
            self._call("DELETE", "events", {"queue_id": queue_id})

    def send(self, stream: str, topic: str, text: str) -> int | None:
        result = self._call(
            "POST",
            "messages",
            {"type": "stream", "to": stream, "topic": topic[:60], "content": text},
        )
        if result.get("result") != "success":
            raise SendFailed(f"Zulip refused the post: {result.get('msg', '')}")
        return int(result["id"])

    def edit(self, message_id: int, text: str) -> None:
        result = self._call("PATCH", f"messages/{message_id}", {"content": text})
        if result.get("result") != "success":
            raise EditNotAllowed(f"Zulip refused to edit message {message_id}: {result.get('msg')}")

    def direct(self, user_id: int, text: str) -> None:
        result = self._call(
            "POST", "messages", {"type": "private", "to": [user_id], "content": text}
        )
        if result.get("result") != "success":
            raise SendFailed(f"Zulip refused the direct message: {result.get('msg', '')}")

    def upload(self, filename: str, data: bytes) -> str:
        result = self._call("POST", "user_uploads", {}, files=[named_file(filename, data)])
        if result.get("result") != "success":
            raise SendFailed(f"Zulip refused the upload: {result.get('msg', '')}")
        return upload_path(result)

    def reply(self, message: Message, text: str) -> None:
        raise SendFailed("a one-off command has no conversation to reply in")

    def react(self, message: Message, emoji: str) -> None:
        raise SendFailed("a one-off command has no conversation to react in")


def check_zulip(settings: Settings) -> list[tuple[str, str]]:
    """What ``cafebot check`` finds on Zulip: (``"error"``, ``"warning"`` or ``"ok"``, text).

    Reaches the server with the bot's credentials, and checks each series' stream
    (a stream the bot is not subscribed to yet is only a warning: ``cafebot run``
    subscribes) and that each organiser listed by email resolves to a user.
    """
    try:
        return _check_zulip(settings)
    except NETWORK_ERRORS as exc:
        where = settings.zulip.site or "the zuliprc's site"
        return [("error", f"Zulip at {where} could not be reached ({type(exc).__name__})")]


def _check_zulip(settings: Settings) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    client = make_client(settings.zulip)
    me = client.call_endpoint(url="users/me", method="GET")
    if me.get("result") != "success":
        return [
            (
                "error",
                f"Zulip refused the bot's credentials ({me.get('msg', 'no reason given')}): "
                "check email and key (or zuliprc)",
            )
        ]
    found.append(
        ("ok", f"Zulip answers; the bot is {me.get('full_name')} (user {me.get('user_id')})")
    )
    found.append(_check_scheduled(client))
    subscribed = {
        s.get("name", "").lower()
        for s in client.call_endpoint(url="users/me/subscriptions", method="GET").get(
            "subscriptions", []
        )
    }
    for series in settings.series:
        if not series.stream:
            found.append(("warning", f"series {series.key}: no stream; it can only be used in DMs"))
            continue
        result = client.call_endpoint(
            url="get_stream_id", method="GET", request={"stream": series.stream}
        )
        if result.get("result") != "success":
            found.append(
                (
                    "error",
                    f"series {series.key}: stream '{series.stream}' does not exist for the bot",
                )
            )
        elif series.stream.lower() not in subscribed:
            found.append(
                (
                    "warning",
                    f"series {series.key}: the bot is not subscribed to '{series.stream}' yet "
                    "(cafebot run subscribes it)",
                )
            )
        else:
            found.append(("ok", f"series {series.key}: stream '{series.stream}'"))
        for email in sorted(series.organizer_emails):
            user = client.call_endpoint(url=f"users/{email}", method="GET")
            if user.get("result") != "success":
                found.append(
                    (
                        "warning",
                        f"series {series.key}: organiser {email} could not be resolved to a "
                        "Zulip user (list them by user id if the organisation hides emails)",
                    )
                )
    return found


def _check_scheduled(client: Any) -> tuple[str, str]:
    """Which path the reminders take: Zulip's scheduled messages, or the bot's own timer."""
    level = int(getattr(client, "feature_level", 0) or 0)
    fallback = (
        "the bot's own timer sends them, so one due while the bot is down goes out late, "
        "when it is back"
    )
    if level < SCHEDULED_MESSAGES_LEVEL:
        return (
            "warning",
            f"reminders: this Zulip (feature level {level}) has no scheduled messages "
            f"(level {SCHEDULED_MESSAGES_LEVEL}, Zulip 7.0): {fallback}",
        )
    listed = client.call_endpoint(url="scheduled_messages", method="GET")
    if listed.get("result") != "success":
        return (
            "warning",
            f"reminders: Zulip refused to list the bot's scheduled messages "
            f"({listed.get('msg', 'no reason given')}): {fallback}",
        )
    return (
        "ok",
        f"reminders: Zulip holds them as scheduled messages (feature level {level}), "
        "sent on time even while the bot is down",
    )
