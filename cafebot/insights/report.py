"""The insights in words and tables: the chat summary, and the command line's text and CSV.

Only counts and organisations: names of people never appear here (see
:func:`lapsed_text`, which is sent to organisers alone).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

from cafebot.core.text import counted, fragment
from cafebot.insights.lapsed import REGULAR_MEETINGS, Lapsed
from cafebot.insights.numbers import Insights, Period, Retention

TOP_ORGANISATIONS = 5  # named in the chat summary
_MONTHS_RE = re.compile(
    r"^(?P<n>\d{1,3})\s*(?P<unit>m|mo|mos|month|months|y|yr|yrs|year|years)$", re.IGNORECASE
)


def months_of(text: str) -> int | None:
    """``6 months``, ``6m``, ``2 years``, ``1y`` as a number of months; None if it is none."""
    m = _MONTHS_RE.match(" ".join(text.split()))
    if m is None:
        return None
    n = int(m.group("n"))
    return n * 12 if m.group("unit").lower().startswith("y") else n


def period_words(period: Period) -> str:
    if period.since is None and period.until is None:
        return period.label
    since = period.since.isoformat() if period.since else "the first meeting"
    until = period.until.isoformat() if period.until else "the latest"
    if period.until is None:
        return period.label
    return f"{period.label} ({since} to {until})"


def _share(part: int, whole: int) -> str:
    return f"{round(100 * part / whole)}%" if whole else "-"


def retention_line(r: Retention) -> str:
    if not r.counted:
        known = "none of them were first seen long enough ago to tell"
    else:
        known = f"{r.returned} of {r.counted} came again ({_share(r.returned, r.counted)})"
    wait = f"; {r.to_tell} first seen too recently to tell" if r.to_tell and r.counted else ""
    return f"within {r.months} months: {known}{wait}"


def summary(insights: Insights) -> list[str]:
    """The chat summary's lines (Zulip Markdown), without the chart and the link."""
    n = len(insights.meetings)
    lines = [f"**{fragment(insights.series_name)}: insights, {period_words(insights.period)}**"]
    if not n:
        lines.append(
            "No meetings were held in this period. Try a longer one: `insights 2 years` or "
            "`insights all`."
        )
        return lines
    sizes = [m.attendance for m in insights.meetings]
    lines.append(
        f"- **Attendance**: {counted(n, 'meeting')}, {counted(insights.check_ins, 'check-in')} "
        f"({insights.check_ins / n:.1f} a meeting; fewest {min(sizes)}, most {max(sizes)})"
    )
    lines.append(
        f"- **People**: {insights.people} different, "
        f"{counted(insights.first_timers, 'first-timer')}"
    )
    if insights.first_timers:
        lines.append(
            "- **Came back** (of the first-timers): "
            + "; ".join(retention_line(r) for r in insights.retention)
        )
    orgs = insights.organisations
    if orgs:
        named = ", ".join(
            f"{fragment(o.name)} ({counted(o.people, 'person', 'people')})"
            for o in orgs[:TOP_ORGANISATIONS]
        )
        more = f" and {len(orgs) - TOP_ORGANISATIONS} more" if len(orgs) > TOP_ORGANISATIONS else ""
        lines.append(f"- **Organisations**: {len(orgs)}: {named}{more}")
    lines.append(
        f"- **Agenda**: {counted(insights.total('proposed'), 'item')} proposed, "
        f"{insights.total('discussed')} discussed, {insights.total('rolled_over')} rolled over"
    )
    lines.append(
        f"- **Actions**: {insights.total('actions_opened')} opened, "
        f"{insights.total('actions_closed')} closed ({insights.actions_open} of those opened "
        "still open)"
    )
    return lines


# ---------------------------------------------------------------- the command line


def text(insights: Insights) -> str:
    """``cafebot insights --format text``: the summary, then a table of the meetings."""
    out = [line.replace("**", "") for line in summary(insights)]
    if insights.meetings:
        out += [
            "",
            "date        people  first  returning  proposed  discussed  rolled over"
            "  actions opened  closed",
        ]
        for m in insights.meetings:
            out.append(
                f"{m.date.isoformat()}  {m.attendance:>6}  {m.first_timers:>5}  "
                f"{m.returning:>9}  {m.proposed:>8}  {m.discussed:>9}  {m.rolled_over:>11}"
                f"  {m.actions_opened:>14}  {m.actions_closed:>6}"
            )
    if insights.organisations:
        out += ["", "organisation (people, check-ins)"]
        out += [f"  {o.name} ({o.people}, {o.check_ins})" for o in insights.organisations]
    return "\n".join(out) + "\n"


MEETING_COLUMNS = (
    "date",
    "attendance",
    "first_timers",
    "returning",
    "proposed",
    "discussed",
    "rolled_over",
    "actions_opened",
    "actions_closed",
)


def csv_text(insights: Insights) -> str:
    """``cafebot insights --format csv``: one row per meeting held in the period."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["series", *MEETING_COLUMNS])
    for m in insights.meetings:
        writer.writerow([insights.series_key, *(getattr(m, c) for c in MEETING_COLUMNS)])
    return out.getvalue()


# ---------------------------------------------------------------- for organisers only


def lapsed_text(series_name: str, months: int, found: Sequence[Lapsed], limit: int = 40) -> str:
    """The regulars who have not come back, for an organiser's direct message."""
    head = (
        f"**{fragment(series_name)}: regulars not seen in the last "
        f"{counted(months, 'month')}** (checked in at {REGULAR_MEETINGS} meetings or more; "
        "this list is for organisers only)"
    )
    if not found:
        return head + "\nNobody: every regular has been back within that time."
    lines = [head]
    for who in found[:limit]:
        handle = f" (@{who.github})" if who.github else ""
        lines.append(
            f"- {fragment(who.name)}{handle}: {counted(who.meetings, 'meeting')}, "
            f"last on {who.last_seen.isoformat()}"
        )
    if len(found) > limit:
        lines.append(f"… and {len(found) - limit} more (`cafebot insights` has the numbers).")
    return "\n".join(lines)
