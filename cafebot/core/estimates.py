"""Time estimates (``10m``, ``10-15 mins``, ``1h``), and the error of a value that does not read.

A value grammar shared by the command language (the ``Estimate`` converter,
:mod:`cafebot.commands.converters`, re-exports all of it) and the archive
reader (:mod:`cafebot.notes`), which reads the same estimates back from
published notes and may not import the command language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import ClassVar, Self

MAX_ESTIMATE_MINUTES = 8 * 60


class ConversionError(ValueError):
    """The text does not start with a value of this kind."""


class InvalidValue(ConversionError):
    """The text starts with a value of this kind that is not acceptable (e.g. ``0m``).

    Unlike a plain ConversionError, an optional parameter does not skip it.
    """


def shown(word: str, limit: int = 40) -> str:
    """A word as an error message quotes it: cut short (a reply must stay short)."""
    return word if len(word) <= limit else word[: limit - 1] + "…"


def split_word(text: str) -> tuple[str, str]:
    parts = text.split(None, 1)
    if not parts:
        return "", ""
    return parts[0], parts[1] if len(parts) > 1 else ""


_UNIT = r"(?P<unit>m|mins?|minutes?|h|hrs?|hours?)\.?"
_NUMBER = r"\d{1,3}(?:[.,]\d{1,2})?"  # 1.5h, and 1,5h as many write it
# "~5 min", "about 5 min": the estimate is approximate anyway; the mark is dropped.
_ABOUT = r"(?:~\s*|(?:about|around|approx\.?|approximately|ca\.|circa|roughly)\s+)?"
_ESTIMATE_RE = re.compile(
    r"^\(?\s*"
    + _ABOUT
    + rf"(?P<lo>{_NUMBER})\s*(?:(?:-|\u2013|\u2014|to)\s*~?\s*(?P<hi>{_NUMBER})\s*)?"
    + _UNIT
    + r"\s*\)?:?(?=\s|$)",
    re.IGNORECASE,
)
# Durations written out, in minutes.
_SPELLED = {
    "half an hour": 30,
    "half a hour": 30,
    "half-hour": 30,
    "half hour": 30,
    "a quarter of an hour": 15,
    "quarter of an hour": 15,
    "a quarter hour": 15,
    "quarter hour": 15,
    "an hour and a half": 90,
    "one and a half hours": 90,
}
_SPELLED_RE = re.compile(
    r"^\(?\s*"
    + _ABOUT
    + "(?P<words>"
    + "|".join(re.escape(w).replace(r"\ ", r"\s+") for w in sorted(_SPELLED, key=len)[::-1])
    + r")\s*\)?:?(?=\s|$)",
    re.IGNORECASE,
)
# What reads as an attempt at an estimate that is not one ("5mn", "~5", "2h30", "10 secs",
# "15-10m" is caught by the range check): said so, rather than filed under the topic.
_LOOKS_LIKE_RE = re.compile(
    r"^\(?\s*(?:~\s*\d[\d.,]*(?=\s|$)"
    r"|~?\s*\d[\d.,]*\s*(?:-\s*\d[\d.,]*\s*)?(?:mn|mns|minut\w*|mins?\w+|hs|hrs\w+|hours\w+"
    r"|h\d+\w*|secs?|seconds?)\.?\)?:?(?=\s|$))",
    re.IGNORECASE,
)


def _minutes(number: str, unit: str, whole: str) -> int:
    """``number`` of ``unit`` in whole minutes; InvalidValue for a fraction of a minute."""
    value = float(number.replace(",", "."))
    minutes = value * (60 if unit.lower().startswith("h") else 1)
    if abs(minutes - round(minutes)) > 1e-9:
        raise InvalidValue(f"'{whole}' is not a whole number of minutes")
    return round(minutes)


@dataclass(frozen=True)
class Estimate:
    """A time estimate in minutes: one value, or a range ``low``-``high``."""

    low: int
    high: int | None = None

    name: ClassVar[str] = "estimate"
    example: ClassVar[str] = "10m"

    @classmethod
    def parse(cls, text: str) -> Self:
        value, rest = cls.consume(text)
        if rest.strip():
            raise ConversionError(f"'{shown(text)}' is not a time estimate")
        return value

    @classmethod
    def consume(cls, text: str) -> tuple[Self, str]:
        """An estimate at the start of ``text``: ``10m``, ``5 min``, ``(10-15 mins)``,
        ``1.5h``, ``~5 minutes``, ``about 20 min``, ``half an hour``.

        Raises :class:`InvalidValue` for what is meant as one but cannot be used
        (``15-10m``, ``0m``, ``5mn``, ``~5``), ConversionError when the text does not
        start with an estimate at all.
        """
        spelled = _SPELLED_RE.match(text)
        if spelled:
            words = " ".join(spelled.group("words").lower().split())
            return cls(_SPELLED[words]), text[spelled.end() :].lstrip()
        m = _ESTIMATE_RE.match(text)
        if not m:
            word = shown(split_word(text)[0])
            looks = _LOOKS_LIKE_RE.match(text)
            if looks:
                raise InvalidValue(
                    f"'{shown(looks.group(0).strip())}' looks like a time estimate, but it "
                    "is not one I can read: write it like `5m`, `10-15 min`, `1.5h` or "
                    "`half an hour`"
                )
            raise ConversionError(f"'{word}' is not a time estimate")
        whole = m.group(0).strip()
        unit = m.group("unit")
        low = _minutes(m.group("lo"), unit, whole)
        high = _minutes(m.group("hi"), unit, whole) if m.group("hi") else None
        if high == low:
            high = None
        if low <= 0 or (high is not None and high < low):
            raise InvalidValue(
                f"'{m.group(0).strip()}' is not a usable estimate: "
                "give minutes above zero, and a range from low to high"
            )
        if (high or low) > MAX_ESTIMATE_MINUTES:
            raise InvalidValue(
                f"'{m.group(0).strip()}' is longer than {MAX_ESTIMATE_MINUTES // 60} hours"
            )
        return cls(low, high), text[m.end() :].lstrip()

    def __str__(self) -> str:
        return format_estimate(self.low, self.high)


def format_estimate(low: int | None, high: int | None) -> str:
    """The canonical form without parentheses: ``10 min``, ``10-15 min``."""
    if low is None:
        return ""
    if high is not None and high != low:
        return f"{low}-{high} min"
    return f"{low} min"
