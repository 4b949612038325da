"""``insights [period]`` and ``insights lapsed [months]`` in chat.

``insights`` answers with a short summary and the attendance chart as an image: the
PNG is uploaded through the chat (Zulip's ``POST /user_uploads``) once the command's
transaction has committed, and the reply links it as ``[attendance.png](/user_uploads/…)``,
which Zulip shows inline. ``insights lapsed`` names people, so it goes to the organiser
who asked, in a direct message, and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from urllib.parse import quote_plus

from cafebot.cafe.context import Context
from cafebot.commands.errors import PermissionDenied, UserError
from cafebot.commands.registry import Outcome, command
from cafebot.core.chat import Chat, SendFailed
from cafebot.core.services import Services
from cafebot.insights import numbers, report
from cafebot.insights.lapsed import DEFAULT_LAPSED_MONTHS, lapsed
from cafebot.insights.numbers import Period

log = logging.getLogger("cafebot.insights")

CHART_NAME = "attendance.png"
_DATE_RE = re.compile(r"^(?:since\s+)?(\d{4}-\d{2}-\d{2})$", re.IGNORECASE)
_YEAR_RE = re.compile(r"^(\d{4})$")
PERIOD_EXAMPLES = "`insights`, `insights 6 months`, `insights 2030`, `insights since 2030-05-01`"


def parse_period(text: str | None, today: dt.date) -> Period:
    """The period a person asked for: the last 12 months by default."""
    words = " ".join((text or "").split())
    if not words:
        return Period.last_months(today)
    if words.lower() == "all":
        return Period(None, None, "all meetings")
    months = report.months_of(words)
    if months is not None:
        if not 1 <= months <= 1200:
            raise UserError("Give a period of 1 month or more.", example="insights 6 months")
        return Period.last_months(today, months)
    if m := _YEAR_RE.match(words):
        year = int(m.group(1))
        if year < 1900:
            raise UserError(f"{year} is too long ago.", example=f"insights {today.year}")
        return Period(dt.date(year, 1, 1), dt.date(year, 12, 31), str(year))
    if m := _DATE_RE.match(words):
        try:
            since = dt.date.fromisoformat(m.group(1))
        except ValueError:
            raise UserError(
                f"{m.group(1)} is no date.", example="insights since 2030-05-01"
            ) from None
        return Period(since, None, f"since {since.isoformat()}")
    raise UserError(
        f"I don't know the period “{words[:60]}”. Give a number of months or years, a year, "
        f"or a first day: {PERIOD_EXAMPLES}.",
        show_usage=False,
    )


@command(
    "insights",
    aliases=("stats",),
    examples=("insights", "insights 6 months", "insights 2030", "insights lapsed"),
    group="Meetings",
)
def insights(ctx: Context, period: str | None) -> Outcome:
    """Who comes, who comes back and what gets done, with a chart (the last 12 months).

    The period may be a number of months or years (`insights 6 months`, `insights 2y`),
    a year (`insights 2030`), a first day (`insights since 2030-05-01`) or `all`. The
    numbers are counts and organisations only; README, "Community insights", defines
    each. Organisers: `insights lapsed [months]` lists the regulars who have not come
    back in that time (3 months by default), in a direct message to you alone.
    """
    words = (period or "").split(maxsplit=1)
    if words and words[0].lower() == "lapsed":
        return _lapsed(ctx, words[1] if len(words) > 1 else "")
    chosen = parse_period(period, ctx.now.date())
    found = numbers.compute(ctx.session, ctx.series, chosen, ctx.now)
    lines = report.summary(found)
    if ctx.series.site_url:  # the site is public ([web] base_url): its page has it all
        query = f"?period={quote_plus(' '.join(period.split()))}" if period else ""
        lines.append(f"Charts and tables: {ctx.series.site_url}insights/{query}")
    message = ctx.message

    def post(app: Services, chat: Chat) -> None:
        text = "\n".join(lines)
        if found.meetings:
            from cafebot.insights.charts import attendance_chart  # matplotlib: only when drawn

            try:
                where = chat.upload(CHART_NAME, attendance_chart(found, "png"))
            except SendFailed as exc:
                log.warning("the insights chart was not uploaded: %s", exc)
                text += "\n_(The attendance chart could not be uploaded this time.)_"
            else:
                text += f"\n[{CHART_NAME}]({where})"
        chat.reply(message, text)

    return Outcome(after=post)


def _lapsed(ctx: Context, rest: str) -> Outcome:
    if not ctx.is_organizer:
        raise PermissionDenied(
            f"Only an organiser of {ctx.series.name} may see who has not come back: "
            "the list names people. `insights` shows everyone the counts."
        )
    months = DEFAULT_LAPSED_MONTHS
    if rest.strip():
        given = report.months_of(rest) or (int(rest) if rest.strip().isdigit() else None)
        if given is None or not 1 <= given <= 1200:
            raise UserError(
                f"“{rest.strip()[:40]}” is no number of months.", example="insights lapsed 6"
            )
        months = given
    found = lapsed(ctx.session, ctx.series, ctx.now, months)
    text = report.lapsed_text(ctx.series.name, months, found)
    sender = ctx.message.sender_id
    # A one-to-one conversation with the bot (its participants: the sender and the bot).
    in_dm = ctx.message.is_direct and len(set(ctx.message.recipient_ids) - {sender}) <= 1

    def send(app: Services, chat: Chat) -> None:
        chat.direct(sender, text)

    if in_dm:
        return Outcome(reply=text)
    return Outcome(
        reply="I sent you the list in a direct message: it names people, so it stays out "
        "of the stream.",
        after=send,
    )
