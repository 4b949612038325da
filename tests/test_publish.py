"""Publishing: the meeting's topic, the year's archive file, and a git remote."""

from __future__ import annotations

import datetime as dt
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from cafebot.cafe.scheduler import Lifecycle
from cafebot.notes.render import Flavour, render, split_message
from cafebot.publishing.publish import UPDATED_HEADER, publish, upsert_section
from cafebot.storage.models import Meeting, MeetingState, PublishedPart, PublishStep, StepStatus
from tests.harness import BOB, CAFE, OLGA, Harness, RecordingChat

UTC = dt.UTC
JUNE_17 = dt.date(2031, 6, 17)


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def hold_a_meeting(bot: Harness) -> None:
    bot.send("checkin Ada / @ada / Engines")
    bot.send("agenda 10m Release plans")
    bot.send("shoutout [Quill] New docs!", BOB)
    bot.clock.set(at(2031, 6, 17, 14, 5))
    bot.send("note A1 Ship in May")
    bot.clock.set(at(2031, 6, 17, 15, 0))  # the scheduled end


@pytest.fixture
def bot(db_url: str, tmp_path: Path) -> Iterator[Harness]:
    harness = Harness(db_url, series=(replace(CAFE, archive_dir=tmp_path / "notes"),))
    yield harness
    harness.close()


def june(bot: Harness) -> Meeting:
    return next(m for m in bot.rows(Meeting) if m.date == JUNE_17)


def test_published_automatically_after_the_delay(bot: Harness, tmp_path: Path) -> None:
    hold_a_meeting(bot)
    chat = RecordingChat()
    lifecycle = Lifecycle(bot.app, chat)
    lifecycle.sweep()
    assert chat.posted == []  # during the 15 minutes people can still add notes
    assert lifecycle.plan()["publish:" + str(june(bot).id)] == at(2031, 6, 17, 15, 15)
    bot.send("note A1 Added after the end")
    bot.clock.set(at(2031, 6, 17, 15, 15))
    lifecycle.sweep()
    (posted,) = chat.posted
    assert (posted.stream, posted.topic) == ("jupyterhub", "Collaboration Cafe 2031-06-17")
    assert posted.text.startswith("## Collaboration Cafe notes: 2031-06-17\n")
    assert "Added after the end" in posted.text and "### Agenda :time:" in posted.text
    archive = (tmp_path / "notes" / "2031.md").read_text()
    assert archive.startswith("# 2031 Collaboration Cafe Notes Archive\n\n## 2031-06-17\n")
    assert "- [name=Ada] (10 min): Release plans\n    - Ship in May\n" in archive
    assert june(bot).state is MeetingState.PUBLISHED
    lifecycle.sweep()
    assert len(chat.posted) == 1  # once


def test_republish_edits_the_same_messages_with_identical_notes(bot: Harness) -> None:
    hold_a_meeting(bot)
    chat = RecordingChat()
    bot.clock.set(at(2031, 6, 17, 15, 20))
    Lifecycle(bot.app, chat).sweep()
    (first,) = chat.posted
    original = first.text
    # `publish` by command renders the very same notes: the edit changes nothing.
    report = publish(bot.app, chat, june(bot).id)
    assert not report.failed
    assert chat.edits == [(first.id, original)] and len(chat.posted) == 1
    # A later change is carried into the same message.
    # Once published, a meeting's entries are named with its date.
    assert bot.send("decision 2031-06-17/A1 Ship on 1 May", OLGA).acked
    publish(bot.app, chat, june(bot).id)
    assert len(chat.posted) == 1 and "**Decision** - Ship on 1 May" in chat.posted[0].text
    assert [p.message_id for p in bot.rows(PublishedPart)] == [first.id]


def test_republish_posts_anew_where_editing_is_refused(bot: Harness) -> None:
    hold_a_meeting(bot)
    chat = RecordingChat()
    bot.clock.set(at(2031, 6, 17, 15, 20))
    Lifecycle(bot.app, chat).sweep()
    chat.refuse_edits = True
    assert bot.send("note 2031-06-17/A1 One more", OLGA).acked
    publish(bot.app, chat, june(bot).id)
    assert len(chat.posted) == 2
    assert chat.posted[1].text.startswith(UPDATED_HEADER) and "One more" in chat.posted[1].text
    assert [p.message_id for p in bot.rows(PublishedPart)] == [chat.posted[1].id]


def test_publish_command(bot: Harness) -> None:
    hold_a_meeting(bot)
    assert (
        "only a meeting that has ended can be published"
        in bot.send("publish 2031-07-15", OLGA).text
    )
    answer = bot.send("publish", OLGA)
    assert answer.reactions == ["check"]
    assert ":check: zulip: posted 1 message(s) to jupyterhub > Collaboration Cafe 2031-06-17" in (
        answer.text
    )
    assert ":check: archive: written to" in answer.text
    ((_, _, text),) = answer.sent
    # Byte-identical to what the scheduler would have posted: the same renderer and split.
    notes = render(_fresh_meeting(bot), Flavour.ZULIP, bot.settings.series[0])
    assert [text] == split_message(notes, 10_000)


def _fresh_meeting(bot: Harness) -> Meeting:
    with bot.app.unit_of_work() as session:
        meeting = session.get(Meeting, june(bot).id)
        assert meeting is not None
        render(meeting, Flavour.ZULIP, bot.settings.series[0])  # load relationships
        return meeting


def test_long_notes_are_split_at_sections(db_url: str, tmp_path: Path) -> None:
    bot = Harness(db_url, series=(replace(CAFE, archive_dir=tmp_path),))
    try:
        for n in range(30):
            bot.send(f"agenda 5m Topic number {n} with a fairly long description")
        bot.send("shoutout " + "great work " * 20)
        bot.clock.set(at(2031, 6, 17, 15, 30))
        chat = RecordingChat(max_message_length=1000)
        Lifecycle(bot.app, chat).sweep()
        assert len(chat.posted) > 2
        assert all(len(p.text) <= 1000 for p in chat.posted)
        assert any(p.text.startswith("### Agenda") for p in chat.posted)
        assert len(bot.rows(PublishedPart)) == len(chat.posted)
    finally:
        bot.close()


def test_the_archive_file_keeps_other_meetings_untouched() -> None:
    existing = (
        "# 2031 Collaboration Cafe Notes Archive\n\n"
        "## 2031-07-15\n\n### Agenda :clock2:  \n\n- hand-edited, *kept*   \n\n"
        "## 2031-05-20\n\n### Check-in\n\n- Ines / ines-r\n"
    )
    section = "## 2031-06-17\n\n### Agenda :clock2:\n\n- new\n"
    updated = upsert_section(existing, JUNE_17, section, "# unused")
    assert updated == existing.replace("## 2031-05-20", section + "\n## 2031-05-20")
    again = upsert_section(updated, JUNE_17, section.replace("new", "newer"), "# unused")
    assert again == updated.replace("- new\n", "- newer\n")
    assert upsert_section("", JUNE_17, section, "# Title") == "# Title\n\n" + section


# ---------------------------------------------------------------- git


@pytest.fixture
def remote(tmp_path: Path) -> Path:
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "--quiet", str(bare), str(seed))
    (seed / "README.md").write_text("Our notes\n")
    git(seed, "add", "README.md")
    git(seed, "commit", "--quiet", "-m", "start")
    git(seed, "push", "--quiet", "origin", "HEAD:main")
    return bare


def git_bot(db_url: str, tmp_path: Path, remote: Path) -> Harness:
    series = replace(CAFE, archive_dir=tmp_path / "clone", git_remote=str(remote))
    return Harness(db_url, series=(series,))


def test_publish_commits_and_pushes(db_url: str, tmp_path: Path, remote: Path) -> None:
    bot = git_bot(db_url, tmp_path, remote)
    try:
        hold_a_meeting(bot)
        bot.clock.set(at(2031, 6, 17, 15, 15))
        chat = RecordingChat()
        Lifecycle(bot.app, chat).sweep()
        log = git(remote, "log", "--format=%s", "main")
        assert log.splitlines() == ["Notes of the Collaboration Cafe of 2031-06-17", "start"]
        notes = git(remote, "show", "main:2031.md")
        assert notes.startswith("# 2031 Collaboration Cafe Notes Archive\n\n## 2031-06-17\n")
        assert git(remote, "show", "main:README.md") == "Our notes\n"
    finally:
        bot.close()


def test_a_push_racing_another_writer_is_rebased(db_url: str, tmp_path: Path, remote: Path) -> None:
    bot = git_bot(db_url, tmp_path, remote)
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(remote), str(other))
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(remote), str(clone))
    # Just before our first push, someone else pushes: our push is rejected once.
    hook = clone / ".git" / "hooks" / "pre-push"
    hook.write_text(
        "#!/bin/sh\n"
        f'[ -e "{tmp_path}/raced" ] && exit 0\n'
        f'touch "{tmp_path}/raced"\n'
        f'cd "{other}" && echo "fixed a typo" > TYPO.md && git add TYPO.md && '
        "git -c user.name=o -c user.email=o@example.org commit -qm 'Fix a typo' && "
        "git push -q origin HEAD:main\n"
    )
    hook.chmod(0o755)
    try:
        hold_a_meeting(bot)
        report = publish(bot.app, RecordingChat(), june(bot).id)
        assert not report.failed, report.steps
        assert "after 2 tries" in report.steps["git"]
        log = git(remote, "log", "--format=%s", "main").splitlines()
        assert log == ["Notes of the Collaboration Cafe of 2031-06-17", "Fix a typo", "start"]
        assert git(remote, "show", "main:TYPO.md") == "fixed a typo\n"
    finally:
        bot.close()


def test_a_failed_step_is_reported_retried_and_does_not_block(db_url: str, tmp_path: Path) -> None:
    missing = tmp_path / "not-yet.git"
    bot = git_bot(db_url, tmp_path, missing)
    try:
        hold_a_meeting(bot)
        bot.clock.set(at(2031, 6, 17, 15, 15))
        chat = RecordingChat()
        lifecycle = Lifecycle(bot.app, chat)
        lifecycle.sweep()
        notes, report = chat.posted
        assert notes.text.startswith("## Collaboration Cafe notes")  # Zulip went ahead
        assert "**Organisers:** publishing the notes of 2031-06-17 did not fully work: git" in (
            report.text
        )
        assert "I will try again <time:2031-06-17T15:17:00Z>" in report.text
        (step,) = [s for s in bot.rows(PublishStep) if s.step == "git"]
        assert (step.status, step.attempts) == (StepStatus.FAILED, 1)
        # The operator creates the remote; the retry succeeds, without posting the notes again.
        git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(missing))
        assert lifecycle.plan()[f"retry:{june(bot).id}"] == at(2031, 6, 17, 15, 17)
        bot.clock.set(at(2031, 6, 17, 15, 17))
        lifecycle.sweep()
        assert len(chat.posted) == 2
        (step,) = [s for s in bot.rows(PublishStep) if s.step == "git"]
        assert (step.status, step.retry_at) == (StepStatus.OK, None)
        assert git(missing, "log", "--format=%s", "main").strip() == (
            "Notes of the Collaboration Cafe of 2031-06-17"
        )
    finally:
        bot.close()
