"""The task state machine, shared by every store: checks arguments and says which fields change.

Each function reads a task's current state (a `Task` or an ORM row alike) and returns `Changes`, or
raises the error the store must raise. Stores apply the changes inside their own lock or transaction;
this module knows nothing about how tasks are kept.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypedDict, TypeVar, cast

from kinema.db.clock import to_ms
from kinema.db.events import EventName, TaskEvent
from kinema.errors import InvalidRequest
from kinema.jobs.store import FINISHED, KINDS, MAX_PAGE, InvalidTransition, LeaseLost, Status
from kinema.spec import Kind

# Column widths, checked here so that every store refuses the same values with the same message.
MAX_ACCOUNT, MAX_EXTERNAL, MAX_MODEL, MAX_WORKER, MAX_STAGE, MAX_KEY = 64, 256, 128, 128, 64, 1024


class TaskState(Protocol):
    @property
    def task_id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def attempt(self) -> int: ...
    @property
    def max_attempts(self) -> int: ...
    @property
    def lease_owner(self) -> str | None: ...
    @property
    def cancel_requested(self) -> bool: ...


class EventSource(TaskState, Protocol):
    @property
    def account_id(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def request(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=TaskState)

# Queue places are clamped to these bounds (absurd priorities tie there, then go oldest first); every
# database and Python's datetime hold them. Migration 0004 uses the same bounds for its backfill.
QUEUE_FLOOR = datetime(1900, 1, 1, tzinfo=UTC)
QUEUE_CEILING = datetime(9000, 1, 1, tzinfo=UTC)


class Changes(TypedDict, total=False):
    status: Status
    attempt: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    progress: float
    stage: str
    preview_key: str | None
    outputs: list[dict[str, Any]]
    error: str | None
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None


def check_text(name: str, value: str, max_length: int) -> None:
    if not value or len(value) > max_length:
        raise InvalidRequest(f"{name} must be 1 to {max_length} characters; got {len(value)}")


def check_new_task(
    *, account_id: str, kind: str, model: str, external_task_id: str | None, priority: int, max_attempts: int
) -> None:
    check_text("account_id", account_id, MAX_ACCOUNT)
    check_text("model", model, MAX_MODEL)
    if external_task_id is not None:
        check_text("external_task_id", external_task_id, MAX_EXTERNAL)
    if kind not in KINDS:
        raise InvalidRequest(f"unknown task kind {kind!r}; use one of {', '.join(KINDS)}")
    if not -(2**31) <= priority < 2**31:
        raise InvalidRequest(f"priority {priority} does not fit a 32-bit integer; use a smaller number")
    if not 1 <= max_attempts <= 100:
        raise InvalidRequest(f"max_attempts must be 1..100; got {max_attempts}")


def check_aging(aging_seconds: float) -> None:
    if not (math.isfinite(aging_seconds) and 0 < aging_seconds <= 86_400):
        raise InvalidRequest(
            f"aging_seconds must be in (0, 86400] (seconds of waiting one priority step is worth); "
            f"got {aging_seconds}"
        )


def queue_place(submitted_at: datetime, priority: int, aging_seconds: float) -> datetime:
    """Where a task submitted at `submitted_at` queues: earlier by `priority * aging_seconds` seconds.

    Claims take the earliest place first, so priority wins among tasks submitted close together, while
    a task that waited long enough goes before any newer one, whatever their priorities.
    """
    ahead = priority * aging_seconds
    if ahead >= (submitted_at - QUEUE_FLOOR).total_seconds():
        return QUEUE_FLOOR
    if -ahead >= (QUEUE_CEILING - submitted_at).total_seconds():
        return QUEUE_CEILING
    return to_ms(submitted_at - timedelta(seconds=ahead))


def finish_event(before: str, changes: Changes) -> EventName | None:
    """The event a change fires if it finishes the task (`before` is its status until now), else None."""
    after = changes.get("status")
    if after is not None and after in FINISHED and after != before:
        return cast(EventName, after)
    return None


def task_event(event: EventName, task: EventSource) -> TaskEvent:
    """The hook's view of `task` (a `Task` or a row) as it is after the change."""
    return TaskEvent(
        event=event,
        task_id=task.task_id,
        account_id=task.account_id,
        kind=cast(Kind, task.kind),
        model=task.model,
        request=copy.deepcopy(task.request),
        attempt=task.attempt,
    )


def duplicate_message(account_id: str, external_task_id: str, task_id: str) -> str:
    return (
        f"account {account_id!r} already has a task with external_task_id {external_task_id!r} "
        f"(task {task_id}); pick a new external_task_id or fetch that task"
    )


def check_lease(worker_id: str, lease_seconds: float) -> None:
    check_text("worker_id", worker_id, MAX_WORKER)
    if not 0 < lease_seconds <= 86_400:
        raise InvalidRequest(f"lease_seconds must be in (0, 86400]; got {lease_seconds}")


def check_names(name: str, values: Collection[str] | None) -> None:
    if isinstance(values, str):
        raise InvalidRequest(
            f"{name} must be a list of names such as [{values!r}], not the string {values!r}"
        )


def check_list(
    *,
    offset: int,
    limit: int,
    kinds: Collection[str] | None,
    statuses: Collection[str] | None,
    models: Collection[str] | None = None,
) -> None:
    check_names("kinds", kinds)
    check_names("statuses", statuses)
    check_names("models", models)
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(
            f"need offset >= 0 and 1 <= limit <= {MAX_PAGE}; got offset={offset}, limit={limit}"
        )


def json_copy(name: str, value: object) -> Any:
    """A deep copy of `value` through JSON, as a database would store it; refuses what JSON cannot hold."""
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise InvalidRequest(
            f"{name} must be plain JSON (dicts, lists, str, finite numbers): {error}"
        ) from None


def json_outputs(outputs: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(outputs, (str, bytes)) or not all(isinstance(item, Mapping) for item in outputs):
        raise InvalidRequest("outputs must be a list of dicts such as [{'video': 'tasks/123/0.mp4'}]")
    copied: list[dict[str, Any]] = json_copy("outputs", [dict(item) for item in outputs])
    return copied


def worker_models(worker_id: str, models: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """A registering worker's models as plain JSON; each needs at least a string "id"."""
    check_text("worker_id", worker_id, MAX_WORKER)
    if isinstance(models, (str, bytes)) or not all(
        isinstance(item, Mapping) and isinstance(item.get("id"), str) and item["id"] for item in models
    ):
        raise InvalidRequest(
            "models must be a list of dicts with an 'id' such as "
            "[{'id': 'builtin', 'family': 'builtin', 'capabilities': {...}, 'error': None}]"
        )
    copied: list[dict[str, Any]] = json_copy("models", [dict(item) for item in models])
    return copied


def _finished(status: Status, now: datetime, retention: timedelta) -> Changes:
    return Changes(
        status=status,
        lease_owner=None,
        lease_expires_at=None,
        updated_at=now,
        finished_at=now,
        expires_at=now + retention,
    )


def claimed(task: TaskState, worker_id: str, lease_seconds: float, now: datetime) -> Changes:
    return Changes(
        status="processing",
        attempt=task.attempt + 1,
        lease_owner=worker_id,
        lease_expires_at=now + timedelta(seconds=lease_seconds),
        progress=0.0,
        stage="",
        preview_key=None,
        updated_at=now,
        started_at=now,
    )


def lease_expired(task: TaskState, now: datetime, retention: timedelta) -> Changes:
    """The worker stopped heartbeating (crashed, killed, hung): cancel, give up, or queue again."""
    if task.cancel_requested:
        return _finished("cancelled", now, retention)
    lost = f"the lease of worker {task.lease_owner!r} expired (the worker died or hung)"
    if task.attempt >= task.max_attempts:
        changes = _finished("failed", now, retention)
        changes["error"] = (
            f"gave up after {task.attempt} of {task.max_attempts} attempts: {lost}; "
            "retry the task to run it again"
        )
        return changes
    return Changes(
        status="submitted",
        lease_owner=None,
        lease_expires_at=None,
        error=f"attempt {task.attempt}: {lost}",
        updated_at=now,
    )


def check_holder(task: S | None, task_id: str, worker_id: str) -> S:
    if task is None:
        raise LeaseLost(f"task {task_id} no longer exists; drop this result")
    if task.status != "processing" or task.lease_owner != worker_id:
        holder = f"is leased to {task.lease_owner!r}" if task.status == "processing" else f"is {task.status}"
        raise LeaseLost(
            f"worker {worker_id!r} no longer holds task {task_id} (it {holder}); drop this result, "
            "another attempt owns the task"
        )
    return task


def heartbeat(
    now: datetime,
    lease_seconds: float,
    *,
    progress: float | None,
    stage: str | None,
    preview_key: str | None,
) -> Changes:
    changes = Changes(lease_expires_at=now + timedelta(seconds=lease_seconds), updated_at=now)
    if progress is not None:
        if not 0.0 <= progress <= 1.0:
            raise InvalidRequest(f"progress must be between 0 and 1; got {progress}")
        changes["progress"] = float(progress)
    if stage is not None:
        if len(stage) > MAX_STAGE:
            raise InvalidRequest(f"stage must be at most {MAX_STAGE} characters; got {len(stage)}")
        changes["stage"] = stage
    if preview_key is not None:
        check_text("preview_key", preview_key, MAX_KEY)
        changes["preview_key"] = preview_key
    return changes


def completed(outputs: list[dict[str, Any]], now: datetime, retention: timedelta) -> Changes:
    changes = _finished("succeed", now, retention)
    changes.update(Changes(outputs=outputs, progress=1.0, error=None))
    return changes


def check_error(error: str) -> None:
    if not error:
        raise InvalidRequest("error is empty; say what went wrong so the user can act on it")


def failed(task: TaskState, error: str, *, retryable: bool, now: datetime, retention: timedelta) -> Changes:
    if task.cancel_requested:
        return _finished("cancelled", now, retention)
    if retryable and task.attempt < task.max_attempts:
        return Changes(
            status="submitted", lease_owner=None, lease_expires_at=None, error=error, updated_at=now
        )
    changes = _finished("failed", now, retention)
    if retryable:
        error = f"{error} (gave up after {task.attempt} of {task.max_attempts} attempts)"
    changes["error"] = error
    return changes


def cancel(task: TaskState, now: datetime, retention: timedelta) -> Changes:
    if task.status == "submitted":
        changes = _finished("cancelled", now, retention)
        changes["cancel_requested"] = True
        return changes
    if task.status == "processing":
        return Changes(cancel_requested=True, updated_at=now)
    if task.status == "cancelled":
        return Changes()
    raise InvalidTransition(f"task {task.task_id} already {task.status}; there is nothing to cancel")


def retried(task: TaskState, now: datetime) -> Changes:
    if task.status not in ("failed", "cancelled"):
        raise InvalidTransition(
            f"task {task.task_id} is {task.status}; only failed or cancelled tasks can be retried"
        )
    return Changes(
        status="submitted",
        attempt=0,
        cancel_requested=False,
        progress=0.0,
        stage="",
        preview_key=None,
        outputs=[],
        error=None,
        updated_at=now,
        started_at=None,
        finished_at=None,
        expires_at=None,
    )


def check_deletable(task: TaskState) -> None:
    if task.status == "processing":
        raise InvalidTransition(
            f"task {task.task_id} is running; cancel it and delete it once it has stopped"
        )
