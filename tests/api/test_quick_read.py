"""Polls read on the event loop when the store's reads are local, on the thread pool otherwise."""

from __future__ import annotations

import asyncio
import threading
from types import SimpleNamespace
from typing import Any

from kinema.api.deps import quick_read


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
