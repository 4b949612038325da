"""Every person in the archive is recognised: introductions and check-ins in their drifted
forms become that person's records, and export still gives the file back unchanged."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from cafebot.notes.archive import import_archive, parse_archive, write_year_file
from cafebot.notes.records import (
    ParsedCheckin,
    ParsedIntro,
    parse_checkin_line,
    parse_intro_line,
)
from cafebot.storage.models import ArchiveBlock, CheckIn, Introduction, Person
from tests.harness import CAFE

NOW = dt.datetime(2031, 6, 1, 10, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        pytest.param(
            "[Ada Lovelace](https://example.org/ada): I design engines.",
            ParsedIntro("Ada Lovelace", None, "I design engines."),
            id="link-colon",
        ),
        pytest.param(
            "[Ada Lovelace](https://github.com/ada-l) - I design engines.",
            ParsedIntro("Ada Lovelace", "ada-l", "I design engines."),
            id="link-to-profile-dash",
        ),
        pytest.param(
            "[@ada-l](https://github.com/ada-l): hello",
            ParsedIntro(None, "ada-l", "hello"),
            id="link-of-a-handle",
        ),
        pytest.param(
            "Ada Lovelace - I design engines - and more.",
            ParsedIntro("Ada Lovelace", None, "I design engines - and more."),
            id="dash",
        ),
        pytest.param(
            "Mary-Kate O'Neil \u2014 data steward at [Harbour](https://example.org).",
            ParsedIntro(
                "Mary-Kate O'Neil", None, "data steward at [Harbour](https://example.org)."
            ),
            id="em-dash",
        ),
        pytest.param(
            "Joan Clarke \u2013 cryptanalysis",
            ParsedIntro("Joan Clarke", None, "cryptanalysis"),
            id="en-dash",
        ),
        pytest.param(
            "**Grace Hopper** Compilers, mostly.",
            ParsedIntro("Grace Hopper", None, "Compilers, mostly."),
            id="bold",
        ),
        pytest.param(
            "**Grace Hopper** \u2014 Compilers, mostly.",
            ParsedIntro("Grace Hopper", None, "Compilers, mostly."),
            id="bold-dash",
        ),
        pytest.param(
            "Linus: kernels",
            ParsedIntro("Linus", None, "kernels"),
            id="colon-as-before",
        ),
    ],
)
def test_introductions_in_every_form_name_their_person(line: str, wanted: ParsedIntro) -> None:
    assert parse_intro_line(line, []) == wanted


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("[The docs](https://example.org/docs) are lovely this month", id="link-text"),
        pytest.param("Thanks, everyone, for coming along - see you next month!", id="sentence"),
        pytest.param("https://example.org/some-link", id="address"),
        pytest.param("Hi all - I'm new here and work on the docs", id="greeting-dash"),
        pytest.param("Hello everyone: first time at the cafe", id="greeting-colon"),
        pytest.param("Good morning - glad to be here", id="good-morning"),
    ],
)
def test_text_that_names_nobody_is_no_introduction(line: str) -> None:
    assert parse_intro_line(line, []) is None


@pytest.mark.parametrize(
    ("line", "wanted"),
    [
        pytest.param(
            "[Ada Lovelace](https://example.org/ada) / @ada-l / Engines Ltd",
            ParsedCheckin("Ada Lovelace", "ada-l", "Engines Ltd"),
            id="name-link",
        ),
        pytest.param(
            "[Ada Lovelace](https://github.com/ada-l) / Engines Ltd",
            ParsedCheckin("Ada Lovelace", "ada-l", "Engines Ltd"),
            id="name-links-the-profile",
        ),
        pytest.param(
            "Ada / https://github.com/ada-l / Engines Ltd",
            ParsedCheckin("Ada", "ada-l", "Engines Ltd"),
            id="bare-profile-address",
        ),
        pytest.param(
            "Ada / [ada-l](https://github.com/ada-l/)",
            ParsedCheckin("Ada", "ada-l", None),
            id="profile-link-without-at",
        ),
        pytest.param(
            "Ada / ada-l / Engines Ltd",
            ParsedCheckin("Ada", "ada-l", "Engines Ltd"),
            id="handle-without-at",
        ),
        pytest.param(
            "Ada / ada-l",
            ParsedCheckin("Ada", "ada-l", None),
            id="handle-without-at-two-fields",
        ),
        pytest.param(
            "Ada / Engines Ltd",
            ParsedCheckin("Ada", None, "Engines Ltd"),
            id="affiliation-stays-one",
        ),
    ],
)
def test_check_ins_with_links_and_bare_handles(line: str, wanted: ParsedCheckin) -> None:
    assert parse_checkin_line(line) == wanted


ARCHIVE = """\
# 2031 Collaboration Cafe Notes Archive

## 2031-05-20

### Check-in :raising_hand:

- _Name / GitHub handle / affiliation_
- [Ada Lovelace](https://example.org/ada) / ada-l / Engines Ltd
- Grace / https://github.com/ghopper / Navy Labs
- [Joan Clarke](https://github.com/jclarke)

### Introduce yourself! :wave:

- [Ada Lovelace](https://example.org/ada): I design engines.
- Grace - Compilers, mostly.
- **Joan Clarke** Cryptanalysis :lock:
    - and crosswords

### Agenda :clock2:

- [name=Ada] (5 min): Welcome

## 2031-04-15

### Check-in :raising_hand:

- Ada Lovelace / [@ada-l](https://github.com/ada-l)
- grace / ghopper

### Introduce yourself! :wave:

- Ada Lovelace \u2014 first time!
"""


def test_imported_people_are_one_person_each_and_the_file_comes_back(
    session_factory: sessionmaker[Session], tmp_path: Path
) -> None:
    with session_factory() as session, session.begin():
        report = import_archive(session, CAFE, parse_archive(ARCHIVE), NOW)
    assert [o.meeting.summary() for o in report.outcomes] == [
        "2031-05-20: 3 check-ins, 3 introductions, 0 shout-outs, 1 agenda item, 0 free-text blocks",
        "2031-04-15: 2 check-ins, 1 introduction, 0 shout-outs, 0 agenda items, 0 free-text blocks",
    ]
    with session_factory() as session:
        people = {p.name: p for p in session.scalars(select(Person))}
        # Ada in April (a profile link) and May (a name link, a bare handle) is one person,
        # and so is Grace (a bare profile address; her handle without "@").
        assert sorted(people) == ["Ada Lovelace", "Grace", "Joan Clarke"]
        assert people["Ada Lovelace"].github == "ada-l"
        assert people["Grace"].github == "ghopper"
        assert people["Joan Clarke"].github == "jclarke"
        intros = sorted(
            (i.meeting.date.isoformat(), i.person.name or "", i.text)
            for i in session.scalars(select(Introduction))
        )
        assert intros == [
            ("2031-04-15", "Ada Lovelace", "first time!"),
            ("2031-05-20", "Ada Lovelace", "I design engines."),
            ("2031-05-20", "Grace", "Compilers, mostly."),
            ("2031-05-20", "Joan Clarke", "Cryptanalysis :lock:\nand crosswords"),
        ]
        checkins = sorted(
            (c.name, c.github, c.person.name) for c in session.scalars(select(CheckIn))
        )
        assert checkins == [
            ("Ada Lovelace", "ada-l", "Ada Lovelace"),
            ("Ada Lovelace", "ada-l", "Ada Lovelace"),
            ("Grace", "ghopper", "Grace"),
            ("Joan Clarke", "jclarke", "Joan Clarke"),
            ("grace", "ghopper", "Grace"),
        ]
        kept = session.scalars(select(ArchiveBlock).where(ArchiveBlock.kind == "text"))
        assert list(kept) == []  # every list item became a record
    with session_factory() as session, session.begin():
        written = write_year_file(session, CAFE, 2031, tmp_path)
    assert written.read_text(encoding="utf-8") == ARCHIVE  # byte for byte
