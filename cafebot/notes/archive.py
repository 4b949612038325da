"""The notes archive: import a year's file into the database, and write it out again.

The archive is the community's notes, one Markdown file per year (notes-format.md).
:mod:`cafebot.notes.reader` reads a file (on markdown-it-py's tokens and line
maps) into the records of :mod:`cafebot.notes.records`;
:mod:`cafebot.notes.importer` stores them. This module is the entry point for
both directions, and writes the files:

:func:`write_year_file` writes one year's file, newest meeting first, each
meeting through the archive-flavour renderer that publishing uses
(:func:`cafebot.notes.render.render`): an imported meeting the bot has not changed
comes out as it was read, any other in canonical form.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from cafebot.core.config import SeriesSettings
from cafebot.core.text import escape_html, fragment
from cafebot.notes.importer import ImportReport, MeetingOutcome, import_archive, import_file
from cafebot.notes.reader import parse_archive, read_archive_file
from cafebot.notes.records import ArchiveError, ParsedArchive, ParsedMeeting, normalise
from cafebot.notes.render import Flavour, render
from cafebot.storage.models import (
    AgendaItem,
    ArchiveFile,
    Introduction,
    ItemNote,
    Meeting,
    MeetingState,
    Series,
    ShoutOut,
)
from cafebot.storage.series import series_row

__all__ = [
    "ArchiveError",
    "ImportReport",
    "MeetingOutcome",
    "ParsedArchive",
    "ParsedMeeting",
    "archive_years",
    "default_title",
    "import_archive",
    "import_file",
    "meeting_count",
    "normalise",
    "parse_archive",
    "read_archive_file",
    "write_year_file",
    "year_text",
]


# ---------------------------------------------------------------- export


def archive_years(session: Session, series: SeriesSettings) -> list[int]:
    """The years that have meetings to archive (published ones), newest first."""
    row = series_row(session, series)
    dates = session.scalars(
        select(Meeting.date).where(
            Meeting.series_id == row.id, Meeting.state == MeetingState.PUBLISHED
        )
    )
    return sorted({d.year for d in dates}, reverse=True)


def _year_meetings(session: Session, row: Series, year: int) -> list[Meeting]:
    found = list(
        session.scalars(
            select(Meeting)
            .where(
                Meeting.series_id == row.id,
                Meeting.state == MeetingState.PUBLISHED,
                Meeting.date >= dt.date(year, 1, 1),
                Meeting.date <= dt.date(year, 12, 31),
            )
            .order_by(Meeting.date.desc())
            .options(selectinload(Meeting.archive))
        )
    )
    canonical = [m.id for m in found if m.archive is None or m.archive.source is None]
    if canonical:
        # Load what the canonical renderer reads, in a few queries rather than many.
        list(
            session.scalars(
                select(Meeting)
                .where(Meeting.id.in_(canonical))
                .options(
                    selectinload(Meeting.checkins),
                    selectinload(Meeting.introductions).selectinload(Introduction.person),
                    selectinload(Meeting.shoutouts).selectinload(ShoutOut.author),
                    selectinload(Meeting.agenda_items).selectinload(AgendaItem.proposer),
                    selectinload(Meeting.agenda_items)
                    .selectinload(AgendaItem.notes)
                    .selectinload(ItemNote.owner),
                    selectinload(Meeting.archive_blocks),
                )
            )
        )
    return found


def default_title(series: SeriesSettings, year: int) -> str:
    return f"{year} {series.name} Notes Archive"


def year_text(session: Session, series: SeriesSettings, year: int) -> str:
    """The archive file of ``year``: its title (kept from the import, or the default),
    then every published meeting of the year, newest first."""
    row = series_row(session, series)
    kept = session.scalar(
        select(ArchiveFile).where(ArchiveFile.series_id == row.id, ArchiveFile.year == year)
    )
    if kept is not None:
        parts = [(kept.head, True)]
    else:
        parts = [(f"# {escape_html(fragment(default_title(series, year)))}\n", False)]
    for meeting in _year_meetings(session, row, year):
        verbatim = meeting.archive is not None and meeting.archive.source is not None
        parts.append((render(meeting, Flavour.ARCHIVE, series), verbatim))
    out: list[str] = []
    tail = ""  # the last two characters written
    previous_verbatim = True
    for text, verbatim in parts:
        if tail and not tail.endswith("\n"):
            out.append("\n")
            tail = tail[-1:] + "\n"
        if tail and not (previous_verbatim and verbatim) and tail != "\n\n":
            out.append("\n")  # a blank line before and after a meeting rendered anew
        out.append(text)
        tail = (tail + text)[-2:]
        previous_verbatim = verbatim
    return "".join(out).rstrip("\n") + "\n"


def write_year_file(session: Session, series: SeriesSettings, year: int, directory: Path) -> Path:
    """Write ``<directory>/<year>.md`` (atomically) and return its path.

    Every published meeting of the series in that year, newest first, each through
    the archive-flavour renderer; the title kept from the import, or
    ``# {year} {series name} Notes Archive``.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{year}.md"
    text = year_text(session, series, year)
    fd, tmp = tempfile.mkstemp(prefix=f".{year}.", suffix=".md.tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as out:
            out.write(text)
        # mkstemp makes the file 0600; the archive is for sharing: the mode a plain
        # open() would give it (0666 less the umask), as `cafebot publish` writes it.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    """The process's umask, read without changing it where Linux tells it."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)  # elsewhere: set and restore it at once
    os.umask(mask)
    return mask


def meeting_count(session: Session, series: SeriesSettings, year: int) -> int:
    row = series_row(session, series)
    count = session.scalar(
        select(func.count(Meeting.id)).where(
            Meeting.series_id == row.id,
            Meeting.state == MeetingState.PUBLISHED,
            Meeting.date >= dt.date(year, 1, 1),
            Meeting.date <= dt.date(year, 12, 31),
        )
    )
    return int(count or 0)
