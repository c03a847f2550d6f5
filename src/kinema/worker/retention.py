"""Retention: finished tasks whose time is up lose their media, then their rows; sent callbacks go too.

Media go first, so a sweep that dies halfway leaves rows that the next sweep finds again, never files
that nothing points at. Callbacks delivered or given up a retention period ago leave the outbox.
Sweeping twice, or from two workers at once, is harmless.
"""

from __future__ import annotations

import logging
from datetime import datetime

from kinema.jobs.store import InvalidTransition, Task, TaskNotFound, TaskStore
from kinema.storage.base import MediaStorage, StorageError, check_key
from kinema.worker.media import MEDIA_FIELDS, output_keys, preview_key

log = logging.getLogger(__name__)
INPUTS = "inputs/"


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


def media_keys(task: Task) -> set[str]:
    """Every key the task may own: its outputs, its preview and the inputs uploaded for it.

    Besides the keys recorded in the row this covers the fixed keys a crashed attempt may have written.
    Media of other tasks (`tasks/<other>/video-0.mp4`, the video an extension continues) are left alone.
    """
    keys: set[str] = {preview_key(task.task_id)}
    if task.preview_key:
        keys.add(task.preview_key)
    for output in task.outputs:
        keys.update(output[name] for name in ("key", "poster_key") if isinstance(output.get(name), str))
    spec = task.request.get("spec")
    spec = spec if isinstance(spec, dict) else {}
    count = spec.get("n", 1)
    for index in range(count if isinstance(count, int) and 0 < count <= 16 else 1):
        keys.update(output_keys(task.task_id, index))
    # Uploaded inputs (`inputs/<task id or upload id>/...`) belong to the one task that names them.
    keys.update(
        key for name in MEDIA_FIELDS if isinstance(key := spec.get(name), str) and key.startswith(INPUTS)
    )
    return {key for key in keys if _valid(key)}


def _valid(key: str) -> bool:
    try:
        check_key(key)
    except StorageError:
        return False
    return True
