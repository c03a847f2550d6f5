"""Fixtures for the net tests: a plain HTTP server on loopback, and the SQL databases (tests/dbfixtures.py)
that the durable-callback tests run on."""

from collections.abc import Iterator

import pytest
from local_server import LocalServer, start

from dbfixtures import postgres_server, postgres_url, sql_url

__all__ = ["postgres_server", "postgres_url", "sql_url"]


@pytest.fixture
def server() -> Iterator[LocalServer]:
    yield from start()
