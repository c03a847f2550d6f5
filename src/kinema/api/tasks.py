"""Kinema's own task API under /api/v1: every kind in Kinema's vocabulary, with progress and control.

Create (with `n` draws), get, list with filters, cancel (queued or running), retry (failed or
cancelled), delete (with its media), a Server-Sent Events stream of status, progress and previews, and
the models with their capabilities. Responses wear the same envelope as the Kling endpoints.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from kinema.api import submit as sub
from kinema.api.auth import Caller
from kinema.api.bodies import Body
from kinema.api.context import ApiContext
from kinema.api.deps import caller, context, quick_read, quick_write
from kinema.api.errors import ApiError, envelope
from kinema.api.views import MAX_MS, kinema_task
from kinema.jobs import InvalidTransition, Status, Task, TaskNotFound
from kinema.spec import (
    MAX_PROMPT,
    MAX_SECONDS,
    ExtendVideo,
    ImageToVideo,
    Kind,
    TextToImage,
    TextToVideo,
    nearest_aspect,
)
from kinema.storage.layout import media_keys

router = APIRouter(prefix="/api/v1", tags=["kinema"])
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Caller, Depends(caller)]


class TaskCreate(Body):
    """One task in Kinema's parameter vocabulary; fields a kind does not use must be left out."""

    model_config = ConfigDict(extra="forbid")

    kind: Kind
    model: str = Field("builtin", max_length=128)
    prompt: str = Field("", max_length=MAX_PROMPT)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)
    mode: Literal["std", "pro"] = "std"
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    duration: float | None = Field(None, gt=0, le=MAX_SECONDS, description="seconds (video kinds)")
    seconds: float | None = Field(None, gt=0, le=MAX_SECONDS, description="seconds to add (extend)")
    n: int = Field(1, ge=1, le=9, description="draws: 1-4 for videos, 1-9 for images")
    seed: int | None = Field(None, ge=0, lt=2**63)
    num_inference_steps: int | None = Field(None, ge=1, le=200)
    guidance_scale: float | None = Field(None, ge=0, le=30)
    image: str | None = Field(None, description="first frame: http(s) URL or raw base64 (JPG/PNG)")
    image_tail: str | None = Field(None, description="last frame: http(s) URL or raw base64")
    video_id: str | None = Field(None, max_length=128, description="the video to extend")
    callback_url: str | None = Field(None, max_length=2048)
    external_task_id: str | None = Field(None, min_length=1, max_length=256)


def _view(ctx: ApiContext, task: Task) -> dict[str, Any]:
    return kinema_task(task, ctx.storage, link_seconds=ctx.config.link_seconds)


def _owned(ctx: ApiContext, who: Caller, task_id: str) -> Task:
    task = ctx.store.get(task_id, who.account_id)
    if task is None:
        raise ApiError(1203, f"task {task_id!r} does not exist")
    return task


@router.post("/tasks")
async def create_task(body: TaskCreate, ctx: Ctx, who: Who) -> dict[str, Any]:
    _check_fields(body)
    callback = await sub.callback_of(ctx, body.callback_url)
    if body.image or body.image_tail:  # decoded, perhaps fetched, and stored: the thread pool
        return await run_in_threadpool(_create_task, body, ctx, who, callback)
    return await quick_write(ctx, _create_task, body, ctx, who, callback)


def _check_fields(body: TaskCreate) -> None:
    unused = {
        "text2video": ("image", "image_tail", "video_id", "seconds"),
        "image2video": ("video_id", "seconds"),
        "extend": ("image", "image_tail", "duration"),
        "text2image": ("image", "image_tail", "video_id", "seconds", "duration"),
    }[body.kind]
    given = [f for f in unused if getattr(body, f) is not None]
    if given:
        raise ApiError(1201, f"{', '.join(given)} cannot be used with kind {body.kind!r}; leave it out")
    if body.kind != "text2image" and body.n > 4:
        raise ApiError(1201, "n: a video request draws at most 4 candidates")


def _create_task(body: TaskCreate, ctx: ApiContext, who: Caller, callback: str | None) -> dict[str, Any]:
    common: dict[str, Any] = dict(
        prompt=body.prompt, negative_prompt=body.negative_prompt, mode=body.mode, n=body.n, seed=body.seed,
        num_inference_steps=body.num_inference_steps, guidance_scale=body.guidance_scale,
    )  # fmt: skip
    uploaded: list[str] = []
    parent = None
    try:
        if body.kind == "extend":
            if not body.video_id:
                raise ApiError(1201, "video_id: extend needs the id of a finished video")
            parent = sub.parent_video(ctx, who, body.video_id)
            chosen = body.model if "model" in body.model_fields_set else parent.spec.get("model")
            entry = sub.model_for(ctx, chosen, "model")
            seconds = body.seconds or ctx.config.extend_step_seconds
            if parent.duration + seconds > ctx.config.max_extend_seconds + 0.5:
                raise ApiError(
                    1201,
                    f"video {body.video_id} is {parent.duration:.1f} s long; adding {seconds:g} s would pass "
                    f"the {ctx.config.max_extend_seconds:g}-second limit",
                )
            spec: sub.AnySpec = sub.spec_or_error(
                ExtendVideo, model=entry.id, video=parent.key, seconds=seconds,
                aspect_ratio=parent.spec.get("aspect_ratio", "16:9"),
                **{**common, "prompt": body.prompt or str(parent.spec.get("prompt", ""))},
            )  # fmt: skip
        else:
            if body.kind == "image2video" and not (body.image or body.image_tail):
                raise ApiError(1201, "image: image2video needs image (first frame), image_tail or both")
            entry = sub.model_for(ctx, body.model, "model")
            if body.kind == "image2video":
                frames = {"image": body.image, "image_tail": body.image_tail}
                keys, ratio = sub.store_images(ctx, frames, uploaded)
                spec = sub.spec_or_error(
                    ImageToVideo, model=entry.id, aspect_ratio=nearest_aspect(ratio),
                    duration=body.duration, **keys, **common,
                )  # fmt: skip
            elif body.kind == "text2video":
                spec = sub.spec_or_error(
                    TextToVideo, model=entry.id, aspect_ratio=body.aspect_ratio, duration=body.duration,
                    **common,
                )  # fmt: skip
            else:
                spec = sub.spec_or_error(
                    TextToImage, model=entry.id, aspect_ratio=body.aspect_ratio, **common
                )
    except BaseException:
        for key in uploaded:
            ctx.storage.delete(key)
        raise
    task = sub.submit(
        ctx, who, spec, entry, api="kinema", external_task_id=body.external_task_id,
        callback_url=callback, parent=parent, uploaded=tuple(uploaded),
    )  # fmt: skip
    return envelope(_view(ctx, task))


@router.get("/tasks/{task_id}")
async def get_task(task_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    # The polling path: a coroutine, whose read runs on the event loop when the store allows.
    return envelope(_view(ctx, await quick_read(ctx, _owned, ctx, who, task_id)))


@router.get("/tasks")
def list_tasks(
    ctx: Ctx,
    who: Who,
    kind: Annotated[list[Kind] | None, Query()] = None,
    status: Annotated[list[Status] | None, Query()] = None,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    external_task_id: Annotated[str | None, Query(max_length=256)] = None,
    model: Annotated[list[str] | None, Query(description="Only these models' tasks.")] = None,
    created_after: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="Only tasks created at or after (Unix ms).")
    ] = None,
    created_before: Annotated[
        int | None, Query(ge=0, le=MAX_MS, description="Only tasks created before (Unix ms).")
    ] = None,
) -> dict[str, Any]:
    """The caller's tasks, newest first, filtered by kind, status, model and creation time."""
    if model is not None and any(len(m) > 128 for m in model):
        raise ApiError(1201, "model: a model id is at most 128 characters")
    if external_task_id is not None:
        found = ctx.store.get_by_external(external_task_id, who.account_id)
        tasks = [found] if found else []
        total = len(tasks)
    else:
        page = ctx.store.list(
            who.account_id,
            kinds=kind,
            statuses=status,
            offset=offset,
            limit=limit,
            models=model,
            created_after=_moment(created_after),
            created_before=_moment(created_before),
        )
        tasks, total = list(page.tasks), page.total
    return envelope({"tasks": [_view(ctx, t) for t in tasks], "total": total, "offset": offset})


def _moment(ms_value: int | None) -> datetime | None:
    return datetime.fromtimestamp(ms_value / 1000, UTC) if ms_value is not None else None


def _change(ctx: ApiContext, who: Caller, task_id: str, change: Callable[[str, str], Task]) -> dict[str, Any]:
    """Apply a store transition to the caller's task, announce it, and answer with the task."""
    try:
        task = change(task_id, who.account_id)
    except TaskNotFound:
        raise ApiError(1203, f"task {task_id!r} does not exist") from None
    except InvalidTransition as exc:
        raise ApiError(1201, str(exc)) from None
    ctx.notify(task)
    return envelope(_view(ctx, task))


@router.post("/tasks/{task_id}/cancel")
def cancel_task(task_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    return _change(ctx, who, task_id, ctx.store.request_cancel)


@router.post("/tasks/{task_id}/retry")
def retry_task(task_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    return _change(ctx, who, task_id, ctx.store.retry)


@router.delete("/tasks/{task_id}")
def delete_task(task_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    task = _owned(ctx, who, task_id)
    try:
        ctx.store.delete(task_id, who.account_id)
    except TaskNotFound:
        raise ApiError(1203, f"task {task_id!r} does not exist") from None
    except InvalidTransition as exc:
        raise ApiError(1201, f"{exc}; cancel it first") from None
    for key in sorted(media_keys(task)):
        ctx.storage.delete(key)
    return envelope({"id": task_id, "deleted": True})


@router.get("/tasks/{task_id}/events")
async def task_events(task_id: str, request: Request, ctx: Ctx, who: Who) -> StreamingResponse:
    """Server-Sent Events: a `task` event whenever the task changes, until it finishes.

    Each event's data is the task as `GET /api/v1/tasks/{id}` returns it (status, progress 0..1, stage,
    `preview_url` of the latest preview frame). Comments keep idle connections alive.
    """
    first = await quick_read(ctx, _owned, ctx, who, task_id)

    async def stream() -> AsyncIterator[str]:
        task: Task | None = first
        last = None
        idle = 0.0
        while task is not None:
            stamp = (task.updated_at, task.progress, task.status, task.preview_key)
            if stamp != last:
                last, idle = stamp, 0.0
                data = json.dumps(_view(ctx, task))
                yield f"event: task\nid: {task.updated_at.timestamp():.3f}\ndata: {data}\n\n"
                if task.finished:
                    return
            elif idle >= 15.0:
                idle = 0.0
                yield ": keep-alive\n\n"
            if await request.is_disconnected():
                return
            await asyncio.sleep(ctx.config.sse_poll_seconds)
            idle += ctx.config.sse_poll_seconds
            task = await quick_read(ctx, ctx.store.get, task_id, who.account_id)
        yield "event: deleted\ndata: {}\n\n"

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.get("/models")
def list_models(ctx: Ctx, who: Who) -> dict[str, Any]:
    del who
    models = []
    for entry in sorted(ctx.catalog.entries().values(), key=lambda e: e.id):
        models.append(
            {
                "id": entry.id,
                "family": entry.family,
                "online": entry.online,
                "workers": entry.workers,
                "error": entry.error,
                "capabilities": entry.capabilities.model_dump(mode="json") if entry.capabilities else None,
            }
        )
    return envelope({"models": models})
