"""Follow-up: before each meeting, every owner of open actions gets one direct message.

By default with the one-day reminder (``action_followup = 1d`` in the series; ``off``
sends none). The message lists the owner's open actions from earlier meetings, each
with the exact command that closes it. It is claimed (:class:`ActionFollowUp`) in the
transaction that writes it to the outbox, so it goes out exactly once, across
restarts; a meeting that has already started gets no follow-up any more.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select

from cafebot.cafe import meetings
from cafebot.cafe.actions import Dues, earlier_open
from cafebot.core.chat import StagesDirect
from cafebot.core.config import SeriesSettings
from cafebot.core.text import fragment, inline, one_line, zulip_time
from cafebot.storage.models import Action, ActionFollowUp, Meeting, MeetingState, Person

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from cafebot.core.chat import Chat
    from cafebot.core.services import Services

log = logging.getLogger("cafebot.followups")


def due_at(series: SeriesSettings, meeting: Meeting) -> dt.datetime | None:
    """When the meeting's follow-up messages go out; None when the series sends none."""
    if series.action_followup is None:
        return None
    return meeting.starts_at - series.action_followup


def followup_text(
    series: SeriesSettings,
    meeting: Meeting,
    owned: list[Action],
    dues: Dues,
    now: dt.datetime,
    *,
    prefix: str = "",
) -> str:
    """One owner's message: their open actions, each with the command that closes it.

    ``prefix``: what picks the series in a direct message (``@cafe``) where there are several.
    """
    count = "action" if len(owned) == 1 else f"{len(owned)} actions"
    lines = [
        f"**Your open {count} for the {inline(series.name)} of {meeting.date}** "
        f"({zulip_time(meeting.starts_at)}):"
    ]
    for action in owned:
        overdue = "**overdue**, " if dues.overdue(action, now) else ""
        lines.append(
            f"- **{action.label}** {fragment(one_line(action.text))} "
            f"(from {action.meeting.date}; {overdue}{dues.words(action)}) — "
            f"done? `close {prefix}{action.label}`"
        )
    lines += [
        "",
        f"Reply here with the command. `drop {prefix}T1` drops one that will not be done, "
        f"`assign {prefix}T1 @**Someone**` hands it on, `actions {prefix}mine` lists yours.",
    ]
    return "\n".join(lines)


def _owners(session: Session, meeting: Meeting) -> dict[int, list[Action]]:
    by_owner: dict[int, list[Action]] = defaultdict(list)
    for action in earlier_open(session, meeting.series, meeting):
        if action.owner_id is not None:
            by_owner[action.owner_id].append(action)
    return by_owner


def stage_followups(
    session: Session,
    series: SeriesSettings,
    meeting: Meeting,
    chat: StagesDirect,
    now: dt.datetime,
    *,
    prefix: str = "",
) -> list[Callable[[], None]]:
    """Write the meeting's follow-up messages not yet sent; the callables queue them."""
    sent = set(
        session.scalars(
            select(ActionFollowUp.person_id).where(ActionFollowUp.meeting_id == meeting.id)
        )
    )
    dues = Dues(session, series, meeting.series)
    senders = []
    for owner_id, owned in sorted(_owners(session, meeting).items()):
        if owner_id in sent:
            continue
        owner = session.get(Person, owner_id)
        if owner is None or owner.zulip_user_id is None:
            log.debug("owner %s of open actions has no Zulip account: no follow-up", owner_id)
            continue
        session.add(
            ActionFollowUp(
                meeting_id=meeting.id, person_id=owner_id, actions=len(owned), sent_at=now
            )
        )
        text = followup_text(series, meeting, owned, dues, now, prefix=prefix)
        senders.append(chat.stage_direct(session, (owner.zulip_user_id,), text))
    return senders


def send_due_followups(app: Services, chat: Chat, series: SeriesSettings) -> int:
    """Send the follow-up messages of ``series`` that are due now. Returns how many."""
    if series.action_followup is None or not isinstance(chat, StagesDirect):
        return 0
    now = app.clock.now()
    prefix = f"@{series.key} " if len(app.settings.series) > 1 else ""
    with app.unit_of_work() as session:
        row = meetings.series_row(session, series)
        candidates = session.scalars(
            select(Meeting).where(
                Meeting.series_id == row.id,
                Meeting.state == MeetingState.SCHEDULED,
                Meeting.starts_at > now,
                Meeting.starts_at <= now + series.action_followup,
            )
        )
        senders = []
        for meeting in candidates:
            senders += stage_followups(session, series, meeting, chat, now, prefix=prefix)
    for send in senders:
        send()
    if senders:
        log.info("queued %d follow-up message(s) about open actions", len(senders))
    return len(senders)
