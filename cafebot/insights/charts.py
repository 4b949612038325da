"""The insights charts, drawn with matplotlib's Agg backend (no display needed).

One function per chart, one drawing for both outputs: :func:`attendance_chart` and
:func:`retention_chart` return the figure as SVG (for the site: readable without
JavaScript, with a ``<title>`` and a description for screen readers) or PNG (for
chat, uploaded to Zulip). Figures are made with :class:`matplotlib.figure.Figure`
directly, never through ``pyplot``'s global state, so two threads can draw at once.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Literal

import matplotlib

matplotlib.use("Agg")  # before anything draws: no display, the same output everywhere

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, PercentFormatter

from cafebot.insights.numbers import RETENTION_MONTHS, Insights

Format = Literal["svg", "png"]

# Colours told apart by people with the common colour-vision deficiencies (Okabe-Ito).
FIRST_TIME = "#E69F00"
RETURNING = "#0072B2"
WITHIN = {3: "#009E73", 6: "#56B4E9"}
#: Every bar of the attendance chart carries this id prefix in the SVG (one per meeting).
BAR_GID = "attendance-bar"

matplotlib.rcParams["svg.hashsalt"] = "cafebot"  # the same SVG for the same numbers
matplotlib.rcParams["svg.fonttype"] = "none"  # text stays text: searchable, read aloud


def _render(figure: Figure, fmt: Format, title: str, description: str) -> bytes:
    out = io.BytesIO()
    metadata: dict[str, str | None] = {"Title": title, "Description": description}
    if fmt == "svg":
        metadata["Date"] = None  # no time of drawing: the same numbers give the same file
    figure.savefig(out, format=fmt, metadata=metadata, bbox_inches="tight", dpi=110)
    return out.getvalue()


def _figure(width: float) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(width, 3.6), layout="constrained")
    axes = figure.add_subplot()
    axes.spines[["top", "right"]].set_visible(False)
    axes.yaxis.grid(visible=True, color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    return figure, axes


def _date_ticks(axes: Axes, labels: list[str]) -> None:
    step = max(1, len(labels) // 12)  # at most about a dozen labels under the bars
    ticks = list(range(0, len(labels), step))
    axes.set_xticks(ticks, [labels[i] for i in ticks], rotation=45, ha="right", fontsize=8)


def attendance_chart(insights: Insights, fmt: Format) -> bytes:
    """One stacked bar per meeting held in the period: first-timers under returning people."""
    meetings = insights.meetings
    labels = [m.date.isoformat() for m in meetings]
    figure, axes = _figure(max(6.0, min(14.0, 0.35 * len(meetings) + 3)))
    x = list(range(len(meetings)))
    first = [m.first_timers for m in meetings]
    back = [m.returning for m in meetings]
    bottom = axes.bar(x, first, color=FIRST_TIME, label="first-timers", width=0.75)
    top = axes.bar(x, back, bottom=first, color=RETURNING, label="returning", width=0.75)
    for i, (low, high) in enumerate(zip(bottom, top, strict=True)):
        low.set_gid(f"{BAR_GID}-{labels[i]}-first")
        high.set_gid(f"{BAR_GID}-{labels[i]}-returning")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_ylabel("people checked in")
    axes.set_title(f"{insights.series_name}: attendance, {insights.period.label}", loc="left")
    _date_ticks(axes, labels)
    if not meetings:
        axes.text(
            0.5, 0.5, "no meetings held in this period", ha="center", transform=axes.transAxes
        )
        axes.set_xticks([])
    axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    description = "; ".join(
        f"{m.date.isoformat()}: {m.first_timers} first-timers, {m.returning} returning"
        for m in meetings
    )
    return _render(figure, fmt, "Attendance per meeting", description or "no meetings")


def retention_chart(insights: Insights, fmt: Format) -> bytes:
    """Per meeting with first-timers: the share of them who came again within 3 and 6 months."""
    cohorts = insights.cohorts
    labels = [c.date.isoformat() for c in cohorts]
    figure, axes = _figure(max(6.0, min(14.0, 0.45 * len(cohorts) + 3)))
    width = 0.8 / len(RETENTION_MONTHS)
    for n, months in enumerate(RETENTION_MONTHS):
        shares = []
        for c in cohorts:
            back = c.returned[months]
            shares.append(float("nan") if back is None else back / c.newcomers)
        offset = (n - (len(RETENTION_MONTHS) - 1) / 2) * width
        where = [i + offset for i in range(len(cohorts))]
        drawn = axes.bar(
            where,
            shares,
            width=width,
            color=WITHIN.get(months, "#999999"),
            label=f"came again within {months} months",
        )
        # Each bar says its share; "?" stands where it is too soon to tell (no bar), so
        # that a share of 0% (no bar either) reads apart from it.
        axes.bar_label(
            drawn,
            labels=["" if s != s else f"{round(100 * s)}%" for s in shares],
            fontsize=7,
            padding=2,
        )
        for x, s in zip(where, shares, strict=True):
            if s != s:  # NaN: not known yet
                axes.text(x, 0.01, "?", ha="center", va="bottom", fontsize=8)
    axes.set_ylim(0, 1.1)  # room above 100% for the bars' labels
    axes.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
    axes.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes.set_ylabel("of the first-timers")
    axes.set_title(f"{insights.series_name}: retention, {insights.period.label}", loc="left")
    _date_ticks(axes, labels)
    if not cohorts:
        axes.text(0.5, 0.5, "no first-timers in this period", ha="center", transform=axes.transAxes)
        axes.set_xticks([])
    axes.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    description = "; ".join(
        f"{c.date.isoformat()}: {c.newcomers} first-timers, "
        + ", ".join(
            f"{'not yet known' if c.returned[m] is None else c.returned[m]} back within {m} months"
            for m in RETENTION_MONTHS
        )
        for c in cohorts
    )
    return _render(figure, fmt, "Retention of first-timers", description or "no first-timers")


CHARTS: dict[str, Callable[[Insights, Format], bytes]] = {
    "attendance": attendance_chart,
    "retention": retention_chart,
}
