"""Key and plan lookups cached for a few seconds: authentication and admission without a database
round trip per request.

A revoked key or a disabled account therefore keeps working for at most `ttl_seconds` (5 by default) in
each API process. A key in steady use is reloaded on a background thread before its entry ages out, so
after its first request no lookup of it blocks the event loop. Unknown keys are cached too, so a flood of
bad tokens cannot hammer the database. A plan change reaches the rate limit and queue priority within
as long; the limits that guard money and slots are checked in the create transaction itself
(kinema.accounts.billing), never from this cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Generic, TypeVar

from kinema.api.context import KeyLookups

if TYPE_CHECKING:
    from kinema.accounts import AccountStore, Plan

V = TypeVar("V")
MAX_ENTRIES = 10_000
REFRESH_AFTER = 0.75  # share of the TTL after which a hit also refreshes its entry in the background

Refresher = Callable[[Callable[[], None]], object]  # runs a job elsewhere (a thread pool's submit)

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _background(job: Callable[[], None]) -> object:
    """Run `job` on a small pool shared by every cache of the process."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(2, thread_name_prefix="kinema-keycache")
    return _pool.submit(job)


class _TTLCache(Generic[V]):
    """Entries live `ttl` seconds from the moment their load began. A hit on an entry past
    `REFRESH_AFTER` of that also reloads it on the `refresh` pool, one reload per key at a time, so a key
    in steady use is never loaded on the caller's thread (the API's event loop) after its first use;
    an entry is never served once older than `ttl`."""

    def __init__(self, ttl: float, clock: Callable[[], float], refresh: Refresher) -> None:
        self.ttl, self.clock, self.refresh = ttl, clock, refresh
        self._lock = threading.Lock()
        self._items: dict[str, tuple[float, V]] = {}
        self._refreshing: set[str] = set()

    def get(self, key: str, load: Callable[[str], V]) -> V:
        now = self.clock()
        with self._lock:
            found = self._items.get(key)
            age = self.ttl if found is None else now - found[0]
            start = REFRESH_AFTER * self.ttl <= age < self.ttl and key not in self._refreshing
            if start:
                self._refreshing.add(key)
        if start:
            self.refresh(lambda: self._reload(key, load))
        if found is not None and age < self.ttl:
            return found[1]
        return self._store(key, now, load(key))

    def _reload(self, key: str, load: Callable[[str], V]) -> None:
        began = self.clock()
        try:
            self._store(key, began, load(key))
        except Exception:  # the entry ages out and the next caller loads it, seeing the error itself
            pass
        finally:
            with self._lock:
                self._refreshing.discard(key)

    def _store(self, key: str, began: float, value: V) -> V:
        with self._lock:
            if len(self._items) >= MAX_ENTRIES:
                self._items.clear()
            current = self._items.get(key)
            if current is None or current[0] <= began:  # never replace a newer answer with an older one
                self._items[key] = (began, value)
        return value


class CachedKeys:
    """`KeyLookups` over another, remembering each answer for `ttl_seconds`."""

    def __init__(
        self,
        inner: KeyLookups,
        *,
        ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        refresh: Refresher = _background,
    ):
        self.inner = inner
        self._secrets: _TTLCache[tuple[str, str] | None] = _TTLCache(ttl_seconds, clock, refresh)
        self._static: _TTLCache[str | None] = _TTLCache(ttl_seconds, clock, refresh)

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        return self._secrets.get(access_key, self.inner.secret_for)

    def account_for_api_key(self, api_key: str) -> str | None:
        return self._static.get(api_key, self.inner.account_for_api_key)


class CachedPlans:
    """The plan each account is on, remembered for `ttl_seconds` (None: no such account or plan)."""

    def __init__(
        self,
        accounts: AccountStore,
        *,
        ttl_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        refresh: Refresher = _background,
    ):
        self.accounts = accounts
        self._plans: _TTLCache[Plan | None] = _TTLCache(ttl_seconds, clock, refresh)

    def _load(self, account_id: str) -> Plan | None:
        account = self.accounts.get_account(account_id)
        return self.accounts.get_plan(account.plan) if account is not None else None

    def plan_of(self, account_id: str) -> Plan | None:
        return self._plans.get(account_id, self._load)
