"""Tasks as JSON: the Kling task object (KLING_API.md §3) and Kinema's richer view.

Both turn storage keys into signed links that expire; the database never holds a URL. These functions
are also what callbacks deliver, so the composition root uses them for worker processes too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from kinema.jobs import Task
from kinema.spec import Kind
from kinema.storage.base import MediaStorage

KLING_FAMILY: dict[str, Kind] = {
    "text2video": "text2video",
    "image2video": "image2video",
    "video-extend": "extend",
    "generations": "text2image",
}


MAX_MS = 253402300799999  # the last millisecond of year 9999: query bounds in Unix milliseconds


def ms(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1000)


def _duration(seconds: Any) -> str:
    return f"{float(seconds):.1f}" if seconds is not None else "0"


def kling_status(task: Task) -> tuple[str, str]:
    """Kling status and message: cancelled reads as failed "cancelled"; queued retries stay processing."""
    if task.status == "cancelled":
        return "failed", "cancelled"
    if task.status == "failed":
        return "failed", task.error or "failed"
    if task.status == "submitted" and task.attempt > 0:
        return "processing", ""  # a retry after a lost worker: still in progress for the client
    return task.status, ""


def kling_task(task: Task, storage: MediaStorage, *, link_seconds: int) -> dict[str, Any]:
    status, message = kling_status(task)
    info: dict[str, Any] = {}
    if task.external_task_id is not None:
        info["external_task_id"] = task.external_task_id
    parent = task.request.get("parent_video")
    if parent:
        info["parent_video"] = {
            "id": parent["id"],
            "url": _link(storage, parent.get("key"), link_seconds),
            "duration": _duration(parent.get("duration")),
        }
    result: dict[str, Any] = {}
    if task.kind == "text2image":
        result["images"] = [
            {"index": o["index"], "url": _link(storage, o["key"], link_seconds)}
            for o in task.outputs
            if task.status == "succeed"
        ]
    else:
        result["videos"] = [
            {
                "id": o["id"],
                "url": _link(storage, o["key"], link_seconds),
                "duration": _duration(o.get("duration")),
            }
            for o in task.outputs
            if task.status == "succeed"
        ]
    return {
        "task_id": task.task_id,
        "task_status": status,
        "task_status_msg": message,
        "task_info": info,
        "task_result": result,
        "created_at": ms(task.created_at),
        "updated_at": ms(task.updated_at),
    }


def kinema_task(task: Task, storage: MediaStorage, *, link_seconds: int) -> dict[str, Any]:
    """Everything a Kinema client may show: status, progress, stage, preview, outputs, the request."""
    spec = dict(task.request.get("spec", {}))
    outputs = []
    for o in task.outputs if task.status == "succeed" else []:
        item = {k: v for k, v in o.items() if k not in ("key", "poster_key")}
        item["url"] = _link(storage, o.get("key"), link_seconds)
        if o.get("poster_key"):
            item["poster_url"] = _link(storage, o["poster_key"], link_seconds)
        outputs.append(item)
    for field in ("image", "image_tail", "video"):
        if spec.get(field):
            spec[f"{field}_url"] = _link(storage, spec[field], link_seconds)
            del spec[field]
    parent = task.request.get("parent_video")
    running = task.status in ("submitted", "processing")
    return {
        "id": task.task_id,
        "external_task_id": task.external_task_id,
        "kind": task.kind,
        "model": task.model,
        "status": task.status,
        "progress": 1.0 if task.status == "succeed" else round(task.progress, 4),
        "stage": _stage(task),
        "error": task.error if task.status in ("failed", "cancelled") else None,
        "attempt": task.attempt,
        "max_attempts": task.max_attempts,
        "priority": task.priority,
        "cancel_requested": task.cancel_requested,
        "preview_url": _link(storage, task.preview_key, link_seconds) if running else None,
        "params": spec,
        "parent_video": {"id": parent["id"], "duration": parent.get("duration")} if parent else None,
        "outputs": outputs,
        "created_at": ms(task.created_at),
        "updated_at": ms(task.updated_at),
        "started_at": ms(task.started_at),
        "finished_at": ms(task.finished_at),
        "expires_at": ms(task.expires_at),
    }


def _stage(task: Task) -> str:
    if task.status == "submitted":
        return "waiting to retry" if task.attempt > 0 else "queued"
    if task.status in ("succeed", "failed", "cancelled"):
        return task.status
    return task.stage or "starting"


def _link(storage: MediaStorage, key: str | None, link_seconds: int) -> str | None:
    return None if not key else storage.url(key, expires_in=link_seconds)
