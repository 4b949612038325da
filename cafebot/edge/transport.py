"""``cafebot run``: the long-running Zulip bot (only ``cafebot.edge`` imports ``zulip``).

Three threads share the work:

- the **poller** (:mod:`cafebot.edge.events`) registers an event queue (message, update_message and
  delete_message events, raw Markdown), then catches up: it reads forward with
  ``GET /messages`` from the stored anchor to the newest message, and back from
  the anchor for commands edited while it was away, inside the catch-up window
  (a message both read and queued is handled once). Then it long-polls; it
  re-registers at once when Zulip forgets the queue (``BAD_EVENT_QUEUE_ID``) and
  catches up again. On the first start on an account nothing is caught up;
- the **main thread** takes what the poller found, in order, and dispatches
  commands through :class:`~cafebot.edge.handler.CafeHandler`; the command's effect
  and its message id are committed together, so a message seen twice has no
  second effect;
- the **sender** posts replies, reactions and edits through one paced queue that
  keeps to the rate limit the server reports (:mod:`cafebot.edge.pacing`). Replies
  are written to the ``outgoing_message`` table first; one whose response was
  lost is looked for among the bot's messages before it is posted again.

The ``zulip`` client is built with ``retry_on_errors=False`` (:mod:`cafebot.edge.client`):
the retry policy is ours, capped exponential backoff with jitter for what is safe to
repeat, ``retry-after`` on 429. One-off calls without an event queue (``cafebot
publish``, ``cafebot check``) are in :mod:`cafebot.edge.direct`.
"""

from __future__ import annotations

import collections
import datetime as dt
import gc
import logging
import queue
import signal
import threading
import time
from collections.abc import Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import zulip

from cafebot.bot.app import App
from cafebot.cafe.held import record_delivered
from cafebot.core.chat import (
    Chat,
    Message,
    Scheduled,
    ScheduledGone,
    ScheduleRefused,
    SendFailed,
)
from cafebot.edge import mentions
from cafebot.edge.client import (
    NETWORK_ERRORS,
    SCHEDULED_MESSAGES_LEVEL,
    FatalError,
    RedactKey,
    clone,
    direct_to,
    make_client,
    upload_path,
)
from cafebot.edge.events import EventPoller, Inbound
from cafebot.edge.handler import CafeHandler, command_text, strip_mention
from cafebot.edge.outbox import Outbox, Target, _Call, _Edit, _React, fit_topic
from cafebot.edge.pacing import (
    Api,
    ApiError,
    Backoff,
    RateLimiter,
    Stopped,
    Stopper,
    Tuning,
    ZulipError,
)
from cafebot.storage.models import ZulipCursor

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger("cafebot.zulip")


# ====================================================================== inbound


class ZulipChat:
    """The :class:`~cafebot.core.chat.Chat` of ``cafebot run``: all goes through the sender."""

    notes_flavour = "zulip"

    def __init__(self, bot: ZulipBot) -> None:
        self._bot = bot
        self._stream_ids: dict[str, int] = {}

    def reply(self, message: Message, text: str) -> None:
        self._bot.outbox.queue_reply(message, text)

    def stage_reply(self, session: Session, message: Message, text: str) -> Callable[[], None]:
        return self._bot.outbox.stage_reply(session, message, text)

    def stage_direct(
        self, session: Session, user_ids: tuple[int, ...], text: str
    ) -> Callable[[], None]:
        return self._bot.outbox.stage_direct(session, user_ids, text)

    def react(self, message: Message, emoji: str) -> None:
        self._bot.outbox.enqueue(_React(message, emoji, Target.of(message, self._bot.bot_id)))

    def send(self, stream: str, topic: str, text: str) -> int | None:
        """Post to a stream topic and wait until Zulip confirms it; the new message's id.

        Raises :class:`~cafebot.core.chat.SendFailed` when Zulip refuses the post or the
        bot shuts down first.
        """
        return self._bot.outbox.post_and_wait(stream, topic, text)

    def edit(self, message_id: int, text: str) -> None:
        """Replace a message's text; :class:`~cafebot.core.chat.EditNotAllowed` when Zulip
        refuses (the organisation's edit time limit has passed, say)."""
        item = _Edit(message_id, text)
        self._bot.outbox.enqueue(item)
        item.future.result()

    def direct(self, user_id: int, text: str) -> None:
        """A direct message to one user, queued and stored like a reply."""
        self._bot.outbox.queue_reply(direct_to(user_id), text)

    def upload(self, filename: str, data: bytes) -> str:
        """``POST /user_uploads`` through the paced queue; the file's ``/user_uploads/…`` path."""
        item = _Call("POST", "user_uploads", {}, retry=True, files=((filename, data),))
        self._bot.outbox.enqueue(item)
        try:
            return upload_path(item.future.result())
        except ApiError as exc:
            raise SendFailed(f"Zulip refused the upload: {exc.msg}") from exc
        except ZulipError as exc:
            raise SendFailed(f"Zulip was not reached: {exc}") from exc

    # -------------------------------------------------- scheduled messages (SchedulesMessages)

    def scheduling_unavailable(self) -> str | None:
        level = self._bot.feature_level
        if level < SCHEDULED_MESSAGES_LEVEL:
            return (
                f"this Zulip (feature level {level}) has no scheduled messages "
                f"(they came with level {SCHEDULED_MESSAGES_LEVEL}, Zulip 7.0)"
            )
        return None

    def _call(self, method: str, path: str, params: dict[str, Any], *, retry: bool) -> Any:
        """One API call through the paced queue; ApiError when Zulip says no."""
        item = _Call(method, path, params, retry)
        self._bot.outbox.enqueue(item)
        try:
            return item.future.result()
        except ApiError:
            raise
        except (ZulipError, SendFailed) as exc:
            raise SendFailed(f"Zulip was not reached: {exc}") from exc

    def _stream_id(self, stream: str) -> int:
        known = self._stream_ids.get(stream.lower())
        if known is None:
            try:
                found = self._call("GET", "get_stream_id", {"stream": stream}, retry=True)
            except ApiError as exc:
                raise ScheduleRefused(f"stream '{stream}': {exc.msg}") from None
            known = self._stream_ids[stream.lower()] = int(found["stream_id"])
        return known

    def schedule(self, stream: str, topic: str, text: str, at: dt.datetime) -> int:
        topic = fit_topic(topic, self._bot.outbox.max_topic_length)
        when = int(at.timestamp())
        params = {
            "type": "stream",
            "to": self._stream_id(stream),
            "topic": topic,
            "content": text,
            "scheduled_delivery_timestamp": when,
        }
        try:
            answer = self._call("POST", "scheduled_messages", params, retry=False)
        except ApiError as exc:
            raise ScheduleRefused(f"HTTP {exc.status} {exc.code}: {exc.msg}") from None
        except SendFailed:
            # The answer may be what was lost: a scheduled message Zulip made is listed.
            for held in self.scheduled():
                same = held.content.strip() == text.strip() and held.topic == topic
                if same and int(held.at.timestamp()) == when:
                    return held.id
            raise
        return int(answer["scheduled_message_id"])

    def reschedule(self, scheduled_id: int, text: str, at: dt.datetime) -> None:
        params = {"content": text, "scheduled_delivery_timestamp": int(at.timestamp())}
        try:
            self._call("PATCH", f"scheduled_messages/{scheduled_id}", params, retry=True)
        except ApiError as exc:
            if exc.status == 404 or "already sent" in exc.msg:
                raise ScheduledGone(exc.msg) from None
            raise ScheduleRefused(f"HTTP {exc.status} {exc.code}: {exc.msg}") from None

    def unschedule(self, scheduled_id: int) -> None:
        try:
            self._call("DELETE", f"scheduled_messages/{scheduled_id}", {}, retry=True)
        except ApiError as exc:
            if exc.status == 404:
                raise ScheduledGone(exc.msg) from None
            raise ScheduleRefused(f"HTTP {exc.status} {exc.code}: {exc.msg}") from None

    def scheduled(self) -> list[Scheduled]:
        try:
            answer = self._call("GET", "scheduled_messages", {}, retry=True)
        except ApiError as exc:
            raise ScheduleRefused(f"HTTP {exc.status} {exc.code}: {exc.msg}") from None
        return [
            Scheduled(
                id=int(held["scheduled_message_id"]),
                topic=str(held.get("topic", "")),
                content=str(held.get("content", "")),
                at=dt.datetime.fromtimestamp(int(held["scheduled_delivery_timestamp"]), dt.UTC),
                failed=bool(held.get("failed", False)),
            )
            for held in answer.get("scheduled_messages", [])
        ]


class ZulipBot:
    """The Zulip transport: see the module docstring. ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        app: App,
        *,
        tuning: Tuning | None = None,
        handler: CafeHandler | None = None,
        heartbeat: Callable[[], object] | None = None,
    ) -> None:
        self.app = app
        # Called on every pass of the event poll (``cafebot health`` reads what it writes).
        self.heartbeat = heartbeat or (lambda: None)
        self.settings = app.settings.zulip
        self.tuning = tuning or Tuning(catchup_window=self.settings.catchup_window)
        self.handler = handler or CafeHandler(app)
        self.limiter = RateLimiter(reserve=self.tuning.rate_reserve)
        self.inbound_stop = Stopper()  # the poller and the main loop
        self.outbox = Outbox(app, self.limiter, self.tuning)
        self.chat = ZulipChat(self)
        self.inbox: queue.Queue[Inbound] = queue.Queue()
        self.bot_id = 0
        self.bot_name = ""
        self.account = ""
        self.ready = threading.Event()
        self._client: Any = None
        self._secret = self.settings.key or ""
        self._api: Api | None = None
        self._users: dict[int, dict[str, Any]] = {}
        # Mentions by name get the user id of the one user of that name (edge.mentions).
        self._names: dict[str, int | None] = {}
        self._names_of = 0
        self._seen: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._handled_max = 0
        self._failed: set[int] = set()
        self._anchor_saved_at = 0.0
        self._anchor_saved = -1
        self._poller: threading.Thread | None = None
        self.poller = EventPoller(
            lambda: self._new_api(self.inbound_stop, paced=False),
            self.inbound_stop,
            self.tuning,
            self.inbox,
            self.outbox,
            heartbeat=lambda: self.heartbeat(),
            stored_anchor=self._stored_anchor,
        )

    @property
    def feature_level(self) -> int:
        """The server's API feature level (the client reads it from /server_settings)."""
        return int(getattr(self._client, "feature_level", 0) or 0)

    # ------------------------------------------------------------------ lifecycle

    def stop(self) -> None:
        """Ask the bot to stop (signal-safe): it finishes the command in hand first."""
        self.inbound_stop.set()

    def run(self, on_ready: Callable[[Chat], Callable[[], None]] | None = None) -> int:
        """Connect, catch up, handle commands until stopped.

        Returns 0 when stopped, 1 when the bot cannot run (the reason is logged).
        """
        redact = RedactKey(self._secret)
        handlers = list(logging.getLogger().handlers)
        for h in handlers:
            h.addFilter(redact)
        stop_ready: Callable[[], None] | None = None
        try:
            if not self._connect():
                return 0
            self._prepare()
            self.outbox.start(self._new_api(self.outbox.outbound_stop, paced=True))
            # The main thread answers a command itself when no other command waits.
            self.outbox.send_here(
                self._new_api(self.outbox.outbound_stop, paced=True),
                only_if=lambda: self.inbox.unfinished_tasks <= 1,
            )
            self._poller = threading.Thread(
                target=self.poller.run, name="zulip-poller", daemon=True
            )
            self._poller.start()
            while not self.inbound_stop.stopped:
                try:
                    item = self.inbox.get(timeout=0.2)
                except queue.Empty:
                    continue
                try:
                    if item.kind == "fatal":
                        log.error("%s", item.data)
                        return 1
                    if item.kind == "ready":
                        # Everything up to here was queued before this marker, and is handled.
                        self._handled_max = max(self._handled_max, int(item.data))
                        self._save_anchor(force=True)
                        if not self.ready.is_set():
                            self._catch_up_widgets()  # ticks made while the bot was away
                            # What start-up made stays for good: the collector need not
                            # walk it again on every full collection.
                            gc.freeze()
                            self.ready.set()
                            log.info(
                                "cafebot is live on Zulip as %s (user %s)",
                                self.bot_name,
                                self.bot_id,
                            )
                            if on_ready is not None:
                                stop_ready = on_ready(self.chat)
                        continue
                    self._handle_inbound(item)
                finally:
                    self.inbox.task_done()
        except FatalError as exc:
            log.error("%s", exc)  # noqa: TRY400 - said plainly, no traceback
            return 1
        else:
            return 0
        finally:
            self._shutdown(stop_ready)
            for h in handlers:
                h.removeFilter(redact)

    def _shutdown(self, stop_ready: Callable[[], None] | None) -> None:
        self.inbound_stop.set()
        if stop_ready is not None:
            try:
                stop_ready()
            except Exception:
                log.exception("stopping the scheduler failed")
        self.outbox.close(self.tuning.shutdown_grace)
        if self.poller.queue_id is not None and self._client is not None:
            try:
                api = self._new_api(Stopper(), paced=False)
                api.once("DELETE", "events", {"queue_id": self.poller.queue_id}, 2.0)
                log.info("event queue deregistered")
            except ZulipError as exc:
                log.info("could not deregister the event queue (%s); Zulip expires it", exc)
        if self._handled_max:
            self._save_anchor(force=True)
        log.info("cafebot stopped")

    # ------------------------------------------------------------------ start-up

    def _new_api(self, stopper: Stopper, *, paced: bool) -> Api:
        """Calls on a client of their own (one per thread)."""
        return Api(
            clone(self._client),
            self.limiter,
            stopper,
            self.tuning,
            paced=paced,
            secret=self._secret,
            network_errors=NETWORK_ERRORS,
        )

    def _connect(self) -> bool:
        """Build the client and learn who the bot is; waits out an unreachable server."""
        backoff = Backoff(self.tuning.backoff_base, self.tuning.backoff_max)
        secret = self._secret
        while True:
            try:
                self._client = make_client(self.settings)
                break
            except (zulip.ConfigNotFoundError, zulip.MissingURLError) as exc:
                raise FatalError(f"Zulip settings: {exc}") from None
            except Exception as exc:  # the server is unreachable or answers garbage
                delay = backoff.next_delay()
                text = f"{type(exc).__name__}: {exc}".replace(secret, "***") if secret else str(exc)
                log.warning("cannot reach Zulip (%s); retrying in %.1f s", text[:200], delay)
                if self.inbound_stop.sleep(delay):
                    return False
        self._secret = self._secret or str(getattr(self._client, "api_key", ""))
        self._api = self._new_api(self.inbound_stop, paced=False)
        try:
            # zulip.yaml, GET /users/me: user_id and full_name; a wrong key is a 401 with
            # code UNAUTHORIZED (recorded.json, "wrong api key").
            me = self._api.call("GET", "users/me", retry=True)
        except Stopped:
            return False
        except ApiError as exc:
            if exc.status == 401:
                raise FatalError(
                    "Zulip refused the bot's credentials (HTTP 401): check [zulip] email and "
                    "key (or the zuliprc file) in the config"
                ) from None
            raise FatalError(f"Zulip refused to tell the bot who it is: {exc}") from None
        self.bot_id = int(me["user_id"])
        self.bot_name = str(me.get("full_name", ""))
        self.account = f"{self._client.base_url}#{self.bot_id}"
        return True

    def _prepare(self) -> None:
        """Know the users (who is a bot; organisers' ids) and join each series' stream."""
        assert self._api is not None  # noqa: S101 - set by _connect
        try:
            members = self._api.call("GET", "users", {"client_gravatar": True}, retry=True)
            # zulip.yaml, GET /users: "members", each with user_id, is_bot, email (with the
            # default visibility a bot sees "user<ID>@<host>": zulip-api/README.md) and
            # delivery_email (null unless the bot may see it).
            for user in members.get("members", []):
                self._users[int(user["user_id"])] = user
        except ApiError as exc:
            log.warning("cannot list the organisation's users (%s)", exc)
        self._resolve_organizers()
        self._subscribe()
        self.outbox.account, self.outbox.bot_id = self.account, self.bot_id
        self.outbox.load_pending()

    def _resolve_organizers(self) -> None:
        by_email: dict[str, int] = {}
        for user_id, user in self._users.items():
            for key in ("delivery_email", "email"):
                if user.get(key):
                    by_email.setdefault(str(user[key]).lower(), user_id)
        for series in self.app.settings.series:
            ids = self.app.organizer_ids.setdefault(series.key, set())
            missing = []
            for email in sorted(series.organizer_emails):
                if email in by_email:
                    ids.add(by_email[email])
                else:
                    missing.append(email)
            if missing:
                log.warning(
                    "series %s: no Zulip user found for organiser %s (the organisation may "
                    "hide email addresses: list organisers by user id instead)",
                    series.key,
                    ", ".join(missing),
                )

    def _subscribe(self) -> None:
        assert self._api is not None  # noqa: S101
        for series in self.app.settings.series:
            if not series.stream:
                continue
            try:
                # zulip.yaml, GET /get_stream_id: a 400 when no such stream is visible.
                self._api.call("GET", "get_stream_id", {"stream": series.stream}, retry=True)
            except ApiError as exc:
                log.error(  # noqa: TRY400 - an expected refusal: no traceback
                    "series %s: stream '%s' is not there for the bot (%s); create it, or "
                    "fix `stream` in the config",
                    series.key,
                    series.stream,
                    exc.msg,
                )
                continue
            try:
                result = self._api.call(
                    "POST",
                    "users/me/subscriptions",
                    {
                        "subscriptions": [{"name": series.stream}],
                        "authorization_errors_fatal": False,
                    },
                    retry=True,
                )
            except ApiError as exc:
                log.error(  # noqa: TRY400 - an expected refusal: no traceback
                    "series %s: the organisation does not let the bot join stream '%s' (%s); "
                    "ask an administrator to subscribe the bot",
                    series.key,
                    series.stream,
                    exc.msg,
                )
                continue
            # zulip.yaml, POST /users/me/subscriptions: with authorization_errors_fatal false,
            # streams the bot may not join are listed in "unauthorized" (present only then).
            if series.stream in result.get("unauthorized", []):
                log.error(
                    "series %s: the bot may not join the private stream '%s'; ask an "
                    "administrator to subscribe it",
                    series.key,
                    series.stream,
                )
            else:
                log.info("series %s: subscribed to stream '%s'", series.key, series.stream)

    # ------------------------------------------------------------------ the main thread

    def _handle_inbound(self, item: Inbound) -> None:
        try:
            if item.kind == "message":
                self._on_message(item.data)
            elif item.kind == "edit":
                self._on_edit(item.data)
            elif item.kind == "edited":
                self._follow_edit(item.data, caught_up=True)
            elif item.kind == "delete":
                self.handler.dispatch_delete(list(item.data))
            elif item.kind == "submessage":
                event = item.data
                self.handler.dispatch_submessage(
                    int(event["message_id"]),
                    int(event["sender_id"]),
                    str(event["content"]),
                    int(event["submessage_id"]),
                )
        except Stopped:
            pass
        except Exception:
            log.exception("handling a Zulip %s event failed", item.kind)

    def _catch_up_widgets(self) -> None:
        """Ticks in the bot's to-do lists made while it was away (each is followed once)."""
        assert self._api is not None  # noqa: S101 - set by _connect
        for message_id in self.handler.widget_messages():
            try:
                # zulip.yaml, GET /messages/{message_id}: the message with its `submessages`.
                found = self._api.call("GET", f"messages/{message_id}", retry=True)
            except ApiError as exc:
                log.warning("cannot read the to-do list %s again (%s)", message_id, exc)
                continue
            subs = (found.get("message") or {}).get("submessages") or []
            for sub in sorted(subs, key=lambda s: int(s.get("id", 0))):
                if sub.get("msg_type") != "widget" or int(sub.get("sender_id", 0)) == self.bot_id:
                    continue  # the widget itself (the bot's)
                self.handler.dispatch_submessage(
                    message_id, int(sub["sender_id"]), str(sub["content"]), int(sub["id"])
                )

    def _on_message(self, raw: dict[str, Any]) -> None:
        message_id = int(raw["id"])
        self.outbox.latest_id = max(self.outbox.latest_id, message_id)
        if message_id in self._seen:
            return
        self._seen[message_id] = None
        while len(self._seen) > 10_000:
            self._seen.popitem(last=False)
        if int(raw.get("sender_id", 0)) == self.bot_id:
            self._own_message(raw)
        try:
            message = self._message(raw)
            if message is not None:
                text = command_text(message, self.bot_id, self.bot_name)
                if text is not None:
                    # A message handled before (caught up again after a restart, or by
                    # another instance) is recognised in the command's own transaction.
                    self.handler.dispatch(message, text, self.chat)
        except Exception:
            self._failed.add(message_id)  # the anchor stays before it: a restart retries it
            raise
        finally:
            self._handled_max = max(self._handled_max, message_id)
            self._save_anchor()

    def _own_message(self, raw: dict[str, Any]) -> None:
        """One of the bot's own messages: Zulip may be posting a reminder it held."""
        try:
            record_delivered(self.app, Message.from_zulip(raw))
        except Exception:
            log.exception("recording a held reminder as sent failed")

    def _on_edit(self, event: dict[str, Any]) -> None:
        # zulip.yaml, update_message event: rendering_only for a link preview's re-render;
        # "content" is present only when the content changed (not for a topic move).
        if event.get("rendering_only") or "content" not in event:
            return  # a link preview, or a move to another topic
        if event.get("user_id") == self.bot_id or event.get("message_id") is None:
            return
        assert self._api is not None  # noqa: S101
        message_id = int(event["message_id"])
        try:
            got = self._api.call(
                "GET", f"messages/{message_id}", {"apply_markdown": False}, retry=True
            )
        except ApiError as exc:
            log.info("edited message %s is gone (%s)", message_id, exc)
            return
        # zulip.yaml, GET /messages/{message_id}: with apply_markdown=false, `content`
        # is the raw Markdown; `raw_content` is deprecated but still sent (recorded.json,
        # "one message, raw").
        raw = got.get("message") or {}
        if "raw_content" in got and raw:
            raw = {**raw, "content": got["raw_content"]}
        if raw:
            self._follow_edit(raw, caught_up=False)

    def _follow_edit(self, raw: dict[str, Any], *, caught_up: bool) -> None:
        """A message was edited: the entry it made follows, or it has become a command.

        ``caught_up``: found by the catch-up, not announced by an event; an edit already
        followed before the bot went away is left alone then.
        """
        message = self._message(raw)
        if message is None or message.id is None:
            return
        text = command_text(message, self.bot_id, self.bot_name)
        followed = self.handler.edit_followed(message)
        if followed is not None:
            if caught_up and followed:
                return
            if text is None:
                text = strip_mention(message.content, self.bot_name, self.bot_id)[1]
            if caught_up:
                log.info("message %s was edited while the bot was away", message.id)
            self.handler.dispatch_edit(message, text, self.chat)
        elif text is not None:
            age = time.time() - float(raw.get("timestamp", time.time()))
            if age <= self.tuning.catchup_window.total_seconds():
                # Not a command before (no mention, say): it is one now.
                self.handler.dispatch(message, text, self.chat)

    def _message(self, raw: dict[str, Any]) -> Message | None:
        """The Message of a Zulip message dict; None for the bot's own and other bots'."""
        sender_id = int(raw.get("sender_id", 0))
        if sender_id == self.bot_id:
            return None
        is_bot = self._is_bot(sender_id)
        if len(self._users) != self._names_of:  # the directory changed: names read again
            self._names, self._names_of = mentions.by_name(self._users), len(self._users)
        content = mentions.with_ids(str(raw.get("content", "")), self._names)
        message = Message.from_zulip({**raw, "sender_is_bot": is_bot, "content": content})
        return None if message.sender_is_bot else message

    def _is_bot(self, user_id: int) -> bool:
        user = self._users.get(user_id)
        if user is None and self._api is not None:
            try:
                user = self._api.call("GET", f"users/{user_id}", retry=True).get("user") or {}
            except ApiError as exc:
                log.info("cannot look up user %s (%s)", user_id, exc)
                user = {}
            self._users[user_id] = user
        return bool(user and user.get("is_bot"))  # zulip.yaml, GET /users/{user_id}

    # ------------------------------------------------------------------ the anchor

    def _stored_anchor(self) -> int | None:
        with self.app.unit_of_work() as session:
            row = session.get(ZulipCursor, self.account)
            return int(row.last_message_id) if row is not None else None

    def _save_anchor(self, *, force: bool = False) -> None:
        anchor = self._handled_max
        if self._failed:
            anchor = min(anchor, min(self._failed) - 1)
        if anchor <= self._anchor_saved:
            return
        now = time.monotonic()
        if not force and now - self._anchor_saved_at < self.tuning.anchor_every:
            return
        try:
            with self.app.unit_of_work() as session:
                row = session.get(ZulipCursor, self.account)
                if row is None:
                    row = ZulipCursor(account=self.account, last_message_id=anchor)
                    session.add(row)
                row.last_message_id = max(row.last_message_id, anchor)
                row.updated_at = self.app.clock.now()
            self._anchor_saved, self._anchor_saved_at = anchor, now
        except Exception:
            log.exception("could not store how far the bot has read")

    # ------------------------------------------------------------------ outgoing


# ====================================================================== entry point


def run(
    app: App,
    *,
    on_ready: Callable[[Chat], Callable[[], None]] | None = None,
    tuning: Tuning | None = None,
    install_signal_handlers: bool = True,
    heartbeat: Callable[[], object] | None = None,
) -> int:
    """Run the bot until SIGTERM/SIGINT; the exit status (0 when stopped by a signal).

    ``on_ready`` is called once, after the first registration and catch-up, with
    the transport's Chat; it returns a function called at shutdown.
    """
    bot = ZulipBot(app, tuning=tuning, heartbeat=heartbeat)
    previous: dict[signal.Signals, Any] = {}
    if install_signal_handlers:

        def on_signal(signum: int, frame: FrameType | None) -> None:
            log.info("signal %s: finishing the command in hand, then stopping", signum)
            bot.stop()

        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, on_signal)
    try:
        return bot.run(on_ready)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
