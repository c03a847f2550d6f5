"""Small helpers shared by the task-store suites: make a task, fetch it again, the lease they use."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kinema.jobs import Task, TaskStore

LEASE = 30.0
OpenConfigured = Callable[..., TaskStore]  # the conftest fixture `open_configured`


def make(store: TaskStore, account: str = "acme", **overrides: Any) -> Task:
    arguments: dict[str, Any] = {
        "account_id": account,
        "kind": "text2video",
        "model": "builtin",
        "request": {"prompt": "a red circle moving right"},
    }
    arguments.update(overrides)
    return store.create(**arguments)


def refetch(store: TaskStore, task: Task) -> Task:
    found = store.get(task.task_id, task.account_id)
    assert found is not None, f"task {task.task_id} vanished"
    return found
