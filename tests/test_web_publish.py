"""Publishing with a git_remote and ``[web] site_dir`` rebuilds the static site in the repo."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import pytest

from cafebot.publishing.publish import publish
from cafebot.storage.models import Meeting
from cafebot.web.build import MARKER, rebuild_on_publish
from tests.harness import ADA, CAFE, Harness, RecordingChat, sqlite_url
from tests.test_publish import git
from tests.webdata import AUG_1, NEXT

pytestmark = pytest.mark.slow


def test_publishing_rebuilds_the_site_into_its_folder_of_the_archive_repository(
    tmp_path: Path,
) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    series = replace(CAFE, archive_dir=tmp_path / "clone", git_remote=str(remote))
    h = Harness(sqlite_url(tmp_path), series=(series,), now=AUG_1)
    h.app.settings = replace(h.app.settings, web=replace(h.app.settings.web, site_dir="docs"))
    rebuild_on_publish(h.app)
    try:
        assert h.send("agenda 10m Release plans", ADA).reactions
        h.clock.set(dt.datetime(2031, 8, 19, 15, 30, tzinfo=dt.UTC))
        (meeting,) = h.rows(Meeting, date=NEXT)
        report = publish(h.app, RecordingChat(), meeting.id)
        assert not report.failed, report.steps
        files = git(remote, "ls-tree", "-r", "--name-only", "main").split()
        assert "2031.md" in files and f"docs/{MARKER}" in files
        page = git(remote, "show", f"main:docs/cafe/{NEXT.isoformat()}/index.html")
        assert "Release plans" in page and 'id="A1"' in page
        assert "Release plans" in git(remote, "show", "main:docs/search/index.json")
        log = git(remote, "log", "--format=%s", "main").splitlines()
        assert log == ["Notes of the Collaboration Cafe of 2031-08-19"]
        # Published again with nothing changed: no new commit.
        again = publish(h.app, RecordingChat(), meeting.id)
        assert again.steps["git"] == "already up to date", again.steps
    finally:
        h.close()


def test_without_site_dir_publishing_builds_no_site(tmp_path: Path) -> None:
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    series = replace(CAFE, archive_dir=tmp_path / "clone", git_remote=str(remote))
    h = Harness(sqlite_url(tmp_path), series=(series,), now=AUG_1)
    rebuild_on_publish(h.app)
    try:
        assert h.send("agenda 10m Release plans", ADA).reactions
        h.clock.set(dt.datetime(2031, 8, 19, 15, 30, tzinfo=dt.UTC))
        (meeting,) = h.rows(Meeting, date=NEXT)
        assert not publish(h.app, RecordingChat(), meeting.id).failed
        assert git(remote, "ls-tree", "-r", "--name-only", "main").split() == ["2031.md"]
    finally:
        h.close()
