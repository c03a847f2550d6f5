"""WorkerPool: N worker threads that start, drain, and stop cooperatively."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from worker_fakes import ACCOUNT, GatedBackend, wait_for

from kinema.engine.generation import Engine
from kinema.jobs import DEFAULT_RETENTION, FakeClock, MemoryTaskStore, Task
from kinema.storage.local import LocalStorage
from kinema.worker import WorkerPool
from kinema.worker.runner import SHUTDOWN

Queue = Callable[..., Task]


@pytest.fixture
def make_pool(
    store: MemoryTaskStore, storage: LocalStorage, engine: Engine, tmp_path: Path
) -> Callable[..., WorkerPool]:
    def build(n: int, **options: Any) -> WorkerPool:
        defaults: dict[str, Any] = dict(heartbeat_seconds=0.01, poll_seconds=0.01, temp_dir=tmp_path)
        return WorkerPool(n, store, storage, engine, **{**defaults, **options})

    return build


def status(store: MemoryTaskStore, task: Task) -> str:
    found = store.get(task.task_id, ACCOUNT)
    assert found is not None
    return found.status


def test_a_pool_runs_tasks_publishes_its_workers_and_stops(
    store: MemoryTaskStore, queue: Queue, make_pool: Callable[..., WorkerPool]
) -> None:
    tasks = [queue("text2image", prompt=f"p{i}") for i in range(4)]
    pool = make_pool(
        2, catalog=lambda: [{"id": "fake", "family": "fake", "capabilities": None, "error": None}]
    )
    assert len({w.worker_id for w in pool.workers}) == 2
    pool.start()
    wait_for(lambda: all(status(store, t) == "succeed" for t in tasks))
    wait_for(lambda: len(store.workers()) == 2)
    assert pool.stop(timeout=5) is True
    assert not pool.running and store.workers() == []
    with pytest.raises(RuntimeError, match="started already"):
        pool.start()


def test_stopping_lets_the_running_task_finish_and_claims_nothing_new(
    store: MemoryTaskStore, queue: Queue, make_pool: Callable[..., WorkerPool], fake: GatedBackend
) -> None:
    fake.pause_at = 1
    running, waiting = queue("text2video"), None
    pool = make_pool(1)
    pool.start()
    assert fake.paused.wait(10)
    waiting = queue("text2image")
    result: list[bool] = []
    stopper = threading.Thread(target=lambda: result.append(pool.stop(timeout=10)))
    stopper.start()
    wait_for(lambda: pool.stopping)
    fake.go.set()
    stopper.join(10)
    assert result == [True]
    assert (status(store, running), status(store, waiting)) == ("succeed", "submitted")


def test_a_task_that_outlasts_the_grace_time_is_stopped_and_queued_again(
    store: MemoryTaskStore, queue: Queue, make_pool: Callable[..., WorkerPool], fake: GatedBackend
) -> None:
    fake.pause_at = 1
    task = queue("text2video")
    pool = make_pool(1)
    pool.start()
    assert fake.paused.wait(10)
    pool.stop(timeout=0.05)  # a grace time the paused task cannot meet: it is stopped between steps
    wait_for(lambda: not pool.running)  # (how long the thread takes to end depends on the machine's load)
    found = store.get(task.task_id, ACCOUNT)
    assert found is not None and (found.status, found.error) == ("submitted", SHUTDOWN)


def test_the_first_worker_sweeps_expired_tasks(
    store: MemoryTaskStore, clock: FakeClock, queue: Queue, make_pool: Callable[..., WorkerPool]
) -> None:
    task = queue("text2image", prompt="")  # fails at once, then expires
    pool = make_pool(2, clock=clock, sweep_seconds=0.01)
    assert [w.sweep_seconds for w in pool.workers] == [0.01, None]
    pool.start()
    try:
        wait_for(lambda: status(store, task) == "failed")
        clock.advance((DEFAULT_RETENTION + timedelta(seconds=1)).total_seconds())
        wait_for(lambda: store.get(task.task_id, ACCOUNT) is None)
    finally:
        pool.stop(timeout=5)


def test_a_pool_needs_a_worker(make_pool: Callable[..., WorkerPool]) -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        make_pool(0)
