"""The outgoing queue of ``cafebot run``: replies, reactions, posts and edits, paced.

One thread sends everything, in order, within the rate limit the server
reports (:class:`~cafebot.edge.pacing.RateLimiter`). Replies and posts are written
to the ``outgoing_message`` table before they are sent, so a crash does not
lose them: a command's reply in the command's own transaction
(:meth:`Outbox.stage_reply`), so the two are kept together or not at all. A
post whose response was lost (a dropped connection, a timeout, a 5xx), and any
post an earlier run left pending, is looked for among the bot's own messages in
that conversation before it is posted again; the Zulip ids of confirmed posts
tell two posts of the same text apart. (Confirmations are stored a few to a
transaction: one lost with a crash costs only that look-up.) Reactions are
idempotent and simply retried; they are not kept across a crash. When the queue
is throttled, the acknowledgements waiting for one topic become one reply.

The thread that handles commands sends its own answer when nothing is queued or
being sent and the rate limit leaves room (:meth:`Outbox.send_here`): one try,
at once, rather than a hand-over to the sender thread (which, with one
interpreter lock, waits for the handling thread to pause). Whatever that try
cannot finish (a 429, a dropped connection) goes to the sender, which retries.
"""

from __future__ import annotations

import collections
import datetime as dt
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from cafebot.commands.registry import ACK, REACTION_GLOSS
from cafebot.core.chat import EditNotAllowed, Message, SendFailed
from cafebot.core.services import Services
from cafebot.core.text import silence_mentions
from cafebot.edge.pacing import (
    Api,
    ApiError,
    Backoff,
    RateLimited,
    RateLimiter,
    Stopped,
    Stopper,
    Transient,
    Tuning,
    ZulipError,
)
from cafebot.notes.render import split_message
from cafebot.storage.models import OutgoingMessage, OutgoingState

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger("cafebot.zulip")

# Until /register says (zulip.yaml, /register: max_message_length, max_topic_length):
# Zulip's defaults, as recorded (recorded.json, "over-long message": the content is stored
# cut to 10,000 characters ending "[message truncated]", the topic cut to 60 ending "...").
DEFAULT_MAX_MESSAGE_LENGTH = 10_000
DEFAULT_MAX_TOPIC_LENGTH = 60
MARKS_PER_COMMIT = 50  # how many sent posts are recorded in one transaction, at most


@dataclass(frozen=True)
class Target:
    """Where a post goes: a stream topic, or a direct message to these users."""

    stream: str | None = None
    topic: str | None = None
    recipients: tuple[int, ...] = ()

    @classmethod
    def of(cls, message: Message, bot_id: int) -> Target:
        if message.stream is not None:
            return cls(stream=message.stream, topic=message.topic or "")
        others = sorted(set(message.recipient_ids) - {bot_id}) or [message.sender_id]
        return cls(recipients=tuple(others))

    def request(self) -> dict[str, Any]:
        # zulip.yaml, POST /messages: `to` is a channel's name (or id) for "stream", a list
        # of user ids for "private" (the older names of "channel" and "direct", accepted at
        # feature level 266: recorded.json, "send a stream message").
        if self.stream is not None:
            return {"type": "stream", "to": self.stream, "topic": self.topic or ""}
        return {"type": "private", "to": list(self.recipients)}

    def narrow(self, bot_id: int) -> list[dict[str, Any]]:
        # zulip.com/api/construct-narrow: operators as objects; "sender" takes a user id;
        # "pm-with" is the legacy name of "dm", still accepted. An unknown stream is a 400
        # (recorded.json, "unknown stream in narrow"): the search then fails and is retried.
        mine: dict[str, Any] = {"operator": "sender", "operand": bot_id}
        if self.stream is not None:
            return [
                {"operator": "stream", "operand": self.stream},
                {"operator": "topic", "operand": self.topic or ""},
                mine,
            ]
        return [{"operator": "pm-with", "operand": list(self.recipients)}, mine]


def fit_topic(topic: str, limit: int) -> str:
    """A topic within Zulip's ``max_topic_length`` (Zulip would cut it itself, with "...")."""
    if len(topic) <= limit:
        return topic
    cut = topic[: limit - 1].rstrip()
    return cut + "…"


@dataclass(eq=False)
class _Post:
    target: Target
    content: str
    after_id: int
    row_id: int | None = None
    maybe_sent: bool = False  # it may have reached Zulip: look for it before posting
    attempts: int = 0  # in this run
    future: Future[int] | None = None


@dataclass(frozen=True)
class _Mark:
    row_id: int
    state: OutgoingState
    zulip_id: int | None
    attempts: int
    sent_at: dt.datetime | None


@dataclass(eq=False)
class _React:
    message: Message
    emoji: str
    target: Target


@dataclass(eq=False)
class _Edit:
    message_id: int
    content: str
    future: Future[None] = field(default_factory=Future)


@dataclass(eq=False)
class _Call:
    """Any other API call (scheduled messages), paced with the rest; its answer in ``future``.

    ``retry``: safe to repeat after a lost answer (GET, PATCH, DELETE; not a POST).
    """

    method: str
    path: str
    params: dict[str, Any]
    retry: bool
    future: Future[dict[str, Any]] = field(default_factory=Future)
    files: tuple[tuple[str, bytes], ...] = ()  # (name, content), sent as multipart/form-data


_Outgoing = _Post | _React | _Edit | _Call
_Awaited = _Post | _Edit | _Call  # someone waits for its future


class Outbox:
    """The one paced queue of everything the bot sends (see the module docstring)."""

    def __init__(self, app: Services, limiter: RateLimiter, tuning: Tuning) -> None:
        self.app = app
        self.limiter = limiter
        self.tuning = tuning
        self.account = ""
        self.bot_id = 0
        self.max_message_length = DEFAULT_MAX_MESSAGE_LENGTH
        self.max_topic_length = DEFAULT_MAX_TOPIC_LENGTH
        self.latest_id = 0  # the newest message id known: a post is looked for after it
        self.closing = Stopper()  # no more work will come: send what is queued, then stop
        self.outbound_stop = Stopper()  # stop now (pending rows stay for the next run)
        self._out: collections.deque[_Outgoing] = collections.deque()
        self._out_lock = threading.Condition()
        self._claimed: set[int] = set()  # ids of posts confirmed without a row
        self._busy = False  # an item is being sent
        self._marks: list[_Mark] = []  # how posts went, not yet stored
        self._marks_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._here: tuple[threading.Thread, Api, Callable[[], bool]] | None = None

    def start(self, api: Api) -> None:
        self._thread = threading.Thread(target=self._send_loop, args=(api,), name="zulip-sender")
        self._thread.start()

    def close(self, grace: float) -> None:
        """Send what is queued for up to ``grace`` seconds, then stop; unsent posts stay
        pending in the table, and whoever waits for one gets :class:`SendFailed`."""
        self.closing.set()
        with self._out_lock:
            self._out_lock.notify_all()
        if self._thread is not None:
            self._thread.join(grace)
        self.outbound_stop.set()
        with self._out_lock:
            self._out_lock.notify_all()
            for item in self._out:
                if isinstance(item, _Awaited) and item.future is not None:
                    item.future.set_exception(SendFailed("cafebot is shutting down"))
            self._out.clear()
        if self._thread is not None:
            self._thread.join(2.0)

    def send_here(self, api: Api, only_if: Callable[[], bool] = lambda: True) -> None:
        """Let the calling thread send its own items through ``api`` when the queue is idle
        and ``only_if()`` (the thread has nothing else waiting: else the sender works on
        while the thread goes on)."""
        self._here = (threading.current_thread(), api, only_if)

    @property
    def pending(self) -> int:
        with self._out_lock:
            return len(self._out)

    def enqueue(self, item: _Outgoing) -> None:
        with self._out_lock:
            if self.outbound_stop.stopped:
                if isinstance(item, _Awaited) and item.future is not None:
                    item.future.set_exception(SendFailed("cafebot is shutting down"))
                return
            here = self._sendable_here(item)
            if here is None:
                self._out.append(item)
                self._out_lock.notify()
                return
            self._busy = True
        done = False
        try:
            done = self._try_once(*here)
        finally:
            with self._out_lock:
                self._busy = False
                if not done:
                    self._out.appendleft(item)  # first in line: nothing was queued behind it
                self._out_lock.notify_all()

    def _sendable_here(self, item: _Outgoing) -> tuple[Api, _React | _Post] | None:
        """The API to send ``item`` through from the calling thread at once, and the item;
        None when it goes to the sender (called with ``_out_lock`` held)."""
        here = self._here
        if (
            here is None
            or here[0] is not threading.current_thread()
            or not isinstance(item, _React | _Post)
            or (isinstance(item, _Post) and (item.maybe_sent or item.future))
            or self._out
            or self._busy
            or self.closing.stopped
            or self.limiter.delay() > 0
            or not here[2]()
        ):
            return None
        return here[1], item

    def _try_once(self, api: Api, item: _React | _Post) -> bool:
        """One attempt to send ``item`` from this thread; False: the sender takes it over."""
        try:
            if isinstance(item, _React):
                if item.message.id is not None:
                    self._react(api, item, retry=False)
                return True
            item.attempts += 1
            result = api.once(
                "POST", "messages", {**item.target.request(), "content": item.content}, None
            )
        except RateLimited as exc:
            waited = self.limiter.hit(exc.retry_after)
            log.warning("Zulip rate limit reached; waiting %.1f s as it asks", waited)
            return False
        except Transient as exc:
            if isinstance(item, _Post):
                item.maybe_sent = item.maybe_sent or exc.maybe_done
            log.info("sending at once failed (%s); the sender retries", exc)
            return False
        except ApiError as exc:
            assert isinstance(item, _Post)  # noqa: S101 - _react handles its own refusals
            self._refused(item, exc)
            return True
        except Exception:
            log.exception("sending to Zulip failed")
            if isinstance(item, _Post):
                item.maybe_sent = True  # it may have gone: the sender looks before posting
            return False
        self._sent(item, int(result["id"]))
        return True

    def queue_reply(self, message: Message, text: str) -> None:
        target = Target.of(message, self.bot_id)
        after = message.id if message.id is not None else self.latest_id
        for post in self._store(target, split_message(text, self.max_message_length), after):
            self.enqueue(post)

    def stage_reply(self, session: Session, message: Message, text: str) -> Callable[[], None]:
        """Write a reply's rows in ``session``'s transaction; the callable queues it, once
        that transaction has committed (see :class:`cafebot.core.chat.StagesReplies`)."""
        target = Target.of(message, self.bot_id)
        after = message.id if message.id is not None else self.latest_id
        return self._stage(session, target, after, text)

    def stage_direct(
        self, session: Session, user_ids: tuple[int, ...], text: str
    ) -> Callable[[], None]:
        """A direct message written in ``session``'s transaction (see
        :class:`cafebot.core.chat.StagesDirect`); the callable queues it after the commit."""
        target = Target(recipients=tuple(sorted(set(user_ids))))
        return self._stage(session, target, self.latest_id, text)

    def _stage(self, session: Session, target: Target, after: int, text: str) -> Callable[[], None]:
        parts = split_message(text, self.max_message_length)
        posts = [_Post(target, part, after) for part in parts if part.strip()]
        rows = [self._row(target, post) for post in posts]
        session.add_all(rows)

        def send() -> None:
            for post, row in zip(posts, rows, strict=True):
                post.row_id = row.id
                self.enqueue(post)

        return send

    def post_and_wait(self, stream: str, topic: str, text: str) -> int:
        target = Target(stream=stream, topic=fit_topic(topic, self.max_topic_length))
        parts = split_message(text, self.max_message_length) or [text]
        if len(parts) > 1:
            log.warning(
                "a post to %s was longer than Zulip allows: sent in %d parts", stream, len(parts)
            )
        posts = self._store(target, parts, self.latest_id)
        for post in posts:
            post.future = Future()
            self.enqueue(post)
        ids = [p.future.result() for p in posts if p.future is not None]
        return ids[0]

    def _store(self, target: Target, parts: list[str], after: int) -> list[_Post]:
        """Write the posts to the outgoing table (so a crash does not lose them), then queue."""
        posts = [_Post(target, part, after) for part in parts if part.strip()]
        try:
            with self.app.unit_of_work() as session:
                rows = [self._row(target, post) for post in posts]
                session.add_all(rows)
                session.flush()
                for post, row in zip(posts, rows, strict=True):
                    post.row_id = row.id
        except Exception:
            log.exception("could not store an outgoing message; sending it anyway")
        return posts

    def _row(self, target: Target, post: _Post) -> OutgoingMessage:
        return OutgoingMessage(
            account=self.account,
            stream=target.stream,
            topic=target.topic,
            recipient_ids=",".join(map(str, target.recipients)) or None,
            content=post.content,
            after_message_id=post.after_id,
            state=OutgoingState.PENDING,
            attempts=0,
            created_at=self.app.clock.now(),
        )

    def load_pending(self) -> None:
        """Posts a previous run did not see confirmed: send them (looking first if tried)."""
        cutoff = self.app.clock.now() - self.tuning.catchup_window
        with self.app.unit_of_work() as session:
            rows = session.scalars(
                select(OutgoingMessage)
                .where(
                    OutgoingMessage.account == self.account,
                    OutgoingMessage.state == OutgoingState.PENDING,
                )
                .order_by(OutgoingMessage.id)
            ).all()
            for row in rows:
                if row.created_at < cutoff:
                    row.state = OutgoingState.FAILED
                    log.warning("an outgoing message from %s was too old to send", row.created_at)
                    continue
                recipients = tuple(int(i) for i in (row.recipient_ids or "").split(",") if i)
                target = Target(row.stream, row.topic, recipients)
                # Whether the last run sent it before it stopped is not recorded (that
                # would cost a commit before every post): it is looked for first.
                self._out.append(
                    _Post(target, row.content, row.after_message_id, row.id, maybe_sent=True)
                )
        if self._out:
            log.info("%d outgoing message(s) left by the last run will be sent", len(self._out))

    def _send_loop(self, api: Api) -> None:
        try:
            self._send_all(api)
        finally:
            self._store_marks()

    def _send_all(self, api: Api) -> None:
        while True:
            if not self._out:
                self._store_marks()
            with self._out_lock:
                if self.outbound_stop.stopped:
                    return
                if not self._out or self._busy:  # nothing to send, or a send from another thread
                    if self.closing.stopped and not self._out:
                        return
                    self._out_lock.wait(0.5)
                    continue  # (and store the marks that send left, once the queue is empty)
                item = self._out.popleft()
                if isinstance(item, _React) and self.limiter.delay() > 0:
                    item = self._combine(item)
                self._busy = True
            try:
                self._perform(api, item)
            except Stopped:
                if isinstance(item, _Awaited) and item.future is not None:
                    item.future.set_exception(SendFailed("cafebot is shutting down"))
                return
            except Exception as exc:
                log.exception("sending to Zulip failed")
                if isinstance(item, _Awaited) and item.future is not None:
                    item.future.set_exception(SendFailed(str(exc)))
            finally:
                with self._out_lock:
                    self._busy = False
                    self._out_lock.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Until nothing is queued or being sent, for at most ``timeout`` seconds."""
        with self._out_lock:
            return self._out_lock.wait_for(lambda: not self._out and not self._busy, timeout)

    def _combine(self, first: _React) -> _Outgoing:
        """Throttled: pending acknowledgements in one topic become one reply (fewer requests).

        The other reactions of those messages (an agenda over its slot) go into the
        reply as words, once.
        """
        if first.emoji != ACK.reactions[0]:
            return first
        same = [first] + [
            i
            for i in self._out
            if isinstance(i, _React) and i.target == first.target and i.emoji == first.emoji
        ]
        if len(same) < self.tuning.combine_acks:
            return first
        for item in same[1:]:
            self._out.remove(item)
        acked = {id(i.message) for i in same}
        extra = [i for i in self._out if isinstance(i, _React) and id(i.message) in acked]
        for item in extra:
            self._out.remove(item)
        glosses = dict.fromkeys(
            f" (:{i.emoji}: {REACTION_GLOSS[i.emoji]})" for i in extra if i.emoji in REACTION_GLOSS
        )
        counts: collections.Counter[str] = collections.Counter(
            i.message.sender_name or f"user {i.message.sender_id}" for i in same
        )
        names = [f"{n} (x{c})" if c > 1 else n for n, c in counts.items()]
        shown = ", ".join(names[:30]) + (f" and {len(names) - 30} more" if len(names) > 30 else "")
        text = silence_mentions(
            f":{first.emoji}: Done, all {len(same)} of them: {shown}." + "".join(glosses)
        )
        ids = [i.message.id for i in same if i.message.id is not None]
        return _Post(first.target, text, min(ids) if ids else self.latest_id)

    def _perform(self, api: Api, item: _Outgoing) -> None:
        if isinstance(item, _React):
            if item.message.id is not None:
                self._react(api, item, retry=True)
        elif isinstance(item, _Call):
            try:
                answer = api.call(
                    item.method, item.path, item.params, retry=item.retry, files=item.files
                )
            except Stopped:
                raise
            except ZulipError as exc:  # refused, or not reached (the caller decides)
                item.future.set_exception(exc)
                return
            item.future.set_result(answer)
        elif isinstance(item, _Edit):
            try:
                api.call(
                    "PATCH", f"messages/{item.message_id}", {"content": item.content}, retry=True
                )
            except ApiError as exc:
                item.future.set_exception(
                    EditNotAllowed(f"Zulip refused to edit message {item.message_id}: {exc.msg}")
                )
                return
            item.future.set_result(None)
        else:
            self._post(api, item)

    def _react(self, api: Api, item: _React, *, retry: bool) -> None:
        try:
            path = f"messages/{item.message.id}/reactions"
            if retry:  # idempotent: a second one is refused as already there
                api.call("POST", path, {"emoji_name": item.emoji}, retry=True)
            else:
                api.once("POST", path, {"emoji_name": item.emoji}, None)
        except ApiError as exc:
            # A second identical reaction is refused with REACTION_ALREADY_EXISTS, an unknown
            # emoji name with BAD_REQUEST (recorded.json, "reaction twice", "reaction
            # white_check_mark (refused)"): the first means it is there, as wanted.
            if exc.code != "REACTION_ALREADY_EXISTS" and "already" not in exc.msg.lower():
                log.warning("reaction on message %s refused: %s", item.message.id, exc)

    def _post(self, api: Api, post: _Post) -> None:
        backoff = Backoff(self.tuning.backoff_base, self.tuning.backoff_max)
        while True:
            try:
                if post.maybe_sent:
                    found = self._find(api, post)
                    if found is not None:
                        log.info("a post whose answer was lost had reached Zulip: not sent again")
                        self._sent(post, found)
                        return
                post.attempts += 1
                result = api.call(
                    "POST",
                    "messages",
                    {**post.target.request(), "content": post.content},
                    retry=False,
                )
            except Transient as exc:
                post.maybe_sent = post.maybe_sent or exc.maybe_done
                delay = backoff.next_delay()
                log.warning("posting to Zulip failed (%s); retrying in %.1f s", exc, delay)
                if self.outbound_stop.sleep(delay):
                    raise Stopped("post") from exc
                continue
            except ApiError as exc:
                self._refused(post, exc)
                return
            self._sent(post, int(result["id"]))
            return

    def _refused(self, post: _Post, exc: ApiError) -> None:
        log.error("Zulip refused a post to %s: %s", post.target, exc)
        self._mark(post, OutgoingState.FAILED, None)
        if post.future is not None:
            post.future.set_exception(SendFailed(f"Zulip refused the post: {exc.msg}"))

    def _find(self, api: Api, post: _Post) -> int | None:
        """The bot's own message with this post's text after ``after_id``, not yet claimed."""
        anchor = post.after_id
        wanted = post.content.strip()
        while True:
            page = api.call(
                "GET",
                "messages",
                {
                    "anchor": anchor,
                    "include_anchor": False,
                    "num_before": 0,
                    "num_after": 100,
                    "narrow": post.target.narrow(self.bot_id),
                    "apply_markdown": False,
                },
                retry=True,
            )
            messages = sorted(page.get("messages", []), key=lambda m: int(m["id"]))
            candidates = [
                int(m["id"])
                for m in messages
                if int(m.get("sender_id", 0)) == self.bot_id
                and str(m.get("content", "")).strip() == wanted
            ]
            for candidate in candidates:
                if candidate not in self._claimed and not self._claimed_row(candidate):
                    return candidate
            # zulip.yaml, GET /messages: found_newest is always in the answer.
            if page.get("found_newest", True) or not messages:
                return None
            anchor = int(messages[-1]["id"])

    def _claimed_row(self, zulip_id: int) -> bool:
        with self.app.unit_of_work() as session:
            return (
                session.scalar(
                    select(OutgoingMessage.id).where(OutgoingMessage.zulip_message_id == zulip_id)
                )
                is not None
            )

    def _sent(self, post: _Post, zulip_id: int) -> None:
        self._claimed.add(zulip_id)
        self.latest_id = max(self.latest_id, zulip_id)
        if post.future is not None:
            post.future.set_result(zulip_id)  # whoever waits need not wait for the record
        self._mark(post, OutgoingState.SENT, zulip_id)

    def _mark(self, post: _Post, state: OutgoingState, zulip_id: int | None) -> None:
        """Record how a post went: with the next few, or when the queue runs empty.

        Marks wait to share a transaction (each one of its own would hold up the
        commands for a commit). One lost with a crash costs a look-up: a pending post
        is looked for among the bot's messages before it is sent again.
        """
        if post.row_id is None:
            return
        now = self.app.clock.now() if state is OutgoingState.SENT else None
        with self._marks_lock:
            self._marks.append(_Mark(post.row_id, state, zulip_id, post.attempts, now))
            full = len(self._marks) >= MARKS_PER_COMMIT
        if full:
            self._store_marks()

    def _store_marks(self) -> None:
        with self._marks_lock:
            marks, self._marks = self._marks, []
        if not marks:
            return
        try:
            with self.app.unit_of_work() as session:
                rows = {
                    row.id: row
                    for row in session.scalars(
                        select(OutgoingMessage).where(
                            OutgoingMessage.id.in_([m.row_id for m in marks])
                        )
                    )
                }
                for mark in marks:
                    row = rows.get(mark.row_id)
                    if row is not None:
                        row.state = mark.state
                        row.attempts += mark.attempts
                        row.zulip_message_id = mark.zulip_id
                        row.sent_at = mark.sent_at
        except Exception:
            log.exception("could not record how %d post(s) went", len(marks))
