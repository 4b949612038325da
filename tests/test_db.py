"""cafebot.storage.db: engines, sessions and units of work."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from cafebot.storage import db
from cafebot.storage.models import Series


def test_sqlite_file_engine_creates_its_directory_and_sets_pragmas(tmp_path: Path) -> None:
    path = tmp_path / "not" / "yet" / "cafebot.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA busy_timeout").scalar() == db.SQLITE_BUSY_TIMEOUT_MS
            assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert path.is_file()
    finally:
        engine.dispose()


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_sqlite_memory_engine_is_one_database_for_every_thread(url: str) -> None:
    engine = db.make_engine(url)
    try:
        db.upgrade_database(engine)
        factory = db.session_factory(engine)

        def add() -> None:
            with db.unit_of_work(factory) as session:
                session.add(Series(key="cafe", name="Collaboration Cafe"))

        thread = threading.Thread(target=add)
        thread.start()
        thread.join()
        with db.unit_of_work(factory) as session:
            assert session.scalars(select(Series.key)).all() == ["cafe"]
            assert session.execute(text("PRAGMA foreign_keys")).scalar() == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("postgresql://cafe@db.example.org/cafe", id="postgresql"),
        pytest.param("postgres://cafe@db.example.org/cafe", id="postgres"),
        pytest.param("postgresql+psycopg://cafe@db.example.org/cafe", id="explicit"),
    ],
)
def test_postgresql_urls_use_psycopg_3(url: str) -> None:
    engine = db.make_engine(url)  # connects lazily: nothing is contacted here
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert engine.pool._pre_ping
    finally:
        engine.dispose()


def test_migrations_path_of_the_checkout() -> None:
    path = db.migrations_path()
    assert (path / "env.py").is_file()
    assert path == Path(__file__).resolve().parent.parent / "migrations"


def test_objects_stay_readable_after_their_unit_of_work(
    session_factory: sessionmaker[Session],
) -> None:
    with db.unit_of_work(session_factory) as session:
        series = Series(key="cafe", name="Collaboration Cafe")
        session.add(series)
    assert series.id is not None
    assert series.name == "Collaboration Cafe"


def test_a_failed_unit_of_work_changes_nothing(session_factory: sessionmaker[Session]) -> None:
    class Boom(Exception):
        pass

    with pytest.raises(Boom), db.unit_of_work(session_factory) as session:
        session.add(Series(key="cafe", name="Collaboration Cafe"))
        session.flush()
        raise Boom
    with pytest.raises(IntegrityError), db.unit_of_work(session_factory) as session:
        session.add(Series(key="cafe", name="Collaboration Cafe"))
        session.add(Series(key="cafe", name="Another Cafe"))
    with db.unit_of_work(session_factory) as session:
        assert session.scalars(select(Series)).all() == []


def test_sqlite_units_of_work_do_not_interleave(tmp_path: Path) -> None:
    """Read, then write from what was read, in two threads: no update is lost."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'cafebot.db'}")
    try:
        db.upgrade_database(engine)
        factory = db.session_factory(engine)
        with db.unit_of_work(factory) as session:
            session.add(Series(key="cafe", name="0"))
        rounds = 40
        start = threading.Barrier(2)
        errors: list[BaseException] = []

        def bump() -> None:
            try:
                start.wait()
                for _ in range(rounds):
                    with db.unit_of_work(factory) as session:
                        count = int(session.scalars(select(Series.name)).one())
                        session.execute(update(Series).values(name=str(count + 1)))
            except Exception as exc:  # reported by the assertion below
                errors.append(exc)

        threads = [threading.Thread(target=bump) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        with db.unit_of_work(factory) as session:
            assert session.scalars(select(Series.name)).one() == str(2 * rounds)
    finally:
        engine.dispose()


def test_engine_fixture_is_at_head(engine: Engine) -> None:
    assert db.current_revision(engine) == db.head_revision()
