"""The fake clock and task ids: the two small pieces the stores build on."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from kinema.db.clock import to_ms
from kinema.jobs import FakeClock, SystemClock
from kinema.jobs.ids import new_task_id


def test_fake_clock_moves_only_when_told_and_keeps_milliseconds() -> None:
    clock = FakeClock(datetime(2025, 3, 1, 12, 0, 0, 999_999, tzinfo=UTC))
    assert clock.now() == clock.now() == datetime(2025, 3, 1, 12, 0, 0, 999_000, tzinfo=UTC)

    assert clock.advance(1.5) == datetime(2025, 3, 1, 12, 0, 2, 499_000, tzinfo=UTC)
    clock.set(datetime(2030, 1, 1, tzinfo=UTC))
    assert clock.now() == datetime(2030, 1, 1, tzinfo=UTC)


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="has no timezone; pass an aware UTC datetime"):
        FakeClock(datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="has no timezone"):
        to_ms(datetime(2025, 1, 1))


def test_system_clock_is_aware_utc() -> None:
    now = SystemClock().now()
    assert now.utcoffset() == timedelta(0)
    assert abs(now - datetime.now(UTC)) < timedelta(seconds=60)


def test_task_ids_are_unique_across_threads_and_sorted_within_each() -> None:
    def batch(_: int) -> list[str]:
        return [new_task_id() for _ in range(5000)]  # more than one millisecond's 4096 sequence numbers

    with ThreadPoolExecutor(4) as pool:
        batches = list(pool.map(batch, range(4)))

    everything = [task_id for ids in batches for task_id in ids]
    assert len(set(everything)) == len(everything) == 20_000
    assert all(len(task_id) == 19 and task_id.isdigit() and int(task_id) < 2**63 for task_id in everything)
    assert all(ids == sorted(ids) for ids in batches)
