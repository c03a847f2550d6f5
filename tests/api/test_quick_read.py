"""Polls read, and plain creates write, on the event loop through the store's `on_loop`; a write that
gets no turn goes to the thread pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from kinema.api.deps import quick_read, quick_write
from kinema.jobs import MemoryTaskStore


def threads_of(quick: Any, store: Any) -> tuple[threading.Thread, threading.Thread]:
    """(the loop's thread, the thread `quick` ran its call on)."""
    ctx: Any = SimpleNamespace(store=store)

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
