"""Key and plan lookups cached for a few seconds: authentication and admission without a database
round trip per request.

A revoked key or a disabled account therefore keeps working for at most `ttl_seconds` (5 by default) in
each API process; unknown keys are cached too, so a flood of bad tokens cannot hammer the database. A
plan change reaches the rate limit and queue priority within as long; the limits that guard money and
slots are checked in the create transaction itself (kinema.accounts.billing), never from this cache.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from kinema.api.context import KeyLookups

if TYPE_CHECKING:
    from kinema.accounts import AccountStore, Plan

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


class CachedPlans:
    """The plan each account is on, remembered for `ttl_seconds` (None: no such account or plan)."""

    def __init__(
        self, accounts: AccountStore, *, ttl_seconds: float = 5.0, clock: Callable[[], float] = time.monotonic
    ):
        self.accounts = accounts
        self._plans: _TTLCache[Plan | None] = _TTLCache(ttl_seconds, clock)

    def _load(self, account_id: str) -> Plan | None:
        account = self.accounts.get_account(account_id)
        return self.accounts.get_plan(account.plan) if account is not None else None

    def plan_of(self, account_id: str) -> Plan | None:
        return self._plans.get(account_id, self._load)
