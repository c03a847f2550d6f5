"""An in-memory `TaskStore` for tests elsewhere: the same contract as the SQL store, held in a dict.

Thread-safe (one lock around every operation); gone when the process ends. Requests and outputs are
copied through JSON on the way in and out, as a database would, so callers cannot alias stored state.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from kinema.jobs import transitions as tr
from kinema.jobs.clock import Clock, SystemClock, to_ms
from kinema.jobs.ids import new_task_id
from kinema.jobs.store import (
    DEFAULT_RETENTION,
    STATUSES,
    DuplicateTask,
    Heartbeat,
    Status,
    Task,
    TaskNotFound,
    TaskPage,
)
from kinema.spec import Kind


class MemoryTaskStore:
    def __init__(self, *, clock: Clock | None = None, retention: timedelta = DEFAULT_RETENTION) -> None:
        self._clock = clock or SystemClock()
        self._retention = retention
        self._tasks: dict[str, Task] = {}
        self._lock = threading.RLock()

    def _now(self) -> datetime:
        return to_ms(self._clock.now())

    def _apply(self, task: Task, changes: tr.Changes) -> Task:
        self._tasks[task.task_id] = updated = replace(task, **changes)
        return _copy(updated)

    def _owned(self, task_id: str, account_id: str) -> Task:
        task = self._tasks.get(task_id)
        if task is None or task.account_id != account_id:
            raise TaskNotFound(f"no task {task_id} in account {account_id!r}; check the id and the account")
        return task

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
        with self._lock:
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
            self._tasks[task.task_id] = task
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
    ) -> TaskPage:
        tr.check_list(offset=offset, limit=limit, kinds=kinds, statuses=statuses)
        with self._lock:
            found = [
                task
                for task in self._tasks.values()
                if task.account_id == account_id
                and (kinds is None or task.kind in kinds)
                and (statuses is None or task.status in statuses)
            ]
        found.sort(key=lambda task: (task.created_at, task.task_id), reverse=True)
        return TaskPage(tuple(_copy(task) for task in found[offset : offset + limit]), len(found))

    def claim(
        self, worker_id: str, lease_seconds: float, models: Collection[str] | None = None
    ) -> Task | None:
        tr.check_lease(worker_id, lease_seconds)
        tr.check_names("models", models)
        with self._lock:
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
            task = min(queued, key=lambda task: (-task.priority, task.created_at, task.task_id))
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
            self._apply(task, changes)
            return Heartbeat(held=True, cancel_requested=task.cancel_requested)

    def complete(self, task_id: str, worker_id: str, outputs: Sequence[Mapping[str, Any]]) -> Task:
        stored = tr.json_outputs(outputs)
        with self._lock:
            task = tr.check_holder(self._tasks.get(task_id), task_id, worker_id)
            return self._apply(task, tr.completed(stored, self._now(), self._retention))

    def fail(self, task_id: str, worker_id: str, *, error: str, retryable: bool) -> Task:
        tr.check_error(error)
        with self._lock:
            task = tr.check_holder(self._tasks.get(task_id), task_id, worker_id)
            now = self._now()
            return self._apply(
                task, tr.failed(task, error, retryable=retryable, now=now, retention=self._retention)
            )

    def request_cancel(self, task_id: str, account_id: str) -> Task:
        with self._lock:
            task = self._owned(task_id, account_id)
            return self._apply(task, tr.cancel(task, self._now(), self._retention))

    def retry(self, task_id: str, account_id: str) -> Task:
        with self._lock:
            task = self._owned(task_id, account_id)
            return self._apply(task, tr.retried(task, self._now()))

    def delete(self, task_id: str, account_id: str) -> None:
        with self._lock:
            tr.check_deletable(self._owned(task_id, account_id))
            del self._tasks[task_id]

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

    def close(self) -> None:
        pass


def _copy(task: Task) -> Task:
    return replace(task, request=copy.deepcopy(task.request), outputs=copy.deepcopy(task.outputs))
