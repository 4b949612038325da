"""Converters: typed values read off the front of a command's text.

Each converter is a class with ``consume(text) -> (value, rest)``; it raises
:class:`ConversionError` when the text does not start with such a value. The
command registry picks a converter by a parameter's annotation.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import ClassVar, Self

from cafebot.core.estimates import MAX_ESTIMATE_MINUTES as MAX_ESTIMATE_MINUTES
from cafebot.core.estimates import ConversionError as ConversionError
from cafebot.core.estimates import Estimate as Estimate
from cafebot.core.estimates import InvalidValue as InvalidValue
from cafebot.core.estimates import format_estimate as format_estimate
from cafebot.core.estimates import shown as _shown
from cafebot.core.estimates import split_word as _split_word

_REF_RE = re.compile(
    r"^(?:(?P<date>\d{4}-\d{2}-\d{2})/)?(?P<kind>[ASIC])(?P<num>\d{1,6})(?:\.(?P<note>\d{1,6}))?$",
    re.I,
)


@dataclass(frozen=True)
class Ref:
    """A stable entry reference: ``A2``, or ``2031-06-17/A2`` for another meeting.

    ``A2.1`` names the first note, decision or action recorded under ``A2``.
    """

    kind: str  # A, S, I or C
    number: int
    date: dt.date | None = None
    note: int | None = None  # the sub-reference of a note under an agenda item

    name: ClassVar[str] = "ref"
    example: ClassVar[str] = "A2"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, rest = _split_word(text)
        m = _REF_RE.match(word)
        if not m and re.match(r"^#?T\d{1,9}$", word, re.I):
            raise ConversionError(
                f"'{_shown(word)}' is an action's reference: here give its sub-reference under "
                f"its agenda item, like A2.3 (`actions` shows it); `close {_shown(word)}`, "
                "`reopen`, `drop`, `due` and `assign` take the action's own"
            )
        if not m:
            raise ConversionError(
                f"'{_shown(word)}' is not a reference: use A1 (agenda), S1 (shout-out), "
                "I1 (introduction), C1 (check-in) or A2.1 (a note under A2), as shown by `list`"
            )
        date = None
        if m.group("date"):
            try:
                date = dt.date.fromisoformat(m.group("date"))
            except ValueError as exc:
                raise InvalidValue(f"'{m.group('date')}' is not a date on the calendar") from exc
        kind, note = m.group("kind").upper(), m.group("note")
        if note is not None and kind != "A":
            raise InvalidValue(
                f"'{_shown(word)}': only agenda items have notes; a note's reference is "
                "like A2.1 (the first note under A2)"
            )
        return cls(kind, int(m.group("num")), date, int(note) if note else None), rest

    @property
    def label(self) -> str:
        return f"{self.kind}{self.number}" + (f".{self.note}" if self.note is not None else "")

    @property
    def item(self) -> Ref:
        """The agenda item a note's reference is under (``A2.1`` -> ``A2``)."""
        return Ref(self.kind, self.number, self.date)

    def __str__(self) -> str:
        return f"{self.date.isoformat()}/{self.label}" if self.date else self.label


_OTHER_DATE_RE = re.compile(r"^(\d{1,4})[/.](\d{1,2})[/.](\d{1,4})$")


def _other_date_form(word: str) -> str | None:
    """How to write ``22/12/2026``, ``12/22/2026``, ``2026/12/22`` or ``22.12.2026`` as
    year-month-day: the one reading, or both where day and month could swap."""
    m = _OTHER_DATE_RE.match(word)
    if not m:
        return None
    a, b, c = (int(g) for g in m.groups())
    if len(m.group(1)) == 4:
        readings = [(a, b, c)]
    elif len(m.group(3)) == 4:
        readings = [(c, b, a), (c, a, b)]  # day/month/year, month/day/year
    else:
        return None
    valid = []
    for year, month, day in readings:
        try:
            valid.append(dt.date(year, month, day).isoformat())
        except ValueError:
            continue
    valid = list(dict.fromkeys(valid))
    if not valid:
        return None
    return f"`{valid[0]}`" if len(valid) == 1 else f"`{valid[0]}` or `{valid[1]}`"


@dataclass(frozen=True)
class MeetingDate:
    """A meeting chosen by date (``2031-06-17``) or as ``last`` / ``next``."""

    date: dt.date | None = None
    relative: str | None = None  # "last" or "next"

    name: ClassVar[str] = "date"
    example: ClassVar[str] = "2031-06-17"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, rest = _split_word(text)
        if word.lower() in {"last", "next"}:
            return cls(relative=word.lower()), rest
        if not re.match(r"^\d{4}-\d{2}-\d{2}$", word):
            other = _other_date_form(word)
            if other:
                raise InvalidValue(
                    f"'{_shown(word)}' is a date written another way: here dates are "
                    f"year-month-day, {other}"
                )
            raise ConversionError(
                f"'{_shown(word)}' is not a date: write it as 2031-06-17, last or next"
            )
        try:
            return cls(date=dt.date.fromisoformat(word)), rest
        except ValueError as exc:
            raise InvalidValue(f"'{word}' is not a date on the calendar") from exc


@dataclass(frozen=True)
class Position:
    """A 1-based position in the agenda."""

    value: int

    name: ClassVar[str] = "position"
    example: ClassVar[str] = "1"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, rest = _split_word(text)
        if word.lower() in {"first", "top"}:
            return cls(1), rest
        if word.lower() in {"last", "bottom", "end"}:
            return cls(10**6), rest
        if not word.isdigit() or int(word) < 1:
            raise ConversionError(f"'{_shown(word)}' is not a position: give 1 for the top, 2, 3 …")
        return cls(int(word)), rest


_PROJECT_RE = re.compile(r"^\[([^\[\]\n]{1,100})\]")


@dataclass(frozen=True)
class Project:
    """A shout-out's project group, written in square brackets: ``[Jupyter Book]``."""

    value: str

    name: ClassVar[str] = "[project]"
    example: ClassVar[str] = "[Jupyter Book]"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        m = _PROJECT_RE.match(text)
        if not m or not m.group(1).strip():
            raise ConversionError("a project is written in square brackets, like [Jupyter Book]")
        return cls(" ".join(m.group(1).split())), text[m.end() :].lstrip()


# @**Full Name** or @**Full Name|42** (also the silent @_** forms). Zulip's full names
# have at most 100 characters, and its user ids fit in a database's BIGINT.
_MENTION_COLON_RE = re.compile(r"^\s*:(?=\s|$)")
_MENTION_RE = re.compile(r"^@_?\*\*(?P<name>[^*|\n]{1,100}?)(?:\|(?P<id>\d{1,15}))?\*\*")


@dataclass(frozen=True)
class Mention:
    """A Zulip user mention: ``@**Ada Lovelace**`` or ``@**Ada Lovelace|42**``."""

    full_name: str
    user_id: int | None = None

    name: ClassVar[str] = "@person"
    example: ClassVar[str] = "@**Ada Lovelace**"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        m = _MENTION_RE.match(text)
        if not m:
            raise ConversionError("name a person with a Zulip mention, like @**Ada Lovelace**")
        user_id = int(m.group("id")) if m.group("id") else None
        # "@**Ada**: write it" - a colon after the mention separates; ":tada:" is text.
        rest = _MENTION_COLON_RE.sub("", text[m.end() :]).lstrip()
        return cls(m.group("name").strip(), user_id), rest


_SERIES_RE = re.compile(r"^@(?P<key>[a-z0-9][a-z0-9_-]{0,63})(?=\s|$)", re.I)


def consume_series(text: str) -> tuple[str | None, str]:
    """An optional ``@series`` right after the command word (in direct messages)."""
    m = _SERIES_RE.match(text)
    if not m:
        return None, text
    return m.group("key").lower(), text[m.end() :].lstrip()


@dataclass(frozen=True)
class Keyword:
    """A literal word that reads as part of the command (``add meeting …``)."""

    word: str

    name: ClassVar[str] = "meeting"
    example: ClassVar[str] = "meeting"
    literal: ClassVar[bool] = True

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, rest = _split_word(text)
        if not word or not word.isalpha():
            raise ConversionError(f"expected the word `{cls.name}`")
        return cls(word.lower().removesuffix("s")), rest


_TIME_RE = re.compile(r"^(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm)?$", re.IGNORECASE)


@dataclass(frozen=True)
class TimeOfDay:
    """A time of day: ``16:00``, ``9:30``, ``4pm``."""

    value: dt.time

    name: ClassVar[str] = "time"
    example: ClassVar[str] = "16:00"

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        word, rest = _split_word(text)
        m = _TIME_RE.match(word)
        if not m or (m.group("m") is None and m.group("ampm") is None):
            raise ConversionError(f"'{_shown(word)}' is not a time of day: write it as 16:00")
        hour, minute = int(m.group("h")), int(m.group("m") or 0)
        if m.group("ampm"):
            if not 1 <= hour <= 12:
                raise InvalidValue(f"'{word}' is not a time of day")
            hour = hour % 12 + (12 if m.group("ampm").lower() == "pm" else 0)
        if hour > 23 or minute > 59:
            raise InvalidValue(f"'{word}' is not a time of day: write it as 16:00")
        return cls(dt.time(hour, minute)), rest
