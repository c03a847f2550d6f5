"""Bring a database to the newest schema: Alembic `upgrade head`, configured in code, safe to race.

Two processes opening the same database at once take turns: on SQLite the upgrade runs inside one
`BEGIN IMMEDIATE` transaction, on Postgres under a transaction-scoped advisory lock. Both databases have
transactional DDL, so the second sees the first's result and does nothing. No alembic.ini is needed.
"""

from __future__ import annotations

import threading

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, text

SCRIPT_LOCATION = "kinema.jobs:migrations"
_PG_LOCK_KEY = 0x6B696E656D61  # "kinema" in ASCII
# Alembic's `op` and `context` are process-wide proxies, so one thread at a time may migrate.
_PROCESS_LOCK = threading.Lock()


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    return config


def head() -> str:
    revision = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if revision is None:
        raise RuntimeError(
            f"no migrations found in {SCRIPT_LOCATION}; reinstall kinema, the package is incomplete"
        )
    return revision


def upgrade(engine: Engine) -> None:
    config = alembic_config()
    with _PROCESS_LOCK, engine.execution_options(kinema_sqlite_begin="IMMEDIATE").begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def revision(engine: Engine, message: str) -> None:
    """Write a new migration module comparing `engine`'s database with `schema.py` (development only)."""
    config = alembic_config()
    with _PROCESS_LOCK, engine.begin() as connection:
        config.attributes["connection"] = connection
        command.revision(config, message=message, autogenerate=True)


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
