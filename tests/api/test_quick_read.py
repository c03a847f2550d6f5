"""Polls read, and plain creates write, on the event loop when the store allows; else on the thread pool."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import SimpleNamespace
from typing import Any

from kinema.api.deps import quick_read, quick_write
from kinema.jobs import MemoryTaskStore


def thread_of_read(local: bool) -> tuple[threading.Thread, threading.Thread]:
    ctx: Any = SimpleNamespace(store=SimpleNamespace(local_reads=local))

    async def main() -> tuple[threading.Thread, threading.Thread]:
        loop_thread = threading.current_thread()
        return loop_thread, await quick_read(ctx, threading.current_thread)

    return asyncio.run(main())


def test_a_local_read_runs_on_the_event_loop() -> None:
    loop_thread, read_thread = thread_of_read(local=True)
    assert read_thread is loop_thread


def test_a_remote_read_goes_to_the_thread_pool() -> None:
    loop_thread, read_thread = thread_of_read(local=False)
    assert read_thread is not loop_thread


def thread_of_write(store: Any) -> tuple[threading.Thread, threading.Thread]:
    ctx: Any = SimpleNamespace(store=store)

    async def main() -> tuple[threading.Thread, threading.Thread]:
        return threading.current_thread(), await quick_write(ctx, threading.current_thread)

    return asyncio.run(main())


def test_a_write_in_the_stores_turn_runs_on_the_event_loop() -> None:
    loop_thread, write_thread = thread_of_write(MemoryTaskStore())
    assert write_thread is loop_thread


def test_a_write_without_a_turn_goes_to_the_thread_pool() -> None:
    ended = []

    @asynccontextmanager
    async def no_turn() -> AsyncIterator[bool]:
        yield False  # Postgres, or a turn that did not come in time
        ended.append(True)

    loop_thread, write_thread = thread_of_write(SimpleNamespace(write_turn=no_turn))
    assert write_thread is not loop_thread
    assert ended == [True]  # the turn was left before the write began
