"""Task ids: snowflake-style strings of 19 digits, made from the time, a random node and a sequence.

Ids sort by creation time as strings and as integers and fit a signed 64-bit integer, like Kling's.
Uniqueness across processes is probabilistic (random node and sequence start); the SQL store still
retries an insert whose id collides. Ids know nothing about tasks beyond that.
"""

from __future__ import annotations

import os
import secrets
import threading
import time

_EPOCH_MS = 1_704_067_200_000  # 2024-01-01T00:00:00Z
_OFFSET = 10**18  # every id has 19 digits (string order is numeric order) and fits int64 until ~2086
_NODE_BITS, _SEQ_BITS = 10, 12
_SEQ_END = 1 << _SEQ_BITS


class _Snowflake:
    def __init__(self) -> None:
        self._reseed()

    def _reseed(self) -> None:
        self._lock = threading.Lock()
        self._node = secrets.randbits(_NODE_BITS)
        self._last_ms = 0
        self._seq = _SEQ_END

    def next(self) -> int:
        with self._lock:
            ms = time.time_ns() // 1_000_000 - _EPOCH_MS
            if ms <= self._last_ms and self._seq + 1 < _SEQ_END:
                ms, self._seq = self._last_ms, self._seq + 1
            else:
                # A new millisecond, or this one is used up (then run ahead of the wall clock by one).
                # The sequence starts at random in the lower half: at least 2048 ids per millisecond.
                ms = max(ms, self._last_ms + 1)
                self._seq = secrets.randbits(_SEQ_BITS - 1)
            self._last_ms = ms
            return _OFFSET + (ms << (_NODE_BITS + _SEQ_BITS) | self._node << _SEQ_BITS | self._seq)


_GENERATOR = _Snowflake()
# A forked child would otherwise repeat its parent's node and sequence.
os.register_at_fork(after_in_child=_GENERATOR._reseed)


def new_task_id() -> str:
    """A fresh task id such as '1000123456789012345'."""
    return str(_GENERATOR.next())
