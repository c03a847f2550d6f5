"""One task's lease, renewed by a heartbeat thread while the worker runs the task.

The worker reports progress, stage and preview key here; the thread sends the latest of them with every
heartbeat and remembers what the store answered, so the engine's `should_stop()` is a cheap flag read.
It knows nothing about the engine, media or what the task does.
"""

from __future__ import annotations

import logging
import threading
from types import TracebackType
from typing import Self

from kinema.jobs.store import TaskStore

log = logging.getLogger(__name__)


class Lease:
    """Renews `task_id`'s lease every `interval` seconds from `__enter__` to `__exit__`; the first
    progress above zero is sent at once, so a watcher sees the task move after one step, not after a
    whole interval (on a fast machine a short clip used to finish before its first heartbeat)."""

    def __init__(
        self, store: TaskStore, task_id: str, worker_id: str, *, lease_seconds: float, interval: float
    ) -> None:
        self.store, self.task_id, self.worker_id = store, task_id, worker_id
        self.lease_seconds, self.interval = lease_seconds, interval
        self.cancel_requested = False
        self.lost = False
        self._progress, self._stage = 0.0, "loading"
        self._preview_key: str | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._wake = threading.Event()  # set by the first progress and by __exit__
        self._moved = False
        self._thread = threading.Thread(target=self._beat_until_done, name=f"lease-{task_id}", daemon=True)

    @property
    def should_stop(self) -> bool:
        """True once the store said the task was cancelled or is no longer ours."""
        return self.cancel_requested or self.lost

    def report(
        self, *, progress: float | None = None, stage: str | None = None, preview_key: str | None = None
    ) -> None:
        """Record what the next heartbeat sends; progress never goes backwards."""
        with self._lock:
            if progress is not None:
                self._progress = max(self._progress, min(1.0, progress))
                if self._progress > 0 and not self._moved:
                    self._moved = True
                    self._wake.set()
            if stage is not None:
                self._stage = stage
            if preview_key is not None:
                self._preview_key = preview_key

    def beat(self) -> None:
        """Renew the lease now with the latest progress; a store error is logged, not raised."""
        with self._lock:
            progress, stage, preview_key = self._progress, self._stage, self._preview_key
        try:
            answer = self.store.heartbeat(
                self.task_id,
                self.worker_id,
                self.lease_seconds,
                progress=progress,
                stage=stage,
                preview_key=preview_key,
            )
        except Exception:
            # A store that is briefly unreachable: the lease outlives a few missed beats.
            log.warning("heartbeat for task %s failed; retrying", self.task_id, exc_info=True)
            return
        self.cancel_requested = self.cancel_requested or answer.cancel_requested
        if not answer.held and not self.lost:
            log.warning("worker %s lost the lease of task %s", self.worker_id, self.task_id)
        self.lost = self.lost or not answer.held

    def _beat_until_done(self) -> None:
        while not self._done.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self._done.is_set():
                return
            self.beat()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._done.set()
        self._wake.set()
        self._thread.join()
