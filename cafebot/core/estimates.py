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
_ESTIMATE_RE = re.compile(
    r"^\(?\s*(?P<lo>\d{1,3})\s*(?:(?:-|\u2013|\u2014|to)\s*(?P<hi>\d{1,3})\s*)?"
    + _UNIT
    + r"\s*\)?:?(?=\s|$)",
    re.IGNORECASE,
)


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
        m = _ESTIMATE_RE.match(text)
        if not m:
            raise ConversionError(f"'{shown(split_word(text)[0])}' is not a time estimate")
        factor = 60 if m.group("unit").lower().startswith("h") else 1
        low = int(m.group("lo")) * factor
        high = int(m.group("hi")) * factor if m.group("hi") else None
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
