"""Where the stores get the time: a `Clock` Protocol, the system clock and a settable fake.

Every timestamp written to the database is UTC at millisecond precision (the Kling wire format), so
`to_ms` lives here too. A clock knows nothing about tasks or accounts.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


def to_ms(moment: datetime) -> datetime:
    """`moment` in UTC, truncated to whole milliseconds; naive datetimes are refused."""
    if moment.tzinfo is None:
        raise ValueError(f"datetime {moment.isoformat()} has no timezone; pass an aware UTC datetime")
    moment = moment.astimezone(UTC)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock that moves only when told to: lease expiry is tested by advancing it, not by sleeping."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = to_ms(start or datetime(2025, 1, 1, tzinfo=UTC))
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, moment: datetime) -> None:
        with self._lock:
            self._now = to_ms(moment)

    def advance(self, seconds: float) -> datetime:
        """Move forward by `seconds` (negative moves back) and return the new time."""
        with self._lock:
            self._now = to_ms(self._now + timedelta(seconds=seconds))
            return self._now
