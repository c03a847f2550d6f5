"""The task store is the queue: the `TaskStore` Protocol, the `Task` record and the store's errors.

A task moves submitted → processing → succeed | failed | cancelled; workers hold a task through a lease
they renew by heartbeat. This module says what every store promises; it knows no SQL, HTTP or engine.
Implementations: `kinema.jobs.sql` (SQLite, Postgres) and `kinema.jobs.memory` (the fake for tests).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, get_args

from kinema.errors import InvalidRequest, KinemaError
from kinema.spec import Kind

if TYPE_CHECKING:
    from kinema.jobs.outbox import Outbox

T = TypeVar("T")

Status = Literal["submitted", "processing", "succeed", "failed", "cancelled"]
STATUSES: tuple[Status, ...] = get_args(Status)
FINISHED: frozenset[Status] = frozenset({"succeed", "failed", "cancelled"})
KINDS: tuple[Kind, ...] = get_args(Kind)
DEFAULT_RETENTION = timedelta(days=30)
MAX_PAGE = 1000
# Claim order ages: a task queues at `created_at - priority * AGING_SECONDS`, so one priority step is
# worth this many seconds of waiting, and a low-priority task is never starved by a stream of higher ones.
AGING_SECONDS = 60.0


class DuplicateTask(InvalidRequest):
    """The account already has a task with this `external_task_id`."""


class TaskNotFound(KinemaError, LookupError):
    """No such task in the caller's account (another account's task is not found either)."""


class InvalidTransition(KinemaError):
    """The task's status does not allow the operation (retry a running task, cancel a finished one)."""


class LeaseLost(KinemaError):
    """The worker no longer holds the task's lease; its result must be dropped."""


@dataclass(frozen=True, slots=True)
class Task:
    """One task row. Timestamps are UTC at millisecond precision; `outputs` hold storage keys.

    `error` is the last error seen: set while a retry waits after a failed attempt, final once
    `failed`, cleared on success. `progress` is 0..1 over all stages; `stage` names the current one.
    """

    task_id: str
    account_id: str
    external_task_id: str | None
    kind: Kind
    model: str
    request: dict[str, Any]
    status: Status
    priority: int
    attempt: int
    max_attempts: int
    lease_owner: str | None
    lease_expires_at: datetime | None
    cancel_requested: bool
    progress: float
    stage: str
    preview_key: str | None
    outputs: list[dict[str, Any]]
    error: str | None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime | None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of `TaskStore.list`, newest first, and the number of tasks matching the filters."""

    tasks: tuple[Task, ...]
    total: int


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """What a heartbeat tells the worker: stop when `should_stop` (lease lost or cancel requested)."""

    held: bool
    cancel_requested: bool

    @property
    def should_stop(self) -> bool:
        return not self.held or self.cancel_requested


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A registered worker and the models it serves, each `{"id", "family", "capabilities", "error"}`.

    `capabilities` is a `kinema.spec.Capabilities` as JSON, or None with `error` saying why the model
    cannot load. `seen_at` is the last registration: a worker re-registers on every heartbeat interval.
    """

    worker_id: str
    models: list[dict[str, Any]]
    started_at: datetime
    seen_at: datetime


class TaskStore(Protocol):
    """The durable record of every task, and the queue workers claim from.

    Account-scoped operations treat another account's task as missing. A worker id must be unique per
    worker process (host, pid and a random suffix), so a restarted worker never inherits a dead lease.

    A store may be given one `kinema.db.events.TaskHook`: it runs inside the write transaction of every
    status change (created, requeued by `retry`, failed, cancelled, succeed), and if it raises, the change
    rolls back and its exception reaches the caller unchanged.

    A store may also be given `callbacks` (`kinema.jobs.outbox.CallbackFor`): every write that changes a
    task (create, claim, a lease settled by a claim, complete, fail, cancel, retry; not heartbeats)
    records the callback it returns in `outbox`, in the same transaction.
    """

    @property
    def outbox(self) -> Outbox:
        """The callbacks recorded by this store's changes, for senders to claim and deliver."""
        ...

    def write_turn(self) -> AbstractAsyncContextManager[bool]:
        """Await, without blocking the event loop, this process's turn to write on the loop, and hold
        it; yields True when the caller may then write through `on_loop` (memory; Postgres, which takes
        writers side by side; SQLite, whose other Kinema writers wait until the turn ends). Yields False
        when the turn did not come within the busy timeout: write on a thread then."""
        ...

    async def on_loop(self, call: Callable[..., T], *args: Any) -> T:
        """Run `call(*args)` — code that reads, or writes within `write_turn`, through this store — on
        the running event loop, never on a thread. Memory and SQLite run it directly (their reads never
        wait; their writes in the turn do not queue). Postgres runs it in SQLAlchemy's greenlet bridge on
        an asyncio connection pool of this loop, so each round trip is awaited and other requests go on
        meanwhile. `call` must do no other blocking I/O (fetches, decoding media, remote storage)."""
        ...

    async def leave_loop(self) -> None:
        """Close what `on_loop` opened for the running loop (Postgres connections); before it ends."""
        ...

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
        """Queue a task atomically; raises `DuplicateTask` (creating nothing) on a reused external id."""
        ...

    def get(self, task_id: str, account_id: str) -> Task | None: ...

    def get_by_external(self, external_task_id: str, account_id: str) -> Task | None: ...

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
        """The account's tasks, newest first, `limit` (1..MAX_PAGE) of them after skipping `offset`;
        only of `kinds`, `statuses`, `models` when given, created in [created_after, created_before)."""
        ...

    def claim(
        self, worker_id: str, lease_seconds: float, models: Collection[str] | None = None
    ) -> Task | None:
        """Lease the next task in queue order to `worker_id`, or None if none is ready.

        A task's place in the queue is `created_at - priority * aging_seconds` (AGING_SECONDS unless the
        store was opened with another), earliest first: a higher priority counts as having waited
        longer, so it goes first among tasks submitted close together, but never starves older tasks
        forever. `retry` gives a task a fresh place; the re-queue after a lost lease or a retryable
        failure keeps the old one.

        First settles every expired lease: the task is queued again, or failed once its attempts are
        spent, or cancelled if a cancel was pending. `models` limits the claim to those models.
        """
        ...

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
        """Renew the lease and record progress; only the lease holder's heartbeat changes anything.

        A lease that ran out is still held until another worker's claim settles it, so a worker that
        stalled briefly keeps its task if nobody took it meanwhile.
        """
        ...

    def complete(self, task_id: str, worker_id: str, outputs: Sequence[Mapping[str, Any]]) -> Task:
        """Mark the task succeed with `outputs`; raises `LeaseLost` unless `worker_id` holds the lease.

        A cancel requested while the worker was finishing does not discard the finished outputs.
        """
        ...

    def fail(self, task_id: str, worker_id: str, *, error: str, retryable: bool) -> Task:
        """End the holder's attempt: queued again if retryable and attempts remain, else failed.

        A task with a pending cancel ends cancelled instead. Raises `LeaseLost` like `complete`.
        """
        ...

    def request_cancel(self, task_id: str, account_id: str) -> Task:
        """Cancel a queued task at once; flag a running one for its worker to stop between steps."""
        ...

    def retry(self, task_id: str, account_id: str) -> Task:
        """Queue a failed or cancelled task again, with fresh attempts and a fresh place in the queue."""
        ...

    def delete(self, task_id: str, account_id: str) -> None:
        """Remove a task that is not running (its media are the caller's to delete)."""
        ...

    def counts_by_status(self) -> dict[Status, int]:
        """Tasks per status over all accounts (every status present, zeros included)."""
        ...

    def expired(self, now: datetime, limit: int = 100) -> Sequence[Task]:
        """Finished tasks whose retention ended at or before `now`, oldest expiry first."""
        ...

    def register_worker(self, worker_id: str, models: Sequence[Mapping[str, Any]]) -> None:
        """Record that `worker_id` is alive and serves `models` (replacing its previous list).

        `seen_at` becomes now; `started_at` is set on the worker's first registration only.
        """
        ...

    def workers(self) -> builtins.list[WorkerInfo]:
        """Every registered worker, most recently seen first."""
        ...

    def remove_worker(self, worker_id: str) -> None:
        """Forget a worker (it stopped); removing one that is not registered does nothing."""
        ...

    def prune_workers(self, seen_before: datetime) -> int:
        """Forget workers last seen before `seen_before` (they died without `remove_worker`); how many."""
        ...

    def close(self) -> None: ...
