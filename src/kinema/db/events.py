"""What a task store tells its one hook about each status change, inside the change's own transaction.

A store calls its `TaskHook` after the task's row is written and before the transaction commits, with the
transaction's `Connection` (None in the in-memory store) and a `TaskEvent`. Whatever the hook writes on
that connection commits or rolls back together with the task; if the hook raises, the whole change rolls
back and the exception reaches the store's caller unchanged. This is how credits move with state changes:
charged on `created`, refunded on `failed` or `cancelled`, settled on `succeed`.

The hook must not commit, roll back or close the connection, nor call the store (on SQLite that waits
for the write lock the hook's own transaction holds); it runs while the store holds the task's row lock
(and, on SQLite, the database's write lock), so it should be short. This module lives below
both the task store and the accounts so that either may name these types; it knows no table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, get_args

from sqlalchemy import Connection

from kinema.spec import Kind

EventName = Literal["created", "requeued", "failed", "cancelled", "succeed"]
EVENT_NAMES: tuple[EventName, ...] = get_args(EventName)


@dataclass(frozen=True, slots=True)
class TaskEvent:
    """One status change of one task, as its hook sees it; fired exactly once per change.

    - `created`: the task was queued (`create`).
    - `requeued`: a user queued a failed or cancelled task again (`retry`), with fresh attempts. The
      store's own re-queue after a retryable failure or a lost lease fires nothing: the task stays alive.
    - `failed`: attempts are spent or the failure was final (`fail`, or a lease that expired on the
      last attempt, settled by `claim`).
    - `cancelled`: a queued task was cancelled, or a running one with a pending cancel stopped (`fail`)
      or lost its worker (settled by `claim`).
    - `succeed`: the worker delivered its outputs (`complete`).

    `request` is a copy of the task's request; `attempt` is the task's attempt count after the change.
    """

    event: EventName
    task_id: str
    account_id: str
    kind: Kind
    model: str
    request: dict[str, Any]
    attempt: int


TaskHook: TypeAlias = Callable[[Connection | None, TaskEvent], None]
"""Called inside the write transaction of every status change; see the module docstring."""
