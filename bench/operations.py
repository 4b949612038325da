"""Operations timings: leader takeover after a crash, `cafebot health`, backup and restore.

    python bench/operations.py [--postgres URL]     (default: CAFEBOT_TEST_POSTGRES_URL)

Prints a Markdown table; results go in bench/RESULTS.md (they are not asserted in tests).
The takeover is measured from SIGKILL of the leader's process to the moment the
watching process reports that it was elected, for LeaderWatch intervals of 0.2 s
and the default.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cafebot.storage import db  # noqa: E402
from cafebot.storage.backup import read_backup, restore, write_backup  # noqa: E402
from cafebot.storage.leader import DEFAULT_INTERVAL  # noqa: E402
from tests.harness import ADA, BOB, OLGA, Harness  # noqa: E402

WATCHER = """
import sys, time
from cafebot.storage import db
from cafebot.storage.leader import Leadership, LeaderWatch
watch = LeaderWatch(Leadership(db.make_engine(sys.argv[1])),
                    on_elected=lambda: print("elected", time.monotonic(), flush=True),
                    interval=float(sys.argv[2]))
watch.start()
print("watching", flush=True)
sys.stdin.read()
"""


def takeover(url: str, interval: float, runs: int) -> list[float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = []
    for _ in range(runs):
        procs = []
        for _ in range(2):
            proc = subprocess.Popen(  # noqa: S603 - our own interpreter and script
                [sys.executable, "-c", WATCHER, url, str(interval)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            procs.append(proc)
            if _stdout(proc).readline().strip() != "watching":
                raise RuntimeError("a watcher did not start")
            if len(procs) == 1 and not _stdout(proc).readline().startswith("elected"):
                raise RuntimeError("the first watcher was not elected")
        first, second = procs
        second_out = _stdout(second)
        # Kill at a random phase of the second watcher's retry cycle.
        time.sleep(interval * 2 + random.uniform(0, interval))  # noqa: S311 - not crypto
        killed = time.monotonic()
        first.send_signal(signal.SIGKILL)
        first.wait()
        elected = float(second_out.readline().split()[1])
        out.append(elected - killed)
        second.kill()
        second.wait()
        for proc in procs:
            for stream in (proc.stdin, proc.stdout):
                if stream is not None:
                    stream.close()
    return out


def _stdout(proc: subprocess.Popen[str]) -> IO[str]:
    if proc.stdout is None:
        raise RuntimeError("no stdout")
    return proc.stdout


def data(url: str, meetings: int) -> None:
    bot = Harness(url, now=dt.datetime(2031, 1, 1, 10, tzinfo=dt.UTC))
    try:
        for month in range(meetings):
            bot.clock.set(dt.datetime(2031 + month // 12, month % 12 + 1, 1, 10, tzinfo=dt.UTC))
            for n in range(10):
                bot.send(f"agenda 5m Topic {month}-{n}", ADA if n % 2 else BOB)
                bot.send(f"note A{n + 1} a note on topic {n}", BOB)
            bot.send("checkin Ada / @ada / Engines")
            bot.send("shoutout [Project] Something landed", OLGA)
    finally:
        bot.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default=os.environ.get("CAFEBOT_TEST_POSTGRES_URL"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    if not args.postgres:
        sys.exit("set CAFEBOT_TEST_POSTGRES_URL or pass --postgres URL")
    admin = db.make_engine(args.postgres).execution_options(isolation_level="AUTOCOMMIT")
    name = f"cafebot_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    pg_url = admin.url.set(database=name).render_as_string(hide_password=False)
    rows: list[tuple[str, str]] = []
    try:
        for interval in (0.2, DEFAULT_INTERVAL):
            runs = takeover(pg_url, interval, args.runs if interval < 1 else 2)
            rows.append(
                (
                    f"takeover after SIGKILL, LeaderWatch interval {interval:g} s",
                    f"median {statistics.median(runs):.2f} s, max {max(runs):.2f} s "
                    f"({len(runs)} runs)",
                )
            )
        with tempfile.TemporaryDirectory() as tmp:
            sqlite_url = f"sqlite:///{Path(tmp) / 'cafe.db'}"
            data(sqlite_url, 24)
            source = db.make_engine(sqlite_url)
            started = time.perf_counter()
            out = io.StringIO()
            summary = write_backup(source, out)
            backup_s = time.perf_counter() - started
            source.dispose()
            target = db.make_engine(pg_url)
            started = time.perf_counter()
            restore(target, read_backup(io.StringIO(out.getvalue())))
            restore_s = time.perf_counter() - started
            target.dispose()
            rows.append(
                (
                    f"backup of {summary.total} rows (SQLite, 24 meetings)",
                    f"{backup_s * 1000:.0f} ms, {len(out.getvalue()) / 1024:.0f} KiB of JSON",
                )
            )
            rows.append(
                (f"restore of {summary.total} rows into PostgreSQL", f"{restore_s * 1000:.0f} ms")
            )

            heartbeat = Path(tmp) / "cafe.db.heartbeat"
            now = dt.datetime.now(dt.UTC).isoformat()
            heartbeat.write_text(json.dumps({"pid": 1, "beats": {"events": now}}))
            times = []
            for _ in range(5):
                started = time.perf_counter()
                subprocess.run(  # noqa: S603 - our own interpreter
                    [sys.executable, "-m", "cafebot", "health", "--db", sqlite_url],
                    env={**os.environ, "PYTHONPATH": str(ROOT), "STATE_DIRECTORY": ""},
                    capture_output=True,
                    check=False,
                    cwd=tmp,
                )
                times.append(time.perf_counter() - started)
            rows.append(
                (
                    "`cafebot health` (a whole process)",
                    f"median {statistics.median(times) * 1000:.0f} ms",
                )
            )
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.engine.dispose()
    print("| what | result |\n|---|---|")
    for what, result in rows:
        print(f"| {what} | {result} |")


if __name__ == "__main__":
    main()
