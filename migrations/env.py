"""Alembic's environment for cafebot.

Run from the application (``cafebot db upgrade``, ``cafebot.storage.db.upgrade_database``)
with a connection in ``config.attributes["connection"]``, or by a developer with
``alembic`` and the top-level alembic.ini, where the database URL comes from
``CAFEBOT_DATABASE_URL`` or else from alembic.ini's ``sqlalchemy.url``.

The revision files themselves never import cafebot: they must keep describing
the schema as it was, whatever the models become.
"""

from __future__ import annotations

import logging.config
import os
from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy import Connection, Engine, make_url
from sqlalchemy.sql.schema import SchemaItem

from cafebot.storage.db import make_engine
from cafebot.storage.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata

# Tables in our database that the migrations do not own.
FOREIGN_TABLES = frozenset({"apscheduler_jobs"})
# Tables the migrations own but the models do not: the search index (migration 0012;
# cafebot.cafe.textindex), SQLite's FTS5 shadow tables included.
DERIVED_PREFIX = "search_"


def include_object(
    obj: SchemaItem,
    name: str | None,
    type_: str,
    reflected: bool,
    compare_to: SchemaItem | None,
) -> bool:
    """Keep autogenerate away from tables that are not ours (APScheduler's job store) and
    from the search index, which no model describes."""
    if type_ == "table" and name is not None:
        return name not in FOREIGN_TABLES and not name.startswith(DERIVED_PREFIX)
    return not (type_ == "index" and (name or "").startswith("ix_" + DERIVED_PREFIX))


def render_item(type_: str, obj: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """Render our column types with SQLAlchemy's own, so that revisions need no cafebot."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def configure_options(dialect_name: str) -> dict[str, Any]:
    """The options every run shares (the migration test compares with the same ones)."""
    sqlite = dialect_name == "sqlite"
    return {
        "target_metadata": target_metadata,
        "include_object": include_object,
        "render_item": render_item,
        "compare_type": True,
        # SQLite alters a table by copying it ("batch" mode).
        "render_as_batch": sqlite,
        # cafebot.storage.db gives SQLite real transactions, DDL included: migrate in one.
        "transactional_ddl": True if sqlite else None,
    }


def database_url() -> str:
    url = os.environ.get("CAFEBOT_DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("set CAFEBOT_DATABASE_URL or sqlalchemy.url in alembic.ini")
    return url


def run_migrations_offline() -> None:
    """Write the SQL to stdout (``alembic upgrade --sql``)."""
    url = database_url()
    context.configure(
        url=url,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **configure_options(make_url(url).get_backend_name()),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations(connection: Connection) -> None:
    sqlite = connection.dialect.name == "sqlite"
    # Batch mode copies a table and drops the original; with foreign keys on, that
    # drop would cascade to (delete!) the rows that refer to it.  SQLite only lets
    # this pragma change outside a transaction; its check runs before the commit.
    switch_foreign_keys = sqlite and not connection.in_transaction()
    if switch_foreign_keys:
        _sqlite_pragma(connection, "foreign_keys=OFF")
    try:
        context.configure(connection=connection, **configure_options(connection.dialect.name))
        with context.begin_transaction():
            context.run_migrations()
            if sqlite:
                _check_foreign_keys(connection)
    finally:
        if switch_foreign_keys:
            _sqlite_pragma(connection, "foreign_keys=ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    # On the driver's connection: through SQLAlchemy, the statement would begin a transaction.
    driver_connection = connection.connection.driver_connection
    if driver_connection is None:
        raise RuntimeError("the SQLite connection is closed")
    driver_connection.execute(f"PRAGMA {pragma}")


def _check_foreign_keys(connection: Connection) -> None:
    problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if problems:
        raise RuntimeError(f"the migration broke foreign keys: {problems[:10]}")


def run_migrations_online() -> None:
    given = config.attributes.get("connection")
    if isinstance(given, Connection):
        run_migrations(given)
    elif isinstance(given, Engine):
        with given.connect() as connection:
            run_migrations(connection)
    elif given is None:
        engine = make_engine(database_url())
        try:
            with engine.connect() as connection:
                run_migrations(connection)
        finally:
            engine.dispose()
    else:
        raise TypeError(f"config.attributes['connection'] is a {type(given).__name__}")


if config.config_file_name is not None and config.attributes.get("connection") is None:
    # Run by a developer with alembic.ini: its [loggers] say what to show.
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)

if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
