"""The callback outbox, run against every store: each change of a task records its callback in the
change's own transaction (or not at all), and senders claim entries under a lease, one owner at a time.

Delivery over HTTP, several processes and kill -9 are in tests/net/test_durable_callbacks.py.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection
from storehelpers import LEASE, OpenConfigured, make

from kinema.jobs import Callback, FakeClock, Outbox, OutboxEntry, Task, TaskEvent, TaskStore

HOOK = "https://hooks.example.com/kinema"


def callbacks(task: Task) -> Callback | None:
    url = task.request.get("callback_url")
    if not url:
        return None
    body = json.dumps({"task_id": task.task_id, "status": task.status, "cancel": task.cancel_requested})
    return Callback(url=url, body=body, msg_id=f"msg_{task.task_id}_{task.status}_{task.attempt}")


def with_callback(store: TaskStore, **overrides: Any) -> Task:
    return make(store, request={"prompt": "a cube", "callback_url": HOOK}, **overrides)


def statuses(outbox: Outbox, task: Task) -> list[str]:
    return [json.loads(entry.body)["status"] for entry in outbox.entries(task.task_id)]


@pytest.fixture
def store(open_configured: OpenConfigured) -> TaskStore:
    return open_configured(callbacks=callbacks)


# --- what is recorded --------------------------------------------------------------------------------------


def test_every_change_of_a_task_records_its_callback_in_order(store: TaskStore) -> None:
    task = with_callback(store)
    claimed = store.claim("w1", LEASE)
    assert claimed is not None
    store.heartbeat(task.task_id, "w1", LEASE, progress=0.5, stage="generating")  # not a status change
    store.complete(task.task_id, "w1", [{"video": "v.mp4"}])

    entries = store.outbox.entries(task.task_id)
    assert statuses(store.outbox, task) == ["submitted", "processing", "succeed"]
    first = entries[0]
    assert (first.url, first.account_id, first.msg_id) == (HOOK, "acme", f"msg_{task.task_id}_submitted_0")
    assert all(e.state == "pending" and e.attempts == 0 and e.lease_owner is None for e in entries)
    assert store.outbox.pending() == 3


def test_cancel_retry_and_failures_record_their_callbacks(store: TaskStore) -> None:
    task = with_callback(store)
    store.request_cancel(task.task_id, "acme")
    store.request_cancel(task.task_id, "acme")  # cancelled already: no change, no callback
    store.retry(task.task_id, "acme")
    assert store.claim("w1", LEASE) is not None
    store.request_cancel(task.task_id, "acme")  # running: flagged, the worker stops between steps
    store.fail(task.task_id, "w1", error="stopped", retryable=False)

    assert statuses(store.outbox, task) == [
        "submitted",
        "cancelled",
        "submitted",
        "processing",
        "processing",
        "cancelled",
    ]
    flagged = json.loads(store.outbox.entries(task.task_id)[4].body)
    assert flagged["cancel"] is True


def test_a_lease_settled_by_another_workers_claim_records_the_change(
    store: TaskStore, clock: FakeClock
) -> None:
    task = with_callback(store)
    assert store.claim("w1", 5.0) is not None
    clock.advance(6)
    again = store.claim("w2", LEASE)  # settles w1's lapsed lease, then claims the task again

    assert again is not None and again.task_id == task.task_id
    assert statuses(store.outbox, task) == ["submitted", "processing", "submitted", "processing"]


def test_tasks_without_a_callback_url_record_nothing(store: TaskStore) -> None:
    task = make(store)
    assert store.claim("w1", LEASE) is not None
    store.complete(task.task_id, "w1", [])
    assert store.outbox.entries(task.task_id) == [] and store.outbox.pending() == 0


def test_a_change_the_hook_refuses_records_no_callback(open_configured: OpenConfigured) -> None:
    refuse = {"created"}

    def hook(connection: Connection | None, event: TaskEvent) -> None:
        if event.event in refuse:
            raise RuntimeError(f"refused {event.event}")

    store = open_configured(hook=hook, callbacks=callbacks)
    with pytest.raises(RuntimeError, match="refused created"):
        with_callback(store)
    assert store.outbox.pending() == 0

    refuse.clear()
    task = with_callback(store)
    assert store.claim("w1", LEASE) is not None
    refuse.add("succeed")
    with pytest.raises(RuntimeError, match="refused succeed"):
        store.complete(task.task_id, "w1", [])
    assert statuses(store.outbox, task) == ["submitted", "processing"]


def test_a_callback_that_cannot_be_made_does_not_block_the_change(
    open_configured: OpenConfigured, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(task: Task) -> Callback | None:
        raise KeyError("no such view")

    store = open_configured(callbacks=broken)
    with caplog.at_level(logging.ERROR, logger="kinema.jobs.outbox"):
        task = with_callback(store)
    assert store.get(task.task_id, "acme") is not None
    assert store.outbox.pending() == 0
    assert "could not be made" in caplog.text


# --- claims ------------------------------------------------------------------------------------------------


def test_each_entry_is_leased_to_one_owner_at_a_time(store: TaskStore) -> None:
    tasks = [with_callback(store) for _ in range(2)]
    first = store.outbox.claim("sender-a", 60)
    second = store.outbox.claim("sender-b", 60)
    assert first is not None and second is not None
    assert [first.task_id, second.task_id] == [t.task_id for t in tasks]  # oldest first
    assert store.outbox.claim("sender-c", 60) is None
    assert (first.attempts, first.lease_owner, first.state) == (1, "sender-a", "pending")

    assert not store.outbox.delivered(first.callback_id, "sender-b")  # not b's to record
    assert store.outbox.delivered(first.callback_id, "sender-a")
    assert not store.outbox.delivered(first.callback_id, "sender-a")  # once
    (done,) = store.outbox.entries(tasks[0].task_id)
    assert (done.state, done.lease_owner) == ("delivered", None) and done.finished_at is not None
    assert store.outbox.pending() == 1


def test_a_lapsed_claim_is_due_again_and_its_old_owner_records_nothing(
    store: TaskStore, clock: FakeClock
) -> None:
    task = with_callback(store)
    dead = store.outbox.claim("sender-a", 10)
    assert dead is not None and store.outbox.claim("sender-b", 10) is None
    assert store.outbox.next_due() == dead.next_attempt_at
    assert (dead.next_attempt_at - clock.now()).total_seconds() == 10

    clock.advance(10)
    taken = store.outbox.claim("sender-b", 10)
    assert taken is not None and (taken.callback_id, taken.attempts) == (dead.callback_id, 2)
    assert not store.outbox.retry_later(dead.callback_id, "sender-a", delay_seconds=1, error="late")
    assert store.outbox.delivered(taken.callback_id, "sender-b")
    assert [e.state for e in store.outbox.entries(task.task_id)] == ["delivered"]


def test_retry_later_makes_an_entry_due_after_the_delay_and_give_up_ends_it(
    store: TaskStore, clock: FakeClock
) -> None:
    task = with_callback(store)
    entry = store.outbox.claim("sender", 60)
    assert entry is not None
    assert store.outbox.retry_later(entry.callback_id, "sender", delay_seconds=8, error="HTTP 500")
    assert store.outbox.claim("sender", 60) is None
    due = store.outbox.next_due()
    assert due is not None and (due - clock.now()).total_seconds() == 8

    clock.advance(8)
    again = store.outbox.claim("sender", 60)
    assert again is not None and (again.attempts, again.last_error) == (2, "HTTP 500")
    assert store.outbox.give_up(again.callback_id, "sender", error="x" * 5000)
    (ended,) = store.outbox.entries(task.task_id)
    assert ended.state == "failed" and ended.last_error is not None and len(ended.last_error) == 2000
    assert store.outbox.pending() == 0 and store.outbox.next_due() is None


def test_prune_deletes_only_entries_finished_a_retention_period_ago(
    open_configured: OpenConfigured, clock: FakeClock
) -> None:
    store = open_configured(callbacks=callbacks, retention=timedelta(days=2))
    sent, dropped, waiting = (with_callback(store) for _ in range(3))
    claims = [store.outbox.claim("sender", 60) for _ in range(2)]
    assert all(claims)
    assert store.outbox.delivered(_id(claims[0]), "sender")
    assert store.outbox.give_up(_id(claims[1]), "sender", error="blocked")

    clock.advance(2 * 86_400 - 1)
    assert store.outbox.prune(clock.now()) == 0
    clock.advance(1)
    assert store.outbox.prune(clock.now()) == 2
    assert store.outbox.entries(sent.task_id) == store.outbox.entries(dropped.task_id) == []
    assert [e.state for e in store.outbox.entries(waiting.task_id)] == ["pending"]


def test_concurrent_senders_never_claim_one_entry_twice(
    open_configured: OpenConfigured, backend: str | None
) -> None:
    first = open_configured(callbacks=callbacks)
    tasks = [with_callback(first) for _ in range(24)]
    # As separate processes would: one handle each on SQL (in memory, one store has the only outbox).
    handles = [first] + [first if backend is None else open_configured() for _ in range(3)]

    def drain(index: int) -> list[int]:
        taken: list[int] = []
        while (entry := handles[index].outbox.claim(f"sender-{index}", 60)) is not None:
            taken.append(entry.callback_id)
        return taken

    with ThreadPoolExecutor(len(handles)) as pool:
        claimed = [cid for found in pool.map(drain, range(len(handles))) for cid in found]
    counts = Counter(claimed)
    assert len(counts) == len(tasks) and set(counts.values()) == {1}


def _id(entry: OutboxEntry | None) -> int:
    assert entry is not None
    return entry.callback_id
