"""`cafebot archive import` and `export`, run as a user runs them: a real process, a real file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.test_archive_reader import SUMMARIES, fixture
from tests.test_cli import cafebot

pytestmark = pytest.mark.slow


def meetings_in(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [row[0] for row in connection.execute("SELECT date FROM meeting ORDER BY date")]


def test_import_twice_then_export(tmp_path: Path) -> None:
    db = tmp_path / "cafe.db"
    url = f"sqlite:///{db}"
    files = [
        str(Path(__file__).parent / "fixtures" / "archives" / n) for n in ("2030.md", "odd.md")
    ]
    first = cafebot("archive", "import", "--db", url, *files, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == SUMMARIES["2030.md"] + SUMMARIES["odd.md"]
    assert "is not a date on the calendar" in first.stderr  # odd.md's warnings, on stderr
    again = cafebot("archive", "import", "--db", url, *files, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        f"{line} (unchanged: imported before)"
        for line in SUMMARIES["2030.md"] + SUMMARIES["odd.md"]
    ]
    out = tmp_path / "out"
    exported = cafebot("archive", "export", "--db", url, "-o", str(out), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.splitlines() == [
        f"{out / '2030.md'}: 5 meetings",
        f"{out / '2028.md'}: 2 meetings",
    ]
    assert (out / "2030.md").read_text() == fixture("2030.md")
    assert (out / "2028.md").read_text() == fixture("odd.md")
    missing = cafebot("archive", "export", "--db", url, "-o", str(out), "1999", cwd=tmp_path)
    assert missing.returncode == 1
    assert "no published meetings in 1999" in missing.stderr


def test_bad_files_are_refused_and_leave_nothing_behind(tmp_path: Path) -> None:
    db = tmp_path / "cafe.db"
    url = f"sqlite:///{db}"
    (tmp_path / "empty.md").write_text("")
    (tmp_path / "latin1.md").write_bytes("## 2031-05-20\n\n- Caf\xe9\n".encode("latin-1"))
    (tmp_path / "list.md").write_text("# Shopping\n\n- milk\n")
    (tmp_path / "good.md").write_text(fixture("2031.md"))
    result = cafebot(
        "archive",
        "import",
        "--db",
        url,
        "empty.md",
        "latin1.md",
        "list.md",
        "good.md",
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stdout.splitlines() == SUMMARIES["2031.md"]  # the good file, in full
    errors = result.stderr.splitlines()
    assert (
        "cafebot archive import: empty.md: the file is empty; nothing was imported from it"
        in errors
    )
    assert any(
        e.startswith("cafebot archive import: latin1.md: not UTF-8 text (byte 0xe9 on line 3)")
        for e in errors
    )
    assert any(e.startswith("cafebot archive import: list.md: no meetings found") for e in errors)
    assert meetings_in(db) == ["2031-05-20"]


def test_a_changed_meeting_is_reported_until_replace(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cafe.db'}"
    (tmp_path / "2031.md").write_text(fixture("2031.md"))
    assert cafebot("archive", "import", "--db", url, "2031.md", cwd=tmp_path).returncode == 0
    (tmp_path / "2031.md").write_text(fixture("2031.md").replace("finish by June", "by July"))
    skipped = cafebot("archive", "import", "--db", url, "2031.md", cwd=tmp_path)
    assert skipped.returncode == 1
    assert "(skipped: the database holds this meeting with other content" in skipped.stdout
    assert "--replace imports the file's over them" in skipped.stderr
    replaced = cafebot("archive", "import", "--replace", "--db", url, "2031.md", cwd=tmp_path)
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.endswith("(replaced the stored meeting)\n")
    exported = cafebot("archive", "export", "--db", url, "-o", "notes", "2031", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "by July" in (tmp_path / "notes" / "2031.md").read_text()


def test_a_file_the_database_refuses_half_way_leaves_nothing(tmp_path: Path) -> None:
    db = tmp_path / "cafe.db"
    url = f"sqlite:///{db}"
    assert cafebot("db", "upgrade", "--db", url, cwd=tmp_path).returncode == 0
    with sqlite3.connect(db) as connection:  # the database refuses the file's last statement
        connection.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON archive_meeting "
            "WHEN NEW.source LIKE '## 2030-08-18%' BEGIN SELECT RAISE(ABORT, 'no room'); END"
        )
    (tmp_path / "2030.md").write_text(fixture("2030.md"))
    (tmp_path / "2031.md").write_text(fixture("2031.md"))
    result = cafebot("archive", "import", "--db", url, "2030.md", "2031.md", cwd=tmp_path)
    assert result.returncode == 1
    assert "2030.md: the database refused it (IntegrityError" in result.stderr
    assert "no room" in result.stderr and "nothing was imported from it" in result.stderr
    assert result.stdout.splitlines() == SUMMARIES["2031.md"]
    assert meetings_in(db) == ["2031-05-20"]  # not one meeting, person or entry of 2030.md
    with sqlite3.connect(db) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM person")}
    assert "Linus" not in names and "Ada Byron" in names
