"""A fake Zulip server on 127.0.0.1 for the tests: the real API's JSON shapes, and faults.

It speaks the endpoints cafebot uses, as documented at zulip.com/api:
``server_settings``, ``users/me``, ``users``, ``users/{id}``, ``register``,
``events`` (long-poll with heartbeats, queue expiry, ``BAD_EVENT_QUEUE_ID``;
DELETE deregisters), ``messages`` (send; get with anchor, num_before/num_after,
include_anchor, narrow and apply_markdown; the 5,000 cap), ``messages/{id}``
(get, update within the edit time limit, delete), reactions,
``users/me/subscriptions``, ``get_stream_id`` and ``scheduled_messages`` (create, list,
edit, delete; delivered at their time by a thread of the fake, as Zulip's delivery
worker does), ``user_uploads`` (one file in a multipart body, answered with its ``uri``;
:meth:`FakeZulip.inline_images` says which uploaded images a message shows inline, as
Zulip previews them). Every API response carries
``X-RateLimit-*`` headers from a configurable window; too many requests get a
429 with a float ``retry-after``. Content over ``max_message_length`` is
truncated as Zulip does, and topics over ``max_topic_length``.

Faults are injected per request (:meth:`FakeZulip.fault`): a status (5xx, or a
non-JSON 502 page), a dropped connection before the request is processed, a
dropped connection *after* it was processed (a lost response), a slow response,
a 429; and an outage window during which every connection is cut.

Test code acts as the users: :meth:`post`, :meth:`dm`, :meth:`edit` and
:meth:`delete` change the state and deliver events, as Zulip would.
"""

from __future__ import annotations

import base64
import contextlib
import email.parser
import email.policy
import html
import itertools
import json
import re
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

# The server recorded in ../shared/zulip-api/recorded.json ("server").
ZULIP_VERSION = "9.0-dev+git"
FEATURE_LEVEL = 266
FETCH_CAP = 5000
# What anchor=newest stands for, and what the answer's `anchor` then says (Zulip's
# LARGER_THAN_MAX_MESSAGE_ID); anchor=oldest is 0.
LARGER_THAN_MAX_MESSAGE_ID = 10_000_000_000_000_000
# Emoji names the fake knows (zulip-api/README.md, "Other facts": these exist, while
# heavy_check_mark, hourglass_flowing_sand, hourglass_not_done and white_check_mark do not).
EMOJI = {
    "check": "2705",
    "check_mark": "2714",
    "hourglass": "231b",
    "hourglass_done": "231b",
    "stopwatch": "23f1",
    "warning": "26a0",
    "alarm_clock": "23f0",
    "tada": "1f389",
    "thumbs_up": "1f44d",
    "cross_mark": "274c",
}


@dataclass
class User:
    id: int
    full_name: str
    email: str  # the real address (delivery_email)
    api_key: str
    is_bot: bool = False
    is_admin: bool = False


@dataclass
class Stream:
    id: int
    name: str
    private: bool = False
    subscribers: set[int] = field(default_factory=set)
    creator_id: int | None = None


@dataclass
class StoredMessage:
    id: int
    sender_id: int
    content: str
    timestamp: float
    stream: str | None = None
    topic: str = ""
    recipients: frozenset[int] = frozenset()  # a direct message's participants
    receivers: frozenset[int] = frozenset()  # who received it (UserMessage rows)
    reactions: list[tuple[int, str]] = field(default_factory=list)
    last_edit_timestamp: float | None = None


# Zulip's SCHEDULED_MESSAGE_LATE_CUTOFF_MINUTES: later than this, a delivery fails.
SCHEDULED_LATE_CUTOFF = 600.0


@dataclass
class ScheduledRecord:
    """A scheduled message, as Zulip's ScheduledMessage row holds it."""

    id: int
    sender_id: int
    stream_id: int
    topic: str
    content: str
    timestamp: int  # scheduled_delivery_timestamp
    failed: bool = False
    failure_message: str | None = None
    delivered: bool = False
    delivered_message_id: int | None = None


@dataclass
class EventQueue:
    id: str
    user_id: int
    event_types: frozenset[str] | None
    capabilities: dict[str, Any]
    events: list[dict[str, Any]] = field(default_factory=list)
    next_id: int = 0
    last_poll: float = field(default_factory=time.time)


@dataclass
class Fault:
    kind: str  # "status", "drop", "drop_after", "slow", "limit", "bad_queue"
    method: str | None
    path: str  # a prefix of the API path, like "messages" or "events"
    times: int
    status: int = 500
    delay: float = 0.0
    retry_after: float = 1.0


@dataclass
class Request:
    at: float
    method: str
    path: str
    status: int | str  # an HTTP status, or "dropped", "outage"
    user_id: int | None = None
    params: dict[str, str] = field(default_factory=dict)
    answer: Any = None  # the JSON body answered (None: cut, or not JSON)
    headers: dict[str, str] = field(default_factory=dict)  # the headers answered
    fault: str | None = None  # the kind of fault injected into this request, if any
    files: list[UploadedFile] = field(default_factory=list)  # multipart/form-data file parts


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeZulip

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        # http.server writes a response in pieces: without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms stalls to every keep-alive request.
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.fake._track(conn)
        return conn, addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request (a bot process SIGKILLed, a connection cut by
        # a fault) is normal here: no traceback for it.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


# ====================================================================== uploads
# POST /user_uploads (zulip.yaml, operationId upload-file): one file in a multipart/form-data
# body (the zulip client names the part after the file); the answer at feature level 266 is
# {"uri": "/user_uploads/<realm id>/<2 hex>/<24 random>/<file name>"} and nothing else (the
# schema allows no other key; newer levels add "url" and "filename"). Refusals are the common
# 400 JsonError: no file, more than one, or a file over the server's limit (25 MiB by default:
# MAX_FILE_UPLOAD_SIZE in zulip.yaml's description). A message that links an uploaded image
# by that path, ``[chart.png](/user_uploads/...)``, is shown by Zulip with the image inline
# (its preview); :meth:`FakeZulip.inline_images` says which images a message shows so.

REALM_ID = 2
MAX_FILE_UPLOAD_MIB = 25
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp", ".tif", ".tiff")
_UPLOAD_LINK_RE = re.compile(r"\[[^\]\n]*\]\((?:https?://[^/)\s]+)?(/user_uploads/[^)\s]+)\)")


@dataclass(frozen=True)
class UploadedFile:
    field: str  # the form field's name
    filename: str
    content_type: str | None
    data: bytes


@dataclass(frozen=True)
class StoredUpload:
    path: str  # /user_uploads/...
    owner: int
    file: UploadedFile


def _form_body(content_type: str, raw: bytes) -> tuple[str, list[UploadedFile]]:
    """A request body as form text, and the file parts of a multipart/form-data one."""
    if not content_type.lower().startswith("multipart/form-data"):
        return raw.decode(), []
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    fields: list[tuple[str, str]] = []
    files: list[UploadedFile] = []
    for part in parsed.iter_parts():
        name = part.get_param("name", header="content-disposition") or ""
        filename = part.get_filename()
        data = part.get_payload(decode=True) or b""
        if filename is None:
            fields.append((str(name), data.decode()))
        else:
            ctype = part.get("Content-Type")
            files.append(UploadedFile(str(name), filename, ctype, data))
    return urlencode(fields), files


def _upload(fake: FakeZulip, user: User, files: list[UploadedFile]) -> dict[str, Any]:
    if not files:
        raise _ApiError(400, "You must specify a file to upload")
    if len(files) > 1:
        raise _ApiError(400, "You may only upload one file at a time")
    file = files[0]
    if len(file.data) > fake.max_file_upload_mib * 1024 * 1024:
        raise _ApiError(
            400, f"Uploaded file is larger than the allowed limit of {fake.max_file_upload_mib} MiB"
        )
    name = re.sub(r"[^\w.-]+", "-", file.filename.rsplit("/", 1)[-1]).strip("-") or "uploaded-file"
    path = f"/user_uploads/{REALM_ID}/{uuid.uuid4().hex[:2]}/{uuid.uuid4().hex[:24]}/{name}"
    with fake.lock:
        fake.uploads[path] = StoredUpload(path, user.id, file)
    return _ok(uri=path)


class _Uploads:
    """FakeZulip's side of uploads (mixed in): what was uploaded, what a message shows."""

    lock: threading.Condition
    messages: dict[int, StoredMessage]

    def _init_uploads(self) -> None:
        self.uploads: dict[str, StoredUpload] = {}
        self.max_file_upload_mib = MAX_FILE_UPLOAD_MIB

    def inline_images(self, message_id: int) -> list[StoredUpload]:
        """The uploaded images that message ``message_id`` shows inline, as Zulip does: each
        linked by its ``/user_uploads/…`` path (relative, or on the server's own address), an
        image by its name, and uploaded by the message's sender (who may share it)."""
        with self.lock:
            message = self.messages[message_id]
            shown = []
            for path in _UPLOAD_LINK_RE.findall(message.content):
                upload = self.uploads.get(path)
                image = path.lower().endswith(_IMAGE_SUFFIXES)
                if upload is not None and image and upload.owner == message.sender_id:
                    shown.append(upload)
            return shown


class FakeZulip(_Uploads):
    """The fake server. Use as a context manager, or call :meth:`start` and :meth:`stop`."""

    def __init__(
        self,
        *,
        realm_name: str = "Cafe Community",
        hide_emails: bool = False,
        heartbeat: float = 1.0,
        queue_timeout: float = 600.0,
        max_message_length: int = 10_000,
        max_topic_length: int = 60,
        edit_limit: float = 600.0,
        delete_limit: float = 600.0,
        rate_limit: tuple[int, float] = (200, 60.0),
    ) -> None:
        self.realm_name = realm_name
        self.hide_emails = hide_emails
        self.heartbeat = heartbeat
        self.queue_timeout = queue_timeout
        self.max_message_length = max_message_length
        self.max_topic_length = max_topic_length
        self.edit_limit = edit_limit
        self.delete_limit = delete_limit
        self.rate_limit, self.rate_window = rate_limit
        self.refuse_subscriptions = False
        self.lock = threading.Condition()
        self.users: dict[int, User] = {}
        self.streams: dict[str, Stream] = {}
        self.messages: dict[int, StoredMessage] = {}
        self.queues: dict[str, EventQueue] = {}
        self.faults: list[Fault] = []
        self.requests: list[Request] = []
        # When a message was first handed to an event queue in a response (bench/: latency).
        self.delivered: dict[int, float] = {}
        self.outage_until = 0.0
        self._ids = itertools.count(1000)
        self._user_ids = itertools.count(10)
        self._stream_ids = itertools.count(1)
        self._rate: dict[tuple[int, str], deque[float]] = {}
        self._conns: set[socket.socket] = set()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._init_scheduled()
        self._init_widgets()
        self._init_uploads()

    # ------------------------------------------------------------ running

    def start(self) -> FakeZulip:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        self._start_delivery()
        return self

    def stop(self) -> None:
        self._stop_delivery()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._cut_all()
        with self.lock:
            self.lock.notify_all()

    def __enter__(self) -> FakeZulip:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def _track(self, conn: socket.socket) -> None:
        with self.lock:
            self._conns.add(conn)

    def _untrack(self, conn: socket.socket) -> None:
        with self.lock:
            self._conns.discard(conn)

    def _cut_all(self) -> None:
        with self.lock:
            conns = list(self._conns)
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    # ------------------------------------------------------------ the organisation

    def add_user(
        self, full_name: str, email: str, *, is_bot: bool = False, is_admin: bool = False
    ) -> User:
        with self.lock:
            user = User(next(self._user_ids), full_name, email, uuid.uuid4().hex, is_bot, is_admin)
            self.users[user.id] = user
            return user

    def add_stream(
        self,
        name: str,
        *,
        private: bool = False,
        subscribers: Iterable[User] = (),
        creator: User | None = None,
    ) -> Stream:
        with self.lock:
            stream = Stream(
                next(self._stream_ids),
                name,
                private,
                {u.id for u in subscribers},
                creator.id if creator is not None else None,
            )
            self.streams[name.lower()] = stream
            return stream

    def subscribe(self, user: User, name: str) -> None:
        with self.lock:
            self.streams[name.lower()].subscribers.add(user.id)

    def shown_email(self, user: User) -> str:
        return f"user{user.id}@zulip.example.org" if self.hide_emails else user.email

    # ------------------------------------------------------------ acting as users

    def post(self, user: User, stream: str, topic: str, content: str) -> int:
        """``user`` posts in a stream (through the same code as the API)."""
        with self.lock:
            return self._send(user, stream, topic, content, None)

    def dm(self, user: User, to: Iterable[User], content: str) -> int:
        with self.lock:
            return self._send(user, None, "", content, {u.id for u in to} | {user.id})

    def edit(self, message_id: int, content: str) -> None:
        """The sender edits a message's content (no time limit for the test's users)."""
        with self.lock:
            self._edit(self.messages[message_id], content, self.messages[message_id].sender_id)

    def delete(self, message_id: int) -> None:
        with self.lock:
            self._delete(self.messages[message_id])

    def age(self, message_id: int, seconds: float) -> None:
        """Make a message ``seconds`` older (the edit time limit, the catch-up window)."""
        with self.lock:
            self.messages[message_id].timestamp -= seconds

    # ------------------------------------------------------------ looking

    def sent_by(self, user: User) -> list[StoredMessage]:
        with self.lock:
            return sorted(
                (m for m in self.messages.values() if m.sender_id == user.id), key=lambda m: m.id
            )

    def reactions(self, message_id: int) -> list[tuple[int, str]]:
        with self.lock:
            message = self.messages.get(message_id)
            return list(message.reactions) if message else []

    def requests_to(self, path: str, method: str | None = None) -> list[Request]:
        with self.lock:
            return [
                r
                for r in self.requests
                if r.path.startswith(path) and (method is None or r.method == method)
            ]

    def wait_for(self, check: Callable[[], Any], timeout: float = 10.0, what: str = "") -> Any:
        """Poll ``check`` until it returns something truthy (a test helper)."""
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or check}")
            time.sleep(0.02)

    # ------------------------------------------------------------ faults

    def fault(
        self,
        kind: str,
        path: str,
        *,
        method: str | None = None,
        times: int = 1,
        status: int = 500,
        delay: float = 0.0,
        retry_after: float = 1.0,
    ) -> None:
        """The next ``times`` requests to ``path`` (a prefix, e.g. "messages") fail so:

        - ``status``: answer with ``status`` (502 answers an HTML page, as a proxy does);
        - ``drop``: cut the connection before the request is processed;
        - ``drop_after``: process the request, then cut the connection (a lost response);
        - ``slow``: wait ``delay`` seconds, then answer normally;
        - ``limit``: answer 429 with ``retry_after`` (a float, as Zulip sends it);
        - ``bad_queue``: an events request finds its queue gone (BAD_EVENT_QUEUE_ID).
        """
        with self.lock:
            self.faults.append(Fault(kind, method, path, times, status, delay, retry_after))

    def outage(self, seconds: float) -> None:
        """For ``seconds``, every connection is cut at once (and open ones now)."""
        with self.lock:
            self.outage_until = time.time() + seconds
        self._cut_all()

    def expire_queues(self) -> None:
        """Zulip forgets every event queue (a server restart, or the queues timed out)."""
        with self.lock:
            self.queues.clear()
            self.lock.notify_all()

    def set_rate_limit(self, limit: int, window: float) -> None:
        with self.lock:
            self.rate_limit, self.rate_window = limit, window
            self._rate.clear()

    # ------------------------------------------------------------ scheduled messages
    # Zulip's scheduled messages (feature level 179+: POST; 173+: GET and DELETE): kept
    # per sender, delivered by a thread of the fake at scheduled_delivery_timestamp as
    # ordinary messages from the sender (events to every receiving queue). Real Zulip's
    # delivery worker looks once a minute; the fake looks every 50 ms (tests use seconds).

    def _init_scheduled(self) -> None:
        # A test lowers the module's FEATURE_LEVEL (monkeypatch) for a server without them.
        self.scheduled: dict[int, ScheduledRecord] = {}
        self._scheduled_ids = itertools.count(1)
        self.scheduled_delivery_paused = False  # the delivery worker is behind
        self.fail_scheduled_delivery: str | None = None  # deliveries fail with this message
        self._delivery_stop = threading.Event()
        self._delivery_thread: threading.Thread | None = None

    def _start_delivery(self) -> None:
        self._delivery_stop.clear()
        self._delivery_thread = threading.Thread(target=self._deliver_loop, daemon=True)
        self._delivery_thread.start()

    def _stop_delivery(self) -> None:
        self._delivery_stop.set()
        if self._delivery_thread is not None:
            self._delivery_thread.join(2.0)

    def _deliver_loop(self) -> None:
        while not self._delivery_stop.wait(0.05):
            with self.lock:
                if not self.scheduled_delivery_paused:
                    self._deliver_due(time.time())

    def _deliver_due(self, now: float) -> None:
        """As Zulip's try_deliver_one_scheduled_message, for every one that is due."""
        for record in sorted(self.scheduled.values(), key=lambda r: (r.timestamp, r.id)):
            if record.delivered or record.failed or record.timestamp > now:
                continue
            sender = self.users[record.sender_id]
            stream = next((st for st in self.streams.values() if st.id == record.stream_id), None)
            if self.fail_scheduled_delivery or stream is None:
                reason = self.fail_scheduled_delivery or "Channel does not exist"
            elif now > record.timestamp + SCHEDULED_LATE_CUTOFF:
                reason = "Message could not be sent at the scheduled time."
            else:
                reason = None
            if reason is not None:
                record.failed, record.failure_message = True, reason
                continue
            assert stream is not None
            record.delivered_message_id = self._send(
                sender, stream.name, record.topic, record.content, None
            )
            record.delivered = True

    def deliver_scheduled(self, now: float) -> None:
        """Zulip's delivery worker runs at ``now`` (for tests whose bot has a fake clock)."""
        with self.lock:
            self._deliver_due(now)

    def scheduled_of(self, user: User) -> list[ScheduledRecord]:
        """``user``'s scheduled messages not yet delivered (a test helper)."""
        with self.lock:
            return sorted(
                (r for r in self.scheduled.values() if r.sender_id == user.id and not r.delivered),
                key=lambda r: (r.timestamp, r.id),
            )

    def delete_scheduled(self, scheduled_id: int) -> None:
        """The record goes (as a user deleting it in the web app)."""
        with self.lock:
            del self.scheduled[scheduled_id]

    # ------------------------------------------------------------ widgets and submessages
    # (issue 14) A message whose content starts with /todo is a to-do widget:
    # Zulip stores a "widget" submessage with its parsed data (zerver/lib/widget.py:
    # the first line after "/todo" is the title, each further line a task, "task: desc"),
    # shows it in the message's `submessages` (zulip.yaml, MessagesBase), sends a
    # `submessage` event for each later one (a tick is {"type": "strike", "key":
    # "<index>,canned"} for the message's own tasks: web/src/todo_widget.ts), and
    # refuses to edit the message ("Widgets cannot be edited.",
    # zerver/actions/message_edit.py).

    def _init_widgets(self) -> None:
        self.submessages: dict[int, list[dict[str, Any]]] = {}
        self._submessage_ids = itertools.count(4700)

    def _widget_submessage(self, message: StoredMessage) -> None:
        tokens = re.split(r"\s+|\n+", message.content)
        if not tokens or tokens[0] != "/todo":
            return  # (a /poll's data has another shape; the bot posts none)
        rest = message.content.replace(tokens[0], "", 1)
        lines = rest.splitlines()
        title = lines.pop(0).strip() if lines and lines[0] else ""
        tasks = []
        for line in lines:
            task = re.sub(r"(\s*[-*]?\s*)", "", line.strip(), count=1)
            if task:
                name, _, desc = task.partition(": ")
                tasks.append({"task": name.strip(), "desc": desc.strip()})
        data = {
            "widget_type": tokens[0][1:],
            "extra_data": {"task_list_title": title, "tasks": tasks},
        }
        self._add_submessage(message, message.sender_id, "widget", json.dumps(data), push=False)

    def _add_submessage(
        self, message: StoredMessage, sender_id: int, msg_type: str, content: str, *, push: bool
    ) -> int:
        sub_id = next(self._submessage_ids)
        self.submessages.setdefault(message.id, []).append(
            {
                "msg_type": msg_type,
                "content": content,
                "message_id": message.id,
                "sender_id": sender_id,
                "id": sub_id,
            }
        )
        for queue in list(self.queues.values()) if push else []:
            if queue.user_id in message.receivers and self._wants(queue, "submessage"):
                self._push(
                    queue,
                    {
                        "type": "submessage",
                        "msg_type": msg_type,
                        "message_id": message.id,
                        "submessage_id": sub_id,
                        "sender_id": sender_id,
                        "content": content,
                    },
                )
        self.lock.notify_all()
        return sub_id

    def submessages_of(self, message_id: int) -> list[dict[str, Any]]:
        return [dict(sub) for sub in self.submessages.get(message_id, [])]

    def is_widget(self, message_id: int) -> bool:
        return any(s["msg_type"] == "widget" for s in self.submessages.get(message_id, []))

    def strike(self, user: User, message_id: int, key: str) -> int:
        """``user`` ticks (or unticks) a to-do widget's task, as Zulip's web app does."""
        with self.lock:
            message = self.messages[message_id]
            content = json.dumps({"type": "strike", "key": key}, separators=(",", ":"))
            return self._add_submessage(message, user.id, "widget", content, push=True)

    # ------------------------------------------------------------ internals (hold the lock)

    def _receivers(self, stream: str | None, recipients: set[int] | None) -> frozenset[int]:
        if stream is not None:
            return frozenset(self.streams[stream.lower()].subscribers)
        return frozenset(recipients or ())

    def _send(
        self,
        sender: User,
        stream: str | None,
        topic: str,
        content: str,
        recipients: set[int] | None,
    ) -> int:
        marker = "\n[message truncated]"
        content = content.rstrip()  # Zulip strips, then truncates (recorded.json "over-long")
        if len(content) > self.max_message_length:
            content = content[: self.max_message_length - len(marker)] + marker
        if len(topic) > self.max_topic_length:
            topic = topic[: self.max_topic_length - 3] + "..."
        name = self.streams[stream.lower()].name if stream is not None else None
        receivers = self._receivers(stream, recipients) | {sender.id}
        message = StoredMessage(
            id=next(self._ids),
            sender_id=sender.id,
            content=content,
            timestamp=time.time(),
            stream=name,
            topic=topic,
            recipients=frozenset(recipients or ()),
            receivers=receivers,
        )
        self.messages[message.id] = message
        self._widget_submessage(message)
        for queue in list(self.queues.values()):
            if queue.user_id in receivers and self._wants(queue, "message"):
                self._push(
                    queue,
                    {
                        "type": "message",
                        "message": self._shape(message, queue.user_id, raw=True),
                        "flags": self._flags(message, queue.user_id),
                    },
                )
        self.lock.notify_all()
        return message.id

    def _edit(self, message: StoredMessage, content: str, editor: int) -> None:
        original = message.content
        message.content = content.rstrip()
        message.last_edit_timestamp = time.time()
        for queue in list(self.queues.values()):
            if queue.user_id in message.receivers and self._wants(queue, "update_message"):
                event: dict[str, Any] = {
                    "type": "update_message",
                    "user_id": editor,
                    "edit_timestamp": int(message.last_edit_timestamp),
                    "message_id": message.id,
                    "message_ids": [message.id],
                    "flags": self._flags(message, queue.user_id),
                    "rendering_only": False,
                    "orig_content": original,
                    "orig_rendered_content": _render(original),
                    "content": message.content,
                    "rendered_content": _render(message.content),
                    "is_me_message": False,
                }
                if message.stream is not None:
                    event["stream_name"] = message.stream
                    event["stream_id"] = self.streams[message.stream.lower()].id
                self._push(queue, event)
        self.lock.notify_all()

    def _delete(self, message: StoredMessage) -> None:
        del self.messages[message.id]
        for queue in list(self.queues.values()):
            if queue.user_id in message.receivers and self._wants(queue, "delete_message"):
                event: dict[str, Any] = {
                    "type": "delete_message",
                    "message_type": "stream" if message.stream is not None else "private",
                }
                if queue.capabilities.get("bulk_message_deletion"):
                    event["message_ids"] = [message.id]
                else:
                    event["message_id"] = message.id
                if message.stream is not None:
                    event["stream_id"] = self.streams[message.stream.lower()].id
                    event["topic"] = message.topic
                self._push(queue, event)
        self.lock.notify_all()

    def _wants(self, queue: EventQueue, kind: str) -> bool:
        return queue.event_types is None or kind in queue.event_types

    def _push(self, queue: EventQueue, event: dict[str, Any]) -> None:
        event["id"] = queue.next_id
        queue.next_id += 1
        queue.events.append(event)

    def _flags(self, message: StoredMessage, viewer: int) -> list[str]:
        """``read`` for one's own; ``mentioned`` for a direct mention only (zulip-api/README.md:
        a DM does not carry it); the wildcard flags for @**all**, @**topic** and the like."""
        flags = []
        if message.sender_id == viewer:
            flags.append("read")
        if self._mentions(message, viewer):
            flags.append("mentioned")
        wildcard = self._wildcard(message)
        if wildcard:
            flags += [f"{wildcard}_wildcard_mentioned", "wildcard_mentioned"]
        return flags

    def _mentions(self, message: StoredMessage, viewer: int) -> bool:
        """``message`` mentions ``viewer`` directly (``@**Name**``, ``@**Name|id**``, not the
        silent ``@_**Name**``)."""
        user = self.users[viewer]
        name = re.escape(user.full_name)
        pattern = rf"(?<![_\w])@\*\*(?:{name}|{name}\|{user.id}|\|{user.id})\*\*"
        return re.search(pattern, message.content) is not None

    def _wildcard(self, message: StoredMessage) -> str | None:
        """ "stream" or "topic" if a stream message has a (non-silent) wildcard mention."""
        if message.stream is None:
            return None
        found = re.search(
            r"(?<![_\w])@\*\*(all|everyone|stream|channel|topic)\*\*", message.content
        )
        if found is None:
            return None
        return "topic" if found.group(1) == "topic" else "stream"

    def _realm(self) -> dict[str, Any]:
        """/register's "realm" section: the keys recorded.json "register,
        fetch_event_types=[realm] (as cafebot asks)" has, with this fake's settings."""
        return {
            **_REALM,
            "event_queue_longpoll_timeout_seconds": max(1, round(self.heartbeat * 2)),
            "max_message_length": self.max_message_length,
            "max_topic_length": self.max_topic_length,
            "realm_name": self.realm_name,
            "realm_message_content_edit_limit_seconds": round(self.edit_limit),
            "realm_message_content_delete_limit_seconds": round(self.delete_limit),
            "realm_uri": self.url,
            "realm_url": self.url,
        }

    def _stream_dict(self, stream: Stream) -> dict[str, Any]:
        """A stream as /register's never_subscribed lists it (recorded.json)."""
        return {
            "can_remove_subscribers_group": 1,
            "creator_id": stream.creator_id,
            "date_created": 1_700_000_000,
            "description": "",
            "first_message_id": min(
                (m.id for m in self.messages.values() if m.stream == stream.name), default=None
            ),
            "history_public_to_subscribers": True,
            "invite_only": stream.private,
            "is_announcement_only": False,
            "is_web_public": False,
            "message_retention_days": None,
            "name": stream.name,
            "rendered_description": "",
            "stream_id": stream.id,
            "stream_post_policy": 1,
            "stream_weekly_traffic": None,
        }

    def _subscription(self, stream: Stream, *, inherit: bool = True) -> dict[str, Any]:
        """A stream as a subscriber sees it (GET /users/me/subscriptions; /register's
        subscriptions, as recorded). The notification settings that follow the user's own
        are null, except at /register without ``notification_settings_null`` (recorded.json
        "register without notification_settings_null": booleans, and still a null
        ``wildcard_mentions_notify``)."""
        shaped = self._stream_dict(stream)
        follow = None if inherit else False
        shaped.update(
            audible_notifications=follow,
            color="#76ce90",
            desktop_notifications=follow,
            email_notifications=follow,
            in_home_view=True,
            is_muted=False,
            pin_to_top=False,
            push_notifications=follow,
            wildcard_mentions_notify=None,
        )
        return shaped

    def _user_dict(self, user: User, *, me: bool = False) -> dict[str, Any]:
        """A user as GET /users and /users/{id} give it (zulip.yaml, User), or, with ``me``,
        as GET /users/me gives one's own (no bot_type; one's own delivery_email)."""
        shaped: dict[str, Any] = {
            "user_id": user.id,
            "email": self.shown_email(user),
            "delivery_email": user.email if me or not self.hide_emails else None,
            "full_name": user.full_name,
            "is_bot": user.is_bot,
            "is_active": True,
            "is_admin": user.is_admin,
            "is_owner": False,
            "is_guest": False,
            "is_billing_admin": False,
            "role": 200 if user.is_admin else 400,
            "timezone": "",
            "date_joined": "2024-01-01T00:00:00+00:00",
            "avatar_url": f"/user_avatars/1/{user.id}.png?version=1",
            "avatar_version": 1,
        }
        if not me:
            shaped["bot_type"] = 1 if user.is_bot else None
            if user.is_bot:
                shaped["bot_owner_id"] = None
        if not user.is_bot:
            shaped["profile_data"] = {}
        return shaped

    def _shape(self, message: StoredMessage, viewer: int, *, raw: bool) -> dict[str, Any]:
        """A message object as the API gives it to ``viewer``."""
        sender = self.users[message.sender_id]
        shaped: dict[str, Any] = {
            "id": message.id,
            "sender_id": sender.id,
            "sender_full_name": sender.full_name,
            "sender_email": self.shown_email(sender),
            "sender_realm_str": "cafe",
            # recorded.json, "messages read forward from an anchor": a URL even with
            # client_gravatar=true (the recorded server does not use Gravatar).
            "avatar_url": f"/user_avatars/1/{sender.id}.png?version=1",
            "client": "website",
            "content": message.content if raw else _render(message.content),
            "content_type": "text/x-markdown" if raw else "text/html",
            "timestamp": int(message.timestamp),
            "is_me_message": False,
            "reactions": [
                {
                    "emoji_name": emoji,
                    "emoji_code": EMOJI.get(emoji, "2705"),
                    "reaction_type": "unicode_emoji",
                    "user_id": user_id,
                }
                for user_id, emoji in message.reactions
            ],
            "submessages": self.submessages_of(message.id),
            "topic_links": [],
        }
        if message.last_edit_timestamp is not None:
            shaped["last_edit_timestamp"] = int(message.last_edit_timestamp)
        if message.stream is not None:
            stream = self.streams[message.stream.lower()]
            shaped.update(
                type="stream",
                display_recipient=stream.name,
                stream_id=stream.id,
                subject=message.topic,
                recipient_id=1000 + stream.id,
            )
        else:
            shaped.update(
                type="private",
                display_recipient=[
                    {
                        "id": uid,
                        "email": self.shown_email(self.users[uid]),
                        "full_name": self.users[uid].full_name,
                        "is_mirror_dummy": False,
                    }
                    for uid in sorted(message.recipients)
                ],
                subject="",
                recipient_id=5000 + min(message.recipients),
            )
        return shaped


# /register's "realm" section as recorded.json "register, fetch_event_types=[realm] (as cafebot
# asks)" has it, key for key and type for type (the values are this fake's); FakeZulip._realm
# fills in what depends on the fake's settings.
_GROUP_SETTING = {
    "require_system_group": False,
    "allow_internet_group": False,
    "allow_owners_group": False,
    "allow_nobody_group": True,
    "allow_everyone_group": False,
    "default_group_name": "role:members",
    "default_for_system_groups": None,
    "allowed_system_groups": [],
}
_AUTH = {"available": True, "enabled": False}
_ACCOUNT = {"hint": "", "name": "", "text": "", "url_pattern": ""}
_REALM: dict[str, Any] = {
    "development_environment": False,
    "giphy_rating_options": {
        name: {"id": i, "name": name.upper()}
        for i, name in enumerate(["disabled", "y", "g", "pg", "pg-13", "r"])
    },
    "jitsi_server_url": "https://meet.jit.si",
    "max_avatar_file_size_mib": 5,
    "max_file_upload_size_mib": 25,
    "max_icon_file_size_mib": 5,
    "max_logo_file_size_mib": 5,
    "max_stream_description_length": 1024,
    "max_stream_name_length": 60,
    "password_min_guesses": 10000,
    "password_min_length": 6,
    "realm_add_custom_emoji_policy": 1,
    "realm_allow_edit_history": True,
    "realm_allow_message_editing": True,
    "realm_authentication_methods": {
        **{
            name: dict(_AUTH)
            for name in ["Apple", "Dev", "Email", "GitHub", "GitLab", "Google", "OpenID Connect"]
        },
        "SAML": {**_AUTH, "unavailable_reason": "SAML is not configured."},
    },
    "realm_available_video_chat_providers": {
        "disabled": {"id": 0, "name": "None"},
        "jitsi_meet": {"id": 1, "name": "Jitsi Meet"},
    },
    "realm_avatar_changes_disabled": False,
    "realm_bot_creation_policy": 1,
    "realm_bot_domain": "zulip.example.org",
    "realm_can_access_all_users_group": 2,
    "realm_can_create_private_channel_group": 3,
    "realm_can_create_public_channel_group": 3,
    "realm_create_multiuse_invite_group": 4,
    "realm_create_private_stream_policy": 1,
    "realm_create_public_stream_policy": 1,
    "realm_create_web_public_stream_policy": 7,
    "realm_date_created": 1_700_000_000,
    "realm_default_code_block_language": "",
    "realm_default_external_accounts": {"github": dict(_ACCOUNT), "twitter": dict(_ACCOUNT)},
    "realm_default_language": "en",
    "realm_delete_own_message_policy": 5,
    "realm_description": "",
    "realm_digest_emails_enabled": False,
    "realm_digest_weekday": 1,
    "realm_disallow_disposable_email_addresses": True,
    "realm_edit_topic_policy": 5,
    "realm_email_auth_enabled": True,
    "realm_email_changes_disabled": False,
    "realm_emails_restricted_to_domains": False,
    "realm_enable_guest_user_indicator": True,
    "realm_enable_read_receipts": True,
    "realm_enable_spectator_access": False,
    "realm_giphy_rating": 2,
    "realm_icon_source": "G",
    "realm_icon_url": "https://secure.gravatar.com/avatar/0?d=identicon",
    "realm_inline_image_preview": True,
    "realm_inline_url_embed_preview": False,
    "realm_invite_required": True,
    "realm_invite_to_realm_policy": 1,
    "realm_invite_to_stream_policy": 1,
    "realm_is_zephyr_mirror_realm": False,
    "realm_jitsi_server_url": None,
    "realm_logo_source": "D",
    "realm_logo_url": "/static/images/logo/zulip-org-logo.svg?version=0",
    "realm_mandatory_topics": False,
    "realm_message_content_allowed_in_email_notifications": True,
    "realm_message_retention_days": -1,
    "realm_move_messages_between_streams_limit_seconds": 604800,
    "realm_move_messages_between_streams_policy": 1,
    "realm_move_messages_within_stream_limit_seconds": 259200,
    "realm_name_changes_disabled": False,
    "realm_new_stream_announcements_stream_id": 1,
    "realm_night_logo_source": "D",
    "realm_night_logo_url": "/static/images/logo/zulip-org-logo.svg?version=0",
    "realm_org_type": 0,
    "realm_password_auth_enabled": True,
    "realm_plan_type": 1,
    "realm_presence_disabled": False,
    "realm_private_message_policy": 1,
    "realm_push_notifications_enabled": False,
    "realm_push_notifications_enabled_end_timestamp": None,
    "realm_require_unique_names": False,
    "realm_send_welcome_emails": True,
    "realm_signup_announcements_stream_id": 1,
    "realm_upload_quota_mib": None,
    "realm_user_group_edit_policy": 1,
    "realm_video_chat_provider": 1,
    "realm_waiting_period_threshold": 0,
    "realm_want_advertise_in_communities_directory": False,
    "realm_wildcard_mention_policy": 5,
    "realm_zulip_update_announcements_stream_id": 1,
    "server_avatar_changes_disabled": False,
    "server_emoji_data_url": "/static/generated/emoji/emoji_api.json",
    "server_generation": 1_700_000_000,
    "server_inline_image_preview": True,
    "server_inline_url_embed_preview": True,
    "server_jitsi_server_url": "https://meet.jit.si",
    "server_name_changes_disabled": False,
    "server_needs_upgrade": False,
    "server_presence_offline_threshold_seconds": 140,
    "server_presence_ping_interval_seconds": 60,
    "server_supported_permission_settings": {
        section: {name: {**_GROUP_SETTING, "id_field_name": f"{name}_id"} for name in names}
        for section, names in {
            "group": ["can_mention_group"],
            "realm": [
                "can_access_all_users_group",
                "can_create_private_channel_group",
                "can_create_public_channel_group",
                "create_multiuse_invite_group",
            ],
            "stream": ["can_remove_subscribers_group"],
        }.items()
    },
    "server_typing_started_expiry_period_milliseconds": 45000,
    "server_typing_started_wait_period_milliseconds": 10000,
    "server_typing_stopped_wait_period_milliseconds": 5000,
    "server_web_public_streams_enabled": False,
    "settings_send_digest_emails": True,
    "upgrade_text_for_wide_organization_logo": "",
    "zulip_plan_is_not_limited": True,
}


def _render(content: str) -> str:
    return "".join(f"<p>{html.escape(p)}</p>" for p in content.split("\n\n"))


class _ApiError(Exception):
    def __init__(self, status: int, msg: str, code: str = "BAD_REQUEST", **extra: Any) -> None:
        super().__init__(msg)
        self.status = status
        self.body = {"result": "error", "msg": msg, "code": code, **extra}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def do_DELETE(self) -> None:
        self._serve("DELETE")

    # ------------------------------------------------------------ plumbing

    def _serve(self, method: str) -> None:
        fake = self.server.fake
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body, files = _form_body(self.headers.get("Content-Type", ""), raw)
        params = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        params.update({k: v[-1] for k, v in parse_qs(body, keep_blank_values=True).items()})
        path = url.path.removeprefix("/api/v1/").removeprefix("/json/").strip("/")
        record = Request(time.time(), method, path, 0, params=params, files=files)
        with fake.lock:
            fake.requests.append(record)
        try:
            cut = self._respond(method, path, params, record)
        except (BrokenPipeError, ConnectionResetError):
            cut = True
        if cut:  # close the connection without an answer
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    def _respond(self, method: str, path: str, params: dict[str, str], record: Request) -> bool:
        """Answer the request, or return True to cut the connection instead."""
        fake = self.server.fake
        if time.time() < fake.outage_until:
            record.status = "outage"
            return True
        fault = self._take_fault(method, path)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "drop":
            record.status = "dropped"
            return True
        if fault is not None and fault.kind == "status":
            record.status = fault.status
            record.fault = fault.kind
            if fault.status == 502:
                self._send(502, b"<html><body>502 Bad Gateway</body></html>", "text/html")
            else:
                self._json(fault.status, {"result": "error", "msg": "Internal server error"})
            return False
        status, answer, headers = self._answer(method, path, params, record, fault)
        record.status = status
        record.answer, record.headers = answer, dict(headers)
        if fault is not None:
            record.fault = fault.kind
        if fault is not None and fault.kind == "drop_after":
            record.status = "dropped"
            return True
        self._json(status, answer, headers)
        return False

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.fake._untrack(self.connection)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        fake = self.server.fake
        with fake.lock:
            for fault in fake.faults:
                wanted = fault.method is None or fault.method == method
                if fault.times > 0 and path.startswith(fault.path) and wanted:
                    fault.times -= 1
                    if fault.times == 0:
                        fake.faults.remove(fault)
                    return fault
        return None

    def _send(
        self, status: int, payload: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        lines = [f"HTTP/1.1 {status} {self.responses.get(status, ('',))[0]}"]
        lines += [f"Content-Type: {ctype}", f"Content-Length: {len(payload)}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        self.wfile.flush()

    def _json(
        self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._send(status, json.dumps(body).encode(), "application/json", headers)

    def _answer(
        self,
        method: str,
        path: str,
        params: dict[str, str],
        record: Request,
        fault: Fault | None,
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        fake = self.server.fake
        if path == "server_settings":
            return (
                200,
                _ok(
                    zulip_version=ZULIP_VERSION,
                    zulip_feature_level=FEATURE_LEVEL,
                    realm_uri=fake.url,
                    realm_name=fake.realm_name,
                    push_notifications_enabled=False,
                    authentication_methods={"password": True},
                ),
                {},
            )
        user = self._authenticate()
        if user is None:
            # recorded.json, "wrong api key": 401, code UNAUTHORIZED
            return 401, {"result": "error", "msg": "Invalid API key", "code": "UNAUTHORIZED"}, {}
        record.user_id = user.id
        headers, retry_after = self._rate(user, "events" if path == "events" else "api")
        if fault is not None and fault.kind == "limit":
            retry_after = fault.retry_after
        if retry_after is not None:
            # recorded.json, "rate limit hit at request 201": a fractional Retry-After,
            # the same number as the body's retry-after, and no request left.
            headers["Retry-After"] = str(float(retry_after))
            for name in headers:
                if name.lower() == "x-ratelimit-remaining":
                    headers[name] = "0"
            body = {
                "result": "error",
                "msg": "API usage exceeded rate limit",
                "code": "RATE_LIMIT_HIT",
                "retry-after": retry_after,
            }
            return 429, body, headers
        if fault is not None and fault.kind == "bad_queue" and path == "events":
            queue_id = params.get("queue_id", "")
            with fake.lock:
                fake.queues.pop(queue_id, None)
            body = {
                "result": "error",
                "msg": f"Bad event queue ID: {queue_id}",
                "code": "BAD_EVENT_QUEUE_ID",
                "queue_id": queue_id,
            }
            return 400, body, headers
        try:
            return 200, _Api(fake, user, params, record.files).route(method, path), headers
        except _ApiError as exc:
            return exc.status, exc.body, headers

    def _authenticate(self) -> User | None:
        auth = self.headers.get("Authorization", "")
        if not auth.startswith("Basic "):
            return None
        try:
            email, _, key = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
        fake = self.server.fake
        with fake.lock:
            for user in fake.users.values():
                if user.email == email and user.api_key == key:
                    return user
        return None

    def _rate(self, user: User, bucket: str) -> tuple[dict[str, str], float | None]:
        """The rate-limit headers, and the wait if the request is over the limit.

        GET /events is limited apart from the rest of the API and spells its headers
        ``X-Ratelimit-*`` (zulip-api/README.md, "Other facts"); the reset is a whole
        number of seconds since the epoch (recorded.json, "an ordinary answer's
        rate-limit headers").
        """
        fake = self.server.fake
        now = time.time()
        with fake.lock:
            times = fake._rate.setdefault((user.id, bucket), deque())
            while times and times[0] <= now - fake.rate_window:
                times.popleft()
            retry_after = None
            if len(times) >= fake.rate_limit:
                retry_after = times[0] + fake.rate_window - now
            else:
                times.append(now)
            remaining = max(0, fake.rate_limit - len(times))
            reset = (times[-1] if times else now) + fake.rate_window
        prefix = "X-Ratelimit" if bucket == "events" else "X-RateLimit"
        headers = {
            f"{prefix}-Limit": str(fake.rate_limit),
            f"{prefix}-Remaining": str(remaining),
            f"{prefix}-Reset": str(int(reset)),
        }
        return headers, retry_after


def _ok(**fields: Any) -> dict[str, Any]:
    return {"result": "success", "msg": "", **fields}


def _loads(value: str | None, default: Any = None) -> Any:
    if value is None:
        return default
    try:
        return json.loads(value)
    except ValueError:
        return value


def _bool(value: str | None, default: bool) -> bool:
    if value is None:
        return default
    return value.lower() in ("true", "1")


class _Api:
    """The endpoints, for one authenticated user."""

    def __init__(
        self,
        fake: FakeZulip,
        user: User,
        params: dict[str, str],
        files: list[UploadedFile] | None = None,
    ) -> None:
        self.fake = fake
        self.user = user
        self.params = params
        self.files = files or []

    def route(self, method: str, path: str) -> dict[str, Any]:
        parts = path.split("/")
        if path == "users/me" and method == "GET":
            return _ok(**self.fake._user_dict(self.user, me=True))
        if path == "users" and method == "GET":
            with self.fake.lock:
                return _ok(members=[self.fake._user_dict(u) for u in self.fake.users.values()])
        if parts[0] == "users" and len(parts) == 2 and parts[1].isdigit():
            with self.fake.lock:
                found = self.fake.users.get(int(parts[1]))
                if found is None:
                    raise _ApiError(400, "No such user", "BAD_REQUEST")
                return _ok(user=self.fake._user_dict(found))
        if path == "users/me/subscriptions":
            return self.subscriptions(method)
        if path == "get_stream_id":
            with self.fake.lock:
                stream = self.fake.streams.get(self.params.get("stream", "").lower())
                if stream is None or (stream.private and self.user.id not in stream.subscribers):
                    raise _ApiError(400, f"Invalid channel name '{self.params.get('stream')}'")
                return _ok(stream_id=stream.id)
        if path == "register" and method == "POST":
            return self.register()
        if path == "events":
            return self.events(method)
        if path == "messages" and method == "POST":
            return self.send()
        if path == "messages" and method == "GET":
            return self.get_messages()
        if parts[0] == "scheduled_messages":
            return self.scheduled_messages(method, parts[1:])
        if path == "user_uploads" and method == "POST":
            return _upload(self.fake, self.user, self.files)
        if parts[0] == "messages" and len(parts) >= 2 and parts[1].isdigit():
            message_id = int(parts[1])
            if len(parts) == 3 and parts[2] == "reactions":
                return self.react(method, message_id)
            return self.message(method, message_id)
        raise _ApiError(404, f"Unknown endpoint {method} {path}", "BAD_REQUEST")

    # ------------------------------------------------------------ endpoints

    def subscriptions(self, method: str) -> dict[str, Any]:
        fake = self.fake
        with fake.lock:
            if method == "GET":
                return _ok(
                    subscriptions=[
                        fake._subscription(s)
                        for s in fake.streams.values()
                        if self.user.id in s.subscribers
                    ]
                )
            if fake.refuse_subscriptions:
                raise _ApiError(400, "Insufficient permission", "BAD_REQUEST")
            wanted = [s["name"] for s in _loads(self.params.get("subscriptions"), [])]
            fatal = _bool(self.params.get("authorization_errors_fatal"), True)
            subscribed, already, unauthorized = [], [], []
            for name in wanted:
                stream = fake.streams.get(name.lower())
                if stream is None:
                    stream = Stream(next(fake._stream_ids), name, creator_id=self.user.id)
                    fake.streams[name.lower()] = stream
                if stream.private and self.user.id not in stream.subscribers:
                    if fatal:
                        raise _ApiError(400, f"Unable to access channel ({name}).")
                    unauthorized.append(name)
                elif self.user.id in stream.subscribers:
                    already.append(name)
                else:
                    stream.subscribers.add(self.user.id)
                    subscribed.append(name)
            email = fake.shown_email(self.user)
            answer = _ok(
                subscribed={email: subscribed} if subscribed else {},
                already_subscribed={email: already} if already else {},
            )
            if unauthorized:
                answer["unauthorized"] = unauthorized
            return answer

    def register(self) -> dict[str, Any]:
        """POST /register: the keys of each fetched section, and only those.

        ``fetch_event_types`` defaults to ``event_types`` (all sections when neither is
        given). recorded.json: as cafebot asks ("realm" only: no ``max_message_id``), with
        "message" fetched (``max_message_id``), and without ``client_capabilities`` (a 200,
        with the "message" and "subscription" sections).
        """
        fake = self.fake
        capabilities = _loads(self.params.get("client_capabilities"), None)
        types = _loads(self.params.get("event_types"), None)
        fetch = _loads(self.params.get("fetch_event_types"), None)
        with fake.lock:
            queue = EventQueue(
                id=str(uuid.uuid4()),  # as recorded ("events after a mention")
                user_id=self.user.id,
                event_types=frozenset(types) if types is not None else None,
                capabilities=capabilities or {},
            )
            fake.queues[queue.id] = queue
            answer = _ok(
                queue_id=queue.id,
                last_event_id=-1,
                zulip_version=ZULIP_VERSION,
                zulip_feature_level=FEATURE_LEVEL,
                zulip_merge_base=ZULIP_VERSION,
            )
            wanted = fetch if fetch is not None else types
            if wanted is None or "message" in wanted:
                # zulip.yaml, /register: "max_message_id: Present if `message` is present in
                # `fetch_event_types`" (recorded.json: absent as cafebot registers).
                answer["max_message_id"] = max(
                    (m.id for m in fake.messages.values() if self.user.id in m.receivers),
                    default=-1,
                )
            if wanted is None or "subscription" in wanted:
                answer.update(
                    subscriptions=[
                        fake._subscription(
                            s, inherit=bool(queue.capabilities.get("notification_settings_null"))
                        )
                        for s in fake.streams.values()
                        if self.user.id in s.subscribers
                    ],
                    unsubscribed=[],
                    never_subscribed=[
                        fake._stream_dict(s)
                        for s in fake.streams.values()
                        if self.user.id not in s.subscribers and not s.private
                    ],
                )
            if wanted is None or "realm" in wanted:
                answer.update(fake._realm())
            return answer

    def events(self, method: str) -> dict[str, Any]:
        fake = self.fake
        queue_id = self.params.get("queue_id", "")
        with fake.lock:
            queue = fake.queues.get(queue_id)
            if queue is not None and time.time() - queue.last_poll > fake.queue_timeout:
                del fake.queues[queue_id]
                queue = None
            if queue is None or queue.user_id != self.user.id:
                raise _ApiError(
                    400, f"Bad event queue ID: {queue_id}", "BAD_EVENT_QUEUE_ID", queue_id=queue_id
                )
            if method == "DELETE":
                del fake.queues[queue_id]
                fake.lock.notify_all()
                return _ok()
            last = int(self.params.get("last_event_id", "-1"))
            queue.events = [e for e in queue.events if e["id"] > last]
            dont_block = _bool(self.params.get("dont_block"), False)
            deadline = time.time() + fake.heartbeat
            while not queue.events and not dont_block:
                left = deadline - time.time()
                if left <= 0:
                    fake._push(queue, {"type": "heartbeat"})
                    break
                fake.lock.wait(min(left, 0.2))
                if fake.queues.get(queue_id) is not queue:
                    raise _ApiError(
                        400,
                        f"Bad event queue ID: {queue_id}",
                        "BAD_EVENT_QUEUE_ID",
                        queue_id=queue_id,
                    )
            queue.last_poll = time.time()
            for event in queue.events:
                if event["type"] == "message":
                    fake.delivered.setdefault(event["message"]["id"], queue.last_poll)
            # zulip.yaml, GET /events; recorded.json "events after a mention": no queue_id.
            return _ok(events=list(queue.events))

    def send(self) -> dict[str, Any]:
        fake = self.fake
        kind = self.params.get("type", "stream")
        content = self.params.get("content", "")
        if not content.strip():
            raise _ApiError(400, "Message must not be empty")
        with fake.lock:
            if kind in ("stream", "channel"):
                to = _loads(self.params.get("to"))
                stream = (
                    next((s for s in fake.streams.values() if s.id == to), None)
                    if isinstance(to, int)
                    else fake.streams.get(str(to).lower())
                )
                if stream is None:
                    raise _ApiError(400, f"Channel '{to}' does not exist", "STREAM_DOES_NOT_EXIST")
                topic = self.params.get("topic", self.params.get("subject", ""))
                if not topic:
                    raise _ApiError(400, "Topic can't be empty!")
                started = not any(
                    m.sender_id == self.user.id
                    and m.stream == stream.name
                    and m.topic.lower() == topic[: fake.max_topic_length].lower()
                    for m in fake.messages.values()
                )
                message_id = fake._send(self.user, stream.name, topic, content, None)
                if started and not self.user.is_bot:
                    # zulip.yaml, POST /messages: present only if the sender's visibility
                    # policy for the topic changed; by default a member follows (3) the
                    # topics they start (recorded.json "send a stream message" has it,
                    # the bot's "over-long message" and "todo widget message" do not).
                    return _ok(id=message_id, automatic_new_visibility_policy=3)
            else:
                to = _loads(self.params.get("to"))
                if isinstance(to, str):
                    to = [t.strip() for t in to.split(",")]
                ids = set()
                for who in to:
                    if isinstance(who, int):
                        ids.add(who)
                    else:
                        match = [
                            u.id
                            for u in fake.users.values()
                            if who in (u.email, fake.shown_email(u))
                        ]
                        if not match:
                            raise _ApiError(400, f"Invalid email '{who}'")
                        ids.add(match[0])
                if any(i not in fake.users for i in ids):
                    raise _ApiError(400, "Invalid user ID")
                message_id = fake._send(self.user, None, "", content, ids | {self.user.id})
            return _ok(id=message_id)

    def get_messages(self) -> dict[str, Any]:
        """GET /messages, as Zulip computes the answer (zerver's post_process_limited_query).

        ``anchor``: "newest" is LARGER_THAN_MAX_MESSAGE_ID, "oldest" 0, and the answer says
        the number (zulip.yaml: an integer; recorded.json "messages anchor=newest").
        ``found_oldest`` is "anchored at oldest, or fewer than num_before before it";
        ``found_newest`` likewise with num_after (so num_after=0 from a message id is never
        found_newest); ``found_anchor`` only when the anchor message itself is included.
        """
        fake = self.fake
        before = int(self.params.get("num_before", "0"))
        after = int(self.params.get("num_after", "0"))
        if before + after > FETCH_CAP:
            raise _ApiError(400, f"Too many messages requested (maximum {FETCH_CAP}).")
        raw = not _bool(self.params.get("apply_markdown"), True)
        include = _bool(self.params.get("include_anchor"), True)
        narrow = _loads(self.params.get("narrow"), []) or []
        anchor_raw = _loads(self.params.get("anchor"), "newest")
        with fake.lock:
            terms = [self._term(t) for t in narrow]
            by_stream = any(op in ("stream", "channel") for op, _ in terms)
            found = sorted(
                (
                    m
                    for m in fake.messages.values()
                    if (self._accessible(m) if by_stream else self._visible(m))
                    and self._matches(m, terms)
                ),
                key=lambda m: m.id,
            )
            to_right = anchor_raw == "newest"
            to_left = anchor_raw == "oldest"
            if to_right:
                anchor = LARGER_THAN_MAX_MESSAGE_ID
            elif to_left or anchor_raw == "first_unread":
                anchor = 0
            else:
                anchor = int(anchor_raw)
            older = [m for m in found if m.id < anchor]
            newer = [m for m in found if m.id > anchor]
            at = [m for m in found if m.id == anchor and include]
            older = older[-before:] if before else []
            newer = newer[:after] if after else []
            picked = older + at + newer
            return _ok(
                messages=[
                    {**fake._shape(m, self.user.id, raw=raw), "flags": fake._flags(m, self.user.id)}
                    for m in picked
                ],
                anchor=anchor,
                found_anchor=len(at) == 1,
                found_oldest=to_left or len(older) < before,
                found_newest=to_right or len(newer) < after,
                history_limited=False,
            )

    def _visible(self, message: StoredMessage) -> bool:
        """What an unnarrowed fetch returns.

        For a person: what they received. For a bot (zulip-api/README.md, "Other facts"):
        stream messages that mention it (even in streams it is not subscribed to),
        wildcard mentions, DMs and group DMs; and its own messages, whose sender Zulip
        always gives a copy.
        """
        fake = self.fake
        me = self.user.id
        if not self.user.is_bot:
            return me in message.receivers
        if message.sender_id == me:
            return True
        if message.stream is None:
            return me in message.recipients
        if fake._mentions(message, me):
            return True
        return fake._wildcard(message) is not None and me in message.receivers

    def _accessible(self, message: StoredMessage) -> bool:
        """Received, or in a public stream (what a reaction or an edit may reach)."""
        if message.stream is not None and not self.fake.streams[message.stream.lower()].private:
            return True
        return self._visible(message)

    def _term(self, term: Any) -> tuple[str, Any]:
        """A narrow term as (operator, operand); BAD_NARROW for an unknown stream or operator
        (recorded.json, "unknown stream in narrow": with ``desc``)."""
        if isinstance(term, list):
            operator, operand = term[0], term[1]
        else:
            operator, operand = term["operator"], term["operand"]
        known = ("stream", "channel", "topic", "sender", "dm", "pm-with", "is", "id")
        if operator not in known:
            desc = f"unknown operator {operator}"
            raise _ApiError(400, f"Invalid narrow operator: {desc}", "BAD_NARROW", desc=desc)
        if operator in ("stream", "channel"):
            stream = (
                next((s for s in self.fake.streams.values() if s.id == operand), None)
                if isinstance(operand, int)
                else self.fake.streams.get(str(operand).lower())
            )
            if stream is None:
                desc = f"unknown channel {operand}"
                raise _ApiError(400, f"Invalid narrow operator: {desc}", "BAD_NARROW", desc=desc)
            operand = stream.name
        return operator, operand

    def _matches(self, message: StoredMessage, terms: list[tuple[str, Any]]) -> bool:
        fake = self.fake
        for operator, operand in terms:
            if operator in ("stream", "channel"):
                if message.stream is None or message.stream.lower() != str(operand).lower():
                    return False
            elif operator == "topic":
                if message.stream is None or message.topic.lower() != str(operand).lower():
                    return False
            elif operator == "sender":
                sender = fake.users[message.sender_id]
                if operand not in (sender.id, sender.email, fake.shown_email(sender)):
                    return False
            elif operator in ("dm", "pm-with"):
                if message.stream is not None:
                    return False
                wanted = set(operand) if isinstance(operand, list) else set(str(operand).split(","))
                ids = {
                    w
                    if isinstance(w, int)
                    else next(
                        (u.id for u in fake.users.values() if w in (u.email, fake.shown_email(u))),
                        -1,
                    )
                    for w in wanted
                }
                if ids | {self.user.id} != set(message.recipients) | {self.user.id}:
                    return False
            elif operator == "is":
                if operand in ("dm", "private") and message.stream is not None:
                    return False
                if operand == "mentioned" and "mentioned" not in fake._flags(message, self.user.id):
                    return False
            elif operator == "id" and message.id != int(operand):
                return False
        return True

    def message(self, method: str, message_id: int) -> dict[str, Any]:
        fake = self.fake
        with fake.lock:
            message = fake.messages.get(message_id)
            if message is None or not self._accessible(message):
                raise _ApiError(400, "Invalid message(s)")
            if method == "GET":
                raw = not _bool(self.params.get("apply_markdown"), True)
                return _ok(
                    message={
                        **fake._shape(message, self.user.id, raw=raw),
                        "flags": fake._flags(message, self.user.id),
                    },
                    raw_content=message.content,
                )
            if method == "PATCH":
                if message.sender_id != self.user.id:
                    raise _ApiError(400, "You don't have permission to edit this message")
                if "content" in self.params:
                    if fake.is_widget(message.id):
                        raise _ApiError(400, "Widgets cannot be edited.")
                    if time.time() - message.timestamp > fake.edit_limit:
                        # zulip.yaml, PATCH /messages/{message_id}, 400: this very text
                        raise _ApiError(400, "The time limit for editing this message has past")
                    fake._edit(message, self.params["content"], self.user.id)
                return _ok()
            if method == "DELETE":
                if message.sender_id != self.user.id and not self.user.is_admin:
                    raise _ApiError(400, "You don't have permission to delete this message")
                old = time.time() - message.timestamp > fake.delete_limit
                if old and not self.user.is_admin:
                    # zulip-api/README.md: members delete their own *fresh* messages (600 s)
                    raise _ApiError(400, "The time limit for deleting this message has passed")
                fake._delete(message)
                return _ok()
        raise _ApiError(405, "Method not allowed")

    def react(self, method: str, message_id: int) -> dict[str, Any]:
        fake = self.fake
        emoji = self.params.get("emoji_name", "")
        with fake.lock:
            message = fake.messages.get(message_id)
            if message is None or not self._accessible(message):
                raise _ApiError(400, "Invalid message(s)")
            if emoji not in EMOJI:
                # recorded.json, "reaction white_check_mark (refused)"
                raise _ApiError(400, f"Emoji '{emoji}' does not exist")
            key = (self.user.id, emoji)
            if method == "POST":
                if key in message.reactions:
                    raise _ApiError(400, "Reaction already exists.", "REACTION_ALREADY_EXISTS")
                message.reactions.append(key)
                return _ok()
            if method == "DELETE":
                if key not in message.reactions:
                    raise _ApiError(400, "Reaction doesn't exist.", "REACTION_DOES_NOT_EXIST")
                message.reactions.remove(key)
                return _ok()
        raise _ApiError(405, "Method not allowed")

    # ------------------------------------------------------------ scheduled messages

    def scheduled_messages(self, method: str, rest: list[str]) -> dict[str, Any]:
        fake = self.fake
        level = FEATURE_LEVEL
        if level < 173 or (not rest and method == "POST" and level < 179):
            raise _ApiError(404, "Not Found", "BAD_REQUEST")  # no such endpoint yet
        with fake.lock:
            if not rest and method == "GET":
                return _ok(
                    scheduled_messages=[
                        self._scheduled_dict(r) for r in fake.scheduled_of(self.user)
                    ]
                )
            if not rest and method == "POST":
                return self._create_scheduled()
            if len(rest) == 1 and rest[0].isdigit():
                record = fake.scheduled.get(int(rest[0]))
                if record is None or record.sender_id != self.user.id:
                    raise _ApiError(404, "Scheduled message does not exist", "BAD_REQUEST")
                if method == "PATCH":
                    return self._edit_scheduled(record)
                if method == "DELETE":
                    del fake.scheduled[record.id]  # a delivered one's record too: it stays sent
                    return _ok()
        raise _ApiError(405, "Method not allowed")

    def _scheduled_dict(self, record: ScheduledRecord) -> dict[str, Any]:
        return {
            "scheduled_message_id": record.id,
            "type": "stream",
            "to": record.stream_id,
            "topic": record.topic,
            "content": record.content,
            "rendered_content": _render(record.content),
            "scheduled_delivery_timestamp": record.timestamp,
            "failed": record.failed,
        }

    def _required(self, name: str) -> str:
        if name not in self.params:
            raise _ApiError(
                400, f"Missing '{name}' argument", "REQUEST_VARIABLE_MISSING", var_name=name
            )
        return self.params[name]

    def _future_timestamp(self, raw: str) -> int:
        value = _loads(raw)
        if not isinstance(value, int) or isinstance(value, bool):
            raise _ApiError(400, "scheduled_delivery_timestamp is not an integer")
        if value <= time.time():
            raise _ApiError(400, "Scheduled delivery time must be in the future.")
        return value

    def _scheduled_stream(self, raw: str) -> int:
        to = _loads(raw)
        if isinstance(to, list) and len(to) == 1:
            to = to[0]
        if not isinstance(to, int) or isinstance(to, bool):
            raise _ApiError(400, "Invalid data type for channel ID")
        if not any(st.id == to for st in self.fake.streams.values()):
            raise _ApiError(
                400, f"Channel with ID '{to}' does not exist", "STREAM_DOES_NOT_EXIST", stream_id=to
            )
        return to

    def _checked_content(self, content: str) -> str:
        if not content.strip():
            raise _ApiError(400, "Message must not be empty")
        marker = "\n[message truncated]"
        if len(content) > self.fake.max_message_length:
            content = content[: self.fake.max_message_length - len(marker)] + marker
        return content.rstrip()

    def _checked_topic(self, topic: str) -> str:
        if not topic.strip():
            raise _ApiError(400, "Topic can't be empty!")
        if len(topic) > self.fake.max_topic_length:
            topic = topic[: self.fake.max_topic_length - 3] + "..."
        return topic

    def _create_scheduled(self) -> dict[str, Any]:
        kind = self._required("type")
        if kind not in ("stream", "channel", "direct", "private"):
            raise _ApiError(400, "Invalid type")
        to = self._required("to")
        content = self._required("content")
        when = self._required("scheduled_delivery_timestamp")
        if kind in ("direct", "private"):
            raise _ApiError(400, "The fake schedules channel messages only")
        record = ScheduledRecord(
            id=next(self.fake._scheduled_ids),
            sender_id=self.user.id,
            stream_id=self._scheduled_stream(to),
            topic=self._checked_topic(self.params.get("topic", "")),
            content=self._checked_content(content),
            timestamp=self._future_timestamp(when),
        )
        self.fake.scheduled[record.id] = record
        return _ok(scheduled_message_id=record.id)

    def _edit_scheduled(self, record: ScheduledRecord) -> dict[str, Any]:
        changes = {"type", "to", "topic", "content", "scheduled_delivery_timestamp"}
        if not changes & set(self.params):
            raise _ApiError(400, "Nothing to change")
        if record.delivered:
            raise _ApiError(400, "Scheduled message was already sent")
        when = self.params.get("scheduled_delivery_timestamp")
        if record.failed and when is None:
            raise _ApiError(400, "Scheduled delivery time must be in the future.")
        stream_id = self._scheduled_stream(self.params["to"]) if "to" in self.params else None
        topic = self._checked_topic(self.params["topic"]) if "topic" in self.params else None
        content = (
            self._checked_content(self.params["content"]) if "content" in self.params else None
        )
        timestamp = self._future_timestamp(when) if when is not None else None
        if stream_id is not None:
            record.stream_id = stream_id
        if topic is not None:
            record.topic = topic
        if content is not None:
            record.content = content
        if timestamp is not None:
            record.timestamp = timestamp
        record.failed, record.failure_message = False, None
        return _ok()


# ====================================================================== a test organisation


@dataclass
class Org:
    """A small organisation: the bot, three people, another bot, and the meeting's stream."""

    fake: FakeZulip
    bot: User
    ada: User
    bob: User
    olga: User  # an organiser, listed by email in the config
    other_bot: User
    stream: str = "jupyterhub"
    topic: str = "Collaboration Cafe"

    @classmethod
    def create(cls, fake: FakeZulip) -> Org:
        bot = fake.add_user("cafe", "cafe-bot@zulip.example.org", is_bot=True)
        ada = fake.add_user("Ada Lovelace", "ada@example.org")
        bob = fake.add_user("Bob Builder", "bob@example.org")
        olga = fake.add_user("Olga Organiser", "olga@example.org")
        other = fake.add_user("Other Bot", "other-bot@zulip.example.org", is_bot=True)
        fake.add_stream("jupyterhub", subscribers=[ada, bob, olga, other])
        return cls(fake, bot, ada, bob, olga, other)

    def command(self, text: str, user: User | None = None, *, topic: str | None = None) -> int:
        """``user`` (Ada by default) mentions the bot in the stream."""
        return self.fake.post(
            user or self.ada, self.stream, topic or self.topic, f"@**{self.bot.full_name}** {text}"
        )

    def replies(self) -> list[StoredMessage]:
        return self.fake.sent_by(self.bot)

    def acked(self, message_id: int) -> bool:
        return (self.bot.id, "check") in self.fake.reactions(message_id)
