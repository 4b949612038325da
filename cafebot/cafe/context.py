"""What a command runs with: one session, the sender, the series, the clock's now."""

from __future__ import annotations

import datetime as dt
import typing
from dataclasses import dataclass, field

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from cafebot.cafe import meetings
from cafebot.commands.converters import Ref
from cafebot.commands.errors import PermissionDenied, UserError
from cafebot.core.chat import Message
from cafebot.core.config import SeriesSettings, Settings
from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    Person,
    Series,
    ShoutOut,
)

Entry = CheckIn | Introduction | ShoutOut | AgendaItem
ENTRY_TYPES: dict[str, type[Entry]] = {
    "A": AgendaItem,
    "S": ShoutOut,
    "I": Introduction,
    "C": CheckIn,
}


# An entry by meeting and reference, for each kind (built once: most commands find one).
_BY_REF = {
    kind: select(model).where(
        model.meeting_id == bindparam("meeting_id"), model.ref == bindparam("ref")
    )
    for kind, model in ENTRY_TYPES.items()
}


def owner_id(entry: Entry | ItemNote) -> int | None:
    if isinstance(entry, ItemNote):
        return entry.author_id
    if isinstance(entry, CheckIn | Introduction):
        return entry.person_id
    if isinstance(entry, ShoutOut):
        return entry.author_id
    return entry.proposer_id


@dataclass
class Context:
    session: Session
    settings: Settings
    series: SeriesSettings
    series_row: Series
    message: Message
    person: Person
    is_organizer: bool
    now: dt.datetime
    notes_flavour: str = "zulip"
    more: list[str] = field(default_factory=list)
    _target: Meeting | None = field(default=None, init=False, repr=False)
    _nearby: meetings.Nearby | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------ meetings

    def target_meeting(self) -> Meeting:
        """Where new entries go: the current meeting, else the next one.

        Found once per command (a command that changes which meeting that is, such
        as `cancel`, asks :func:`cafebot.cafe.meetings.following` itself).
        """
        if self._target is None:
            self._target = meetings.target(
                self.session, self.series, self.series_row, self.now, nearby=self.nearby()
            )
        return self._target

    def nearby(self) -> meetings.Nearby:
        """The meetings around now, read once per command."""
        if self._nearby is None:
            self._nearby = meetings.Nearby.read(
                self.session, self.series, self.series_row, self.now
            )
        return self._nearby

    def meeting_on(self, date: dt.date) -> Meeting:
        meeting = meetings.by_date(self.session, self.series, self.series_row, date)
        if meeting is None:
            raise UserError(
                f"{self.series.name} has no meeting on {date.isoformat()}.",
                show_usage=False,
                example="next",
            )
        return meeting

    def working_meetings(self) -> list[Meeting]:
        """Meetings whose entries a bare reference reaches, in the order they are searched.

        A meeting that has begun stays first until its notes are published, so
        people can finish its notes; then the meeting new entries go to.
        """
        found = []
        recent = self.nearby().recent_unpublished()
        if recent is not None:
            found.append(recent)
        target = self.target_meeting()
        if target not in found:
            found.append(target)
        return found

    # ------------------------------------------------------------ entries

    def find(self, ref: Ref) -> Entry:
        """The entry a reference names, or a clear error."""
        if ref.note is not None:
            raise UserError(
                f"{ref.label} is a note under {ref.item.label}; here give the agenda item "
                f"itself: {ref.item.label}.",
                show_usage=False,
            )
        query = _BY_REF[ref.kind]
        candidates = [self.meeting_on(ref.date)] if ref.date else self.working_meetings()
        for meeting in candidates:
            entry = self.session.scalar(query, {"meeting_id": meeting.id, "ref": ref.number})
            if entry is not None:
                return typing.cast(Entry, entry)
        where = " or ".join(m.date.isoformat() for m in candidates)
        raise UserError(
            f"There is no {ref.label} in the meeting of {where}. `list` shows the references.",
            show_usage=False,
            example="list",
        )

    def require_owner(self, entry: Entry | ItemNote, action: str) -> None:
        """Refuse unless the sender wrote ``entry`` or organises the series."""
        owner = owner_id(entry)
        if self.is_organizer or (owner is not None and owner == self.person.id):
            return
        # An action's owner may change it as well as its author (cafebot.cafe.actions).
        record = entry.action if isinstance(entry, ItemNote) else None
        if record is not None and record.owner_id == self.person.id:
            return
        who = self.session.get(Person, owner) if owner is not None else None
        author = f" ({who.display_name})" if who is not None else ""
        raise PermissionDenied(
            f"You can't {action} that entry: only its author{author} or an organiser of "
            f"{self.series.name} may."
        )
