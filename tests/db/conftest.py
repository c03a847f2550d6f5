"""The database fixtures for tests/db come from tests/dbfixtures.py."""

from __future__ import annotations

from dbfixtures import postgres_server, postgres_url, sql_url

__all__ = ["postgres_server", "postgres_url", "sql_url"]
