"""What search reads in each kind of entry: one query per kind, and its haystack.

A haystack is one SQL expression: the entry's fields (and the names of the people it
names), joined by spaces. :mod:`cafebot.cafe.search` matches words in it, and
:mod:`cafebot.cafe.textindex` keeps each meeting's haystacks as one indexed document,
so both read exactly the same text.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, func, literal, select, true
from sqlalchemy.orm import aliased

from cafebot.storage.models import (
    Action,
    AgendaItem,
    ArchiveBlock,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    Person,
    ShoutOut,
)


@dataclass(frozen=True)
class Kind:
    query: Select[Any, Any]  # the entries of this kind with their meeting's date, joined
    haystack: ColumnElement[str]  # what search reads in one of them
    only: ColumnElement[bool]  # which rows of the table search reads at all

    def matching(self, words: Sequence[str]) -> ColumnElement[bool]:
        """The condition that an entry holds every word (letter case aside)."""
        return and_(self.only, matches(self.haystack, words))


def like(term: str) -> str:
    """A LIKE pattern (escaped with ``\\``) for ``term`` anywhere, in lower case."""
    escaped = term.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def matches(haystack: SQLColumnExpression[Any], words: Sequence[str]) -> ColumnElement[bool]:
    lowered = func.lower(haystack)
    return and_(true(), *(lowered.like(like(w), escape="\\") for w in words))


def joined(*parts: SQLColumnExpression[Any]) -> ColumnElement[str]:
    text: ColumnElement[str] = literal("")
    for part in parts:
        text = text + " " + func.coalesce(part, "")
    return text


def kinds() -> list[Kind]:
    """Every kind of entry search looks in: check-ins, introductions, shout-outs, agenda
    items, notes under items (with an action's owner), and text an imported meeting kept
    outside its records."""
    found: list[Kind] = []
    found.append(
        Kind(
            select(CheckIn, Meeting.date).select_from(CheckIn).join(CheckIn.meeting),
            joined(CheckIn.name, CheckIn.github, CheckIn.affiliation),
            true(),
        )
    )
    who = aliased(Person)
    found.append(
        Kind(
            select(Introduction, Meeting.date)
            .select_from(Introduction)
            .join(Introduction.meeting)
            .join(Introduction.person.of_type(who)),
            joined(Introduction.text, who.name, who.zulip_name, who.github),
            true(),
        )
    )
    author = aliased(Person)
    found.append(
        Kind(
            select(ShoutOut, Meeting.date)
            .select_from(ShoutOut)
            .join(ShoutOut.meeting)
            .outerjoin(ShoutOut.author.of_type(author)),
            joined(ShoutOut.project, ShoutOut.text, author.name),
            true(),
        )
    )
    proposer = aliased(Person)
    found.append(
        Kind(
            select(AgendaItem, Meeting.date)
            .select_from(AgendaItem)
            .join(AgendaItem.meeting)
            .outerjoin(AgendaItem.proposer.of_type(proposer)),
            joined(AgendaItem.topic, proposer.name),
            true(),
        )
    )
    owner = aliased(Person)  # an action's owner, by name (`search Bob release`)
    found.append(
        Kind(
            select(ItemNote, Meeting.date)
            .select_from(ItemNote)
            .join(ItemNote.item)
            .join(AgendaItem.meeting)
            .outerjoin(ItemNote.action)
            .outerjoin(Action.owner.of_type(owner)),
            joined(ItemNote.text, owner.name, owner.zulip_name),
            true(),
        )
    )
    found.append(
        Kind(
            select(ArchiveBlock, Meeting.date).select_from(ArchiveBlock).join(ArchiveBlock.meeting),
            joined(ArchiveBlock.text),
            ArchiveBlock.kind == "text",
        )
    )
    return found
