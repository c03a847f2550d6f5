"""The durable task store that is also the queue: SQL (SQLite, Postgres) and an in-memory fake.

Callers hold a `TaskStore`; `open_store(url)` builds the SQL one (migrating the database on open) and
`MemoryTaskStore()` the fake. Nothing here imports torch or knows about HTTP or the engine.
"""

from kinema.jobs.clock import Clock, FakeClock, SystemClock
from kinema.jobs.memory import MemoryTaskStore
from kinema.jobs.sql import SqlTaskStore, open_store
from kinema.jobs.store import (
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
)

__all__ = [
    "DEFAULT_RETENTION",
    "FINISHED",
    "STATUSES",
    "Clock",
    "DuplicateTask",
    "FakeClock",
    "Heartbeat",
    "InvalidTransition",
    "LeaseLost",
    "MemoryTaskStore",
    "SqlTaskStore",
    "Status",
    "SystemClock",
    "Task",
    "TaskNotFound",
    "TaskPage",
    "TaskStore",
    "open_store",
]
