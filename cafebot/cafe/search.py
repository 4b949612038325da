"""``search``: find entries and notes across all meetings of a series, newest first.

Every word must occur (letter case aside) in one entry: a check-in's name, handle
and affiliation, an introduction (with the person's name), a shout-out (with its
project), an agenda item's topic, a note under an item, or text that an imported
meeting kept outside its records. ``"two words"`` in quotes must occur together.
Meetings imported from the archive are searched like the bot's own.
"""

from __future__ import annotations

import datetime as dt
import re
import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, true
from sqlalchemy.orm import Session

from cafebot.cafe import textindex
from cafebot.cafe.context import Context
from cafebot.cafe.haystacks import kinds
from cafebot.commands.converters import format_estimate
from cafebot.commands.errors import UserError
from cafebot.commands.registry import Outcome, command
from cafebot.core.text import fragment, one_line
from cafebot.storage.models import (
    AgendaItem,
    ArchiveBlock,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    MeetingState,
    ShoutOut,
    name_at,
)

MAX_HITS = 15  # shown in one reply
MAX_TERMS = 10
SNIPPET = 160  # characters of a long text shown around the first word found
FIRST_BATCH = 8  # meetings searched at first by newest_in (then twice as many each time)
MAX_LISTED = 500  # meetings named in one query at most


@dataclass(frozen=True)
class Hit:
    date: dt.date
    order: tuple[int, int, int]  # within a meeting: kind, reference or position, a note's id
    ref: str  # "2031-05-20/A4", or the date alone for kept text
    text: str  # one line, Markdown-safe


def terms(text: str) -> list[str]:
    """The words to look for; a "quoted phrase" is one term."""
    try:
        words = shlex.split(text)
    except ValueError:  # an unclosed quote: take the words as they are
        words = text.replace('"', " ").split()
    found = [" ".join(w.split()) for w in words if w.strip()]
    if not found:
        raise UserError("What should I look for? Give a word or two.", example="search release")
    if len(found) > MAX_TERMS:
        raise UserError(f"Give at most {MAX_TERMS} words to look for.")
    return found


def _snippet(text: str, words: Sequence[str]) -> str:
    flat = one_line(text)
    if len(flat) <= SNIPPET:
        return fragment(flat)
    at = max(0, flat.lower().find(words[0].lower()))
    start = max(0, min(at - SNIPPET // 3, len(flat) - SNIPPET))
    piece = flat[start : start + SNIPPET].strip()
    return fragment(("…" if start else "") + piece + ("…" if start + SNIPPET < len(flat) else ""))


def _in_series(query: Select[Any, Any], series_id: int, published_only: bool) -> Select[Any, Any]:
    query = query.where(Meeting.series_id == series_id)
    if published_only:
        query = query.where(Meeting.state == MeetingState.PUBLISHED)
    return query.order_by(Meeting.date.desc())


def entries(session: Session, series_id: int) -> Iterator[tuple[Hit, str]]:
    """Every entry of the published meetings that search looks in, with the text it reads
    there (letter case as written): the site's prebuilt search index."""
    for kind in kinds():
        query = (
            kind.query.add_columns(kind.haystack)
            .where(kind.only, Meeting.series_id == series_id)
            .where(Meeting.state == MeetingState.PUBLISHED)
            .order_by(Meeting.date.desc())
        )
        for row, date, haystack in session.execute(query):
            yield _hit(row, date, [""]), haystack.strip()


def find(ctx: Context, words: Sequence[str], limit: int) -> tuple[list[Hit], int]:
    """The newest ``limit`` hits, and how many there are in all."""
    return find_in(ctx.session, ctx.series_row.id, words, limit)


def find_in(
    session: Session,
    series_id: int,
    words: Sequence[str],
    limit: int,
    *,
    published_only: bool = False,
) -> tuple[list[Hit], int]:
    """The newest ``limit`` hits in the series, and how many there are in all.

    ``published_only``: only in meetings whose notes are published (imported ones
    included), as the site shows them.
    """
    hits: list[Hit] = []
    total = 0
    meetings = textindex.candidates(session, series_id, words, published_only=published_only)
    if not meetings:
        return hits, total
    # Few meetings can hold the words: read only theirs (else the series, with its indexes).
    only = Meeting.id.in_(meetings) if len(meetings) <= MAX_LISTED else true()
    for kind in kinds():
        query = _in_series(kind.query.where(kind.matching(words), only), series_id, published_only)
        count_query = select(func.count()).select_from(query.order_by(None).subquery())
        total += int(session.scalar(count_query) or 0)
        for row, date in session.execute(query.limit(limit)):
            hits.append(_hit(row, date, words))
    hits.sort(key=lambda h: (-h.date.toordinal(), h.order))
    return hits[:limit], total


def newest_in(
    session: Session,
    series_id: int,
    words: Sequence[str],
    limit: int,
    *,
    published_only: bool = False,
) -> list[Hit]:
    """The newest ``limit`` hits in the series (as :func:`find_in` finds them), looked for
    a batch of meetings at a time, newest first, stopping once ``limit`` are found.

    Only the meetings that the search index says may hold the words are read
    (:func:`cafebot.cafe.textindex.candidates`): a word found in no meeting reads no
    entry. The batches double (8, 16, 32 … meetings): words found in recent meetings
    cost a few small queries, however long the series. Nothing is counted.
    """
    meetings = textindex.candidates(session, series_id, words, published_only=published_only)
    hits: list[Hit] = []
    start, batch = 0, FIRST_BATCH
    while len(hits) < limit and start < len(meetings):
        ids = meetings[start : start + batch]
        found: list[Hit] = []
        for kind in kinds():
            query = kind.query.where(kind.matching(words), Meeting.id.in_(ids))
            query = _in_series(query, series_id, published_only)
            found.extend(_hit(row, date, words) for row, date in session.execute(query))
        found.sort(key=lambda h: (-h.date.toordinal(), h.order))
        hits.extend(found)
        start, batch = start + batch, min(batch * 2, MAX_LISTED)
    return hits[:limit]


def _hit(row: object, date: dt.date, words: Sequence[str]) -> Hit:
    day = date.isoformat()
    if isinstance(row, CheckIn):
        fields = [row.name, f"@{row.github}" if row.github else "", row.affiliation or ""]
        text = "checked in: " + fragment(" / ".join(f for f in fields if f))
        return Hit(date, (3, row.ref, 0), f"{day}/C{row.ref}", text)
    if isinstance(row, Introduction):
        name = fragment(name_at(row.meeting, row.person)) if row.person else "someone"
        return Hit(
            date, (2, row.ref, 0), f"{day}/I{row.ref}", f"{name}: {_snippet(row.text, words)}"
        )
    if isinstance(row, ShoutOut):
        project = f"[{fragment(row.project)}] " if row.project else ""
        who = f" — {fragment(name_at(row.meeting, row.author))}" if row.author else ""
        text = f"{project}{_snippet(row.text, words)}{who}"
        return Hit(date, (1, row.ref, 0), f"{day}/S{row.ref}", text)
    if isinstance(row, AgendaItem):
        return Hit(date, (0, row.position, 0), f"{day}/A{row.ref}", _item(row, words))
    if isinstance(row, ItemNote):
        item = row.item
        kind = row.kind.value
        if row.action is not None:  # the action's own reference, state and owner
            owner = row.action.owner.display_name if row.action.owner else "nobody"
            kind = f"action {row.action.label} ({row.action.status.value}, {fragment(owner)})"
        text = f"{kind}: {_snippet(row.text, words)} (on “{_snippet(item.topic, words)}”)"
        return Hit(date, (0, item.position, row.id), f"{day}/A{item.ref}", text)
    assert isinstance(row, ArchiveBlock)  # noqa: S101 - the queries select nothing else
    lines = [line for line in row.text.split("\n") if line.strip()]
    hit_line = next(
        (line for line in lines if all(w.lower() in line.lower() for w in words)),
        " ".join(lines),
    )
    cleaned = re.sub(r"^\s*(?:#{1,6}\s+|[-*+]\s+|:::\s*)", "", hit_line)
    return Hit(date, (4, row.position, 0), day, f"notes: {_snippet(cleaned, words)}")


def _item(item: AgendaItem, words: Sequence[str]) -> str:
    estimate = format_estimate(item.estimate_min, item.estimate_max)
    who = f" — {fragment(name_at(item.meeting, item.proposer))}" if item.proposer else ""
    return f"{f'({estimate}) ' if estimate else ''}{_snippet(item.topic, words)}{who}"


@command(
    "search",
    aliases=("find",),
    examples=("search release plans", 'search "code of conduct"'),
    group="Meetings",
)
def search(ctx: Context, words: str) -> Outcome:
    """Find past entries and notes across all meetings (imported ones too), newest first.

    Every word must occur in the entry; put words in "quotes" to find them together.
    Each hit shows its meeting's date and reference, like `2031-05-20/A4`, which
    other commands take (`note 2031-05-20/A4 …`).
    """
    wanted = terms(words)
    hits, total = find(ctx, wanted, MAX_HITS)
    shown = " ".join(f'"{w}"' if " " in w else w for w in wanted)
    if not hits:
        return Outcome(
            reply=f"Nothing found for {fragment(shown)} in the meetings of "
            f"{fragment(ctx.series.name)}. Try fewer or shorter words."
        )
    head = f"**{total} found** for {fragment(shown)}, newest first"
    if total > len(hits):
        head += f" (the {len(hits)} newest shown; add words to narrow it down)"
    lines = [head + ":"] + [f"- **{h.ref}** {h.text}" for h in hits]
    return Outcome(reply="\n".join(lines))
