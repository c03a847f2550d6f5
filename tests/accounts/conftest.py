"""Backends for the account-store contract suite: in memory, SQLite in a temporary file, and Postgres.

`billed` wires an account store, a task store and `Billing` together on one backend, as the server will:
the task store calls the billing hook inside each status change's transaction. The database fixtures
(`postgres_url`, `sql_url`, `clock`) come from tests/dbfixtures.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from billingkit import METERED, Billed, billing_on

from dbfixtures import ALL_BACKENDS, SQL_BACKENDS, clock, postgres_server, postgres_url, sql_url
from kinema.accounts import (
    AccountStore,
    MemoryAccountStore,
    open_accounts,
)
from kinema.jobs import FakeClock

__all__ = ["METERED", "Billed", "billing_on", "clock", "postgres_server", "postgres_url", "sql_url"]

OpenAccounts = Callable[[], AccountStore]


OpenAccounts = Callable[[], AccountStore]


def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str | None:
    """None for the in-memory stores, else the database URL of the backend under test."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kinema.db'}"
    if request.param == "postgres":
        url: str = request.getfixturevalue("postgres_url")
        return url
    return None


@pytest.fixture(params=ALL_BACKENDS)
def open_handle(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[OpenAccounts]:
    """Opens another handle on the same backing store, as the API server and the CLI would."""
    opened: list[AccountStore] = []
    memory = MemoryAccountStore(clock=clock)
    url = backend_url(request, tmp_path)

    def open_one() -> AccountStore:
        store: AccountStore = memory if url is None else open_accounts(url, clock=clock)
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


@pytest.fixture
def accounts(open_handle: OpenAccounts) -> AccountStore:
    return open_handle()


@pytest.fixture(params=ALL_BACKENDS)
def billed(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Billed]:
    with billing_on(backend_url(request, tmp_path), clock) as found:
        yield found


@pytest.fixture(params=SQL_BACKENDS)
def billed_sql(request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock) -> Iterator[Billed]:
    with billing_on(backend_url(request, tmp_path), clock) as found:
        yield found
