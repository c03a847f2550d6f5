"""Database fixtures shared by the store suites (tests/db, tests/jobs, tests/accounts).

A conftest imports the fixtures it needs from here. Postgres runs when KINEMA_TEST_POSTGRES_URL names a
server (each test gets its own schema, dropped after); without it the Postgres cases skip, unless
KINEMA_REQUIRE_POSTGRES=1 makes them fail.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import OperationalError

from kinema.db import normalise_url
from kinema.jobs import FakeClock

POSTGRES_ENV = "KINEMA_TEST_POSTGRES_URL"
ALL_BACKENDS = ["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("KINEMA_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"{reason}, and KINEMA_REQUIRE_POSTGRES=1 demands Postgres")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The normalised URL of the test server's database, checked once per session."""
    raw = os.environ.get(POSTGRES_ENV)
    if not raw:
        _skip_or_fail(f"{POSTGRES_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    url = normalise_url(raw or "").render_as_string(hide_password=False)
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        pytest.fail(f"{POSTGRES_ENV}={raw} is set but Postgres cannot be reached: {error}")
    finally:
        engine.dispose()
    return url


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A URL whose search_path is a fresh schema of its own, so every test starts from nothing."""
    schema = f"kinema_test_{secrets.token_hex(6)}"
    admin = create_engine(postgres_server)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = normalise_url(postgres_server).update_query_dict({"options": f"-csearch_path={schema}"})
    yield url.render_as_string(hide_password=False)
    with admin.begin() as connection:
        connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    admin.dispose()


@pytest.fixture
def sql_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The database URL of a SQL backend (used via `indirect` parametrisation)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'kinema.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@asynccontextmanager
async def ticking() -> AsyncIterator[list[int]]:
    """Counts in `[0]` the turns another coroutine gets on the running loop meanwhile (one per 10 ms):
    proof that the loop kept serving while the code under test waited."""
    ticks = [0]

    async def tick() -> None:
        while True:
            ticks[0] += 1
            await asyncio.sleep(0.01)

    running = asyncio.create_task(tick())
    try:
        yield ticks
    finally:
        running.cancel()
