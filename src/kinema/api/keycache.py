"""Key lookups cached for a few seconds: authentication without a database round trip per request.

A revoked key or a disabled account therefore keeps working for at most `ttl_seconds` (5 by default) in
each API process; unknown keys are cached too, so a flood of bad tokens cannot hammer the database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from kinema.api.context import KeyLookups

V = TypeVar("V")
MAX_ENTRIES = 10_000


class _TTLCache(Generic[V]):
    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl, self.clock = ttl, clock
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, V]] = {}

    def get(self, key: str, load: Callable[[str], V]) -> V:
        now = self.clock()
        with self._lock:
            found = self._items.get(key)
        if found is not None and now - found[0] < self.ttl:
            return found[1]
        value = load(key)
        with self._lock:
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
            self._items[key] = (now, value)
        return value


class CachedKeys:
    """`KeyLookups` over another, remembering each answer for `ttl_seconds`."""

    def __init__(
        self, inner: KeyLookups, *, ttl_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self.inner = inner
        self._secrets: _TTLCache[tuple[str, str] | None] = _TTLCache(ttl_seconds, clock)
        self._static: _TTLCache[str | None] = _TTLCache(ttl_seconds, clock)

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        return self._secrets.get(access_key, self.inner.secret_for)

    def account_for_api_key(self, api_key: str) -> str | None:
        return self._static.get(api_key, self.inner.account_for_api_key)
