"""Bring the database to the newest schema: Alembic `upgrade head`, configured in code, safe to race.

One migration chain covers every table (tasks, workers, accounts, keys), whichever store opens first.
Two processes opening the same database at once take turns: on SQLite the upgrade runs inside one
`BEGIN IMMEDIATE` transaction, on Postgres under a transaction-scoped advisory lock. Both databases have
transactional DDL, so the second sees the first's result and does nothing. No alembic.ini is needed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, MetaData, text

from kinema.db.database import POSTGRES_POOL_SIZE, make_engine

SCRIPT_LOCATION = "kinema.db:migrations"
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


def open_database(url: str, *, pool_size: int = POSTGRES_POOL_SIZE) -> Engine:
    """Connect to `url` and bring it to the newest schema: the engine every store of a process shares."""
    engine = make_engine(url, pool_size=pool_size)
    try:
        upgrade(engine)
    except BaseException:
        engine.dispose()
        raise
    return engine


def upgrade(engine: Engine, target: str = "head") -> None:
    """Apply every migration up to `target` (the newest unless told otherwise, e.g. by a test)."""
    _run(engine, lambda config: command.upgrade(config, target))


def downgrade(engine: Engine, target: str) -> None:
    """Undo migrations down to revision `target` (development and tests only: it may drop data)."""
    _run(engine, lambda config: command.downgrade(config, target))


def _run(engine: Engine, step: Callable[[Config], None]) -> None:
    config = alembic_config()
    with _PROCESS_LOCK, engine.execution_options(kinema_sqlite_begin="IMMEDIATE").begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
        config.attributes["connection"] = connection
        step(config)


def revision(engine: Engine, message: str, metadata: MetaData) -> None:
    """Write a new migration module comparing `engine`'s database with `metadata` (development only).

    Pass `kinema.db.Base.metadata` after importing `kinema.jobs.schema` and `kinema.accounts.schema`:
    this package sits below both and cannot import their tables itself.
    """
    config = alembic_config()
    with _PROCESS_LOCK, engine.begin() as connection:
        config.attributes["connection"] = connection
        config.attributes["metadata"] = metadata
        command.revision(config, message=message, autogenerate=True)


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
