"""The static site's search index: every entry search looks in, for the browser to match.

The served site searches in the database (``/search/?q=``); a static host cannot, so
the build writes this index and the search page's script applies the same rule to it:
every word (letter case aside) must occur in the entry's text.
"""

from __future__ import annotations

from typing import Any

from flask import Flask

from cafebot.cafe.search import entries
from cafebot.web.site import EXTENSION, Site


def search_index(flask: Flask) -> dict[str, Any]:
    """``{"series": {key: name}, "entries": [[key, date, anchor, ref, text, haystack]]}``,
    newest meeting first."""
    site = flask.extensions[EXTENSION]
    assert isinstance(site, Site)  # noqa: S101 - create_app put it there
    rows: list[list[str]] = []
    with site.session() as session:
        for series in site.series:
            row = site.row(session, series)
            for hit, haystack in entries(session, row.id):
                anchor = hit.ref.split("/", 1)[1] if "/" in hit.ref else ""
                rows.append(
                    [series.key, hit.date.isoformat(), anchor, hit.ref, hit.text, haystack.lower()]
                )
    rows.sort(key=lambda r: r[1], reverse=True)
    return {"series": {s.key: s.name for s in site.series}, "entries": rows}
