"""Publishing a meeting's notes: to its Zulip topic, into the year's archive file, to git.

The notes are rendered once from the database, so they are the same whether
published automatically or by ``publish``. Each step is recorded; a failed
step is reported in the meeting's topic and retried later, without holding up
the other steps. A re-publish edits the messages it posted before, and posts
anew (saying so) where Zulip's edit time limit refuses the edit.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from cafebot.core.chat import EditNotAllowed, SendFailed
from cafebot.core.config import SeriesSettings
from cafebot.core.text import zulip_time
from cafebot.notes.render import Flavour, render, split_message
from cafebot.publishing.todo import post_todo
from cafebot.storage.models import Meeting, MeetingState, PublishedPart, PublishStep, StepStatus

if TYPE_CHECKING:
    from cafebot.core.chat import Chat
    from cafebot.core.services import Services

log = logging.getLogger("cafebot.publish")

DEFAULT_MESSAGE_LIMIT = 10_000
RETRY_DELAYS = [dt.timedelta(minutes=m) for m in (2, 5, 15, 30, 60, 120)]
GIT_ATTEMPTS = 4  # pushes raced by another writer are rebased and tried again
UPDATED_HEADER = "**Updated notes** (the earlier messages could no longer be edited):\n\n"
_SECTION_RE = re.compile(r"^## (\d{4}-\d{2}-\d{2})\s*$")


class StepFailed(Exception):
    """A publishing step could not be done; the message says why (never a secret)."""


@dataclass
class Report:
    date: dt.date
    steps: dict[str, str] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    def summary(self) -> str:
        lines = [f"Notes of {self.date}:"]
        for step, text in self.steps.items():
            mark = ":cross_mark:" if step in self.failed else ":check:"
            lines.append(f"- {mark} {step}: {text}")
        if self.failed:
            lines.append("Failed steps are retried automatically; `publish` tries again now.")
        return "\n".join(lines)


# ---------------------------------------------------------------- the archive file


def archive_title(series: SeriesSettings, year: int) -> str:
    return f"# {year} {series.name} Notes Archive"


def upsert_section(text: str, date: dt.date, section: str, title: str) -> str:
    """Put ``section`` (a meeting's notes, from ``## date``) into an archive file's text.

    The meeting replaces its own section or goes in date order (newest first);
    everything else in the file stays exactly as it was.
    """
    lines = text.splitlines(keepends=True)
    if not lines:
        lines = [title + "\n"]
    starts = [
        (i, dt.date.fromisoformat(m.group(1)))
        for i, line in enumerate(lines)
        if (m := _SECTION_RE.match(line.rstrip("\n")))
    ]
    new = section if section.endswith("\n") else section + "\n"
    for n, (index, day) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        if day == date:
            tail = "".join(lines[end:])
            return "".join(lines[:index]) + new + ("\n" + tail if tail else "")
        if day < date:  # newest first: goes before the first older meeting
            return "".join(lines[:index]) + new + "\n" + "".join(lines[index:])
    head = "".join(lines).rstrip("\n") + "\n\n"
    return head + new


def write_archive(directory: Path, series: SeriesSettings, date: dt.date, section: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{date.year}.md"
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    new = upsert_section(old, date, section, archive_title(series, date.year))
    if new != old:
        tmp = path.with_suffix(".md.tmp")
        tmp.write_text(new, encoding="utf-8")
        tmp.replace(path)
    return path


# ---------------------------------------------------------------- git


def _git(directory: Path, *args: str) -> str:
    try:
        result = subprocess.run(  # noqa: S603 - fixed git arguments, no shell
            ["git", *args],  # noqa: S607 - git from PATH, as the operator installed it
            cwd=directory,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise StepFailed(f"git {args[0]}: {exc}") from exc
    if result.returncode != 0:
        detail = (result.stderr or result.stdout).strip().splitlines()
        raise StepFailed(f"git {args[0]} failed: {detail[-1] if detail else result.returncode}")
    return result.stdout


def sync_clone(directory: Path, remote: str, branch: str) -> None:
    """Make ``directory`` a clone of ``remote`` at the tip of ``branch`` (cloning on first use)."""
    if not (directory / ".git").exists():
        if directory.exists() and any(directory.iterdir()):
            raise StepFailed(f"{directory} exists and is not a git clone of the archive")
        directory.parent.mkdir(parents=True, exist_ok=True)
        _git(directory.parent, "clone", "--quiet", remote, directory.name)
    _git(directory, "fetch", "--quiet", "origin")
    remote_branches = _git(directory, "branch", "--remotes", "--list", f"origin/{branch}")
    if remote_branches.strip():
        _git(directory, "checkout", "--quiet", "-B", branch, f"origin/{branch}")
    else:  # an empty remote: the first commit makes the branch
        _git(directory, "checkout", "--quiet", "--orphan", branch)


def git_publish(
    series: SeriesSettings,
    date: dt.date,
    section: str,
    site: tuple[str, Sequence[Callable[[Path], None]]] | None = None,
) -> str:
    """Commit the meeting's notes to the archive clone and push; rebase and retry on a race.

    ``site``: a folder of the clone and the builders that write the static site into it
    (``[web] site_dir``); the site is rebuilt and committed with the notes.
    """
    assert series.git_remote is not None  # noqa: S101 - only called with a remote
    directory = series.archive_dir
    for attempt in range(1, GIT_ATTEMPTS + 1):
        # Our change is made again on top of the remote's latest state: a rebase by rewrite.
        sync_clone(directory, series.git_remote, series.git_branch)
        path = write_archive(directory, series, date, section)
        paths = [path.name]
        if site is not None:
            folder, builders = site
            for build in builders:
                try:
                    build(directory / folder)
                except Exception as exc:  # the builder's own error, said plainly
                    raise StepFailed(f"the site could not be built in {folder}: {exc}") from exc
            paths.append(folder)
        _git(directory, "add", "--all", "--", *paths)
        if not _git(directory, "status", "--porcelain", "--", *paths).strip():
            return "already up to date"
        _git(
            directory,
            "-c", "user.name=cafebot", "-c", "user.email=cafebot@localhost",
            "commit", "--quiet", "-m", f"Notes of the {series.name} of {date.isoformat()}",
        )  # fmt: skip
        try:
            _git(directory, "push", "--quiet", "origin", f"HEAD:refs/heads/{series.git_branch}")
        except StepFailed as exc:
            if attempt == GIT_ATTEMPTS:
                raise
            log.info("push of %s raced another writer (%s); rebasing", date, exc)
            continue
        return f"pushed to {series.git_branch}" + (
            f" (after {attempt} tries)" if attempt > 1 else ""
        )
    raise StepFailed("push kept being rejected")  # pragma: no cover - the loop returns or raises


# ---------------------------------------------------------------- Zulip


def post_notes(
    app: Services, chat: Chat, meeting_id: int, parts: list[str], stream: str, topic: str
) -> str:
    """Post the notes, or edit the messages of an earlier publication."""
    now = app.clock.now()
    with app.unit_of_work() as session:
        old = list(
            session.scalars(
                select(PublishedPart)
                .where(PublishedPart.meeting_id == meeting_id)
                .order_by(PublishedPart.part)
            )
        )
        old_ids = [p.message_id for p in old]
    if old_ids:
        try:
            for index, text in enumerate(parts):
                if index < len(old_ids):
                    chat.edit(old_ids[index], text)
            for message_id in old_ids[len(parts) :]:
                chat.edit(message_id, "_(The notes are complete in the messages above.)_")
            kept: list[int | None] = list(old_ids[: len(parts)])
            new_ids = [chat.send(stream, topic, text) for text in parts[len(old_ids) :]]
            _record_parts(app, meeting_id, kept + new_ids, now, replace=False)
            return f"updated {min(len(parts), len(old_ids))} message(s) in {stream} > {topic}"
        except EditNotAllowed:
            parts = [UPDATED_HEADER + parts[0], *parts[1:]]
    ids = [chat.send(stream, topic, text) for text in parts]
    _record_parts(app, meeting_id, ids, now, replace=True)
    return f"posted {len(parts)} message(s) to {stream} > {topic}"


def _record_parts(
    app: Services, meeting_id: int, ids: list[int | None], now: dt.datetime, *, replace: bool
) -> None:
    with app.unit_of_work() as session:
        if replace:
            for part in session.scalars(
                select(PublishedPart).where(PublishedPart.meeting_id == meeting_id)
            ):
                session.delete(part)
            session.flush()
        for index, message_id in enumerate(ids):
            if message_id is None:
                continue
            existing = session.scalar(
                select(PublishedPart).where(
                    PublishedPart.meeting_id == meeting_id, PublishedPart.part == index
                )
            )
            if existing is None:
                session.add(
                    PublishedPart(
                        meeting_id=meeting_id, part=index, message_id=message_id, posted_at=now
                    )
                )
            else:
                existing.message_id = message_id


# ---------------------------------------------------------------- the steps


def _record_step(
    session: Session, meeting_id: int, step: str, error: str | None, now: dt.datetime
) -> PublishStep:
    row = session.scalar(
        select(PublishStep).where(PublishStep.meeting_id == meeting_id, PublishStep.step == step)
    )
    if row is None:
        row = PublishStep(meeting_id=meeting_id, step=step, attempts=0, updated_at=now)
        session.add(row)
    row.attempts = row.attempts + 1 if error else 0
    row.status = StepStatus.FAILED if error else StepStatus.OK
    row.error = error
    row.updated_at = now
    if error and row.attempts <= len(RETRY_DELAYS):
        row.retry_at = now + RETRY_DELAYS[row.attempts - 1]
    else:
        row.retry_at = None
    return row


def publish(
    app: Services, chat: Chat, meeting_id: int, steps: tuple[str, ...] | None = None
) -> Report:
    """Publish a meeting's notes now (``steps``: only these, e.g. to retry a failed one)."""
    now = app.clock.now()
    with app.unit_of_work() as session:
        meeting = session.get(Meeting, meeting_id)
        if meeting is None:
            raise LookupError(f"no meeting {meeting_id}")
        series = app.settings.series_by_key(meeting.series.key)
        if series is None:
            raise LookupError(f"the series {meeting.series.key!r} is not in the config")
        report = Report(meeting.date)
        zulip_notes = render(meeting, Flavour.ZULIP, series)
        archive_notes = render(meeting, Flavour.ARCHIVE, series)
        if meeting.state is not MeetingState.PUBLISHED:
            meeting.state = MeetingState.PUBLISHED
            meeting.published_at = now
        date = meeting.date
    wanted = steps or ("zulip", "todo", "archive", "git")
    for step in wanted:
        try:
            if step == "zulip":
                if not series.stream:
                    report.steps[step] = "skipped: the series has no stream"
                    continue
                limit = int(getattr(chat, "max_message_length", DEFAULT_MESSAGE_LIMIT))
                parts = split_message(zulip_notes, limit)
                report.steps[step] = post_notes(
                    app, chat, meeting_id, parts, series.stream, series.topic_for(date)
                )
            elif step == "todo":
                # The open actions as a Zulip to-do widget (publishing.todo), once.
                if not series.stream:
                    continue
                posted = post_todo(app, chat, meeting_id, series.stream, series.topic_for(date))
                if posted is None:
                    continue
                report.steps[step] = posted
            elif step == "archive":
                if series.git_remote:
                    continue  # written into the clone by the git step
                path = write_archive(series.archive_dir, series, date, archive_notes)
                report.steps[step] = f"written to {path}"
            elif step == "git":
                if not series.git_remote:
                    continue
                site_dir = app.settings.web.site_dir
                site = (site_dir, app.site_builders) if site_dir and app.site_builders else None
                report.steps[step] = git_publish(series, date, archive_notes, site)
        except (StepFailed, OSError, SendFailed) as exc:
            message = str(exc)  # an expected failure, said plainly
            log.warning("publishing step %s of %s failed: %s", step, date, message)
            report.steps[step] = f"failed: {message}"
            report.failed.append(step)
        except Exception as exc:
            message = f"{type(exc).__name__}: {exc}"
            log.exception("publishing step %s of %s failed", step, date)
            report.steps[step] = f"failed: {message}"
            report.failed.append(step)
        error = report.steps[step] if step in report.failed else None
        with app.unit_of_work() as session:
            _record_step(session, meeting_id, step, error, now)
    if report.failed:
        _report_failure(app, chat, series, date, report, meeting_id)
    return report


def _report_failure(
    app: Services,
    chat: Chat,
    series: SeriesSettings,
    date: dt.date,
    report: Report,
    meeting_id: int,
) -> None:
    """Tell the organisers in the meeting's topic; never let the report itself fail."""
    if not series.stream:
        return
    with app.unit_of_work() as session:
        retry = session.scalar(
            select(PublishStep.retry_at)
            .where(PublishStep.meeting_id == meeting_id, PublishStep.retry_at.is_not(None))
            .order_by(PublishStep.retry_at)
        )
    when = f" I will try again {zulip_time(retry)}." if retry else " I have stopped retrying."
    failed = ", ".join(f"{s} ({report.steps[s].removeprefix('failed: ')})" for s in report.failed)
    text = (
        f"**Organisers:** publishing the notes of {date} did not fully work: {failed}.{when} "
        f"`publish {date}` tries again now."
    )
    try:
        chat.send(series.stream, series.topic_for(date), text)
    except Exception:
        log.exception("could not report the publishing failure of %s", date)


def due_retries(session: Session, now: dt.datetime) -> dict[int, tuple[str, ...]]:
    """Failed steps whose retry time has come, by meeting."""
    due: dict[int, list[str]] = {}
    for row in session.scalars(
        select(PublishStep).where(
            PublishStep.status == StepStatus.FAILED,
            PublishStep.retry_at.is_not(None),
            PublishStep.retry_at <= now,
        )
    ):
        due.setdefault(row.meeting_id, []).append(row.step)
    return {k: tuple(v) for k, v in due.items()}
