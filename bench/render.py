"""Rendering one large meeting's notes, against one plain markdown-it-py parse of them."""

from __future__ import annotations

import datetime as dt
import time

from markdown_it import MarkdownIt

from bench.common import median
from cafebot.core.config import SeriesSettings
from cafebot.notes.render import Flavour, render
from cafebot.storage.models import (
    AgendaItem,
    CheckIn,
    Introduction,
    ItemNote,
    Meeting,
    NoteKind,
    Person,
    ShoutOut,
)

T0 = dt.datetime(2031, 6, 17, 16, 0, tzinfo=dt.UTC)
SERIES = SeriesSettings(key="cafe")


def large_meeting(people: int = 300, items: int = 400) -> Meeting:
    """A meeting far larger than any real one: 300 check-ins, 60 introductions, 150
    shout-outs under 30 projects, 400 agenda items with a note, a decision and an
    action each (transient objects: rendering needs no database)."""
    folks = [
        Person(
            name=f"Person {n}",
            zulip_user_id=1000 + n if n % 2 else None,
            zulip_name=f"Person {n}",
            github=f"person-{n}",
            created_at=T0,
        )
        for n in range(people)
    ]
    checkins = [
        CheckIn(ref=n + 1, name=p.name, github=p.github, affiliation=f"Lab {n % 17}", created_at=T0)
        for n, p in enumerate(folks)
    ]
    intros = [
        Introduction(
            ref=n + 1,
            person=folks[n],
            text=f"I work on widgets {n} and came to learn.",
            created_at=T0,
        )
        for n in range(people // 5)
    ]
    shoutouts = [
        ShoutOut(
            ref=n + 1,
            author=folks[n % people],
            project=f"Project {n % 30}",
            text=f"Thanks for [the release](https://example.org/r/{n}) :tada:",
            created_at=T0,
        )
        for n in range(people // 2)
    ]
    agenda = []
    for n in range(items):
        owner = folks[(n + 1) % people]
        notes = [
            ItemNote(kind=NoteKind.NOTE, text=f"A point about {n}", position=1, created_at=T0),
            ItemNote(kind=NoteKind.DECISION, text=f"Ship {n}", position=2, created_at=T0),
            ItemNote(
                kind=NoteKind.ACTION, text=f"Write up {n}", position=3, owner=owner, created_at=T0
            ),
        ]
        agenda.append(
            AgendaItem(
                ref=n + 1,
                position=n + 1,
                topic=f"Topic {n}: release plans, docs and the **next** steps",
                proposer=folks[n % people],
                estimate_min=5,
                estimate_max=10 if n % 3 else None,
                notes=notes,
                created_at=T0,
            )
        )
    return Meeting(
        date=T0.date(),
        checkins=checkins,
        introductions=intros,
        shoutouts=shoutouts,
        agenda_items=agenda,
    )


def rendering(runs: int) -> dict[str, float]:
    """Medians of ``runs``: the render in each flavour, and one parse of the archive text."""
    meeting = large_meeting()
    text = render(meeting, Flavour.ARCHIVE, SERIES)
    parser = MarkdownIt("commonmark")
    times: dict[str, list[float]] = {"archive": [], "zulip": [], "parse": []}
    for _ in range(runs):
        for key, work in (
            ("parse", lambda: parser.parse(text)),
            ("archive", lambda: render(meeting, Flavour.ARCHIVE, SERIES)),
            ("zulip", lambda: render(meeting, Flavour.ZULIP, SERIES)),
        ):
            started = time.perf_counter()
            work()
            times[key].append(time.perf_counter() - started)
    out = {key: median(values) for key, values in times.items()}
    out["lines"] = text.count("\n")
    out["kib"] = len(text.encode()) / 1024
    return out
