"""Actions in the notes archive: recognised on import, stored as history, exported as written."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from cafebot.notes.actions import ParsedAction, recognise
from cafebot.storage.models import NoteKind
from tests.test_cli import cafebot

ARCHIVE = """# 2030 Collaboration Cafe Notes Archive

## 2030-06-18

### Check-in :raising_hand:

- _Name / GitHub handle / affiliation_
- Bob Builder / @bob / Builders
- Priya Raman / @priya / Open Labs

### Agenda :clock2:

- [name=Bob Builder] (10 min): Release plans
    - We aim for May
    - **Action** - [name=Bob Builder] write the release notes
    - Action: [name=Priya] book the room
    - AI: Priya to ask the docs team
    - TODO (Bob): ~~update the website~~
    - TODO @priya: [x] review the tutorial
    - Action item - send the survey (done)
    - AI research is moving fast
    - **Decision** - Ship 5.0 on 1 May

## 2030-05-21

### Agenda :clock2:

- [name=Priya Raman] (5 min): Docs
    * todo: Ada Lovelace: translate the intro
"""


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (NoteKind.ACTION, "[name=Bob Builder] write it", ParsedAction("write it", "Bob Builder")),
        (NoteKind.NOTE, "Action: [name=Priya] book it", ParsedAction("book it", "Priya")),
        (NoteKind.NOTE, "AI: Priya to ask", ParsedAction("Priya to ask", "Priya")),
        (NoteKind.NOTE, "TODO (Bob): ~~update~~", ParsedAction("update", "Bob", done=True)),
        (NoteKind.NOTE, "TODO @priya: [x] review", ParsedAction("review", None, "priya", True)),
        (NoteKind.NOTE, "to-do: @priya review", ParsedAction("review", None, "priya")),
        (NoteKind.NOTE, "Action item - send it (done)", ParsedAction("send it", done=True)),
        (NoteKind.NOTE, "TODO Bob: fix it", ParsedAction("fix it", "Bob")),
        (NoteKind.NOTE, "AI research is moving fast", None),
        (NoteKind.NOTE, "Actions speak louder", None),
        (NoteKind.NOTE, "todo:", None),
        (NoteKind.DECISION, "Action: ship", None),
    ],
)
def test_the_forms_people_write_are_recognised(
    kind: NoteKind, text: str, expected: ParsedAction | None
) -> None:
    assert recognise(kind, text) == expected


@pytest.mark.slow
def test_imported_actions_round_trip(tmp_path: Path) -> None:
    db = tmp_path / "cafe.db"
    url = f"sqlite:///{db}"
    source = tmp_path / "2030.md"
    source.write_text(ARCHIVE, encoding="utf-8")
    imported = cafebot("archive", "import", "--db", url, str(source), cwd=tmp_path)
    assert imported.returncode == 0, imported.stderr
    with sqlite3.connect(db) as connection:
        rows = connection.execute(
            "SELECT a.number, a.text, a.status, a.imported, p.name, m.date, a.item_ref, "
            "a.note_ref FROM action a JOIN meeting m ON m.id = a.meeting_id "
            "LEFT JOIN person p ON p.id = a.owner_id ORDER BY a.number"
        ).fetchall()
        linked = connection.execute(
            "SELECT count(*) FROM item_note WHERE action_id IS NOT NULL"
        ).fetchone()
    assert rows == [
        (1, "write the release notes", "unknown", 1, "Bob Builder", "2030-06-18", 1, 2),
        (2, "book the room", "unknown", 1, "Priya Raman", "2030-06-18", 1, 3),
        (3, "Priya to ask the docs team", "unknown", 1, "Priya Raman", "2030-06-18", 1, 4),
        (4, "update the website", "done", 1, "Bob Builder", "2030-06-18", 1, 5),
        (5, "review the tutorial", "done", 1, "Priya Raman", "2030-06-18", 1, 6),
        (6, "send the survey", "done", 1, None, "2030-06-18", 1, 7),
        (7, "translate the intro", "unknown", 1, "Ada Lovelace", "2030-05-21", 1, 1),
    ]
    assert linked == (7,)
    # History, never follow-ups: nothing is open.
    listing = cafebot("shell", "--db", url, stdin="actions\nactions all\n", cwd=tmp_path)
    assert "has no open actions" in listing.stdout
    assert "**T4** update the website — Bob Builder · from 2030-06-18 (A1.5) · done" in (
        listing.stdout
    )
    out = tmp_path / "out"
    exported = cafebot("archive", "export", "--db", url, "-o", str(out), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert (out / "2030.md").read_text(encoding="utf-8") == ARCHIVE
    # Once the bot changes the meeting it is written anew: the actions still as written.
    changed = cafebot(
        "shell", "--db", url, "--organizer", stdin="note 2030-06-18/A1 One more\n", cwd=tmp_path
    )
    assert changed.returncode == 0, changed.stdout + changed.stderr
    again = cafebot("archive", "export", "--db", url, "-o", str(out), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    text = (out / "2030.md").read_text(encoding="utf-8")
    for line in ARCHIVE.splitlines():
        if line.lstrip().startswith(("- **Action**", "- Action", "- AI", "- TODO")):
            assert line in text
    assert "    - One more" in text
    reimported = cafebot("archive", "import", "--db", url, str(source), cwd=tmp_path)
    assert "conflict" in reimported.stdout + reimported.stderr or reimported.returncode != 0
