"""Connecting to Kinema's database: URL parsing and one engine per URL, tuned per database.

SQLite runs in WAL mode with a busy timeout, and every write transaction opens with `BEGIN IMMEDIATE`
(ask for it with the execution option `kinema_sqlite_begin`); Postgres goes through psycopg 3. This
module knows connections, not tables.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from kinema.errors import InvalidRequest, KinemaError

SQLITE_BUSY_TIMEOUT_S = 30


def normalise_url(url: str) -> URL:
    """Parse `url`; plain postgresql:// and postgres:// mean the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidRequest(
            f"cannot parse database url {url!r}; use sqlite:///path/kinema.db or postgresql://user@host/db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str) -> Engine:
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend != "postgresql":
        raise InvalidRequest(
            f"database {backend!r} is not supported; use sqlite:///path/kinema.db or postgresql://user@host/db"
        )
    try:
        return create_engine(parsed, pool_pre_ping=True)
    except (ModuleNotFoundError, NoSuchModuleError):
        raise InvalidRequest(
            f"the driver for {parsed.drivername} is not installed; pip install 'kinema[postgres]'"
        ) from None


def _sqlite_engine(url: URL) -> Engine:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise InvalidRequest(
            "SQLite needs a file path such as sqlite:///kinema-data/kinema.db; "
            "for stores in memory use kinema.jobs.MemoryTaskStore and kinema.accounts.MemoryAccountStore"
        )
    folder = Path(url.database).expanduser().resolve().parent
    if not folder.is_dir():
        raise InvalidRequest(f"folder {folder} for the SQLite database does not exist; create it first")
    # Enough pooled connections for every thread of the API's thread pool (40) plus workers: a smaller
    # pool made SQLAlchemy open and close a connection (and rerun the PRAGMAs) on most requests.
    engine = create_engine(
        url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S}, pool_size=48, max_overflow=16
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # the driver must not open transactions: we do, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        _use_wal(cursor, url.database or "")
        # NORMAL in WAL mode: a killed process loses no committed write; a power cut may lose the last few.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers BEGIN IMMEDIATE: they take the write lock up front (waiting up to busy_timeout), so
        # a read-then-write transaction can never fail to upgrade its lock halfway through.
        # NONE: a single-statement read runs in SQLite's own implicit transaction, saving the BEGIN and
        # the ROLLBACK round trips (the hot polling path).
        mode = connection.get_execution_options().get("kinema_sqlite_begin", "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "NONE"):
            raise ValueError(f"kinema_sqlite_begin must be DEFERRED, IMMEDIATE or NONE; got {mode!r}")
        if mode != "NONE":
            connection.exec_driver_sql(f"BEGIN {mode}")

    return engine


def _use_wal(cursor: Any, path: str) -> None:
    """Switch the file to WAL (a lasting property of the file, so usually already done).

    The switch needs the file to itself and SQLite runs no busy handler for it, so processes that open a
    fresh database together retry here until one has switched it.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
        if time.monotonic() > deadline:
            raise KinemaError(
                f"could not switch SQLite database {path} to WAL mode in {SQLITE_BUSY_TIMEOUT_S} s; "
                "another process holds it locked: stop that process or use another file"
            )
        time.sleep(0.01)  # back off briefly before asking again
