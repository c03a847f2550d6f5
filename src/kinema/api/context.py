"""What the HTTP layer is given by the composition root: the store, accounts, media, catalog, settings.

The API holds no model and never imports torch: it validates requests against the capabilities that
workers publish, writes tasks, and reads them back. Everything it talks to is a Protocol.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from kinema.accounts import AccountStore
from kinema.accounts.prices import PriceTable
from kinema.api.catalog import Catalog
from kinema.api.ratelimit import RateLimiter, SignInThrottle
from kinema.errors import InvalidRequest
from kinema.jobs import Task, TaskStore
from kinema.net.fetch import FetchPolicy
from kinema.spec import MAX_SECONDS
from kinema.storage.base import MediaStorage

if TYPE_CHECKING:
    from kinema.api.keycache import CachedPlans


class KeyLookups(Protocol):
    """The two lookups authentication needs (kinema.accounts' AccountStore provides both)."""

    def secret_for(self, access_key: str) -> tuple[str, str] | None: ...

    def account_for_api_key(self, api_key: str) -> str | None: ...


def _no_notify(task: Task) -> None:
    del task


class LoopTurns:
    """How many task-store calls each event loop runs at once (`kinema.api.deps.quick_read` and
    `quick_write`), reads and writes counted apart; the rest wait their turn in arrival order.

    On Postgres every such call awaits its round trips on the loop. Unbounded, 32 requests in flight
    interleaved their round trips, each waiting a full turn of a loop crowded with the others' steps,
    and Postgres ran up to 32 statements at once on the same two cores: a few at a time finish sooner, and
    more of them per second (benchmarks/RESULTS.md, session 8). Reads and writes have turns of their
    own, so creates waiting on an account's row lock never hold up polls. On SQLite and in memory the
    calls never suspend, and a turn is always free."""

    def __init__(self, reads: int = 4, writes: int = 4) -> None:
        if reads < 1 or writes < 1:
            raise InvalidRequest(f"loop turns need at least 1 read and 1 write, not {reads} and {writes}")
        self.reads, self.writes = reads, writes
        self._guard = threading.Lock()
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[asyncio.Semaphore, asyncio.Semaphore]
        ] = weakref.WeakKeyDictionary()

    def read(self) -> asyncio.Semaphore:
        return self._of_running_loop()[0]

    def write(self) -> asyncio.Semaphore:
        return self._of_running_loop()[1]

    def _of_running_loop(self) -> tuple[asyncio.Semaphore, asyncio.Semaphore]:
        loop = asyncio.get_running_loop()  # a semaphore belongs to the loop that first waits on it
        with self._guard:
            found = self._loops.get(loop)
            if found is None:
                found = self._loops[loop] = (asyncio.Semaphore(self.reads), asyncio.Semaphore(self.writes))
            return found


@dataclass
class ApiConfig:
    """Operator choices the API applies per request."""

    kling_models: dict[str, str] = field(default_factory=lambda: {"*": "builtin"})
    link_seconds: int = 24 * 3600
    fetch_policy: FetchPolicy = field(default_factory=FetchPolicy)
    max_extend_seconds: float = MAX_SECONDS  # the longest video an extension chain may reach
    extend_step_seconds: float = 5.0
    sse_poll_seconds: float = 0.5
    session_hours: float = 7 * 24.0  # how long a studio sign-in lasts


@dataclass
class ApiContext:
    store: TaskStore
    keys: KeyLookups
    storage: MediaStorage
    catalog: Catalog
    config: ApiConfig = field(default_factory=ApiConfig)
    # Called after every status change the API makes (create, cancel, retry): callback delivery.
    notify: Callable[[Task], None] = _no_notify
    # Accounts, plans and credits; None runs without billing or account endpoints (unit tests of the
    # wire contract authenticate through `keys` alone).
    accounts: AccountStore | None = None
    prices: PriceTable = field(default_factory=PriceTable)
    rate: RateLimiter = field(default_factory=RateLimiter)
    sign_ins: SignInThrottle = field(default_factory=SignInThrottle)
    # Signs CSRF tokens; API processes sharing a database must share it (`kinema serve` passes the
    # data folder's secret). The default, drawn per process, suits one process and tests.
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    turns: LoopTurns = field(default_factory=LoopTurns)
    # Each account's plan for admission (rate limit, priority), cached a few seconds; from `accounts`.
    plans: CachedPlans | None = None

    def __post_init__(self) -> None:
        if self.plans is None and self.accounts is not None:
            from kinema.api.keycache import CachedPlans

            self.plans = CachedPlans(self.accounts)
