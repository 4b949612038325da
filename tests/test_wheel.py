"""The wheel carries the migrations: installed alone, ``cafebot db upgrade`` builds a database."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from cafebot.storage import db
from cafebot.storage.models import Base

ROOT = Path(__file__).resolve().parent.parent
BIN = "Scripts" if sys.platform == "win32" else "bin"


def run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, (
        f"{' '.join(map(str, args))} exited {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result.stdout


@pytest.mark.slow
def test_installed_wheel_upgrades_a_database(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", wheels, ROOT)
    (wheel,) = wheels.glob("cafebot-*.whl")

    names = set(zipfile.ZipFile(wheel).namelist())
    revisions = {
        f"cafebot/migrations/versions/{p.name}" for p in (ROOT / "migrations/versions").glob("*.py")
    }
    assert revisions
    assert {"cafebot/migrations/env.py", "cafebot/migrations/script.py.mako"} <= names
    assert revisions <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]

    venv = tmp_path / "venv"  # without --system-site-packages: only what the wheel brings
    run(sys.executable, "-m", "venv", venv)
    run(venv / BIN / "python", "-m", "pip", "install", "--quiet", wheel)

    # From elsewhere, with no config file to find and none of our variables set.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CAFEBOT_", "PYTHON"))}
    env["HOME"] = str(tmp_path / "home")
    installed = run(
        venv / BIN / "python",
        "-c",
        "import cafebot.storage.db; print(cafebot.storage.db.migrations_path())",
        cwd=elsewhere,
        env=env,
    ).strip()
    assert Path(installed).is_relative_to(venv), installed

    database = tmp_path / "data" / "x.db"
    out = run(
        venv / BIN / "cafebot",
        "db",
        "upgrade",
        "--db",
        f"sqlite:///{database}",
        cwd=elsewhere,
        env=env,
    )
    assert "Upgraded the database from revision none to" in out

    with sqlite3.connect(database) as connection:
        tables = {
            name
            for (name,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
        }
        (version,) = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    connection.close()
    assert tables >= set(Base.metadata.tables) | {"alembic_version"}
    assert version == (db.head_revision(),)
