"""The search index: which meetings may hold a word, without reading every entry.

Each meeting's haystacks (:mod:`cafebot.cafe.haystacks`, every entry's text as search
reads it) are kept as one document in ``search_text``: on SQLite an FTS5 table with
the trigram tokenizer, on PostgreSQL a table with a pg_trgm GIN index. Both find a
word anywhere in a document, as search's ``LIKE`` does in an entry, through the index.

Database triggers (migration 0012) mark a meeting stale, a row in ``search_stale``,
whenever anything search reads in it changes, whatever the writer: a command, an
import, a restore, people merged. A stale meeting is always a candidate, read entry by
entry, so the index never hides a match; :func:`refresh` rewrites the documents of
stale meetings (``cafebot run`` every minute, ``archive import`` when it is done).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    and_,
    column,
    delete,
    insert,
    select,
    text,
    union,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import CompoundSelect, TextualSelect

from cafebot.cafe.haystacks import kinds, like
from cafebot.storage.models import Meeting, MeetingState

log = logging.getLogger(__name__)

MIN_CHARS = 3  # a word shorter than a trigram cannot be looked up in the index
REFRESH_BATCH = 200  # meetings whose documents one refresh rewrites at most
_CHUNK = 500  # ids named in one statement at most
ANALYZE_AFTER = 1000  # documents written by refresh_all before PostgreSQL's ANALYZE
# pg_advisory_xact_lock's key for refreshing ("cafesrch"): one refresh at a time, so that
# a refresh that read older entries never writes over one that read newer ones.
_LOCK_KEY = 0x6361666573726368

# Owned by migration 0012, not by the models (derived data: backups leave them out).
_tables = MetaData()
stale = Table(
    "search_stale",
    _tables,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("meeting_id", Integer, nullable=False),
)
documents_table = Table(  # PostgreSQL's; SQLite's is the FTS5 table of the same name
    "search_text",
    _tables,
    Column("meeting_id", Integer, primary_key=True),
    Column("text", Text, nullable=False),
)


def indexed(words: Sequence[str]) -> list[str]:
    """The words the index can look up (those of at least :data:`MIN_CHARS`)."""
    return [w.lower() for w in words if len(w) >= MIN_CHARS]


def _sqlite(session: Session) -> bool:
    return session.get_bind().dialect.name == "sqlite"


def candidates(
    session: Session, series_id: int, words: Sequence[str], *, published_only: bool = False
) -> list[int]:
    """The meetings of the series that may hold every word, newest first: those whose
    document holds each word the index can look up, and every stale one. When no word
    can be looked up, every meeting of the series."""
    query = select(Meeting.id).where(Meeting.series_id == series_id)
    if published_only:
        query = query.where(Meeting.state == MeetingState.PUBLISHED)
    lookup = indexed(words)
    if lookup:
        if _sqlite(session):
            phrases = " AND ".join('"' + w.replace('"', '""') + '"' for w in lookup)
            may_hold: TextualSelect | CompoundSelect[Any] = (
                text(
                    "SELECT rowid FROM search_text WHERE search_text MATCH :q"
                    " UNION SELECT meeting_id FROM search_stale"
                )
                .bindparams(q=phrases)
                .columns(column("rowid", Integer))
            )
        else:
            holding = select(documents_table.c.meeting_id).where(
                and_(*(documents_table.c.text.ilike(like(w), escape="\\") for w in lookup))
            )
            may_hold = union(holding, select(stale.c.meeting_id))
        # Looked up first, so that a word in no meeting reads no meeting at all.
        found = list(session.scalars(may_hold))
        if not found:
            return []
        query = query.where(Meeting.id.in_(found if len(found) <= _CHUNK else may_hold))
    return list(session.scalars(query.order_by(Meeting.date.desc())))


def documents(session: Session, meeting_ids: Sequence[int]) -> dict[int, str]:
    """Each meeting's document: its entries' haystacks, one a line (meetings without
    entries have none)."""
    lines: dict[int, list[str]] = defaultdict(list)
    for kind in kinds():
        query = kind.query.with_only_columns(Meeting.id, kind.haystack).where(
            kind.only, Meeting.id.in_(meeting_ids)
        )
        for meeting_id, haystack in session.execute(query):
            lines[meeting_id].append(haystack)
    return {meeting_id: "\n".join(found) for meeting_id, found in lines.items()}


def refresh(session: Session, *, meetings: int = REFRESH_BATCH) -> int:
    """Rewrite the documents of up to ``meetings`` stale meetings, in the session's
    transaction (the caller commits); how many were rewritten.

    Only the stale marks read before the entries are removed: a change made meanwhile
    leaves its own mark, and its meeting is rewritten by the next refresh.
    """
    sqlite = _sqlite(session)
    if not sqlite:
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    chosen = list(
        session.scalars(
            select(stale.c.meeting_id).distinct().order_by(stale.c.meeting_id).limit(meetings)
        )
    )
    if not chosen:
        return 0
    marks = list(session.scalars(select(stale.c.id).where(stale.c.meeting_id.in_(chosen))))
    written = documents(session, chosen)
    if sqlite:
        session.execute(
            text("DELETE FROM search_text WHERE rowid = :id"), [{"id": m} for m in chosen]
        )
        if written:
            session.execute(
                text("INSERT INTO search_text (rowid, text) VALUES (:id, :text)"),
                [{"id": m, "text": doc} for m, doc in written.items()],
            )
    else:
        for start in range(0, len(chosen), _CHUNK):
            part = chosen[start : start + _CHUNK]
            session.execute(delete(documents_table).where(documents_table.c.meeting_id.in_(part)))
        if written:
            session.execute(
                insert(documents_table),
                [{"meeting_id": m, "text": doc} for m, doc in written.items()],
            )
    for start in range(0, len(marks), _CHUNK):
        session.execute(delete(stale).where(stale.c.id.in_(marks[start : start + _CHUNK])))
    return len(chosen)


def refresh_all(unit_of_work: Callable[[], AbstractContextManager[Session]]) -> int:
    """Refresh until no meeting is stale, a batch per transaction; how many were rewritten.

    On PostgreSQL, after many, the table's statistics are brought up to date at once, so
    that the planner takes the trigram index before autovacuum's next look."""
    total = 0
    while True:
        with unit_of_work() as session:
            done = refresh(session)
            if done == 0 and total >= ANALYZE_AFTER and not _sqlite(session):
                session.execute(text("ANALYZE search_text"))
        total += done
        if done == 0:
            return total
