"""N workers as threads of one process: the in-process workers of `kinema serve`, and `kinema worker`.

Stopping is cooperative: the pool stops claiming, gives running tasks time to finish, then asks them
to stop between denoising steps (such a task is queued again for another worker). Only the first
worker sweeps expired media; the others just run tasks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any, TypedDict, Unpack

from kinema.jobs.clock import Clock
from kinema.jobs.store import Task, TaskStore
from kinema.storage.base import MediaStorage
from kinema.worker.runner import Generator, Worker


class WorkerOptions(TypedDict, total=False):
    """`Worker` keyword arguments that every worker of a pool shares (see `Worker`)."""

    models: Collection[str] | None
    lease_seconds: float
    heartbeat_seconds: float
    poll_seconds: float
    preview_seconds: float
    catalog_seconds: float
    sweep_seconds: float | None
    notify: Callable[[Task], None]
    catalog: Callable[[], list[dict[str, Any]]]
    clock: Clock | None
    temp_dir: Path | None


class WorkerPool:
    """`n` workers over one store, storage and engine, each in its own thread with its own worker id."""

    def __init__(
        self,
        n: int,
        store: TaskStore,
        storage: MediaStorage,
        engine: Generator,
        **options: Unpack[WorkerOptions],
    ) -> None:
        if n < 1:
            raise ValueError(f"a worker pool needs at least one worker; got {n}")
        self.workers = [Worker(store, storage, engine, **_options(options, first=i == 0)) for i in range(n)]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        if self._threads:
            raise RuntimeError("this worker pool was started already; make a new one")
        self._threads = [
            threading.Thread(target=w.run_forever, args=(self._stop,), name=f"worker-{i}", daemon=True)
            for i, w in enumerate(self.workers)
        ]
        for thread in self._threads:
            thread.start()

    @property
    def stopping(self) -> bool:
        """True once `stop` or `abort` was called: no worker claims a new task."""
        return self._stop.is_set()

    @property
    def running(self) -> bool:
        return any(thread.is_alive() for thread in self._threads)

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop claiming; give running tasks `timeout` s to finish, then stop them between steps.

        Waits up to `timeout` s more for the stopped tasks to give their leases back. True when every
        worker thread has ended.
        """
        self._stop.set()
        if self._join(timeout):
            return True
        self.abort()
        return self._join(timeout)

    def abort(self) -> None:
        """Stop claiming and ask running tasks to stop at their next step (they are queued again)."""
        self._stop.set()
        for worker in self.workers:
            worker.abort.set()

    def _join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not self.running


def _options(options: WorkerOptions, *, first: bool) -> WorkerOptions:
    """The options of one worker: only the first one sweeps (it is idempotent, just wasted work)."""
    own = options.copy()
    if not first:
        own["sweep_seconds"] = None
    return own
