"""People: found by Zulip user id (never by sender email), remembered between meetings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cafebot.chat import Message
from cafebot.converters import Mention
from cafebot.models import CheckIn, Person


def for_sender(session: Session, message: Message, now: dt.datetime) -> Person:
    """The person who sent ``message``, made on first contact; their Zulip name kept fresh."""
    person = session.scalar(select(Person).where(Person.zulip_user_id == message.sender_id))
    if person is None:
        person = Person(
            zulip_user_id=message.sender_id, zulip_name=message.sender_name or None, created_at=now
        )
        session.add(person)
        session.flush()
    elif message.sender_name and person.zulip_name != message.sender_name:
        person.zulip_name = message.sender_name
    return person


def for_mention(session: Session, mention: Mention, now: dt.datetime) -> Person:
    """The person a mention names: by user id when the mention carries one, else by name."""
    if mention.user_id is not None:
        person = session.scalar(select(Person).where(Person.zulip_user_id == mention.user_id))
        if person is None:
            person = Person(
                zulip_user_id=mention.user_id, zulip_name=mention.full_name, created_at=now
            )
            session.add(person)
            session.flush()
        return person
    name = mention.full_name.lower()
    person = session.scalar(
        select(Person)
        .where((func.lower(Person.zulip_name) == name) | (func.lower(Person.name) == name))
        .order_by(Person.zulip_user_id.is_(None), Person.id)
    )
    if person is None:
        person = Person(name=mention.full_name, created_at=now)
        session.add(person)
        session.flush()
    return person


def has_checked_in(session: Session, person: Person) -> bool:
    return (
        session.scalar(select(CheckIn.id).where(CheckIn.person_id == person.id).limit(1))
        is not None
    )
