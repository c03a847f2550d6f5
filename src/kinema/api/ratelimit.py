"""Requests per minute per account: a token bucket in this process (Kling 1302 when it runs dry); and
the throttle on failed sign-ins.

Each account's bucket holds its plan's `requests_per_minute` and refills continuously. It guards task
creation (what costs a worker's time); several API processes each keep their own buckets, so a fleet
of N servers admits at most N times the rate.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from kinema.api.errors import ApiError


class RateLimiter:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # account -> (tokens, last refill)

    def take(self, account_id: str, per_minute: int) -> None:
        """Spend one request of the account's budget, or raise 429 / 1302."""
        if per_minute <= 0:
            return
        now = self._clock()
        with self._lock:
            tokens, last = self._buckets.get(account_id, (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * per_minute / 60.0)
            if tokens < 1.0:
                self._buckets[account_id] = (tokens, now)
                wait = (1.0 - tokens) * 60.0 / per_minute
                raise ApiError(
                    1302,
                    f"too many requests: your plan allows {per_minute} task creations a minute; "
                    f"try again in {wait:.1f} s",
                )
            self._buckets[account_id] = (tokens - 1.0, now)


FAILURE_WINDOW_S = 15 * 60.0
FAILURES_PER_NAME = 10  # per name and address in the window
FAILURES_PER_ADDRESS = 100  # per address in the window, whatever the names


class SignInThrottle:
    """Failed sign-ins remembered for `window` seconds, in this process: a guessing attacker is slowed to
    `per_name` guesses a name per address, `per_address` in all. Success clears a name's failures."""

    def __init__(
        self,
        *,
        window: float = FAILURE_WINDOW_S,
        per_name: int = FAILURES_PER_NAME,
        per_address: int = FAILURES_PER_ADDRESS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window, self.per_name, self.per_address, self.clock = window, per_name, per_address, clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.setdefault(key, deque())
        while times and now - times[0] >= self.window:
            times.popleft()
        return times

    def check(self, name: str, address: str) -> None:
        """429 / 1302 while this name (from this address) or this address has failed too often."""
        now = self.clock()
        with self._lock:
            by_name = self._recent((name, address), now)
            by_address = self._recent(("", address), now)
            full = by_name if len(by_name) >= self.per_name else None
            if full is None and len(by_address) >= self.per_address:
                full = by_address
        if full is not None:
            wait = max(1, int(self.window - (now - full[0])) + 1)
            raise ApiError(1302, f"too many failed sign-ins; try again in {wait} s (or reset the password)")

    def failed(self, name: str, address: str) -> None:
        now = self.clock()
        with self._lock:
            if len(self._failures) > 100_000:
                self._failures.clear()
            self._recent((name, address), now).append(now)
            self._recent(("", address), now).append(now)

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name, address), None)
