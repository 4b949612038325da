"""Helpers shared by the benchmarks: paths, statistics, the machine's description."""

from __future__ import annotations

import datetime as dt
import os
import platform
import sqlite3
import statistics
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent  # (bench/__init__.py puts it on sys.path)

PACKAGES = (
    "SQLAlchemy",
    "psycopg",
    "zulip",
    "zulip_bots",
    "requests",
    "APScheduler",
    "markdown-it-py",
    "alembic",
)


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], fraction: float) -> float:
    """The ``fraction`` quantile (0.5: the median, 0.99: p99), by the nearest-rank method."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(fraction * len(ordered) + 0.5)))
    return ordered[rank - 1]


def rss_kib(pid: int) -> int:
    """The resident set size of a process, in KiB (Linux: /proc/<pid>/status)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def package_versions() -> str:
    found = []
    for name in PACKAGES:
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return ", ".join(found)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    """One line: date, OS, CPU, cores, Python, SQLite and the packages that matter."""
    return (
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC; {platform.system()} "
        f"{platform.release()} {platform.machine()}; {cpu_model()}, {os.cpu_count()} cores; "
        f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; "
        f"{package_versions()}"
    )


def ms(seconds: float) -> str:
    """A duration for the table: ``1.23 ms`` / ``45 ms`` / ``12.3 s``."""
    if seconds != seconds:  # NaN
        return "n/a"
    if seconds >= 10:
        return f"{seconds:.1f} s"
    value = seconds * 1000
    if value >= 100:
        return f"{value:.0f} ms"
    if value >= 10:
        return f"{value:.1f} ms"
    return f"{value:.2f} ms"


def write_section(path: Path, heading: str, begin: str, end: str, block: str) -> None:
    """Put ``block`` (which starts with ``begin`` and ends with ``end``) into the results
    file: in place of the one written before, else as a new section under ``heading``."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmark results\n"
    if begin in text and end in text:
        head, _, rest = text.partition(begin)
        _, _, tail = rest.partition(end)
        text = head + block + tail
    else:
        text = text.rstrip("\n") + f"\n\n{heading}\n\n{block}\n"
    path.write_text(text, encoding="utf-8")
