"""Backends for the task-store contract suite: in memory, SQLite in a temporary file, and Postgres.

The database fixtures (`postgres_url`, `sql_url`, `clock`) come from tests/dbfixtures.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from dbfixtures import ALL_BACKENDS, clock, postgres_server, postgres_url, sql_url
from kinema.jobs import FakeClock, MemoryTaskStore, TaskStore, open_store

__all__ = ["clock", "postgres_server", "postgres_url", "sql_url"]

OpenStore = Callable[[], TaskStore]
OpenConfigured = Callable[..., TaskStore]


@pytest.fixture(params=ALL_BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """The database URL of the backend under test; None for the in-memory store."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kinema.db'}"
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return None


@pytest.fixture
def open_handle(backend: str | None, clock: FakeClock) -> Iterator[OpenStore]:
    """Opens another handle on the same backing store, as a second worker process would."""
    opened: list[TaskStore] = []
    memory = MemoryTaskStore(clock=clock)

    def open_one() -> TaskStore:
        store: TaskStore = memory if backend is None else open_store(backend, clock=clock)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def open_configured(backend: str | None, clock: FakeClock) -> Iterator[OpenConfigured]:
    """Opens a store with options (`hook`, `aging_seconds`) on the fake clock.

    On SQL each call is another handle on the same database; in memory each call is a new, empty store
    (the options belong to the store), so a test that needs two handles on one store uses SQL only.
    """
    opened: list[TaskStore] = []

    def open_one(**options: Any) -> TaskStore:
        store: TaskStore = (
            MemoryTaskStore(clock=clock, **options)
            if backend is None
            else open_store(backend, clock=clock, **options)
        )
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def store(open_handle: OpenStore) -> TaskStore:
    return open_handle()
