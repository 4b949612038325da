"""Shared fixtures. Each block says what it provides; keep blocks apart."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from cafebot.storage import db
from tests.fakezulip import FakeZulip, Org

# ============================================================ database
# A real database at the latest Alembic revision, on every backend:
#
#   db_url           a URL of an empty database of its own; parametrised: "sqlite" (a file
#                    in tmp_path) and "postgresql" (a fresh database on the server of
#                    CAFEBOT_TEST_POSTGRES_URL, dropped afterwards; skipped without it)
#   engine           cafebot.storage.db.make_engine(db_url), upgraded to head; disposed afterwards
#   session_factory  cafebot.storage.db.session_factory(engine)
#
# A test that takes any of these runs once per backend.

POSTGRES_URL_ENV = "CAFEBOT_TEST_POSTGRES_URL"
POSTGRES_SKIP_REASON = f"set {POSTGRES_URL_ENV} to run the PostgreSQL tests"

BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[Engine]:
    """An AUTOCOMMIT engine on the database of CAFEBOT_TEST_POSTGRES_URL, to create others."""
    url = os.environ.get(POSTGRES_URL_ENV)
    if not url:
        pytest.skip(POSTGRES_SKIP_REASON)
    engine = db.make_engine(url)
    try:
        yield engine.execution_options(isolation_level="AUTOCOMMIT")
    finally:
        engine.dispose()


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database that no other test sees."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'cafebot.db'}"
        return
    admin: Engine = request.getfixturevalue("postgres_admin")
    name = f"cafebot_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin.url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            # FORCE: an engine that a test forgot to dispose must not keep the database.
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """An engine on a database at the latest revision (built by the migrations)."""
    engine = db.make_engine(db_url)
    try:
        db.upgrade_database(engine)
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def session_factory(engine: Engine) -> sessionmaker[Session]:
    return db.session_factory(engine)


# ============================================================ end of database


# ============================================================ Zulip
#   fake  the fake Zulip server (tests/fakezulip.py) on 127.0.0.1, stopped afterwards
#   org   an organisation on it: the bot, Ada, Bob, Olga (an organiser) and a stream


@pytest.fixture
def fake() -> Iterator[FakeZulip]:
    with FakeZulip(heartbeat=0.5) as server:
        yield server


@pytest.fixture
def org(fake: FakeZulip) -> Org:
    return Org.create(fake)
