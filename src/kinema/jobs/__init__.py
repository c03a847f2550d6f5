"""The durable task store that is also the queue: SQL (SQLite, Postgres) and an in-memory fake.

Callers hold a `TaskStore`; `open_store(url)` builds the SQL one (migrating the database on open) and
`MemoryTaskStore()` the fake; both take a `TaskHook` that runs inside every status change's transaction
(`kinema.db.events`), a `CallbackFor` whose callbacks go into the store's outbox in that same
transaction (`kinema.jobs.outbox`), and an `aging_seconds` for the claim order. The store also keeps the
catalog of running workers and their models.
Nothing here imports torch or knows about HTTP or the engine; the database plumbing is `kinema.db`.
"""

from kinema.db.clock import Clock, FakeClock, SystemClock
from kinema.db.events import EVENT_NAMES, EventName, TaskEvent, TaskHook
from kinema.jobs.memory import MemoryTaskStore
from kinema.jobs.outbox import Callback, CallbackFor, MemoryOutbox, Outbox, OutboxEntry
from kinema.jobs.sql import SqlTaskStore, open_store
from kinema.jobs.sql_outbox import SqlOutbox
from kinema.jobs.store import (
    AGING_SECONDS,
    DEFAULT_RETENTION,
    FINISHED,
    STATUSES,
    DuplicateTask,
    Heartbeat,
    InvalidTransition,
    LeaseLost,
    Status,
    Task,
    TaskNotFound,
    TaskPage,
    TaskStore,
    WorkerInfo,
)

__all__ = [
    "AGING_SECONDS",
    "DEFAULT_RETENTION",
    "EVENT_NAMES",
    "FINISHED",
    "STATUSES",
    "Callback",
    "CallbackFor",
    "Clock",
    "DuplicateTask",
    "EventName",
    "FakeClock",
    "Heartbeat",
    "InvalidTransition",
    "LeaseLost",
    "MemoryOutbox",
    "MemoryTaskStore",
    "Outbox",
    "OutboxEntry",
    "SqlOutbox",
    "SqlTaskStore",
    "Status",
    "SystemClock",
    "Task",
    "TaskEvent",
    "TaskHook",
    "TaskNotFound",
    "TaskPage",
    "TaskStore",
    "WorkerInfo",
    "open_store",
]
