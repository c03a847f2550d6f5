"""An in-memory `TaskStore` for tests elsewhere: the same contract as the SQL store, held in a dict.

Thread-safe (one lock around every operation); gone when the process ends. Requests and outputs are
copied through JSON on the way in and out, as a database would, so callers cannot alias stored state.
Each write is a transaction of its own: the hook runs (with no connection) after the change is made and
undoes the whole operation if it raises, as a rolled-back SQL transaction would; the callbacks of the
operation's changes reach the in-memory outbox only once it has succeeded.
"""

from __future__ import annotations

import builtins
import copy
import threading
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from kinema.db.clock import Clock, SystemClock, to_ms
from kinema.db.events import EventName, TaskHook
from kinema.jobs import transitions as tr
from kinema.jobs.ids import new_task_id
from kinema.jobs.outbox import Callback, CallbackFor, MemoryOutbox, callback_of
from kinema.jobs.store import (
    AGING_SECONDS,
    DEFAULT_RETENTION,
    STATUSES,
    DuplicateTask,
    Heartbeat,
    Status,
    Task,
    TaskNotFound,
    TaskPage,
    WorkerInfo,
)
from kinema.spec import Kind

T = TypeVar("T")


class MemoryTaskStore:
    def __init__(
        self,
        *,
        clock: Clock | None = None,
        retention: timedelta = DEFAULT_RETENTION,
        hook: TaskHook | None = None,
        callbacks: CallbackFor | None = None,
        aging_seconds: float = AGING_SECONDS,
    ) -> None:
        tr.check_aging(aging_seconds)
        self._clock = clock or SystemClock()
        self._retention = retention
        self._hook = hook
        self._callbacks = callbacks
        self._aging = aging_seconds
        self.outbox = MemoryOutbox(clock=self._clock, retention=retention)
        self._announced: list[tuple[Task, Callback]] = []  # the open transaction's callbacks
        self._tasks: dict[str, Task] = {}
        self._queue_at: dict[str, datetime] = {}  # each queued or once-queued task's place in the queue
        self._workers: dict[str, WorkerInfo] = {}
        self._lock = threading.RLock()
        self._undo: list[tuple[str, Task | None, datetime | None]] | None = None

    def _now(self) -> datetime:
        return to_ms(self._clock.now())

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """Hold the lock; if the block raises (the hook, say), put back every task it changed.

        Nested calls (a hook that calls back into this store) join the outer transaction.
        """
        with self._lock:
            if self._undo is not None:
                yield
                return
            undo: list[tuple[str, Task | None, datetime | None]] = []
            self._undo = undo
            self._announced = []
            try:
                yield
                for changed, callback in self._announced:
                    self.outbox.add(changed, callback)
            except BaseException:
                for task_id, task, queue_at in reversed(undo):
                    if task is None:
                        self._tasks.pop(task_id, None)
                        self._queue_at.pop(task_id, None)
                    else:
                        self._tasks[task_id] = task
                        if queue_at is not None:
                            self._queue_at[task_id] = queue_at
                raise
            finally:
                self._undo = None

    def _put(self, task: Task, queue_at: datetime | None = None) -> None:
        """Store `task` (and its new place in the queue, if given), remembering how to undo it."""
        if self._undo is not None:
            self._undo.append((task.task_id, self._tasks.get(task.task_id), self._queue_at.get(task.task_id)))
        self._tasks[task.task_id] = task
        if queue_at is not None:
            self._queue_at[task.task_id] = queue_at

    def _fire(self, event: EventName | None, task: Task) -> None:
        if event is not None and self._hook is not None:
            self._hook(None, tr.task_event(event, task))

    def _announce(self, task: Task) -> None:
        """Keep `task`'s callback for the outbox, which gets it when the transaction succeeds."""
        callback = callback_of(self._callbacks, _copy(task))
        if callback is not None:
            self._announced.append((_copy(task), callback))

    def _apply(self, task: Task, changes: tr.Changes, *, announce: bool = True) -> Task:
        updated = replace(task, **changes)
        self._put(updated)
        self._fire(tr.finish_event(task.status, changes), updated)
        if announce and changes:
            self._announce(updated)
        return _copy(updated)

    def _owned(self, task_id: str, account_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None or task.account_id != account_id:
            raise TaskNotFound(f"no task {task_id} in account {account_id!r}; check the id and the account")
        return task

    @asynccontextmanager
    async def write_turn(self) -> AsyncIterator[bool]:
        yield True  # every write holds the store's lock for microseconds only

    async def on_loop(self, call: Callable[..., T], *args: Any) -> T:
        return call(*args)

    async def leave_loop(self) -> None:
        return None

    def create(
        self,
        *,
        account_id: str,
        kind: Kind,
        model: str,
        request: Mapping[str, Any],
        external_task_id: str | None = None,
        priority: int = 0,
        max_attempts: int = 3,
    ) -> Task:
        tr.check_new_task(
            account_id=account_id,
            kind=kind,
            model=model,
            external_task_id=external_task_id,
            priority=priority,
            max_attempts=max_attempts,
        )
        stored_request = tr.json_copy("request", dict(request))
        with self._transaction():
            if external_task_id is not None and (dup := self._external(external_task_id, account_id)):
                raise DuplicateTask(tr.duplicate_message(account_id, external_task_id, dup.task_id))
            now = self._now()
            task = Task(
                task_id=new_task_id(),
                account_id=account_id,
                external_task_id=external_task_id,
                kind=kind,
                model=model,
                request=stored_request,
                status="submitted",
                priority=priority,
                attempt=0,
                max_attempts=max_attempts,
                lease_owner=None,
                lease_expires_at=None,
                cancel_requested=False,
                progress=0.0,
                stage="",
                preview_key=None,
                outputs=[],
                error=None,
                created_at=now,
                updated_at=now,
                started_at=None,
                finished_at=None,
                expires_at=None,
            )
            self._put(task, tr.queue_place(now, priority, self._aging))
            self._fire("created", task)
            self._announce(task)
            return _copy(task)

    def _external(self, external_task_id: str, account_id: str) -> Task | None:
        for task in self._tasks.values():
            if task.account_id == account_id and task.external_task_id == external_task_id:
                return task
        return None

    def get(self, task_id: str, account_id: str) -> Task | None:
        with self._lock:
            task = self._tasks.get(task_id)
            return _copy(task) if task is not None and task.account_id == account_id else None

    def get_by_external(self, external_task_id: str, account_id: str) -> Task | None:
        with self._lock:
            task = self._external(external_task_id, account_id)
            return _copy(task) if task is not None else None

    def list(
        self,
        account_id: str,
        *,
        kinds: Collection[Kind] | None = None,
        statuses: Collection[Status] | None = None,
        offset: int = 0,
        limit: int = 50,
        models: Collection[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> TaskPage:
        tr.check_list(offset=offset, limit=limit, kinds=kinds, statuses=statuses, models=models)
        with self._lock:
            found = [
                task
                for task in self._tasks.values()
                if task.account_id == account_id
                and (kinds is None or task.kind in kinds)
                and (statuses is None or task.status in statuses)
                and (models is None or task.model in models)
                and (created_after is None or task.created_at >= created_after)
                and (created_before is None or task.created_at < created_before)
            ]
        found.sort(key=lambda task: (task.created_at, task.task_id), reverse=True)
        return TaskPage(tuple(_copy(task) for task in found[offset : offset + limit]), len(found))

    def claim(
        self, worker_id: str, lease_seconds: float, models: Collection[str] | None = None
    ) -> Task | None:
        tr.check_lease(worker_id, lease_seconds)
        tr.check_names("models", models)
        with self._transaction():
            now = self._now()
            for task in list(self._tasks.values()):
                expired = task.lease_expires_at is not None and task.lease_expires_at <= now
                if task.status == "processing" and expired:
                    self._apply(task, tr.lease_expired(task, now, self._retention))
            queued = [
                task
                for task in self._tasks.values()
                if task.status == "submitted" and (models is None or task.model in models)
            ]
            if not queued:
                return None
            task = min(queued, key=lambda task: (self._queue_at[task.task_id], task.task_id))
            return self._apply(task, tr.claimed(task, worker_id, lease_seconds, now))

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
        tr.check_lease(worker_id, lease_seconds)
        with self._lock:
            changes = tr.heartbeat(
                self._now(), lease_seconds, progress=progress, stage=stage, preview_key=preview_key
            )
            task = self._tasks.get(task_id)
            if task is None or task.status != "processing" or task.lease_owner != worker_id:
                return Heartbeat(held=False, cancel_requested=task is not None and task.cancel_requested)
            self._apply(task, changes, announce=False)
            return Heartbeat(held=True, cancel_requested=task.cancel_requested)

    def complete(self, task_id: str, worker_id: str, outputs: Sequence[Mapping[str, Any]]) -> Task:
        stored = tr.json_outputs(outputs)
        with self._transaction():
            task = tr.check_holder(self._tasks.get(task_id), task_id, worker_id)
            return self._apply(task, tr.completed(stored, self._now(), self._retention))

    def fail(self, task_id: str, worker_id: str, *, error: str, retryable: bool) -> Task:
        tr.check_error(error)
        with self._transaction():
            task = tr.check_holder(self._tasks.get(task_id), task_id, worker_id)
            now = self._now()
            return self._apply(
                task, tr.failed(task, error, retryable=retryable, now=now, retention=self._retention)
            )

    def request_cancel(self, task_id: str, account_id: str) -> Task:
        with self._transaction():
            task = self._owned(task_id, account_id)
            return self._apply(task, tr.cancel(task, self._now(), self._retention))

    def retry(self, task_id: str, account_id: str) -> Task:
        with self._transaction():
            task = self._owned(task_id, account_id)
            now = self._now()
            again = replace(task, **tr.retried(task, now))
            self._put(again, tr.queue_place(now, again.priority, self._aging))
            self._fire("requeued", again)
            self._announce(again)
            return _copy(again)

    def delete(self, task_id: str, account_id: str) -> None:
        with self._lock:
            tr.check_deletable(self._owned(task_id, account_id))
            del self._tasks[task_id]
            del self._queue_at[task_id]

    def counts_by_status(self) -> dict[Status, int]:
        counts = dict.fromkeys(STATUSES, 0)
        with self._lock:
            for task in self._tasks.values():
                counts[task.status] += 1
        return counts

    def expired(self, now: datetime, limit: int = 100) -> Sequence[Task]:
        tr.check_list(offset=0, limit=limit, kinds=None, statuses=None)
        now = to_ms(now)
        with self._lock:
            found = [t for t in self._tasks.values() if t.expires_at is not None and t.expires_at <= now]
        found.sort(key=lambda task: (task.expires_at or now, task.task_id))
        return [_copy(task) for task in found[:limit]]

    def register_worker(self, worker_id: str, models: Sequence[Mapping[str, Any]]) -> None:
        stored = tr.worker_models(worker_id, models)
        with self._lock:
            now = self._now()
            known = self._workers.get(worker_id)
            started_at = known.started_at if known is not None else now
            self._workers[worker_id] = WorkerInfo(worker_id, stored, started_at, now)

    def workers(self) -> builtins.list[WorkerInfo]:
        with self._lock:
            found = sorted(self._workers.values(), key=lambda w: (w.seen_at, w.worker_id), reverse=True)
        return [replace(worker, models=copy.deepcopy(worker.models)) for worker in found]

    def remove_worker(self, worker_id: str) -> None:
        with self._lock:
            self._workers.pop(worker_id, None)

    def prune_workers(self, seen_before: datetime) -> int:
        seen_before = to_ms(seen_before)
        with self._lock:
            gone = [w.worker_id for w in self._workers.values() if w.seen_at < seen_before]
            for worker_id in gone:
                del self._workers[worker_id]
        return len(gone)

    def close(self) -> None:
        pass


def _copy(task: Task) -> Task:
    return replace(task, request=copy.deepcopy(task.request), outputs=copy.deepcopy(task.outputs))
