"""Archive import and export against one plain markdown-it-py parse of the same text.

    python bench/archive.py [--runs 7] [--postgres URL]

Generates ten years of monthly meetings (120 meetings, about 40 entries each, in
every variation of notes-format.md) as ten year files, then measures side by side,
as medians of ``--runs`` runs:

- parse:  ``MarkdownIt("commonmark").parse(text)`` of every file (the yardstick);
- import: reading, parsing and importing every file, one transaction per file, into
  a fresh database at the latest revision (SQLite file; PostgreSQL with --postgres);
- export: writing every year file again (``cafebot.notes.archive.write_year_file``).

The targets (issue 5): import at most 4x the parse, export at most 1x. Results go in
bench/RESULTS.md; they are not asserted in tests. Also checks that every exported
file equals its original.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from markdown_it import MarkdownIt  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from cafebot.core.config import SeriesSettings  # noqa: E402
from cafebot.notes.archive import (  # noqa: E402
    import_archive,
    normalise,
    parse_archive,
    read_archive_file,
    write_year_file,
)
from cafebot.storage import db  # noqa: E402

SERIES = SeriesSettings(key="cafe")
NOW = dt.datetime(2041, 1, 1, tzinfo=dt.UTC)
NAMES = [
    f"{first} {last}"
    for first in (
        "Ada",
        "Grace",
        "Linus",
        "Joan",
        "Mae",
        "Alan",
        "Hedy",
        "Edsger",
        "Barbara",
        "Ken",
    )
    for last in ("Byron", "Hopper", "Clarke", "Lamarr")
]
WORDS = [
    *("release", "docs", "sprint", "review", "plans", "budget", "triage", "binder", "hub"),
    *("kernel", "widget", "governance", "security", "packaging", "tutorial", "translation"),
]
ESTIMATES = ["(10m)", "(5 min)", "(10min)", "(5 mins)", "10 mins", "10-15 mins", "5 - 10 mins"]


def sentence(rng: random.Random, n: int = 8) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(3, n))]
    if rng.random() < 0.3:
        words.append(f"https://example.org/{rng.choice(WORDS)}/pull/{rng.randint(1, 9999)}")
    return " ".join(words).capitalize()


def handle(name: str) -> str:
    return name.lower().replace(" ", "-")


def meeting(rng: random.Random, date: dt.date) -> list[str]:
    """One meeting of about 40 entries, drifting like the real archive does."""
    out = [f"## {date.isoformat()}", "", "### Check-in :raising_hand:", ""]
    out.append("- _Name / GitHub handle / affiliation_")
    for name in rng.sample(NAMES, 10):
        form = rng.randrange(3)
        out.append(
            [f"- {name}", f"- {name} / @{handle(name)}", f"- {name} / @{handle(name)} / Lab"][form]
        )
    out += ["", "### Introduce yourself! :wave:", ""]
    for name in rng.sample(NAMES, 2):
        out.append(f"- {name}: {sentence(rng)}")
        out.append(f"    - {sentence(rng, 5)}")
    out += ["", "### Celebrations and Shout-Outs :tada:", "", "_Celebrate something great!_", ""]
    for _ in range(3):
        out.append(f"- [name={rng.choice(NAMES)}] {sentence(rng)}")
    out += ["", "Jupyter Book", ""]
    for _ in range(3):
        out.append(f"- {sentence(rng)}")
        if rng.random() < 0.5:
            out.append(f"    - {sentence(rng, 5)}")
    out += ["", "### Agenda :clock2:", "", "_Add a topic with your name and an estimate._", ""]
    out += [":::spoiler Tools for breakouts", "- Timer: https://example.org/timer", ":::", ""]
    for n in range(22):
        author = rng.choice([f"[name={rng.choice(NAMES)}] ", f"**{rng.choice(NAMES)}** "])
        line = f"- {author}{rng.choice(ESTIMATES)}: {sentence(rng)}"
        out.append(f"- _{line[2:]}_" if rng.random() < 0.1 else line)
        indent = rng.choice(["  ", "    ", "        "])
        for _ in range(rng.randrange(4)):
            out.append(f"{indent}- {sentence(rng)}")
        if rng.random() < 0.2:
            out.append(f"{indent}- **Decision** - {sentence(rng, 5)}")
        if n == 11:
            out += ["", f"{sentence(rng)}.", ""]
    out += ["", "#### Notes on the roadmap", "", f"* {sentence(rng)}", f"* {sentence(rng)}", ""]
    return out


def year_files(directory: Path, seed: int = 5) -> list[Path]:
    rng = random.Random(seed)  # noqa: S311 - made-up notes, not secrets
    paths = []
    for year in range(2030, 2040):
        lines = [f"# {year} Collaboration Cafe Notes Archive", ""]
        for month in range(12, 0, -1):
            lines += meeting(rng, dt.date(year, month, 15))
        path = directory / f"{year}.md"
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


@contextmanager
def database(postgres: str | None, workdir: Path) -> Iterator[sa.Engine]:
    """An empty database at the latest revision, dropped afterwards."""
    if postgres is None:
        engine = db.make_engine(f"sqlite:///{workdir / f'{uuid.uuid4().hex}.db'}")
        db.upgrade_database(engine)
        try:
            yield engine
        finally:
            engine.dispose()
        return
    admin = db.make_engine(postgres).execution_options(isolation_level="AUTOCOMMIT")
    name = f"cafebot_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine = db.make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        db.upgrade_database(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def import_all(sessions: sessionmaker[Session], files: list[Path]) -> None:
    for path in files:
        archive = parse_archive(read_archive_file(path))
        with db.unit_of_work(sessions) as session:  # one transaction per file
            import_archive(session, SERIES, archive, NOW)


def export_all(sessions: sessionmaker[Session], out: Path) -> None:
    with db.unit_of_work(sessions) as session:
        for year in range(2030, 2040):
            write_year_file(session, SERIES, year, out)


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--postgres", metavar="URL", help="measure on PostgreSQL too")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        files = year_files(work / "in")
        texts = [p.read_text(encoding="utf-8") for p in files]
        size = sum(len(t.encode()) for t in texts)
        archives = [parse_archive(t) for t in texts]
        meetings = sum(len(a.meetings) for a in archives)
        entries = sum(
            len(m.checkins) + len(m.intros) + len(m.shoutouts) + len(m.items)
            for a in archives
            for m in a.meetings
        )
        notes = sum(len(i.notes) for a in archives for m in a.meetings for i in m.items)
        md = MarkdownIt("commonmark")

        def parse_all() -> None:
            for text in texts:
                md.parse(text)

        backends: list[tuple[str, str | None]] = [("SQLite", None)]
        if args.postgres:
            backends.append(("PostgreSQL", args.postgres))
        print(
            f"{meetings} meetings, {entries} entries (+{notes} nested notes), "
            f"{len(files)} files, {size / 1024:.0f} KiB; medians of {args.runs} runs\n"
        )
        print(
            "| backend | parse (markdown-it-py) | import | import / parse | export | "
            "export / parse |"
        )
        print("|---|---|---|---|---|---|")
        for label, url in backends:
            parse_times, import_times, export_times = [], [], []
            for run in range(args.runs):
                parse_times.append(timed(parse_all))
                with database(url, work) as engine:
                    sessions = db.session_factory(engine)
                    out = work / f"out-{label}-{run}"
                    import_times.append(timed(lambda s=sessions: import_all(s, files)))
                    export_times.append(timed(lambda s=sessions, o=out: export_all(s, o)))
                    for path, text in zip(files, texts, strict=True):
                        if normalise((out / path.name).read_text(encoding="utf-8")) != normalise(
                            text
                        ):
                            print(f"export of {path.name} differs from the original")
                            return 1
            parse = statistics.median(parse_times)
            imp = statistics.median(import_times)
            exp = statistics.median(export_times)
            print(
                f"| {label} | {parse * 1000:.0f} ms | {imp * 1000:.0f} ms | {imp / parse:.2f}x "
                f"| {exp * 1000:.0f} ms | {exp / parse:.2f}x |"
            )
        print(
            f"\n{dt.datetime.now(dt.UTC):%Y-%m-%d}; {platform.platform()}; "
            f"{platform.processor() or platform.machine()}; Python {platform.python_version()}; "
            f"markdown-it-py {version('markdown-it-py')}; SQLAlchemy {version('sqlalchemy')}; "
            f"SQLite {_sqlite()}; psycopg {version('psycopg')}"
        )
    return 0


def _sqlite() -> str:
    import sqlite3

    return sqlite3.sqlite_version


if __name__ == "__main__":
    sys.exit(main())
