"""Requests per minute per account: a token bucket in this process (Kling 1302 when it runs dry).

Each account's bucket holds its plan's `requests_per_minute` and refills continuously. It guards task
creation (what costs a worker's time); several API processes each keep their own buckets, so a fleet
of N servers admits at most N times the rate.
"""

from __future__ import annotations

import threading
import time
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
