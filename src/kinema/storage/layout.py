"""Where a task's media live: the one key layout that the API, the workers and retention share.

Result keys depend only on the task id and the candidate index (docs/service.md), so a retried attempt
overwrites what a crashed one left behind. Uploaded inputs live under `inputs/<upload id>/` and belong
to the one task that names them. This module knows keys, not the task store or the engine.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from kinema.storage.base import StorageError, check_key

INPUTS = "inputs/"
MEDIA_FIELDS = ("image", "image_tail", "video")  # the spec fields that hold storage keys
MAX_CANDIDATES_KEPT = 16  # candidate keys swept per task at most (the spec allows fewer)


class TaskMedia(Protocol):
    """What the layout reads of a task (`kinema.jobs.Task` is one)."""

    @property
    def task_id(self) -> str: ...
    @property
    def preview_key(self) -> str | None: ...
    @property
    def outputs(self) -> Sequence[Mapping[str, Any]]: ...
    @property
    def request(self) -> Mapping[str, Any]: ...


def preview_key(task_id: str) -> str:
    return f"tasks/{task_id}/preview.png"


def output_keys(task_id: str, index: int) -> tuple[str, str, str]:
    """The video, its poster and the image key of candidate `index`."""
    base = f"tasks/{task_id}"
    return f"{base}/video-{index}.mp4", f"{base}/video-{index}.png", f"{base}/image-{index}.png"


def input_key(field: str) -> str:
    """A fresh key for an input image uploaded for `field` (image, image_tail)."""
    return f"{INPUTS}{uuid.uuid4().hex}/{field}.png"


def media_keys(task: TaskMedia) -> set[str]:
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
    spec = spec if isinstance(spec, Mapping) else {}
    count = spec.get("n", 1)
    for index in range(count if isinstance(count, int) and 0 < count <= MAX_CANDIDATES_KEPT else 1):
        keys.update(output_keys(task.task_id, index))
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
