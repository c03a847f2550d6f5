"""The lease's heartbeat thread: the first progress goes out at once, later ones every interval."""

from __future__ import annotations

import time

from worker_fakes import ACCOUNT, wait_for

from kinema.jobs import MemoryTaskStore
from kinema.worker.lease import Lease


def claimed(store: MemoryTaskStore) -> str:
    store.create(account_id=ACCOUNT, kind="text2video", model="fake", request={"spec": {}})
    task = store.claim("w1", 60)
    assert task is not None
    return task.task_id


def progress_of(store: MemoryTaskStore, task_id: str) -> float:
    task = store.get(task_id, ACCOUNT)
    return task.progress if task is not None else 0.0


def stage_of(store: MemoryTaskStore, task_id: str) -> str:
    task = store.get(task_id, ACCOUNT)
    return task.stage if task is not None else ""


def test_the_first_progress_is_sent_at_once_then_every_interval() -> None:
    store = MemoryTaskStore()
    task_id = claimed(store)
    with Lease(store, task_id, "w1", lease_seconds=60, interval=30) as lease:
        began = time.monotonic()
        lease.report(progress=0.1, stage="drawing")
        wait_for(lambda: progress_of(store, task_id) > 0, timeout=5)
        assert time.monotonic() - began < 5  # not the 30 s interval
        task = store.get(task_id, ACCOUNT)
        assert task is not None and (task.progress, task.stage) == (0.1, "drawing")
        lease.report(progress=0.5)
        time.sleep(0.3)
        task = store.get(task_id, ACCOUNT)
        assert task is not None and task.progress == 0.1  # later progress waits for the interval
    assert time.monotonic() - began < 5  # and leaving does not wait for it either


def test_a_lease_with_no_progress_beats_every_interval() -> None:
    store = MemoryTaskStore()
    task_id = claimed(store)
    with Lease(store, task_id, "w1", lease_seconds=60, interval=0.05) as lease:
        lease.report(stage="decoding")
        wait_for(lambda: stage_of(store, task_id) == "decoding", timeout=5)
