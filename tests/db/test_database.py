"""Connecting: URLs are parsed with the fix in every refusal, and SQLite files always end in WAL mode."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine

from kinema.db import make_engine, normalise_url
from kinema.errors import InvalidRequest


def test_a_postgres_url_means_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_bad_database_urls_are_refused_with_the_fix(tmp_path: Path) -> None:
    cases = {
        "mysql://u@h/db": "database 'mysql' is not supported; use sqlite:///",
        "sqlite://": "SQLite needs a file path",
        "sqlite:///:memory:": "MemoryTaskStore and kinema.accounts.MemoryAccountStore",
        f"sqlite:///{tmp_path}/missing/kinema.db": "does not exist; create it first",
        "not a url": "cannot parse database url 'not a url'",
    }
    for url, message in cases.items():
        with pytest.raises(InvalidRequest, match=message):
            make_engine(url)


def test_connections_racing_on_a_fresh_sqlite_file_all_end_in_wal_mode(tmp_path: Path) -> None:
    engines = [make_engine(f"sqlite:///{tmp_path / 'fresh.db'}") for _ in range(12)]
    start = threading.Barrier(len(engines), timeout=30)

    def journal_mode(engine: Engine) -> str:
        start.wait()
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("PRAGMA journal_mode").scalar())

    with ThreadPoolExecutor(len(engines)) as pool:
        modes = list(pool.map(journal_mode, engines, timeout=120))
    for engine in engines:
        engine.dispose()

    assert modes == ["wal"] * len(engines)
