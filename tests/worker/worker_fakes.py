"""Test doubles and waiting helpers shared by the worker tests (conftest holds the fixtures)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

from kinema.backends.base import Segment, StepCallback, StopCheck
from kinema.backends.fake import FakeBackend
from kinema.jobs import FakeClock, Heartbeat, MemoryTaskStore

ACCOUNT = "acct-1"
TIMEOUT = 10.0


class GatedBackend(FakeBackend):
    """The fake backend with a preview frame per step; it pauses after step `pause_at` until `go`.

    While paused it still checks `should_stop`, as a real backend would between two steps.
    """

    def __init__(self, model: str = "fake", *, pause_at: int | None = None) -> None:
        super().__init__(model)
        self.pause_at = pause_at
        self.paused = threading.Event()
        self.go = threading.Event()
        self.steps_run = 0

    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        def step(done: int, total: int, preview: np.ndarray | None) -> None:
            del preview
            self.steps_run += 1
            on_step(done, total, np.full((segment.height, segment.width, 3), 40 * done % 256, np.uint8))
            if self.steps_run == self.pause_at:
                self.paused.set()
                while not self.go.wait(0.005) and not should_stop():
                    pass

        return super().generate(segment, on_step=step, should_stop=should_stop)


def wait_for(condition: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.005)


class StallableStore(MemoryTaskStore):
    """The in-memory store; holding `stall` freezes every heartbeat, like a worker that hangs."""

    def __init__(self, *, clock: FakeClock) -> None:
        super().__init__(clock=clock)
        self.stall = threading.Lock()

    def heartbeat(
        self,
        task_id: str,
        worker_id: str,
        lease_seconds: float,
        *,
        progress: float | None = None,
        stage: str | None = None,
        preview_key: str | None = None,
    ) -> Heartbeat:
        with self.stall:
            return super().heartbeat(
                task_id, worker_id, lease_seconds, progress=progress, stage=stage, preview_key=preview_key
            )
