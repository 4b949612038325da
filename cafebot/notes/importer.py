"""Importing a year's notes archive file into the database (``cafebot archive import``).

:func:`import_archive` stores what :mod:`cafebot.notes.reader` read from one
file: each meeting (as history: published, so it never captures new entries)
with its records, its free-text blocks and its source; people matched across
meetings by GitHub handle, then by name, and each person's name, handle and
affiliation remembered from their latest check-in. It writes with bulk
statements (fast, and past the session's change tracking, so the stored source
is not taken for a change by the bot), in the caller's transaction: one per file.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.orm import Session, selectinload

from cafebot.core.config import SeriesSettings
from cafebot.notes.actions import ImportedAction, ParsedAction, recognise, store_imported
from cafebot.notes.reader import parse_archive, read_archive_file
from cafebot.notes.records import ParsedArchive, ParsedMeeting, ParsedNote, normalise
from cafebot.storage.models import (
    AgendaItem,
    ArchiveBlock,
    ArchiveFile,
    ArchiveMeeting,
    CheckIn,
    Introduction,
    ItemNote,
    ItemState,
    Meeting,
    MeetingState,
    Person,
    Series,
    ShoutOut,
)
from cafebot.storage.series import instants, series_row

IMPORTED = "imported"
REPLACED = "replaced"
UNCHANGED = "unchanged"
CONFLICT = "conflict"


def table_of(model: type[Any]) -> Table:
    table = model.__table__
    assert isinstance(table, Table)  # noqa: S101 - every model maps one table
    return table


# ---------------------------------------------------------------- import


@dataclass(frozen=True)
class MeetingOutcome:
    meeting: ParsedMeeting
    status: str  # IMPORTED, REPLACED, UNCHANGED or CONFLICT
    reason: str = ""

    def line(self) -> str:
        """The summary line; a meeting not imported as new says so after it."""
        summary = self.meeting.summary()
        if self.status == REPLACED:
            return f"{summary} (replaced the stored meeting)"
        if self.status == UNCHANGED:
            return f"{summary} (unchanged: imported before)"
        if self.status == CONFLICT:
            return f"{summary} (skipped: {self.reason}; --replace imports it over that)"
        return summary


@dataclass
class ImportReport:
    outcomes: list[MeetingOutcome] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def conflicts(self) -> list[MeetingOutcome]:
        return [o for o in self.outcomes if o.status == CONFLICT]

    @property
    def changed(self) -> bool:
        return any(o.status in (IMPORTED, REPLACED) for o in self.outcomes)


@dataclass(eq=False)
class _Who:
    """A person as the import sees them: a stored row (id) or one to be made."""

    id: int | None
    name: str | None
    github: str | None
    zulip: bool = False


class _People:
    """Finds the person an entry names: by GitHub handle, then by name; else makes one.

    Names are matched with people not yet linked to a Zulip account (those are
    linked when they check in: see :mod:`cafebot.cafe.people`); handles with anyone.
    """

    def __init__(self, session: Session) -> None:
        self.by_github: dict[str, _Who] = {}
        self.by_name: dict[str, _Who] = {}
        self.new: list[_Who] = []
        rows = session.execute(
            select(Person.id, Person.name, Person.github, Person.zulip_user_id).order_by(Person.id)
        )
        for pid, name, github, zulip_id in rows:
            who = _Who(pid, name, github, zulip_id is not None)
            if github:
                known = self.by_github.get(github.lower())
                if known is None or (who.zulip and not known.zulip):
                    self.by_github[github.lower()] = who
            if name and zulip_id is None:
                self.by_name.setdefault(name.casefold(), who)

    def _make(self, name: str | None, github: str | None) -> _Who:
        who = _Who(None, name, github)
        self.new.append(who)
        if github:
            self.by_github.setdefault(github.lower(), who)
        if name:
            self.by_name.setdefault(name.casefold(), who)
        return who

    def checked_in(self, name: str, github: str | None) -> _Who:
        if github and (who := self.by_github.get(github.lower())) is not None:
            return who
        who = self.by_name.get(name.casefold())
        if who is not None and (not github or not who.github):
            if github:
                who.github = github
                self.by_github[github.lower()] = who
            return who
        return self._make(name, github)

    def with_handle(self, github: str) -> _Who:
        return self.by_github.get(github.lower()) or self._make(None, github)

    def named(self, name: str, present: Sequence[tuple[str, _Who]]) -> _Who:
        """Who an author tag or an introduction names, in a meeting with ``present`` check-ins.

        Someone checked in under that name; else the one person checked in whose
        first name it is (``[name=Priya]`` for Priya Raman); else anyone by that name.
        """
        key = name.casefold()
        for checked, who in present:
            if checked.casefold() == key:
                return who
        first = {id(w): w for n, w in present if n.casefold().split(" ", 1)[0] == key}
        if len(first) == 1:
            return next(iter(first.values()))
        return self.by_name.get(key) or self._make(name, None)

    def save(self, session: Session, now: dt.datetime) -> None:
        """Insert the people made so far; their ids are known afterwards."""
        if not self.new:
            return
        table = table_of(Person)
        rows = [{"name": w.name, "github": w.github, "created_at": now} for w in self.new]
        ids = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), rows
        ).scalars()
        for who, pid in zip(self.new, ids, strict=True):
            who.id = pid
        self.new = []


@dataclass
class _Resolved:
    """One meeting to import, with the people of its entries found."""

    parsed: ParsedMeeting
    checkins: list[_Who]
    intros: list[_Who]
    shoutouts: list[_Who | None]
    items: list[_Who | None]
    meeting_id: int | None = None  # an existing meeting row to reuse
    # Per agenda item, per note: the action it records, if any, and its owner.
    actions: list[list[tuple[ParsedAction, _Who | None] | None]] = field(default_factory=list)


def _content_ids(session: Session, meeting_ids: Iterable[int]) -> set[int]:
    """Which of the meetings hold any entry or kept text."""
    ids = list(meeting_ids)
    found: set[int] = set()
    if not ids:
        return found
    for model in (CheckIn, Introduction, ShoutOut, AgendaItem, ArchiveBlock):
        found.update(session.scalars(select(model.meeting_id).where(model.meeting_id.in_(ids))))
    return found


def import_archive(
    session: Session,
    series: SeriesSettings,
    archive: ParsedArchive,
    now: dt.datetime,
    *,
    replace: bool = False,
) -> ImportReport:
    """Store the archive's meetings in ``series``; the caller commits (one transaction a file).

    A meeting imported before with the same content is left alone. One that exists
    with other content (the bot's, or a different import, or an imported meeting the
    bot has changed since) is skipped and reported, unless ``replace``: then its
    entries are dropped and the archive's are stored in the same meeting row.
    """
    report = ImportReport(warnings=list(archive.warnings))
    row = series_row(session, series)
    session.flush()
    dates = [m.date for m in archive.meetings]
    existing = {
        m.date: m
        for m in session.scalars(
            select(Meeting)
            .where(Meeting.series_id == row.id, Meeting.date.in_(dates))
            .options(selectinload(Meeting.archive))
        )
    }
    with_content = _content_ids(session, (m.id for m in existing.values() if m.archive is None))
    people = _People(session)
    todo: list[_Resolved] = []
    for parsed in archive.meetings:
        stored = existing.get(parsed.date)
        status = IMPORTED
        if stored is not None:
            kept = stored.archive
            if kept is not None and kept.source is not None and kept.digest == parsed.digest:
                report.outcomes.append(MeetingOutcome(parsed, UNCHANGED))
                continue
            if kept is not None or stored.id in with_content:
                if not replace:
                    reason = (
                        "the bot has changed this imported meeting since"
                        if kept is not None and kept.source is None
                        else "the database holds this meeting with other content"
                    )
                    report.outcomes.append(MeetingOutcome(parsed, CONFLICT, reason))
                    continue
                status = REPLACED
        report.outcomes.append(MeetingOutcome(parsed, status))
        todo.append(_resolve(parsed, people, stored.id if stored is not None else None))
    people.save(session, now)
    if todo:
        _store(session, series, row, todo, now)
        _remember(session, {w.id for r in todo for w in r.checkins if w.id is not None})
    _store_head(session, row, archive, replace, report)
    session.expire_all()  # the bulk statements went past the session's objects
    return report


def _resolve(parsed: ParsedMeeting, people: _People, meeting_id: int | None) -> _Resolved:
    checkins = [people.checked_in(c.name, c.github) for c in parsed.checkins]
    present = [(c.name, w) for c, w in zip(parsed.checkins, checkins, strict=True)]
    intros = [
        people.with_handle(i.github) if i.github else people.named(i.name or "", present)
        for i in parsed.intros
    ]
    shoutouts = [people.named(s.author, present) if s.author else None for s in parsed.shoutouts]
    items = [people.named(i.proposer, present) if i.proposer else None for i in parsed.items]
    actions = [_actions_of(item.notes, people, present) for item in parsed.items]
    return _Resolved(parsed, checkins, intros, shoutouts, items, meeting_id, actions)


def _actions_of(
    notes: Sequence[ParsedNote], people: _People, present: Sequence[tuple[str, _Who]]
) -> list[tuple[ParsedAction, _Who | None] | None]:
    """The actions an item's notes record (cafebot.notes.actions), owners found as for
    check-ins: by handle, else by the name someone checked in with, else by name."""
    found: list[tuple[ParsedAction, _Who | None] | None] = []
    for note in notes:
        action = recognise(note.kind, note.text)
        if action is None:
            found.append(None)
            continue
        owner = None
        if action.github:
            owner = people.with_handle(action.github)
        elif action.owner:
            owner = people.named(action.owner, present)
        found.append((action, owner))
    return found


def _insert(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table_of(model)), rows)


def _pid(who: _Who | None) -> int | None:
    return who.id if who is not None else None


def _store(
    session: Session,
    series: SeriesSettings,
    row: Series,
    todo: list[_Resolved],
    now: dt.datetime,
) -> None:
    # Meetings imported over: their entries and kept text go (item notes with their items).
    reused = [r.meeting_id for r in todo if r.meeting_id is not None]
    if reused:
        for model in (CheckIn, Introduction, ShoutOut, AgendaItem, ArchiveBlock, ArchiveMeeting):
            table = table_of(model)
            session.execute(delete(table).where(table.c.meeting_id.in_(reused)))
    meeting_table = table_of(Meeting)
    values: list[dict[str, Any]] = []
    for r in todo:
        p = r.parsed
        starts_at, ends_at = instants(series, dt.datetime.combine(p.date, series.start))
        values.append(
            {
                "series_id": row.id,
                "date": p.date,
                "starts_at": starts_at,
                "ends_at": ends_at,
                "state": MeetingState.PUBLISHED,
                "added": False,
                "published_at": ends_at,
                "next_agenda_ref": len(p.items) + 1,
                "next_shoutout_ref": len(p.shoutouts) + 1,
                "next_intro_ref": len(p.intros) + 1,
                "next_checkin_ref": len(p.checkins) + 1,
            }
        )
    reused_ids = set(reused)
    new = [(r, v) for r, v in zip(todo, values, strict=True) if r.meeting_id is None]
    if new:
        ids = session.execute(
            insert(meeting_table).returning(meeting_table.c.id, sort_by_parameter_order=True),
            [v for _, v in new],
        ).scalars()
        for (r, _), mid in zip(new, ids, strict=True):
            r.meeting_id = mid
    for r, v in zip(todo, values, strict=True):
        if r.meeting_id in reused_ids:
            fields = {k: v[k] for k in v if k not in ("series_id", "date")}
            session.execute(
                update(meeting_table)
                .where(meeting_table.c.id == r.meeting_id)
                .values(cancel_reason=None, current_item_ref=None, **fields)
            )

    rows: dict[str, list[dict[str, Any]]] = defaultdict(list)
    item_notes: list[list[dict[str, Any]]] = []
    for r, v in zip(todo, values, strict=True):
        _entry_rows(r, v["starts_at"], now, rows, item_notes)
    checkins, items = rows["checkin"], rows["item"]
    _insert(session, CheckIn, checkins)
    _insert(session, Introduction, rows["intro"])
    _insert(session, ShoutOut, rows["shoutout"])
    if items:
        table = table_of(AgendaItem)
        item_ids = session.execute(
            insert(table).returning(table.c.id, sort_by_parameter_order=True), items
        ).scalars()
        notes = [
            {**note, "item_id": item_id}
            for item_id, rows in zip(item_ids, item_notes, strict=True)
            for note in rows
        ]
        _store_notes(session, row, todo, notes)
    _insert(session, ArchiveBlock, rows["block"])
    _insert(session, ArchiveMeeting, rows["source"])


def _store_notes(
    session: Session, row: Series, todo: list[_Resolved], notes: list[dict[str, Any]]
) -> None:
    """The items' notes, and the actions among them (in the order _entry_rows made them)."""
    if not notes:
        return
    table = table_of(ItemNote)
    note_ids = session.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), notes
    ).scalars()
    places = [
        (r.meeting_id, ref, position, recognised)
        for r in todo
        for ref, per_item in enumerate(r.actions, start=1)
        for position, recognised in enumerate(per_item, start=1)
    ]
    found = [
        ImportedAction(note_id, mid, ref, position, note["created_at"], action, _pid(owner))
        for note_id, note, (mid, ref, position, recognised) in zip(
            note_ids, notes, places, strict=True
        )
        if recognised is not None and mid is not None
        for action, owner in [recognised]
    ]
    store_imported(session, row, found)


def _entry_rows(
    r: _Resolved,
    at: dt.datetime,
    now: dt.datetime,
    rows: dict[str, list[dict[str, Any]]],
    item_notes: list[list[dict[str, Any]]],
) -> None:
    """The rows of one meeting's entries, kept text and source (references in file order)."""
    p, mid = r.parsed, r.meeting_id
    entry = {"meeting_id": mid, "message_id": None, "created_at": at}
    for ref, (c, who) in enumerate(zip(p.checkins, r.checkins, strict=True), start=1):
        rows["checkin"].append(
            dict(
                entry,
                ref=ref,
                person_id=who.id,
                name=c.name,
                github=c.github,
                affiliation=c.affiliation,
            )
        )
    for ref, (i, who) in enumerate(zip(p.intros, r.intros, strict=True), start=1):
        rows["intro"].append(dict(entry, ref=ref, person_id=who.id, text=i.text))
    for ref, (s, author) in enumerate(zip(p.shoutouts, r.shoutouts, strict=True), start=1):
        rows["shoutout"].append(
            dict(entry, ref=ref, author_id=_pid(author), project=s.project, text=s.text)
        )
    for ref, (item, proposer) in enumerate(zip(p.items, r.items, strict=True), start=1):
        low, high = item.estimate if item.estimate else (None, None)
        rows["item"].append(
            dict(
                entry,
                ref=ref,
                proposer_id=_pid(proposer),
                topic=item.topic,
                estimate_min=low,
                estimate_max=high,
                position=ref,
                state=ItemState.OPEN,
                carried_from=None,
                moved_to=None,
                reached=False,
                next_note_ref=len(item.notes) + 1,
            )
        )
        note = {"author_id": None, "owner_id": None, "message_id": None, "created_at": at}
        item_notes.append(
            [
                dict(note, kind=n.kind, text=n.text, position=position)
                for position, n in enumerate(item.notes, start=1)
            ]
        )
    for position, b in enumerate(p.blocks, start=1):
        rows["block"].append(
            dict(
                meeting_id=mid,
                position=position,
                section=b.section,
                after_entries=b.after,
                kind=b.kind,
                text=b.text,
            )
        )
    rows["source"].append(
        dict(meeting_id=mid, source=stored_source(p.source), digest=p.digest, imported_at=now)
    )


def stored_source(source: str) -> str:
    """A meeting's source as kept: ending in a blank line if it was the last of its file.

    Within a file the source runs to the next meeting's heading, blank lines and all;
    the last meeting of a file gets the blank line that will stand before whatever
    follows it in an export (the file's end is trimmed again when written).
    """
    lines = source.split("\n")
    if len(lines) > 1 and not lines[-1] and not lines[-2].strip():
        return source  # it ends with a blank line already
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines) + "\n\n"


def _remember(session: Session, person_ids: set[int]) -> None:
    """Each person's name, handle and affiliation: from their latest check-in that gives it."""
    if not person_ids:
        return
    rows = session.execute(
        select(CheckIn.person_id, CheckIn.name, CheckIn.github, CheckIn.affiliation)
        .join(Meeting, Meeting.id == CheckIn.meeting_id)
        .where(CheckIn.person_id.in_(person_ids))
        .order_by(Meeting.date.desc(), Meeting.starts_at.desc(), CheckIn.ref.desc())
    )
    latest: dict[int, dict[str, str | None]] = defaultdict(dict)
    for pid, name, github, affiliation in rows:
        fields = latest[pid]
        for key, value in (("name", name), ("github", github), ("affiliation", affiliation)):
            if fields.get(key) is None and value:
                fields[key] = value
    current = {
        pid: (name, github, affiliation)
        for pid, name, github, affiliation in session.execute(
            select(Person.id, Person.name, Person.github, Person.affiliation).where(
                Person.id.in_(person_ids)
            )
        )
    }
    changes = []
    for pid, fields in latest.items():
        wanted = tuple(
            fields.get(k) or old
            for k, old in zip(("name", "github", "affiliation"), current[pid], strict=True)
        )
        if wanted != current[pid]:
            changes.append(
                {"id": pid, "name": wanted[0], "github": wanted[1], "affiliation": wanted[2]}
            )
    if changes:
        session.execute(update(Person), changes)


def _store_head(
    session: Session, row: Series, archive: ParsedArchive, replace: bool, report: ImportReport
) -> None:
    """Keep the file's title (and anything else before its first meeting) for its year."""
    year = archive.year
    title = archive.title[:300] if archive.title else None  # as the column holds it
    stored = session.scalar(
        select(ArchiveFile).where(ArchiveFile.series_id == row.id, ArchiveFile.year == year)
    )
    if stored is None:
        session.add(ArchiveFile(series_id=row.id, year=year, title=title, head=archive.head))
        session.flush()
    elif stored.head != archive.head:
        if normalise(stored.head) == normalise(archive.head):
            return
        if replace:
            stored.title, stored.head = title, archive.head
            session.flush()
        else:
            report.warnings.append(
                f"the file's title differs from the one kept for {year} "
                f"('{stored.title or ''}'); kept that one (--replace takes the file's)"
            )


def import_file(
    session: Session,
    series: SeriesSettings,
    path: Path,
    now: dt.datetime,
    *,
    replace: bool = False,
) -> ImportReport:
    """Read, parse and import one file (raises :class:`ArchiveError` for a file that is none)."""
    return import_archive(
        session, series, parse_archive(read_archive_file(path)), now, replace=replace
    )
