"""Polls read, and plain creates write, on the event loop through the store's `on_loop`; a write that
gets no turn goes to the thread pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from kinema.api.context import LoopTurns
from kinema.api.deps import quick_read, quick_write
from kinema.errors import InvalidRequest
from kinema.jobs import MemoryTaskStore


def threads_of(quick: Any, store: Any) -> tuple[threading.Thread, threading.Thread]:
    """(the loop's thread, the thread `quick` ran its call on)."""
    ctx: Any = SimpleNamespace(store=store, turns=LoopTurns())

    async def main() -> tuple[threading.Thread, threading.Thread]:
        return threading.current_thread(), await quick(ctx, threading.current_thread)

    return asyncio.run(main())


def test_a_read_runs_on_the_event_loop() -> None:
    loop_thread, read_thread = threads_of(quick_read, MemoryTaskStore())
    assert read_thread is loop_thread


def test_a_write_in_the_stores_turn_runs_on_the_event_loop() -> None:
    loop_thread, write_thread = threads_of(quick_write, MemoryTaskStore())
    assert write_thread is loop_thread


def test_a_write_without_a_turn_goes_to_the_thread_pool() -> None:
    ended = []

    @asynccontextmanager
    async def no_turn() -> AsyncIterator[bool]:
        yield False  # a turn that did not come within the busy timeout
        ended.append(True)

    async def on_loop(call: Any, *args: Any) -> Any:
        raise AssertionError("a write without a turn ran on the loop")

    loop_thread, write_thread = threads_of(quick_write, SimpleNamespace(write_turn=no_turn, on_loop=on_loop))
    assert write_thread is not loop_thread
    assert ended == [True]  # the turn was left before the write began


class AwaitingStore:
    """A store whose calls suspend on the loop, as Postgres round trips do; it counts calls in flight."""

    def __init__(self) -> None:
        self.in_flight = {"read": 0, "write": 0}
        self.most = {"read": 0, "write": 0}
        self.order: list[str] = []
        self.release_writes = asyncio.Event()

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[bool]:
        yield True

    async def on_loop(self, call: Any, *args: Any) -> Any:
        kind, name = call(*args)
        self.in_flight[kind] += 1
        self.most[kind] = max(self.most[kind], self.in_flight[kind])
        try:
            if kind == "write":
                await self.release_writes.wait()
            else:
                await asyncio.sleep(0.01)
        finally:
            self.in_flight[kind] -= 1
        self.order.append(name)
        return name


def test_store_calls_beyond_the_loops_turns_wait_in_arrival_order() -> None:
    store = AwaitingStore()
    ctx: Any = SimpleNamespace(store=store, turns=LoopTurns(reads=2, writes=1))

    async def main() -> list[Any]:
        store.release_writes.set()
        reads = [quick_read(ctx, lambda i=i: ("read", f"r{i}")) for i in range(6)]
        writes = [quick_write(ctx, lambda i=i: ("write", f"w{i}")) for i in range(3)]
        return await asyncio.gather(*reads, *writes)

    done = asyncio.run(main())
    assert done == [f"r{i}" for i in range(6)] + [f"w{i}" for i in range(3)]
    assert store.most == {"read": 2, "write": 1}
    assert [name for name in store.order if name.startswith("r")] == [f"r{i}" for i in range(6)]


def test_writes_waiting_on_the_database_never_hold_up_reads() -> None:
    # e.g. creates queued on one account's row lock: they fill the write turns, polls go on.
    store = AwaitingStore()
    ctx: Any = SimpleNamespace(store=store, turns=LoopTurns(reads=1, writes=1))

    async def main() -> tuple[list[Any], bool]:
        writes = [asyncio.ensure_future(quick_write(ctx, lambda i=i: ("write", f"w{i}"))) for i in range(3)]
        reads = await asyncio.wait_for(
            asyncio.gather(*(quick_read(ctx, lambda i=i: ("read", f"r{i}")) for i in range(4))), 5.0
        )
        blocked = not any(w.done() for w in writes)
        store.release_writes.set()
        await asyncio.gather(*writes)
        return reads, blocked

    reads, writes_were_blocked = asyncio.run(main())
    assert reads == ["r0", "r1", "r2", "r3"] and writes_were_blocked


def test_loop_turns_need_at_least_one_of_each() -> None:
    with pytest.raises(InvalidRequest, match="at least 1 read and 1 write"):
        LoopTurns(reads=0)
