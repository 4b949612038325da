"""``/search?q=``: the chat command's search over the published meetings, paginated.

The words are read as ``search`` reads them (every word must occur; ``"two words"``
together), in each series (or the one ``series=`` names), newest first; each result
links to its entry's permalink (``/cafe/2031-05-20/#A4``), its words highlighted.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from flask import Blueprint, render_template, request
from markupsafe import Markup

from cafebot.cafe.search import MAX_TERMS, find_in, terms
from cafebot.commands.errors import UserError
from cafebot.core.config import SeriesSettings
from cafebot.web.site import site

bp = Blueprint("search", __name__)

PER_PAGE = 20
MAX_PAGE = 50  # deeper than this, better words help more than more pages
MAX_QUERY = 200

_MENTION_RE = re.compile(r"@_?\*\*([^*|]+)(?:\|\d+)?\*\*")


@dataclass(frozen=True)
class Result:
    series: SeriesSettings
    date: dt.date
    anchor: str  # "A4", or "" for text kept outside the records
    ref: str  # "2031-05-20/A4"
    text: Markup  # escaped, the words marked


def highlight(text: str, words: Sequence[str]) -> Markup:
    """``text`` escaped, each occurrence of a word (letter case aside) in ``<mark>``."""
    plain = _MENTION_RE.sub(lambda m: "@" + m.group(1), text)
    if not words:
        return Markup(html.escape(plain))  # noqa: S704 - escaped
    pattern = re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)), re.I)
    out: list[str] = []
    last = 0
    for m in pattern.finditer(plain):
        out.append(html.escape(plain[last : m.start()]))
        out.append(f"<mark>{html.escape(m.group(0))}</mark>")
        last = m.end()
    out.append(html.escape(plain[last:]))
    return Markup("".join(out))  # noqa: S704 - every piece escaped above


def search_all(
    chosen: Sequence[SeriesSettings], words: Sequence[str], page: int
) -> tuple[list[Result], int]:
    """The results on ``page`` (from 1), and how many there are in all."""
    wanted = page * PER_PAGE
    found: list[Result] = []
    total = 0
    with site().session() as session:
        for series in chosen:
            row = site().row(session, series)
            hits, count = find_in(session, row.id, words, wanted, published_only=True)
            total += count
            for hit in hits:
                anchor = hit.ref.split("/", 1)[1] if "/" in hit.ref else ""
                text = highlight(hit.text, words)
                found.append(Result(series, hit.date, anchor, hit.ref, text))
    found.sort(key=lambda r: r.date, reverse=True)
    start = (page - 1) * PER_PAGE
    return found[start : start + PER_PAGE], total


@bp.get("/search/")
def search_page() -> tuple[str, int]:
    here = site()
    query = request.args.get("q", "").strip()
    key = request.args.get("series", "").strip()
    chosen = list(here.series)
    error = ""
    series = None
    if key:
        series = here.series_by_key(key)
        if series is None:
            known = ", ".join(s.key for s in here.series)
            error = f"There is no series “{key}”; the series are: {known}."
        else:
            chosen = [series]
    try:
        page = max(1, int(request.args.get("page", "1")))
    except ValueError:
        page = 0
        error = error or "The page must be a number, like page=2."
    if page > MAX_PAGE:
        error = error or f"Only the first {MAX_PAGE} pages are shown: add words to narrow it."
    results: list[Result] = []
    total = 0
    words: list[str] = []
    if query and not error:
        if len(query) > MAX_QUERY:
            error = f"That is a long search: give at most {MAX_QUERY} characters."
        else:
            try:
                words = terms(query)
            except UserError as exc:
                error = exc.message
            else:
                results, total = search_all(chosen, words, page)
    pages = max(1, -(-total // PER_PAGE)) if total else 0
    if query and not error and total and page > pages:
        error = f"There are only {pages} pages of results for that."
    return (
        render_template(
            "search.html",
            query=query,
            series=series,
            results=results,
            total=total,
            page=page,
            pages=min(pages, MAX_PAGE),
            error=error,
            max_terms=MAX_TERMS,
        ),
        400 if error else 200,
    )
