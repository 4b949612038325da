"""The scheduler: jobs derived from the database, and one idempotent sweep that does what is due.

The database is the truth. At start and after every schedule change, the jobs
(stable ids such as ``reminder:<meeting>:<offset>``) are derived from the
meetings in APScheduler's memory job store; every job runs :meth:`Lifecycle.sweep`,
which finds from the database what is due *now* (reminders, the scheduled end of
a live meeting, publishing, retries, cancellation notices) and does it once. A
run missed while the bot was down is therefore found by the sweep at start, not
lost to a job store. Time comes from the app's clock, so tests drive the sweep
with a fake clock; APScheduler only wakes it at the planned instants.

Where the chat's server can hold scheduled messages (Zulip, feature level 179),
each meeting's next reminder is also kept there (:mod:`cafebot.cafe.held`), so that it
goes out on time while the bot is down; the sweep keeps those in line with the
database, and agenda changes update them after a quiet moment (``held-sync``).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from cafebot.cafe import followups, meetings, reminders, textindex
from cafebot.cafe.held import CONFIRM_AFTER, HeldReminders
from cafebot.cafe.lifecycle import effective_end, end_meeting
from cafebot.core.chat import SchedulesMessages
from cafebot.core.config import SeriesSettings
from cafebot.publishing.publish import due_retries, publish
from cafebot.storage.models import Meeting, MeetingState, PublishStep, StepStatus

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

    from cafebot.core.chat import Chat
    from cafebot.core.services import Services

log = logging.getLogger("cafebot.scheduler")

REPLAN_EVERY = dt.timedelta(hours=1)
SEARCH_REFRESH_EVERY = 60  # seconds between refreshes of the search index
SEARCH_REFRESH_FOR = 2.0  # seconds one refresh may take before it leaves the rest
# The jobs that are always there (the others are planned from the database).
OWN_JOBS = ("replan", "heartbeat", "held-sync", "search-index")


@dataclass
class SweepResult:
    reminders: int = 0
    ended: list[dt.date] = field(default_factory=list)
    published: list[dt.date] = field(default_factory=list)
    notices: int = 0
    held: int = 0  # changes to the reminders Zulip holds
    followups: int = 0  # direct messages to owners of open actions


def _has_entries(meeting: Meeting) -> bool:
    return any((meeting.checkins, meeting.introductions, meeting.shoutouts, meeting.agenda_items))


class Lifecycle:
    """Reminders, scheduled ends and publishing for every series of the app."""

    def __init__(
        self, app: Services, chat: Chat, heartbeat: Callable[[], object] | None = None
    ) -> None:
        self.app = app
        self.chat = chat
        # Called by every sweep and once a minute (``cafebot health`` reads what it writes).
        self.heartbeat = heartbeat or (lambda: None)
        self._lock = threading.RLock()
        self._scheduler: BackgroundScheduler | None = None
        # Reminders kept at the chat server as scheduled messages, where it can.
        self.held = HeldReminders(app, chat) if isinstance(chat, SchedulesMessages) else None

    @property
    def reminder_path(self) -> str:
        """Which path sends the reminders, in words (the log, ``cafebot check``)."""
        if self.held is not None and self.held.active:
            return "Zulip scheduled messages (sent on time even while the bot is down)"
        why = f" ({self.held.why_not})" if self.held is not None else ""
        return f"the bot's own timer{why}"

    # ------------------------------------------------------------ what is due now

    def sweep(self) -> SweepResult:
        """Do everything that is due now, once. Safe to call at any time, any number of times."""
        with self._lock:
            self.heartbeat()
            result = SweepResult()
            for series in self.app.settings.series:
                self._guard("end", self._end_due, series, result)
            if self.held is not None and self.held.active:
                self._guard("held reminders", self._held_due, result)
            for series in self.app.settings.series:
                self._guard("reminders", self._reminders_due, series, result)
                self._guard("follow-ups", self._followups_due, series, result)
            self._guard("notices", self._notices_due, result)
            self._guard("publish", self._publish_due, result)
            return result

    def _guard(self, what: str, func: Callable[..., None], *args: object) -> None:
        try:
            func(*args)
        except Exception:
            log.exception("scheduled %s failed; the next sweep tries again", what)

    def _end_due(self, series: SeriesSettings, result: SweepResult) -> None:
        now = self.app.clock.now()
        with self.app.unit_of_work() as session:
            row = meetings.series_row(session, series)
            for meeting in session.scalars(
                select(Meeting).where(
                    Meeting.series_id == row.id,
                    Meeting.state == MeetingState.LIVE,
                    Meeting.ends_at <= now,
                )
            ):
                end_meeting(session, series, row, meeting, now)
                result.ended.append(meeting.date)
            meetings.target(session, series, row, now)  # the next meeting exists, to plan it

    def _held_due(self, result: SweepResult) -> None:
        """What Zulip holds: sent ones recorded, failed ones handed back, the next ones made."""
        assert self.held is not None  # noqa: S101
        confirmed = self.held.confirm()
        synced = self.held.sync()
        result.held += confirmed.sent + confirmed.handed_back + synced.created
        result.held += synced.edited + synced.withdrawn + synced.handed_back

    def sync_held(self) -> bool:
        """The held texts, brought up to date once the agenda has been quiet a moment
        (``held-sync``); True when they were. Safe to call at any time."""
        with self._lock:
            held = self.held
            if held is None or not held.active or not held.debounce.take(self.app.clock.now()):
                return False
            try:
                held.sync()
            except Exception:
                log.exception("updating the held reminders failed; the next sweep tries again")
            return True

    def entries_changed(self) -> None:
        """A command changed entries: the held texts follow, debounced (quick: no I/O)."""
        if self.held is None or not self.held.active:
            return
        due, began = self.held.debounce.mark(self.app.clock.now())
        if began:  # later changes only move the update: the job finds that out (_held_job)
            self._wake("held-sync", due, self._held_job)

    def _schedule_changed(self) -> None:
        """A command changed the schedule: re-plan, and bring the held reminders in line now."""
        self.replan()
        if self.held is not None and self.held.active:
            self.held.debounce.urgent(self.app.clock.now())
            self._wake("held-sync", None, self._held_job)

    def _held_job(self) -> None:
        started = time.perf_counter()
        done = self.sync_held()
        if not done and self.held is not None and self.held.debounce.due_at is not None:
            self._wake("held-sync", self.held.debounce.due_at, self._held_job)
        log.info(
            "job held-sync: %s in %.1f ms",
            "synced" if done else "not due",
            (time.perf_counter() - started) * 1000,
            extra={"job": "held-sync", "outcome": "synced" if done else "not due"},
        )

    def _wake(self, job_id: str, when: dt.datetime | None, func: Callable[[], None]) -> None:
        """Run ``func`` at ``when`` (None: at once), replacing the job of that id."""
        scheduler = self._scheduler
        if scheduler is None:
            return
        try:
            scheduler.add_job(func, "date", run_date=when, id=job_id, replace_existing=True)
        except Exception:
            log.exception("could not plan job %s", job_id)

    def _reminders_due(self, series: SeriesSettings, result: SweepResult) -> None:
        result.reminders += reminders.send_due_reminders(self.app, self.chat, series)

    def _followups_due(self, series: SeriesSettings, result: SweepResult) -> None:
        result.followups += followups.send_due_followups(self.app, self.chat, series)

    def _notices_due(self, result: SweepResult) -> None:
        with self.app.unit_of_work() as session:
            pending = reminders.pending_cancellations(session, self.app.clock.now())
        for meeting_id in pending:
            if reminders.send_cancellation_notice(self.app, self.chat, meeting_id):
                result.notices += 1

    def _publish_due(self, result: SweepResult) -> None:
        now = self.app.clock.now()
        due: list[int] = []
        with self.app.unit_of_work() as session:
            keys = {s.key: s for s in self.app.settings.series}
            for meeting in session.scalars(
                select(Meeting).where(
                    Meeting.state.in_([MeetingState.SCHEDULED, MeetingState.ENDED]),
                    # A meeting started early with `start now` may end days before its slot.
                    (Meeting.ends_at <= now + dt.timedelta(days=1)) | (Meeting.ended_at <= now),
                )
            ):
                series = keys.get(meeting.series.key)
                if series is None or meetings.status(meeting, now) is not meetings.Status.ENDED:
                    continue
                if effective_end(meeting) + series.publish_delay > now:
                    continue
                if meeting.started_at is None and not _has_entries(meeting):
                    meeting.state = MeetingState.PUBLISHED  # nothing happened: nothing to post
                    continue
                due.append(meeting.id)
            retries = due_retries(session, now)
        for meeting_id in due:
            report = publish(self.app, self.chat, meeting_id)
            result.published.append(report.date)
        for meeting_id, steps in retries.items():
            if meeting_id not in due:
                publish(self.app, self.chat, meeting_id, steps)

    # ------------------------------------------------------------ the plan

    def plan(self) -> dict[str, dt.datetime]:
        """Job id -> when it runs, for every future instant something may fall due."""
        now = self.app.clock.now()
        jobs: dict[str, dt.datetime] = {}
        with self.app.unit_of_work() as session:
            for series in self.app.settings.series:
                row = meetings.series_row(session, series)
                meetings.target(session, series, row, now)
                for meeting in session.scalars(
                    select(Meeting).where(
                        Meeting.series_id == row.id,
                        Meeting.state.in_(
                            [MeetingState.SCHEDULED, MeetingState.LIVE, MeetingState.ENDED]
                        ),
                        Meeting.ends_at > now - series.publish_delay - dt.timedelta(days=1),
                    )
                ):
                    if meeting.state is not MeetingState.ENDED:
                        for offset in series.reminders:
                            when = meeting.starts_at - offset
                            if when > now:
                                jobs[f"reminder:{meeting.id}:{int(offset.total_seconds())}"] = when
                        if meeting.ends_at > now:
                            jobs[f"end:{meeting.id}"] = meeting.ends_at
                        followup = followups.due_at(series, meeting)
                        if followup is not None and followup > now:
                            jobs[f"followup:{meeting.id}"] = followup
                    publish_at = effective_end(meeting) + series.publish_delay
                    if publish_at > now:
                        jobs[f"publish:{meeting.id}"] = publish_at
            for meeting_id in reminders.pending_cancellations(session, now):
                jobs[f"notice:{meeting_id}"] = now
        if self.held is not None and self.held.active:
            # Whether Zulip has sent what it holds, a while after its time (if not seen).
            check = self.held.overdue(now)
            if check is not None:
                jobs["held-confirm"] = check if check > now else now + CONFIRM_AFTER
        with self.app.unit_of_work() as session:
            retries = session.execute(
                select(PublishStep.meeting_id, func.min(PublishStep.retry_at))
                .where(PublishStep.status == StepStatus.FAILED, PublishStep.retry_at.is_not(None))
                .group_by(PublishStep.meeting_id)
            )
            for meeting_id, retry_at in retries:
                if retry_at is not None:
                    jobs[f"retry:{meeting_id}"] = max(retry_at, now)
        return jobs

    # ------------------------------------------------------------ APScheduler

    def start(self) -> None:
        """Catch up on what was missed, then let APScheduler wake the sweep at each instant."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        # Changes from here on are followed (those made before are in the first sweep's read).
        self.app.change_listeners.append(self.entries_changed)
        if self.held is not None:
            try:
                self.held.start()
            except Exception:
                log.exception("looking at Zulip's scheduled messages failed")
        log.info("reminders are sent by %s", self.reminder_path)
        self.sweep()
        self._scheduler = BackgroundScheduler(
            timezone=dt.UTC,
            executors={"default": ThreadPoolExecutor(1)},
            # The database decides what is still due: run late jobs, once.
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        self._scheduler.add_job(
            self.replan, "interval", seconds=REPLAN_EVERY.total_seconds(), id="replan"
        )
        self._scheduler.add_job(self.heartbeat, "interval", seconds=60, id="heartbeat")
        self._scheduler.add_job(
            self.refresh_search, "interval", seconds=SEARCH_REFRESH_EVERY, id="search-index"
        )
        self._scheduler.start()
        self.replan()
        self.app.schedule_listeners.append(self._schedule_changed)
        if self.held is not None and self.held.debounce.due_at is not None:
            self._wake("held-sync", self.held.debounce.due_at, self._held_job)

    def stop(self) -> None:
        """Let the job in hand finish, then stop; safe from any thread."""
        if self._schedule_changed in self.app.schedule_listeners:
            self.app.schedule_listeners.remove(self._schedule_changed)
        if self.entries_changed in self.app.change_listeners:
            self.app.change_listeners.remove(self.entries_changed)
        with self._lock:  # waits for a sweep or re-plan in hand
            scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            # APScheduler holds its job-store lock while it waits for running jobs: a job
            # must not touch the job store now (replan() sees no scheduler and returns).
            scheduler.shutdown(wait=True)

    def replan(self) -> None:
        """Bring the job store in line with the database."""
        with self._lock:
            scheduler = self._scheduler
            if scheduler is None:
                return
            try:
                wanted = self.plan()
            except Exception:
                log.exception("planning the jobs failed")
                return
            for job in scheduler.get_jobs():
                if job.id not in OWN_JOBS and job.id not in wanted:
                    job.remove()
            for job_id, when in wanted.items():
                existing = scheduler.get_job(job_id)
                if existing is not None and existing.next_run_time == when:
                    continue
                scheduler.add_job(
                    self._run_job, "date", run_date=when, id=job_id, args=[job_id],
                    replace_existing=True,
                )  # fmt: skip

    def refresh_search(self) -> int:
        """Rewrite the search documents of stale meetings, a batch per transaction, for
        :data:`SEARCH_REFRESH_FOR` seconds at most (the rest at the next refresh: the
        job thread also sends reminders); how many were rewritten."""
        started = time.perf_counter()
        done = 0
        try:
            while time.perf_counter() - started < SEARCH_REFRESH_FOR:
                with self.app.unit_of_work() as session:
                    batch = textindex.refresh(session)
                done += batch
                if batch == 0:
                    break
        except Exception:
            log.exception("refreshing the search index failed; the next refresh tries again")
        if done:
            log.info("search index: %d meeting(s) rewritten", done)
        return done

    def _run_job(self, job_id: str) -> None:
        """One scheduled job: the sweep, then a re-plan; one log line for it."""
        started = time.perf_counter()
        outcome = "ok"
        try:
            result = self.sweep()
            done = [
                f"{result.reminders} reminder(s)" if result.reminders else "",
                f"ended {', '.join(map(str, result.ended))}" if result.ended else "",
                f"published {', '.join(map(str, result.published))}" if result.published else "",
                f"{result.notices} notice(s)" if result.notices else "",
                f"{result.held} held reminder change(s)" if result.held else "",
                f"{result.followups} follow-up(s)" if result.followups else "",
            ]
            outcome = "; ".join(d for d in done if d) or "nothing due"
        except Exception:
            outcome = "failed"
            log.exception("job %s failed", job_id)
        finally:
            self.replan()
        ms = (time.perf_counter() - started) * 1000
        log.info(
            "job %s: %s in %.1f ms",
            job_id,
            outcome,
            ms,
            extra={"job": job_id, "outcome": outcome, "ms": round(ms, 1)},
        )


def start_lifecycle(
    app: Services, chat: Chat, heartbeat: Callable[[], object] | None = None
) -> Callable[[], None]:
    """Start the scheduler for ``app`` on ``chat``; returns the function that stops it."""
    lifecycle = Lifecycle(app, chat, heartbeat)
    lifecycle.start()
    return lifecycle.stop
