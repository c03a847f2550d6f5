"""Retention: finished tasks whose time is up lose their media, then their rows; sent callbacks go too.

Media go first, so a sweep that dies halfway leaves rows that the next sweep finds again, never files
that nothing points at. Callbacks delivered or given up a retention period ago leave the outbox.
Sweeping twice, or from two workers at once, is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime

from kinema.jobs.store import InvalidTransition, TaskNotFound, TaskStore
from kinema.storage.base import MediaStorage
from kinema.storage.layout import media_keys

log = logging.getLogger(__name__)


def sweep(store: TaskStore, storage: MediaStorage, now: datetime, limit: int = 100) -> int:
    """Delete up to `limit` tasks whose retention ended by `now`, media first; return how many went.

    Also deletes the callbacks that finished a retention period before `now`.
    """
    removed = 0
    for task in store.expired(now, limit):
        for key in sorted(media_keys(task)):
            storage.delete(key)
        try:
            store.delete(task.task_id, task.account_id)
        except (TaskNotFound, InvalidTransition):
            continue  # another sweeper got there first, or the task was retried meanwhile
        removed += 1
    if removed:
        log.info("retention: deleted %d expired tasks and their media", removed)
    if pruned := store.outbox.prune(now):
        log.info("retention: deleted %d finished callbacks", pruned)
    return removed
