"""The poller: the event queue, catch-up after downtime, and the long poll.

It registers an event queue (message, update_message and delete_message events,
raw Markdown), then catches up: it reads forward with ``GET /messages`` from the
stored anchor to the newest message, and back from the anchor for commands edited
while it was away, inside the catch-up window (a message both read and queued is
handled once). Then it long-polls; it re-registers at once when Zulip forgets the
queue (``BAD_EVENT_QUEUE_ID``) and catches up again. On the first start on an
account nothing is caught up. What it finds goes to the main thread
(:class:`cafebot.edge.transport.ZulipBot`) as :class:`Inbound` items, in order.
"""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cafebot.edge.client import FatalError
from cafebot.edge.outbox import Outbox
from cafebot.edge.pacing import Api, ApiError, Backoff, Stopped, Stopper, Tuning

log = logging.getLogger("cafebot.zulip")

# After handling a poll's commands, the next poll waits up to this long for their answers
# to be sent (a rate-limited backlog is not waited for).
ANSWER_HEAD_START = 0.01

EVENT_TYPES = ["message", "update_message", "delete_message", "submessage"]
# zulip.yaml, GET /messages: "A maximum of 5000 messages can be obtained per request".
FETCH_CAP = 5000


@dataclass(frozen=True)
class Inbound:
    kind: str  # "message", "edit", "delete", "ready", "fatal"
    data: Any = None


class EventPoller:
    """The poller thread of ``cafebot run``: see the module docstring."""

    def __init__(
        self,
        new_api: Callable[[], Api],
        stop: Stopper,
        tuning: Tuning,
        inbox: queue.Queue[Inbound],
        outbox: Outbox,
        *,
        heartbeat: Callable[[], object],
        stored_anchor: Callable[[], int | None],
    ) -> None:
        self.new_api = new_api  # calls on a client of the poller's own, unpaced
        self.stop = stop
        self.tuning = tuning
        self.inbox = inbox
        self.outbox = outbox
        self.heartbeat = heartbeat  # called on every pass of the poll
        self.stored_anchor = stored_anchor  # how far the bot had read (None: never)
        self.queue_id: str | None = None  # the registered event queue, once there is one

    def run(self) -> None:
        """The poller thread's body: until stopped, or until it cannot go on (``fatal``)."""
        try:
            self._poll()
        except Stopped:
            return
        except Exception as exc:
            log.exception("the event poll failed")
            self.inbox.put(Inbound("fatal", f"the event poll stopped: {exc}"))

    def _poll(self) -> None:
        api = self.new_api()
        backoff = Backoff(self.tuning.backoff_base, self.tuning.backoff_max)
        queue_id: str | None = None
        last_event_id = -1
        pushed: int | None = self.stored_anchor()  # None: never read this account
        longpoll = self.tuning.longpoll_timeout
        while not self.stop.stopped:
            self.heartbeat()
            if queue_id is None:
                try:
                    reg = self._register(api)
                except ApiError as exc:
                    if exc.status == 401:
                        raise FatalError("Zulip refused the bot's credentials (HTTP 401)") from None
                    if exc.status == 400:
                        raise FatalError(f"Zulip refused the event queue: {exc}") from None
                    delay = backoff.next_delay()
                    log.warning(
                        "registering an event queue failed (%s); retrying in %.1f s", exc, delay
                    )
                    self.stop.sleep(delay)
                    continue
                # zulip.yaml, /register: queue_id, last_event_id and
                # event_queue_longpoll_timeout_seconds are always in the answer.
                queue_id, last_event_id = str(reg["queue_id"]), int(reg["last_event_id"])
                self.queue_id = queue_id
                longpoll = float(reg.get("event_queue_longpoll_timeout_seconds") or longpoll) + 5
                # The queue collects events from here on; what came before it is read now.
                # /register's max_message_id is not used: Zulip sends it only when
                # "message" is in fetch_event_types (zulip.yaml, /register response;
                # recorded.json exchanges 0 and 1), and cafebot fetches only "realm".
                pushed = self._catch_up(api, pushed, reg)
                self.outbox.latest_id = max(self.outbox.latest_id, pushed)
                self.inbox.put(Inbound("ready", pushed))
            try:
                result = api.call(
                    "GET",
                    "events",
                    {"queue_id": queue_id, "last_event_id": last_event_id},
                    retry=True,
                    timeout=longpoll,
                )
            except ApiError as exc:
                if self.stop.stopped:
                    return  # the queue was deregistered at shutdown
                # zulip.yaml, BadEventQueueIdError (recorded.json, "bad queue id"): the
                # queue is gone; a new one is registered and caught up from `pushed`.
                if exc.code == "BAD_EVENT_QUEUE_ID" or "event queue" in exc.msg.lower():
                    log.info("Zulip forgot the event queue; registering a new one")
                else:
                    delay = backoff.next_delay()
                    log.warning("polling for events failed (%s); retrying in %.1f s", exc, delay)
                    self.stop.sleep(delay)
                queue_id = None
                continue
            backoff.reset()
            # zulip.yaml, GET /events: "events", each with an id and a type; a heartbeat
            # comes when nothing happened for the long-poll timeout.
            for event in result.get("events", []):
                last_event_id = max(last_event_id, int(event.get("id", last_event_id)))
                kind = event.get("type")
                if kind == "message":
                    raw = event["message"]
                    pushed = max(pushed or 0, int(raw["id"]))
                    self.inbox.put(Inbound("message", raw))
                elif kind == "update_message":
                    self.inbox.put(Inbound("edit", event))
                elif kind == "delete_message":
                    # zulip.yaml, delete_message event: message_ids with the
                    # bulk_message_deletion capability (asked for), else message_id.
                    ids = event.get("message_ids") or [event.get("message_id")]
                    self.inbox.put(Inbound("delete", [int(i) for i in ids if i is not None]))
                elif kind == "submessage":
                    # zulip.yaml, submessage event: a tick in a to-do widget (cafe.todo).
                    self.inbox.put(Inbound("submessage", event))
            self._wait_handled()

    def _wait_handled(self) -> None:
        """Until the main thread has handled what the poll brought, and the answers are
        on their way (or a moment has passed): then the next poll.

        Zulip keeps the events meanwhile, and the next poll takes them all at once. Not
        preparing it while a command is handled and answered leaves the processor to
        those (with one interpreter lock, the threads would take turns).
        """
        done = self.inbox.all_tasks_done
        while not self.stop.stopped:
            with done:
                if not self.inbox.unfinished_tasks:
                    break
                done.wait(0.5)
            self.heartbeat()
        self.outbox.wait_idle(ANSWER_HEAD_START)

    def _register(self, api: Api) -> dict[str, Any]:
        """Register the event queue (zulip.yaml, POST /register; recorded.json, exchange 0).

        Raw Markdown in message events (``apply_markdown`` false), no avatars
        (``client_gravatar``), and only the realm's settings fetched. The capabilities are
        those of a modern client (zulip.yaml, client_capabilities; Zulip accepts a
        register without them too: recorded.json, "register without
        notification_settings_null"); ``bulk_message_deletion`` makes delete events carry
        ``message_ids``.
        """
        reg = api.call(
            "POST",
            "register",
            {
                "event_types": EVENT_TYPES,
                "apply_markdown": False,
                "client_gravatar": True,
                "fetch_event_types": ["realm"],
                "client_capabilities": {
                    "notification_settings_null": True,
                    "bulk_message_deletion": True,
                    "user_avatar_url_field_optional": True,
                },
            },
            retry=True,
        )
        box = self.outbox
        # zulip.yaml, /register, realm section: max_message_length and max_topic_length
        # (fetched through "realm" in fetch_event_types: recorded.json, exchange 0).
        box.max_message_length = int(reg.get("max_message_length") or box.max_message_length)
        box.max_topic_length = int(reg.get("max_topic_length") or box.max_topic_length)
        log.info("event queue registered")
        return reg

    def _catch_up(self, api: Api, anchor: int | None, reg: dict[str, Any]) -> int:
        """Queue what was posted after ``anchor``, and what was edited while the bot was away.

        Called after the queue is registered, so nothing posted from then on is missed;
        a message both read here and brought by the queue is handled once (by its id).
        On the first start on an account (no ``anchor``), nothing is caught up: the
        newest message becomes the anchor. Returns the newest message id known.
        """
        if anchor is None:
            newest = self._newest_id(api)
            log.info("first start on this Zulip account: nothing to catch up on")
            return newest
        cutoff = time.time() - self.tuning.catchup_window.total_seconds()
        edited = self._edited_while_away(api, anchor, cutoff, reg)
        found, too_old = self._read_forward(api, anchor, cutoff)
        if too_old:
            log.warning(
                "%d message(s) older than the catch-up window (%s) were not looked at",
                too_old,
                self.tuning.catchup_window,
            )
        for raw in edited:
            self.inbox.put(Inbound("edited", raw))
        for raw in found:
            self.inbox.put(Inbound("message", raw))
        if found:
            log.info("catching up on %d message(s) posted while the bot was away", len(found))
        return max([anchor, *(int(m["id"]) for m in found)])

    def _messages(self, api: Api, anchor: int | str, **request: Any) -> dict[str, Any]:
        """One page of ``GET /messages`` as the bot reads it: an empty narrow (for a bot,
        the messages that mention it and its DMs: zulip-api/README.md, "Other facts"),
        raw Markdown (``apply_markdown=false``: ``content`` is what the user typed)."""
        return api.call(
            "GET",
            "messages",
            {
                "anchor": anchor,
                **request,
                "narrow": [],
                "apply_markdown": False,
                "client_gravatar": True,
            },
            retry=True,
        )

    def _newest_id(self, api: Api) -> int:
        """The id of the newest message the bot can read (0 if none).

        ``anchor=newest`` with ``num_before=1`` answers the newest message, as recorded
        (recorded.json, "messages anchor=newest").
        """
        page = self._messages(api, "newest", num_before=1, num_after=0)
        return max((int(m["id"]) for m in page.get("messages", [])), default=0)

    def _read_forward(
        self, api: Api, anchor: int, cutoff: float
    ) -> tuple[list[dict[str, Any]], int]:
        """The messages after ``anchor`` posted inside the window, oldest first, and how
        many were older than it.

        Read forward page by page until Zulip says ``found_newest`` (zulip.yaml,
        GET /messages: ``include_anchor=false`` leaves the anchor out; recorded.json,
        "messages read forward from an anchor").
        """
        found: list[dict[str, Any]] = []
        too_old = 0
        top = anchor
        page_size = min(self.tuning.page_size, FETCH_CAP)
        while True:
            page = self._messages(api, top, include_anchor=False, num_before=0, num_after=page_size)
            messages = sorted(page.get("messages", []), key=lambda m: int(m["id"]))
            for raw in messages:
                if int(raw["id"]) <= top:
                    continue  # not asked for: never counted twice
                if float(raw.get("timestamp", 0)) < cutoff:
                    too_old += 1
                else:
                    found.append(raw)
            if page.get("found_newest") or not messages or int(messages[-1]["id"]) <= top:
                return found, too_old
            top = int(messages[-1]["id"])

    def _edited_while_away(
        self, api: Api, anchor: int, cutoff: float, reg: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """The messages up to ``anchor`` whose content was edited, oldest first: the main
        thread follows each edit it has not followed yet (the events of edits made while
        no queue was registered are lost).

        Read backward from the anchor, as far as an edit could have been made while the
        bot was away: the anchor was handled before the bot went away, and a message can
        be edited only for ``realm_message_content_edit_limit_seconds`` after it was sent
        (zulip.yaml, /register, realm section: null means no limit; the default is 600 s,
        zulip-api/README.md). Never further back than the catch-up window.
        """
        limit = reg.get("realm_message_content_edit_limit_seconds")
        edited: list[dict[str, Any]] = []
        top = anchor
        include = True
        oldest = cutoff
        page_size = min(self.tuning.page_size, FETCH_CAP)
        while True:
            page = self._messages(
                api, top, include_anchor=include, num_before=page_size, num_after=0
            )
            messages = sorted(page.get("messages", []), key=lambda m: int(m["id"]), reverse=True)
            done = bool(page.get("found_oldest")) or not messages
            for raw in messages:
                stamp = float(raw.get("timestamp", 0))
                if int(raw["id"]) == anchor and isinstance(limit, int) and limit > 0:
                    oldest = max(cutoff, stamp - limit)
                if stamp < oldest:
                    done = True
                    break
                # zulip.yaml, MessagesBase: last_edit_timestamp is present only if the
                # message was edited (its content or its topic).
                if raw.get("last_edit_timestamp") is not None:
                    edited.append(raw)
            if done or (int(messages[-1]["id"]) >= top and not include):
                break
            top, include = int(messages[-1]["id"]), False
        edited.reverse()
        return edited
