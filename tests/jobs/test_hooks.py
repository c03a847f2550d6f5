"""The transition hook, run against every store: each status change fires its event exactly once, inside
the change's transaction, and a hook that raises undoes the change and reaches the caller unchanged.

What the hook writes on its SQL connection (atomic with the task, even when the process dies inside the
hook) is checked in test_sql_store.py.
"""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Connection
from storehelpers import LEASE, OpenConfigured, make, refetch

from kinema.jobs import FakeClock, Task, TaskEvent, TaskStore


class Boom(Exception):
    """What a failing hook raises; the store must hand back this very exception."""


class Recorder:
    """A hook that records each event, and raises `Boom` for the events in `explode`."""

    def __init__(self) -> None:
        self.events: list[TaskEvent] = []
        self.explode: set[str] = set()
        self.raised: list[Boom] = []
        self.connections: list[Connection | None] = []
        self._lock = threading.Lock()

    def __call__(self, connection: Connection | None, event: TaskEvent) -> None:
        with self._lock:
            if event.event in self.explode:
                self.raised.append(Boom(f"refused {event.event} of {event.task_id}"))
                raise self.raised[-1]
            self.events.append(event)
            self.connections.append(connection)

    def seen(self) -> list[tuple[str, str, int]]:
        return [(event.event, event.task_id, event.attempt) for event in self.events]

    def take(self) -> list[tuple[str, str, int]]:
        seen = self.seen()
        self.events.clear()
        return seen


@pytest.fixture
def hook() -> Recorder:
    return Recorder()


@pytest.fixture
def store(open_configured: OpenConfigured, hook: Recorder) -> TaskStore:
    return open_configured(hook=hook)


# --- which event fires when -----------------------------------------------------------------------------


def test_create_fires_created_with_the_task(store: TaskStore, hook: Recorder, backend: str | None) -> None:
    task = make(store, external_task_id="order-1", model="wan2.1-t2v-1.3b", request={"prompt": "a cube"})

    (event,) = hook.events
    assert event == TaskEvent(
        event="created",
        task_id=task.task_id,
        account_id="acme",
        kind="text2video",
        model="wan2.1-t2v-1.3b",
        request={"prompt": "a cube"},
        attempt=0,
    )
    (connection,) = hook.connections
    if backend is None:
        assert connection is None
    else:
        assert isinstance(connection, Connection)


def test_the_events_request_is_a_copy(store: TaskStore, hook: Recorder) -> None:
    task = make(store, request={"prompt": "a cube"})
    hook.events[0].request["prompt"] = "changed by the hook"

    assert refetch(store, task).request == {"prompt": "a cube"}


def test_a_task_that_succeeds_fires_created_then_succeed(store: TaskStore, hook: Recorder) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    store.heartbeat(task.task_id, "w1", LEASE, progress=0.5, stage="denoise")
    store.complete(task.task_id, "w1", [{"video": "v.mp4"}])

    assert hook.seen() == [("created", task.task_id, 0), ("succeed", task.task_id, 1)]


def test_a_final_failure_fires_failed(store: TaskStore, hook: Recorder) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    hook.take()

    store.fail(task.task_id, "w1", error="the first frame is not an image", retryable=False)

    assert hook.seen() == [("failed", task.task_id, 1)]


def test_a_retryable_failure_fires_only_when_attempts_run_out(store: TaskStore, hook: Recorder) -> None:
    task = make(store, max_attempts=2)
    hook.take()
    store.claim("w1", LEASE)
    store.fail(task.task_id, "w1", error="CUDA out of memory", retryable=True)
    assert hook.take() == []  # queued again by the store itself: the task is still alive

    store.claim("w2", LEASE)
    store.fail(task.task_id, "w2", error="CUDA out of memory", retryable=True)

    assert hook.seen() == [("failed", task.task_id, 2)]


def test_cancel_fires_cancelled_once_for_a_queued_task(store: TaskStore, hook: Recorder) -> None:
    task = make(store)
    hook.take()

    store.request_cancel(task.task_id, "acme")
    store.request_cancel(task.task_id, "acme")  # cancelling again changes nothing, fires nothing

    assert hook.seen() == [("cancelled", task.task_id, 0)]


def test_a_running_task_fires_cancelled_when_its_worker_stops(store: TaskStore, hook: Recorder) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    hook.take()

    store.request_cancel(task.task_id, "acme")  # only flags it
    assert store.heartbeat(task.task_id, "w1", LEASE).should_stop
    assert hook.take() == []
    store.fail(task.task_id, "w1", error="stopped between steps", retryable=True)

    assert hook.seen() == [("cancelled", task.task_id, 1)]


def test_a_cancel_that_comes_too_late_fires_succeed(store: TaskStore, hook: Recorder) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    store.request_cancel(task.task_id, "acme")
    hook.take()

    store.complete(task.task_id, "w1", [{"video": "v.mp4"}])

    assert hook.seen() == [("succeed", task.task_id, 1)]


def test_retry_fires_requeued(store: TaskStore, hook: Recorder) -> None:
    failed = make(store, max_attempts=1)
    store.claim("w1", LEASE)
    store.fail(failed.task_id, "w1", error="decoder crashed", retryable=False)
    cancelled = make(store)
    store.request_cancel(cancelled.task_id, "acme")
    hook.take()

    store.retry(failed.task_id, "acme")
    store.retry(cancelled.task_id, "acme")

    assert hook.seen() == [("requeued", failed.task_id, 0), ("requeued", cancelled.task_id, 0)]


def test_delete_and_workers_fire_nothing(store: TaskStore, hook: Recorder) -> None:
    task = make(store)
    store.request_cancel(task.task_id, "acme")
    hook.take()

    store.delete(task.task_id, "acme")
    store.register_worker("w1", [{"id": "builtin"}])
    store.remove_worker("w1")

    assert hook.seen() == []


def test_a_lost_lease_with_attempts_left_fires_nothing(
    store: TaskStore, hook: Recorder, clock: FakeClock
) -> None:
    task = make(store, max_attempts=2)
    store.claim("w1", LEASE)
    hook.take()
    clock.advance(LEASE + 1)

    again = store.claim("w2", LEASE)

    assert again is not None and (again.task_id, again.attempt) == (task.task_id, 2)
    assert hook.seen() == []


def test_a_lost_lease_on_the_last_attempt_fires_failed_once(
    store: TaskStore, hook: Recorder, clock: FakeClock
) -> None:
    task = make(store, max_attempts=1)
    store.claim("w1", LEASE)
    hook.take()
    clock.advance(LEASE + 1)

    assert store.claim("w2", LEASE) is None
    assert store.claim("w3", LEASE) is None  # settled once: a second claim finds nothing to settle

    assert hook.seen() == [("failed", task.task_id, 1)]
    assert refetch(store, task).status == "failed"


def test_a_lost_lease_with_a_pending_cancel_fires_cancelled_once(
    store: TaskStore, hook: Recorder, clock: FakeClock
) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    store.request_cancel(task.task_id, "acme")
    hook.take()
    clock.advance(LEASE + 1)

    assert store.claim("w2", LEASE) is None
    assert store.claim("w3", LEASE) is None

    assert hook.seen() == [("cancelled", task.task_id, 1)]


def test_every_task_fires_each_of_its_events_once_under_racing_workers(
    open_configured: OpenConfigured, hook: Recorder, clock: FakeClock, backend: str | None
) -> None:
    first = open_configured(hook=hook)
    # In memory one store serves every thread; on SQL each worker has its own handle (own pool).
    workers = [first] * 4 if backend is None else [first] + [open_configured(hook=hook) for _ in range(3)]
    doomed = [make(first, max_attempts=1, request={"i": i}).task_id for i in range(8)]
    for index in range(8):
        assert first.claim(f"dead-{index}", LEASE) is not None
    fresh = [make(first, request={"i": i}).task_id for i in range(8, 24)]
    clock.advance(LEASE + 1)  # the dead workers' leases run out: whichever claim comes first settles them
    start = threading.Barrier(len(workers), timeout=30)

    def drain(index: int) -> None:
        start.wait()
        while (task := workers[index].claim(f"worker-{index}", LEASE * 100)) is not None:
            workers[index].complete(task.task_id, f"worker-{index}", [{"video": f"{task.task_id}.mp4"}])

    with ThreadPoolExecutor(len(workers)) as pool:
        list(pool.map(drain, range(len(workers)), timeout=120))

    fired = Counter((event.event, event.task_id) for event in hook.events)
    expected = Counter(
        [("created", task_id) for task_id in doomed + fresh]
        + [("failed", task_id) for task_id in doomed]
        + [("succeed", task_id) for task_id in fresh]
    )
    assert fired == expected


# --- a hook that raises undoes the change ---------------------------------------------------------------


def test_a_refused_create_creates_nothing(store: TaskStore, hook: Recorder) -> None:
    hook.explode = {"created"}

    with pytest.raises(Boom) as raised:
        make(store, external_task_id="order-7")

    assert raised.value is hook.raised[-1]  # the hook's own exception, unchanged
    assert store.list("acme").total == 0 and store.get_by_external("order-7", "acme") is None
    assert store.counts_by_status()["submitted"] == 0
    assert store.claim("w1", LEASE) is None
    hook.explode = set()
    task = make(store, external_task_id="order-7")  # the external id was never taken
    assert hook.seen() == [("created", task.task_id, 0)]


def test_a_refused_fail_does_not_happen(store: TaskStore, hook: Recorder) -> None:
    task = make(store)
    claimed = store.claim("w1", LEASE)
    hook.explode = {"failed"}

    with pytest.raises(Boom) as raised:
        store.fail(task.task_id, "w1", error="decoder crashed", retryable=False)

    assert raised.value is hook.raised[-1]
    assert refetch(store, task) == claimed  # still running, still w1's
    assert store.heartbeat(task.task_id, "w1", LEASE).held
    hook.explode = set()
    assert store.complete(task.task_id, "w1", [{"video": "v.mp4"}]).status == "succeed"


@pytest.mark.parametrize("operation", ["complete", "cancel", "retry"])
def test_a_refused_change_leaves_the_task_as_it_was(store: TaskStore, hook: Recorder, operation: str) -> None:
    task = make(store)
    if operation != "cancel":
        store.claim("w1", LEASE)
    if operation == "retry":
        store.fail(task.task_id, "w1", error="bad", retryable=False)
    before = refetch(store, task)
    hook.explode = {"succeed", "cancelled", "requeued"}
    actions: dict[str, Any] = {
        "complete": lambda: store.complete(task.task_id, "w1", [{"video": "v.mp4"}]),
        "cancel": lambda: store.request_cancel(task.task_id, "acme"),
        "retry": lambda: store.retry(task.task_id, "acme"),
    }

    with pytest.raises(Boom):
        actions[operation]()

    assert refetch(store, task) == before


def test_a_refused_settle_rolls_back_the_whole_claim(
    store: TaskStore, hook: Recorder, clock: FakeClock
) -> None:
    dying = [make(store, max_attempts=1) for _ in range(2)]
    waiting = make(store)
    for index in range(2):
        store.claim(f"dead-{index}", LEASE)
    before = [refetch(store, task) for task in (*dying, waiting)]
    hook.take()
    clock.advance(LEASE + 1)
    hook.explode = {"failed"}

    with pytest.raises(Boom):
        store.claim("w1", LEASE)

    assert [refetch(store, task) for task in (*dying, waiting)] == before  # nothing settled, nothing taken
    hook.explode = set()
    claimed = store.claim("w1", LEASE)
    assert claimed is not None and claimed.task_id == waiting.task_id
    assert sorted(hook.seen()) == sorted(("failed", task.task_id, 1) for task in dying)


def test_the_hook_sees_the_task_already_changed(
    open_configured: OpenConfigured, clock: FakeClock, backend: str | None
) -> None:
    """The row is written before the hook runs: a hook reading it on its connection sees the change."""
    seen: list[str] = []
    stores: list[TaskStore] = []

    def look(connection: Connection | None, event: TaskEvent) -> None:
        if connection is not None:
            status = connection.exec_driver_sql(
                f"SELECT status FROM tasks WHERE task_id = '{event.task_id}'"
            ).scalar()
            seen.append(f"{event.event}:{status}")
        else:
            task: Task | None = stores[0].get(event.task_id, event.account_id)
            seen.append(f"{event.event}:{task.status if task else None}")

    stores.append(open_configured(hook=look))
    store = stores[0]
    task = make(store)
    store.claim("w1", LEASE)
    store.complete(task.task_id, "w1", [{"video": "v.mp4"}])

    assert seen == ["created:submitted", "succeed:succeed"]
