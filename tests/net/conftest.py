"""Fixtures for the net tests: a plain HTTP server on loopback."""

from collections.abc import Iterator

import pytest
from local_server import LocalServer, start


@pytest.fixture
def server() -> Iterator[LocalServer]:
    yield from start()
