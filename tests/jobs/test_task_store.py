"""The task-store contract, run against every store: in memory, SQLite and Postgres (see conftest.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from storehelpers import LEASE, OpenConfigured, make, refetch

from kinema.errors import InvalidRequest
from kinema.jobs import (
    AGING_SECONDS,
    DuplicateTask,
    FakeClock,
    InvalidTransition,
    LeaseLost,
    TaskNotFound,
    TaskStore,
)

OpenStore = Callable[[], TaskStore]  # the conftest fixture `open_handle`
RETENTION = timedelta(days=30)


# --- create, get, list ----------------------------------------------------------------------------------


def test_create_queues_a_submitted_task(store: TaskStore, clock: FakeClock) -> None:
    task = make(store, external_task_id="ext-1", priority=5)

    assert task.task_id.isdigit() and len(task.task_id) == 19
    assert (task.account_id, task.external_task_id, task.kind, task.model) == (
        "acme",
        "ext-1",
        "text2video",
        "builtin",
    )
    assert (task.status, task.priority, task.attempt, task.max_attempts) == ("submitted", 5, 0, 3)
    assert (task.lease_owner, task.lease_expires_at, task.cancel_requested) == (None, None, False)
    assert (task.progress, task.stage, task.preview_key, task.outputs, task.error) == (
        0.0,
        "",
        None,
        [],
        None,
    )
    assert task.created_at == task.updated_at == clock.now()
    assert (task.started_at, task.finished_at, task.expires_at) == (None, None, None)
    assert store.get(task.task_id, "acme") == task
    assert store.get_by_external("ext-1", "acme") == task


def test_task_ids_are_unique_and_grow(store: TaskStore) -> None:
    ids = [make(store).task_id for _ in range(50)]

    assert len(set(ids)) == 50
    assert ids == sorted(ids) == sorted(ids, key=int)


def test_request_round_trips_as_json_and_is_not_aliased(store: TaskStore) -> None:
    request = {
        "prompt": "ünïcode ✓",
        "seed": 7,
        "guidance_scale": 5.5,
        "frames": [1, 2],
        "camera": {"pan": -1},
    }
    task = make(store, request=request)
    request["prompt"] = "changed after create"
    task.request["seed"] = 99

    assert refetch(store, task).request == {
        "prompt": "ünïcode ✓",
        "seed": 7,
        "guidance_scale": 5.5,
        "frames": [1, 2],
        "camera": {"pan": -1},
    }


def test_request_that_is_not_json_is_refused_and_creates_nothing(store: TaskStore) -> None:
    with pytest.raises(InvalidRequest, match="plain JSON"):
        make(store, request={"prompt": {"a", "set"}})
    with pytest.raises(InvalidRequest, match="plain JSON"):
        make(store, request={"guidance_scale": float("nan")})

    assert store.list("acme").total == 0


def test_duplicate_external_task_id_is_refused_and_creates_nothing(store: TaskStore) -> None:
    first = make(store, external_task_id="order-42")

    with pytest.raises(DuplicateTask, match=rf"external_task_id 'order-42' \(task {first.task_id}\)"):
        make(store, external_task_id="order-42", kind="text2image")

    page = store.list("acme")
    assert page.total == 1 and page.tasks == (first,)
    assert store.counts_by_status()["submitted"] == 1


def test_external_task_id_is_unique_per_account_only(store: TaskStore) -> None:
    mine = make(store, "acme", external_task_id="same")
    theirs = make(store, "globex", external_task_id="same")
    unnamed = [make(store), make(store)]  # tasks without an external id never clash

    assert mine.task_id != theirs.task_id
    assert store.get_by_external("same", "acme") == mine
    assert store.get_by_external("same", "globex") == theirs
    assert all(task.external_task_id is None for task in unnamed)


def test_another_accounts_task_is_not_found(store: TaskStore) -> None:
    task = make(store, "acme", external_task_id="private")

    assert store.get(task.task_id, "globex") is None
    assert store.get_by_external("private", "globex") is None
    assert store.list("globex").total == 0
    for operation in (store.request_cancel, store.retry, store.delete):
        with pytest.raises(TaskNotFound, match=f"no task {task.task_id} in account 'globex'"):
            operation(task.task_id, "globex")
    assert refetch(store, task) == task


def test_list_pages_newest_first_with_total(store: TaskStore, clock: FakeClock) -> None:
    created = []
    for _ in range(7):
        created.append(make(store))
        clock.advance(1)
    created += [make(store), make(store)]  # same millisecond: the later id counts as newer
    newest_first = [task.task_id for task in reversed(created)]

    pages = [store.list("acme", offset=offset, limit=4) for offset in (0, 4, 8, 12)]

    assert [page.total for page in pages] == [9, 9, 9, 9]
    assert [task.task_id for page in pages for task in page.tasks] == newest_first
    assert [len(page.tasks) for page in pages] == [4, 4, 1, 0]


def test_list_filters_by_kind_and_status(store: TaskStore) -> None:
    video = make(store, kind="text2video")
    image = make(store, kind="text2image")
    extend = make(store, kind="extend")
    claimed = store.claim("w1", LEASE)
    assert claimed is not None and claimed.task_id == video.task_id
    store.complete(video.task_id, "w1", [{"video": "v.mp4"}])

    def ids(**filters: Any) -> set[str]:
        return {task.task_id for task in store.list("acme", **filters).tasks}

    assert ids(kinds=["text2image", "extend"]) == {image.task_id, extend.task_id}
    assert ids(statuses=["succeed"]) == {video.task_id}
    assert ids(kinds=["text2video"], statuses=["submitted"]) == set()
    assert ids(kinds=["extend"], statuses=["submitted", "succeed"]) == {extend.task_id}
    assert ids(kinds=[]) == set()
    assert store.list("acme", statuses=["submitted"]).total == 2


def test_list_filters_by_model_and_creation_time(store: TaskStore, clock: FakeClock) -> None:
    early = make(store, model="builtin")
    clock.advance(60)
    middle = make(store, model="wan-1.3b")
    clock.advance(60)
    late = make(store, model="builtin")
    make(store, account="globex", model="builtin")

    def ids(**filters: Any) -> list[str]:
        return [task.task_id for task in store.list("acme", **filters).tasks]

    assert ids(models=["builtin"]) == [late.task_id, early.task_id]
    assert ids(models=["wan-1.3b", "ltx"]) == [middle.task_id]
    assert ids(models=[]) == []
    assert ids(created_after=middle.created_at) == [late.task_id, middle.task_id]
    assert ids(created_before=middle.created_at) == [early.task_id]  # the end is excluded
    assert ids(created_after=middle.created_at, created_before=late.created_at, models=["wan-1.3b"]) == [
        middle.task_id
    ]
    assert store.list("acme", models=["builtin"], created_after=early.created_at).total == 2
    with pytest.raises(InvalidRequest, match="models must be a list"):
        store.list("acme", models="builtin")  # type: ignore[arg-type]


@pytest.mark.parametrize(("offset", "limit"), [(0, 0), (0, 1001), (-1, 10)])
def test_list_refuses_bad_paging(store: TaskStore, offset: int, limit: int) -> None:
    with pytest.raises(InvalidRequest, match="offset >= 0 and 1 <= limit <= 1000"):
        store.list("acme", offset=offset, limit=limit)


def test_filters_given_as_a_string_are_refused(store: TaskStore) -> None:
    make(store)
    with pytest.raises(InvalidRequest, match="kinds must be a list of names such as \\['text2video'\\]"):
        store.list("acme", kinds="text2video")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest, match="models must be a list"):
        store.claim("w1", LEASE, models="builtin")
    assert store.counts_by_status()["submitted"] == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kind": "text2audio"}, "unknown task kind 'text2audio'"),
        ({"max_attempts": 0}, "max_attempts must be 1..100"),
        ({"account_id": ""}, "account_id must be 1 to 64 characters"),
        ({"external_task_id": "x" * 257}, "external_task_id must be 1 to 256 characters"),
        ({"priority": 2**31}, "priority 2147483648 does not fit"),
    ],
)
def test_create_refuses_bad_arguments(store: TaskStore, overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        make(store, **overrides)
    assert store.counts_by_status()["submitted"] == 0


def test_timestamps_are_aware_utc_at_millisecond_precision(store: TaskStore, clock: FakeClock) -> None:
    clock.set(datetime(2025, 6, 1, 14, 30, 15, 123_456, tzinfo=timezone(timedelta(hours=8))))
    task = make(store)

    stored = refetch(store, task)
    assert stored.created_at == datetime(2025, 6, 1, 6, 30, 15, 123_000, tzinfo=UTC)
    assert stored.created_at.utcoffset() == timedelta(0)


# --- claiming and leases --------------------------------------------------------------------------------


def test_claim_takes_higher_priority_first_among_tasks_submitted_close_together(
    store: TaskStore, clock: FakeClock
) -> None:
    low = make(store, priority=0)
    clock.advance(1)
    high = make(store, priority=10)
    clock.advance(1)
    middle = make(store, priority=5)
    clock.advance(1)
    later_high = make(store, priority=10)
    negative = make(store, priority=-3)

    order = [store.claim(f"w{i}", LEASE) for i in range(6)]

    expected = [high, later_high, middle, low, negative]
    assert [task.task_id if task else None for task in order] == [t.task_id for t in expected] + [None]


def test_equal_priorities_go_oldest_first_even_within_a_millisecond(store: TaskStore) -> None:
    tasks = [make(store, priority=2) for _ in range(5)]  # the clock stands still: ids break the tie

    claimed = [store.claim("w1", LEASE) for _ in range(5)]

    assert [task.task_id if task else None for task in claimed] == [task.task_id for task in tasks]


def test_an_old_low_priority_task_overtakes_newer_high_priority_ones(
    store: TaskStore, clock: FakeClock
) -> None:
    # One priority step is worth AGING_SECONDS (60 s) of waiting: a task queues at
    # created_at - 60 s * priority.
    low = make(store, priority=0)  # queues at t
    clock.advance(100)
    urgent = make(store, priority=2)  # t + 100 - 120 = t - 20: still ahead of `low`
    clock.advance(100)
    late = make(store, priority=3)  # t + 200 - 180 = t + 20: `low` waited longer
    late_free = make(store, priority=0)  # t + 200
    early_negative = make(store, priority=-1)  # t + 200 + 60

    order = [store.claim("w1", LEASE) for _ in range(6)]

    expected = [urgent, low, late, late_free, early_negative]
    assert [task.task_id if task else None for task in order] == [t.task_id for t in expected] + [None]


def test_a_free_task_is_claimed_before_a_priority_3_task_submitted_over_3_minutes_later(
    store: TaskStore, clock: FakeClock
) -> None:
    free = make(store, priority=0)
    clock.advance(3 * AGING_SECONDS + 0.001)
    paid = make(store, priority=3)

    first = store.claim("w1", LEASE)

    assert first is not None and first.task_id == free.task_id
    second = store.claim("w1", LEASE)
    assert second is not None and second.task_id == paid.task_id


def test_a_steady_stream_of_high_priority_tasks_never_starves_a_low_one(
    store: TaskStore, clock: FakeClock
) -> None:
    backlog = [make(store, priority=3) for _ in range(5)]
    low = make(store, priority=0)
    step, arrivals_per_step = 10.0, 2  # twice as many urgent tasks arrive as one worker can run
    # Ahead of `low`: the backlog, and the urgent tasks submitted less than 3 priority steps after it.
    bound = len(backlog) + arrivals_per_step * int(3 * AGING_SECONDS / step) + 1

    claims = 0
    while True:
        clock.advance(step)
        for _ in range(arrivals_per_step):
            make(store, priority=3)
        claimed = store.claim("w1", LEASE)
        assert claimed is not None
        claims += 1
        store.complete(claimed.task_id, "w1", [{"video": "v.mp4"}])
        if claimed.task_id == low.task_id or claims > bound:
            break

    assert claimed.task_id == low.task_id and claims <= bound
    assert store.counts_by_status()["submitted"] > len(backlog)  # the urgent queue never ran dry


def test_aging_seconds_sets_what_one_priority_step_is_worth(
    open_configured: OpenConfigured, clock: FakeClock
) -> None:
    store = open_configured(aging_seconds=1)
    free = make(store, priority=0)
    clock.advance(5)
    paid = make(store, priority=3)  # 3 steps = 3 s of waiting: not enough to pass a task 5 s older
    clock.advance(1)
    very_paid = make(store, priority=10)  # 10 s: enough

    order = [store.claim("w1", LEASE) for _ in range(3)]

    assert [task.task_id if task else None for task in order] == [
        very_paid.task_id,
        free.task_id,
        paid.task_id,
    ]


@pytest.mark.parametrize("aging_seconds", [0, -60, float("nan"), float("inf"), 86_401])
def test_a_bad_aging_is_refused(open_configured: OpenConfigured, aging_seconds: float) -> None:
    with pytest.raises(InvalidRequest, match="aging_seconds must be in"):
        open_configured(aging_seconds=aging_seconds)


def test_extreme_priorities_still_queue_in_order(store: TaskStore, clock: FakeClock) -> None:
    lowest = make(store, priority=-(2**31))
    highest = make(store, priority=2**31 - 1)
    clock.advance(1)
    next_highest = make(store, priority=2**31 - 2)  # both clamp to the earliest place: oldest first
    middle = make(store, priority=0)

    order = [store.claim("w1", LEASE) for _ in range(4)]

    expected = [highest, next_highest, middle, lowest]
    assert [task.task_id if task else None for task in order] == [t.task_id for t in expected]


def test_a_task_requeued_after_a_lost_lease_keeps_its_place(store: TaskStore, clock: FakeClock) -> None:
    first = make(store)
    store.claim("w1", LEASE)
    clock.advance(1)
    second = make(store)
    clock.advance(LEASE)  # w1 died

    again = store.claim("w2", LEASE)
    assert again is not None and again.task_id == first.task_id

    store.fail(first.task_id, "w2", error="CUDA out of memory", retryable=True)
    clock.advance(1)
    third = make(store)
    order = [store.claim("w3", LEASE) for _ in range(3)]
    assert [task.task_id if task else None for task in order] == [
        first.task_id,  # queued again after a retryable failure: still the oldest place
        second.task_id,
        third.task_id,
    ]


def test_retry_gives_a_task_a_fresh_place_in_the_queue(store: TaskStore, clock: FakeClock) -> None:
    old = make(store, priority=1)
    store.request_cancel(old.task_id, "acme")
    clock.advance(600)
    waiting = make(store, priority=0)  # queues at t + 600, behind `old`'s first place (t - 60)
    clock.advance(90)

    store.retry(old.task_id, "acme")  # queues anew at t + 690 - 60: behind `waiting`
    first = store.claim("w1", LEASE)

    assert first is not None and first.task_id == waiting.task_id
    second = store.claim("w1", LEASE)
    assert second is not None and second.task_id == old.task_id


def test_claim_leases_the_task_to_the_worker(store: TaskStore, clock: FakeClock) -> None:
    task = make(store)
    clock.advance(5)

    claimed = store.claim("gpu0-1234", LEASE)

    assert claimed is not None and claimed.task_id == task.task_id
    assert (claimed.status, claimed.attempt, claimed.lease_owner) == ("processing", 1, "gpu0-1234")
    assert claimed.lease_expires_at == clock.now() + timedelta(seconds=LEASE)
    assert claimed.started_at == claimed.updated_at == clock.now()
    assert refetch(store, task) == claimed
    assert store.claim("gpu1-5678", LEASE) is None


def test_claim_only_takes_models_the_worker_serves(store: TaskStore) -> None:
    wan = make(store, model="wan2.1-t2v-1.3b")
    builtin = make(store, model="builtin")

    assert store.claim("w1", LEASE, models=["ltx-video"]) is None
    assert store.claim("w1", LEASE, models=[]) is None
    claimed = store.claim("w1", LEASE, models=["wan2.1-t2v-1.3b", "ltx-video"])
    assert claimed is not None and claimed.task_id == wan.task_id
    claimed = store.claim("w2", LEASE)
    assert claimed is not None and claimed.task_id == builtin.task_id


def test_claim_refuses_a_bad_lease(store: TaskStore) -> None:
    make(store)
    with pytest.raises(InvalidRequest, match="lease_seconds must be in"):
        store.claim("w1", 0)
    with pytest.raises(InvalidRequest, match="worker_id must be 1 to 128 characters"):
        store.claim("", LEASE)
    assert store.counts_by_status()["submitted"] == 1


def test_heartbeat_extends_the_lease_and_records_progress(store: TaskStore, clock: FakeClock) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    clock.advance(20)

    beat = store.heartbeat(
        task.task_id, "w1", LEASE, progress=0.4, stage="denoise", preview_key="t/preview.webp"
    )

    assert beat.held and not beat.cancel_requested and not beat.should_stop
    stored = refetch(store, task)
    assert (stored.progress, stored.stage, stored.preview_key) == (0.4, "denoise", "t/preview.webp")
    assert stored.lease_expires_at == clock.now() + timedelta(seconds=LEASE)
    assert stored.updated_at == clock.now()
    clock.advance(20)  # 40 s after the claim, 20 s after the heartbeat: the lease still holds
    assert store.claim("w2", LEASE) is None
    store.heartbeat(task.task_id, "w1", LEASE, stage="decode")
    assert (refetch(store, task).progress, refetch(store, task).stage) == (0.4, "decode")


@pytest.mark.parametrize("progress", [-0.1, 1.5])
def test_heartbeat_refuses_progress_outside_zero_to_one(store: TaskStore, progress: float) -> None:
    task = make(store)
    store.claim("w1", LEASE)

    with pytest.raises(InvalidRequest, match="progress must be between 0 and 1"):
        store.heartbeat(task.task_id, "w1", LEASE, progress=progress)
    assert refetch(store, task).progress == 0.0


def test_heartbeat_of_a_stranger_or_a_missing_task_changes_nothing(store: TaskStore) -> None:
    task = make(store)
    claimed = store.claim("w1", LEASE)

    beat = store.heartbeat(task.task_id, "w2", LEASE, progress=0.9)
    assert not beat.held and beat.should_stop
    assert not store.heartbeat("1000000000000000000", "w1", LEASE).held
    assert refetch(store, task) == claimed


def test_killed_workers_task_is_finished_by_another(store: TaskStore, clock: FakeClock) -> None:
    task = make(store)
    first = store.claim("w1", LEASE)
    assert first is not None
    store.heartbeat(task.task_id, "w1", LEASE, progress=0.5)
    clock.advance(LEASE - 1)
    assert store.claim("w2", LEASE) is None  # w1's lease has not run out yet

    clock.advance(2)  # w1 was killed: no heartbeat, the lease runs out
    second = store.claim("w2", LEASE)

    assert second is not None and second.task_id == task.task_id
    assert (second.attempt, second.lease_owner, second.progress) == (2, "w2", 0.0)
    assert second.error == "attempt 1: the lease of worker 'w1' expired (the worker died or hung)"
    assert store.heartbeat(task.task_id, "w1", LEASE).should_stop
    with pytest.raises(LeaseLost, match=f"worker 'w1' no longer holds task {task.task_id}"):
        store.complete(task.task_id, "w1", [{"video": "late.mp4"}])
    done = store.complete(task.task_id, "w2", [{"video": "tasks/1/2.mp4"}])
    assert (done.status, done.outputs, done.error) == ("succeed", [{"video": "tasks/1/2.mp4"}], None)
    with pytest.raises(LeaseLost, match="it is succeed"):
        store.complete(task.task_id, "w1", [{"video": "later.mp4"}])
    with pytest.raises(LeaseLost):
        store.fail(task.task_id, "w1", error="late failure", retryable=True)
    assert refetch(store, task) == done


def test_a_late_heartbeat_keeps_the_lease_until_another_worker_claims(
    store: TaskStore, clock: FakeClock
) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    clock.advance(LEASE + 5)  # w1 stalled past its lease, but nobody has claimed since

    assert store.heartbeat(task.task_id, "w1", LEASE).held
    assert store.claim("w2", LEASE) is None  # the renewed lease holds again
    assert store.complete(task.task_id, "w1", [{"video": "v.mp4"}]).attempt == 1


def test_exhausted_attempts_end_failed_with_the_reason(store: TaskStore, clock: FakeClock) -> None:
    task = make(store, max_attempts=2)
    for worker in ("w1", "w2"):
        assert store.claim(worker, LEASE) is not None
        clock.advance(LEASE)

    assert store.claim("w3", LEASE) is None

    failed = refetch(store, task)
    assert (failed.status, failed.attempt, failed.lease_owner) == ("failed", 2, None)
    assert failed.error is not None
    assert "gave up after 2 of 2 attempts" in failed.error and "'w2'" in failed.error
    assert failed.finished_at == clock.now() and failed.expires_at == clock.now() + RETENTION
    assert store.counts_by_status()["failed"] == 1


def test_retryable_failure_queues_again_until_attempts_run_out(store: TaskStore) -> None:
    task = make(store, max_attempts=2)
    store.claim("w1", LEASE)

    requeued = store.fail(task.task_id, "w1", error="CUDA out of memory", retryable=True)
    assert (requeued.status, requeued.error, requeued.lease_owner) == (
        "submitted",
        "CUDA out of memory",
        None,
    )
    again = store.claim("w2", LEASE)
    assert again is not None and again.attempt == 2
    failed = store.fail(task.task_id, "w2", error="CUDA out of memory", retryable=True)

    assert failed.status == "failed"
    assert failed.error == "CUDA out of memory (gave up after 2 of 2 attempts)"
    assert store.claim("w3", LEASE) is None


def test_non_retryable_failure_fails_at_once(store: TaskStore, clock: FakeClock) -> None:
    task = make(store)
    store.claim("w1", LEASE)

    failed = store.fail(task.task_id, "w1", error="the first frame is not an image", retryable=False)

    assert (failed.status, failed.error, failed.attempt) == ("failed", "the first frame is not an image", 1)
    assert failed.finished_at == clock.now()
    assert store.claim("w2", LEASE) is None
    with pytest.raises(InvalidRequest, match="error is empty"):
        store.fail(make(store).task_id, "w1", error="", retryable=False)


def test_complete_twice_or_by_a_stranger_is_refused(store: TaskStore, clock: FakeClock) -> None:
    task = make(store)
    store.claim("w1", LEASE)

    with pytest.raises(LeaseLost, match="it is leased to 'w1'"):
        store.complete(task.task_id, "w2", [{"video": "stranger.mp4"}])
    clock.advance(3)
    done = store.complete(task.task_id, "w1", [{"video": "a.mp4", "poster": "a.png"}, {"video": "b.mp4"}])
    with pytest.raises(LeaseLost, match="drop this result"):
        store.complete(task.task_id, "w1", [{"video": "again.mp4"}])

    assert done.outputs == [{"video": "a.mp4", "poster": "a.png"}, {"video": "b.mp4"}]
    assert (done.status, done.progress, done.lease_owner, done.lease_expires_at) == (
        "succeed",
        1.0,
        None,
        None,
    )
    assert done.finished_at == clock.now() and done.expires_at == clock.now() + RETENTION
    assert refetch(store, task) == done
    with pytest.raises(LeaseLost, match="no longer exists"):
        store.complete("1000000000000000000", "w1", [])


def test_complete_refuses_outputs_that_are_not_a_list_of_dicts(store: TaskStore) -> None:
    task = make(store)
    store.claim("w1", LEASE)

    with pytest.raises(InvalidRequest, match="outputs must be a list of dicts"):
        store.complete(task.task_id, "w1", ["tasks/1/0.mp4"])  # type: ignore[list-item]
    assert refetch(store, task).status == "processing"


# --- cancel, retry, delete ------------------------------------------------------------------------------


def test_cancel_of_a_queued_task_is_immediate(store: TaskStore, clock: FakeClock) -> None:
    task = make(store)

    cancelled = store.request_cancel(task.task_id, "acme")

    assert (cancelled.status, cancelled.cancel_requested) == ("cancelled", True)
    assert cancelled.finished_at == clock.now() and cancelled.expires_at == clock.now() + RETENTION
    assert store.claim("w1", LEASE) is None
    assert store.request_cancel(task.task_id, "acme") == cancelled  # cancelling again changes nothing


def test_cancel_of_a_running_task_is_finished_by_its_worker(store: TaskStore) -> None:
    task = make(store)
    store.claim("w1", LEASE)

    flagged = store.request_cancel(task.task_id, "acme")
    assert (flagged.status, flagged.cancel_requested) == ("processing", True)
    beat = store.heartbeat(task.task_id, "w1", LEASE, progress=0.3)
    assert beat.held and beat.cancel_requested and beat.should_stop
    cancelled = store.fail(task.task_id, "w1", error="stopped between steps", retryable=True)

    assert (cancelled.status, cancelled.lease_owner) == ("cancelled", None)
    assert store.claim("w2", LEASE) is None


def test_cancelled_task_whose_worker_died_ends_cancelled(store: TaskStore, clock: FakeClock) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    store.request_cancel(task.task_id, "acme")
    clock.advance(LEASE + 1)

    assert store.claim("w2", LEASE) is None
    assert refetch(store, task).status == "cancelled"


def test_a_cancel_that_comes_too_late_keeps_the_outputs(store: TaskStore) -> None:
    task = make(store)
    store.claim("w1", LEASE)
    store.request_cancel(task.task_id, "acme")

    done = store.complete(task.task_id, "w1", [{"video": "v.mp4"}])

    assert (done.status, done.outputs) == ("succeed", [{"video": "v.mp4"}])
    with pytest.raises(
        InvalidTransition, match=f"task {task.task_id} already succeed; there is nothing to cancel"
    ):
        store.request_cancel(task.task_id, "acme")


def test_retry_queues_a_failed_or_cancelled_task_with_fresh_attempts(store: TaskStore) -> None:
    failed = make(store, max_attempts=1)
    store.claim("w1", LEASE)
    store.fail(failed.task_id, "w1", error="decoder crashed", retryable=False)
    cancelled = make(store)
    store.request_cancel(cancelled.task_id, "acme")

    for task in (failed, cancelled):
        again = store.retry(task.task_id, "acme")
        assert (again.status, again.attempt, again.error, again.cancel_requested) == (
            "submitted",
            0,
            None,
            False,
        )
        assert (again.started_at, again.finished_at, again.expires_at) == (None, None, None)
    claimed = store.claim("w2", LEASE)
    assert claimed is not None and claimed.task_id == failed.task_id and claimed.attempt == 1


def test_retry_of_a_task_that_did_not_fail_is_refused(store: TaskStore) -> None:
    queued = make(store)
    with pytest.raises(
        InvalidTransition, match="is submitted; only failed or cancelled tasks can be retried"
    ):
        store.retry(queued.task_id, "acme")
    store.claim("w1", LEASE)
    with pytest.raises(InvalidTransition, match="is processing"):
        store.retry(queued.task_id, "acme")
    store.complete(queued.task_id, "w1", [{"image": "i.png"}])
    with pytest.raises(InvalidTransition, match="is succeed"):
        store.retry(queued.task_id, "acme")


def test_delete_removes_a_task_that_is_not_running(store: TaskStore) -> None:
    running = make(store, external_task_id="reused")
    waiting = make(store)
    store.claim("w1", LEASE)  # takes `running`, the older one
    store.request_cancel(running.task_id, "acme")  # only flags it: w1 is still working

    with pytest.raises(InvalidTransition, match="is running; cancel it and delete it once it has stopped"):
        store.delete(running.task_id, "acme")
    store.fail(running.task_id, "w1", error="stopped", retryable=False)
    store.delete(running.task_id, "acme")
    store.delete(waiting.task_id, "acme")

    assert store.get(running.task_id, "acme") is None
    assert store.list("acme").total == 0
    with pytest.raises(TaskNotFound):
        store.delete(running.task_id, "acme")
    assert (
        make(store, external_task_id="reused").external_task_id == "reused"
    )  # the external id is free again


# --- metrics and retention ------------------------------------------------------------------------------


def test_counts_by_status_covers_every_status(store: TaskStore) -> None:
    assert store.counts_by_status() == {
        "submitted": 0,
        "processing": 0,
        "succeed": 0,
        "failed": 0,
        "cancelled": 0,
    }
    tasks = [make(store, account=account) for account in ("acme", "acme", "globex", "globex", "initech")]
    for worker in ("w1", "w2", "w3"):
        store.claim(worker, LEASE)
    store.complete(tasks[0].task_id, "w1", [{"video": "v.mp4"}])
    store.fail(tasks[1].task_id, "w2", error="bad", retryable=False)
    store.request_cancel(tasks[3].task_id, "globex")

    assert store.counts_by_status() == {
        "submitted": 1,
        "processing": 1,
        "succeed": 1,
        "failed": 1,
        "cancelled": 1,
    }


def test_expired_lists_finished_tasks_past_retention(store: TaskStore, clock: FakeClock) -> None:
    start = clock.now()
    first, second, queued = make(store), make(store), make(store)
    store.claim("w1", LEASE)
    store.complete(first.task_id, "w1", [{"video": "v.mp4"}])
    clock.advance(86_400)
    store.claim("w2", LEASE)
    store.fail(second.task_id, "w2", error="bad prompt", retryable=False)

    def expired(days: float, limit: int = 100) -> list[str]:
        return [task.task_id for task in store.expired(start + timedelta(days=days), limit)]

    assert expired(29.9) == []
    assert expired(30) == [first.task_id]
    assert expired(400) == [first.task_id, second.task_id]
    assert expired(400, limit=1) == [first.task_id]
    assert queued.task_id not in expired(10_000)


# --- the workers catalog -------------------------------------------------------------------------------

BUILTIN = {
    "id": "builtin",
    "family": "builtin",
    "capabilities": {"kinds": ["text2video", "image2video"], "max_frames": 80},
    "error": None,
}
BROKEN = {"id": "wan2.1-t2v-14b", "family": "wan", "capabilities": None, "error": "weights not found"}


def test_a_registered_worker_is_listed_with_its_models(store: TaskStore, clock: FakeClock) -> None:
    assert store.workers() == []

    store.register_worker("host-1-42-ab12", [BUILTIN, BROKEN])

    (worker,) = store.workers()
    assert worker.worker_id == "host-1-42-ab12"
    assert worker.models == [BUILTIN, BROKEN]
    assert worker.started_at == worker.seen_at == clock.now()
    assert worker.seen_at.tzinfo == UTC


def test_registering_again_replaces_models_and_keeps_the_start(store: TaskStore, clock: FakeClock) -> None:
    store.register_worker("w1", [BUILTIN, BROKEN])
    started = clock.now()
    later = clock.advance(7.5)

    store.register_worker("w1", [BUILTIN])

    (worker,) = store.workers()
    assert (worker.models, worker.started_at, worker.seen_at) == ([BUILTIN], started, later)


def test_workers_are_listed_most_recently_seen_first(store: TaskStore, clock: FakeClock) -> None:
    for worker_id in ("old", "middle", "new"):
        store.register_worker(worker_id, [BUILTIN])
        clock.advance(1)
    store.register_worker("old", [BUILTIN])  # a heartbeat brings it to the front

    assert [worker.worker_id for worker in store.workers()] == ["old", "new", "middle"]


def test_a_removed_worker_is_no_longer_listed(store: TaskStore) -> None:
    store.register_worker("w1", [BUILTIN])
    store.register_worker("w2", [BUILTIN])

    store.remove_worker("w1")
    store.remove_worker("never-registered")  # does nothing

    assert [worker.worker_id for worker in store.workers()] == ["w2"]


def test_workers_not_seen_since_a_moment_are_pruned(store: TaskStore, clock: FakeClock) -> None:
    store.register_worker("dead", [BUILTIN])
    clock.advance(60)
    store.register_worker("alive", [BUILTIN])
    horizon = clock.now()

    assert store.prune_workers(horizon - timedelta(seconds=61)) == 0
    assert store.prune_workers(horizon) == 1  # seen before the horizon; one seen at it stays
    assert store.prune_workers(horizon) == 0

    assert [worker.worker_id for worker in store.workers()] == ["alive"]


def test_worker_models_are_copied_not_aliased(store: TaskStore) -> None:
    models: list[dict[str, Any]] = [
        {"id": "builtin", "family": "builtin", "capabilities": {"kinds": ["text2video"]}, "error": None}
    ]
    store.register_worker("w1", models)
    models[0]["capabilities"]["kinds"].append("image2video")

    listed = store.workers()[0].models
    listed[0]["id"] = "changed"

    assert store.workers()[0].models[0] == {
        "id": "builtin",
        "family": "builtin",
        "capabilities": {"kinds": ["text2video"]},
        "error": None,
    }


def test_a_worker_with_no_models_is_still_listed(store: TaskStore) -> None:
    store.register_worker("idle", [])

    assert [(worker.worker_id, worker.models) for worker in store.workers()] == [("idle", [])]


@pytest.mark.parametrize(
    ("worker_id", "models", "message"),
    [
        ("", [BUILTIN], "worker_id must be 1 to 128 characters"),
        ("w" * 129, [BUILTIN], "worker_id must be 1 to 128 characters"),
        ("w1", "builtin", "models must be a list of dicts with an 'id'"),
        ("w1", [{"family": "wan"}], "models must be a list of dicts with an 'id'"),
        ("w1", [{"id": "x", "capabilities": {"fps": float("nan")}}], "models must be plain JSON"),
    ],
)
def test_register_worker_refuses_bad_arguments(
    store: TaskStore, worker_id: str, models: Any, message: str
) -> None:
    with pytest.raises(InvalidRequest, match=message):
        store.register_worker(worker_id, models)
    assert store.workers() == []


def test_a_second_handle_sees_registered_workers(open_handle: OpenStore) -> None:
    worker, api = open_handle(), open_handle()
    worker.register_worker("w1", [BUILTIN])

    assert [info.models for info in api.workers()] == [[BUILTIN]]
    api.remove_worker("w1")
    assert worker.workers() == []


# --- concurrency ----------------------------------------------------------------------------------------


def test_two_workers_never_claim_the_same_task(open_handle: OpenStore) -> None:
    store = open_handle()
    created = {make(store, priority=i % 3).task_id for i in range(40)}
    workers = [open_handle() for _ in range(4)]  # each its own connection pool, like separate processes
    start = threading.Barrier(len(workers), timeout=30)

    def drain(index: int) -> list[str]:
        handle, worker_id, claimed = workers[index], f"worker-{index}", []
        start.wait()
        while (task := handle.claim(worker_id, LEASE)) is not None:
            claimed.append(task.task_id)
            handle.complete(task.task_id, worker_id, [{"video": f"{task.task_id}.mp4"}])
        return claimed

    with ThreadPoolExecutor(len(workers)) as pool:
        per_worker = list(pool.map(drain, range(len(workers)), timeout=120))

    everything = [task_id for claimed in per_worker for task_id in claimed]
    assert sorted(everything) == sorted(created)  # every task claimed exactly once
    assert store.counts_by_status()["succeed"] == 40


def test_a_second_handle_sees_the_first_handles_writes(open_handle: OpenStore) -> None:
    writer, reader = open_handle(), open_handle()
    task = make(writer, external_task_id="shared")

    assert reader.get_by_external("shared", "acme") == task
    claimed = reader.claim("w1", LEASE)
    assert claimed is not None and writer.get(task.task_id, "acme") == claimed
