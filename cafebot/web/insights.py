"""``/<series>/insights/``: who comes, who comes back and what gets done, as charts and tables.

The page shows counts and organisations only, never a person's name (README,
"Community insights"). Each chart is matplotlib's SVG (:mod:`cafebot.insights.charts`)
in an ``<img>`` as a ``data:`` address: readable without JavaScript, allowed by the
site's content policy (the SVG styles its own shapes, which an inline ``<svg>`` under
``style-src 'self'`` could not), and the same in the static build. Beside each chart a
table holds its numbers, for screen readers and for reading them exactly.

``?period=`` takes what ``insights`` takes in chat (``6 months``, ``2030``, ``since
2030-05-01``, ``all``); the default is the last 12 months.
"""

from __future__ import annotations

import base64

from flask import Blueprint, abort, render_template, request

from cafebot.commands.errors import UserError
from cafebot.insights import numbers, report
from cafebot.insights.charts import attendance_chart, retention_chart
from cafebot.insights.commands import parse_period
from cafebot.insights.numbers import RETENTION_MONTHS
from cafebot.web.pages import the_series
from cafebot.web.site import site

bp = Blueprint("insights", __name__)

#: The periods offered as links above the charts: (label, ``?period=`` value).
PERIODS = (("Last 12 months", ""), ("Last 2 years", "2 years"), ("All meetings", "all"))


def _data_uri(svg: bytes) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


@bp.get("/<series>/insights/")
def insights_page(series: str) -> str:
    chosen = the_series(series)
    asked = request.args.get("period", "")
    now = site().now()
    try:
        period = parse_period(asked[:80], now.date())
    except UserError as exc:
        abort(400, description=f"{exc.message} For example: ?period=6+months or ?period=2030.")
    with site().session() as session:
        found = numbers.compute(session, chosen, period, now)
    return render_template(
        "insights.html",
        series=chosen,
        found=found,
        period_words=report.period_words(period),
        summary=[line.removeprefix("- ").replace("**", "") for line in report.summary(found)[1:]],
        attendance=_data_uri(attendance_chart(found, "svg")) if found.meetings else None,
        retention=_data_uri(retention_chart(found, "svg")) if found.cohorts else None,
        months=RETENTION_MONTHS,
        periods=PERIODS,
        asked=asked,
    )
