"""``cafebot insights`` against ``cafebot archive export`` of the same ten-year archive.

    python bench/insights.py [--runs 7]

Generates bench/archive.py's ten years of monthly meetings (120 meetings, ten year
files), imports them into a fresh SQLite database with ``cafebot archive import``, then
times, as medians of ``--runs`` runs, whole commands as a user runs them (Python's
start-up included):

- ``cafebot insights --since 2030-01-01`` (every meeting; text, json and csv);
- ``cafebot archive export -o DIR`` (every year file).

The target (issue 16): insights at most 1x one export. Also times the work alone, in
process: :func:`cafebot.insights.numbers.compute` against
:func:`cafebot.notes.archive.write_year_file` for every year, and the two charts
(SVG and PNG), which only the site and chat draw. Results go in bench/RESULTS.md; they
are not asserted in tests.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.archive import timed, year_files  # noqa: E402
from cafebot.core.config import SeriesSettings  # noqa: E402
from cafebot.insights import numbers  # noqa: E402
from cafebot.notes.archive import write_year_file  # noqa: E402
from cafebot.storage import db  # noqa: E402

SERIES = SeriesSettings(key="cafe")
CAFEBOT = str(Path(sys.executable).with_name("cafebot"))


def run(work: Path, *args: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603 - our own command
        [CAFEBOT, *args, "--db", f"sqlite:///{work / 'bench.db'}"],
        cwd=work,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"cafebot {' '.join(args)} failed: {done.stderr}")
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "in").mkdir()
        files = year_files(work / "in")
        run(work, "archive", "import", *(str(p) for p in files))
        # Interleaved, run by run, so that a busy moment of the machine hits both alike.
        commands = [
            ("`cafebot archive export -o out` (10 files)", ("archive", "export", "-o", "out")),
            *(
                (
                    f"`cafebot insights --since 2030-01-01 --format {fmt}`",
                    ("insights", "--since", "2030-01-01", "--format", fmt),
                )
                for fmt in ("text", "json", "csv")
            ),
        ]
        times: dict[str, list[float]] = {label: [] for label, _ in commands}
        for _ in range(args.runs):
            for label, command in commands:
                times[label].append(run(work, *command))
        rows = [
            (label, statistics.median(times[label]), min(times[label])) for label, _ in commands
        ]
        export, export_best = rows[0][1], rows[0][2]

        engine = db.make_engine(f"sqlite:///{work / 'bench.db'}")
        sessions = db.session_factory(engine)
        now = dt.datetime.now(dt.UTC)
        period = numbers.Period(dt.date(2030, 1, 1), None, "since 2030-01-01")
        found: list[numbers.Insights] = []

        def compute() -> None:
            with db.unit_of_work(sessions) as session:
                found.append(numbers.compute(session, SERIES, period, now))

        def export_all() -> None:
            with db.unit_of_work(sessions) as session:
                for year in range(2030, 2040):
                    write_year_file(session, SERIES, year, work / "inproc")

        in_compute = statistics.median(timed(compute) for _ in range(args.runs))
        in_export = statistics.median(timed(export_all) for _ in range(args.runs))
        from cafebot.insights.charts import attendance_chart, retention_chart

        insights = found[-1]
        attendance_chart(insights, "png")  # the first drawing loads fonts: not counted
        charts = statistics.median(
            timed(
                lambda: (
                    attendance_chart(insights, "svg"),
                    attendance_chart(insights, "png"),
                    retention_chart(insights, "svg"),
                )
            )
            for _ in range(args.runs)
        )
        engine.dispose()

    print(
        f"{len(insights.meetings)} meetings, {insights.check_ins} check-ins, "
        f"{insights.people} people; medians and fastest of {args.runs} runs\n"
    )
    print("| command (a whole process) | median | / export | fastest | / export |")
    print("|---|---|---|---|---|")
    for label, took, best in rows:
        print(
            f"| {label} | {took * 1000:.0f} ms | {took / export:.2f}x "
            f"| {best * 1000:.0f} ms | {best / export_best:.2f}x |"
        )
    print("\n| in process | time |")
    print("|---|---|")
    print(f"| `numbers.compute` over 120 meetings | {in_compute * 1000:.1f} ms |")
    print(f"| `write_year_file` for the 10 years | {in_export * 1000:.1f} ms |")
    print(f"| attendance SVG + PNG and retention SVG (matplotlib Agg) | {charts * 1000:.0f} ms |")
    print(
        f"\n{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.platform()}; "
        f"{os.cpu_count()} cores; Python {platform.python_version()}; "
        f"SQLAlchemy {version('sqlalchemy')}; matplotlib {version('matplotlib')}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
