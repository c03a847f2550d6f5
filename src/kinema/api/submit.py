"""Turning an accepted HTTP request into a queued task: model, media, checks, then one insert.

Both surfaces (Kling's `/v1/...` and Kinema's `/api/v1/...`) end here. Everything that can be
checked before a worker runs is checked here, so a bad request is a 4xx now rather than a failed task
later: the model is served and can do this kind, the sizes resolve, input images decode within the
limits, the video to extend exists, belongs to the caller and leaves room under the 3-minute cap.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from kinema.api.auth import Caller
from kinema.api.catalog import CatalogEntry
from kinema.api.context import ApiContext
from kinema.api.errors import ApiError
from kinema.errors import InvalidRequest
from kinema.jobs import DuplicateTask, Task
from kinema.net.fetch import FetchError, check_target
from kinema.net.images import load_image_input
from kinema.spec import (
    Capabilities,
    ExtendVideo,
    ImageToVideo,
    TextToImage,
    TextToVideo,
    resolve,
)
from kinema.storage.layout import input_key

AnySpec = TextToVideo | ImageToVideo | ExtendVideo | TextToImage
MAX_URL = 2048


def model_for(ctx: ApiContext, name: str | None, field: str = "model_name") -> CatalogEntry:
    """The served model behind a Kling model name or a Kinema model id."""
    requested = name or "kling-v1"
    entries = ctx.catalog.entries()
    model_id = requested
    if requested not in entries:
        mapping = ctx.config.kling_models
        model_id = mapping.get(requested) or (mapping.get("*", "") if requested.startswith("kling") else "")
    entry = entries.get(model_id)
    if entry is None:
        served = ", ".join(sorted(entries)) or "none yet (start a worker: `kinema worker`)"
        raise ApiError(1201, f"{field} {requested!r} is not served here; served models: {served}")
    if entry.capabilities is None:
        raise ApiError(1201, f"model {entry.id!r} cannot be used: {entry.error or 'it failed to load'}")
    return entry


def guidance_from_cfg(cfg_scale: float | None, caps: Capabilities) -> float | None:
    """Kling's cfg_scale in [0, 1] onto the model's guidance range, 0.5 landing on the model's default."""
    if cfg_scale is None:
        return None
    low, high = caps.guidance_range
    default = caps.guidance
    if cfg_scale <= 0.5:
        return round(low + (default - low) * cfg_scale / 0.5, 4)
    return round(default + (high - default) * (cfg_scale - 0.5) / 0.5, 4)


def new_seed() -> int:
    return secrets.randbelow(2**31)


def check_callback(ctx: ApiContext, url: str | None) -> str | None:
    if url is None or url == "":
        return None
    if len(url) > MAX_URL or not url.lower().startswith(("http://", "https://")):
        raise ApiError(1201, "callback_url must be an http(s) URL of at most 2048 characters")
    try:
        check_target(url, ctx.config.fetch_policy)
    except FetchError as exc:
        raise ApiError(1201, f"callback_url: {exc}") from None
    return url


async def callback_of(ctx: ApiContext, url: str | None) -> str | None:
    """`check_callback` on the thread pool (it may resolve the host's name), skipped when there is none."""
    if url is None or url == "":
        return None
    return await run_in_threadpool(check_callback, ctx, url)


def store_image(ctx: ApiContext, value: str, field: str, *, check_aspect: bool) -> tuple[str, float]:
    """Decode (or fetch) an input image within the limits and keep it; returns (key, width/height)."""
    try:
        image = load_image_input(
            value, field=field, policy=ctx.config.fetch_policy, check_aspect=check_aspect
        )
    except InvalidRequest as exc:
        raise ApiError(1201, str(exc)) from None
    key = input_key(field)
    ctx.storage.put_bytes(key, image.png, content_type="image/png")
    return key, image.width / image.height


def store_images(
    ctx: ApiContext, frames: dict[str, str | None], uploaded: list[str]
) -> tuple[dict[str, str], float]:
    """Store the given first/last frames; returns their keys by field and the first one's width/height.

    Each key is appended to `uploaded` as soon as it exists, so the caller can remove them if the
    request fails later.
    """
    keys: dict[str, str] = {}
    ratio: float | None = None
    for field, value in frames.items():
        if value:
            key, aspect = store_image(ctx, value, field, check_aspect=field == "image")
            uploaded.append(key)
            keys[field] = key
            ratio = ratio or aspect
    return keys, ratio or 16 / 9


@dataclass(frozen=True)
class ParentVideo:
    id: str
    task_id: str
    key: str
    duration: float
    spec: dict[str, Any]

    def record(self) -> dict[str, Any]:
        return {"id": self.id, "task_id": self.task_id, "key": self.key, "duration": self.duration}


def parent_video(ctx: ApiContext, caller: Caller, video_id: str) -> ParentVideo:
    """The caller's finished video `video_id` (`<task_id>-<index>`); anything else is 1203."""
    task_id, _, index = video_id.rpartition("-")
    task = ctx.store.get(task_id, caller.account_id) if task_id and index.isdigit() else None
    missing = ApiError(1203, f"video_id {video_id!r} does not exist; use a video id from a finished task")
    if task is None or task.status != "succeed":
        raise missing
    for output in task.outputs:
        if output.get("id") == video_id and output.get("type") == "video":
            return ParentVideo(
                id=video_id,
                task_id=task.task_id,
                key=output["key"],
                duration=float(output.get("duration") or 0.0),
                spec=dict(task.request.get("spec", {})),
            )
    raise missing


def submit(
    ctx: ApiContext,
    caller: Caller,
    spec: AnySpec,
    entry: CatalogEntry,
    *,
    api: str,
    external_task_id: str | None,
    callback_url: str | None,
    parent: ParentVideo | None = None,
    extra: dict[str, Any] | None = None,
    priority: int | None = None,
    uploaded: tuple[str, ...] = (),
) -> Task:
    """Check `spec` against the model and queue it; uploaded input keys are removed if nothing is queued."""
    try:
        caps = entry.capabilities
        assert caps is not None
        priority = _admit(ctx, caller) if priority is None else priority
        if spec.seed is None:
            spec = spec.model_copy(update={"seed": new_seed()})
        try:
            resolve(spec, caps, seed=spec.seed or 0)
        except InvalidRequest as exc:
            raise ApiError(1201, str(exc)) from None
        request: dict[str, Any] = {
            "spec": spec.model_dump(mode="json", exclude_none=True),
            "api": api,
        }
        if callback_url:
            request["callback_url"] = callback_url
        if parent is not None:
            request["parent_video"] = parent.record()
        if extra:
            request.update(extra)
        request["billing"] = bill(ctx, spec, entry.id, parent)
        try:
            task = ctx.store.create(
                account_id=caller.account_id,
                kind=spec.kind,
                model=entry.id,
                request=request,
                external_task_id=external_task_id,
                priority=priority,
            )
        except DuplicateTask as exc:
            raise ApiError(1201, str(exc)) from None
    except BaseException:
        for key in uploaded:
            ctx.storage.delete(key)
        raise
    ctx.notify(task)
    return task


def _admit(ctx: ApiContext, caller: Caller) -> int:
    """Rate-limit the caller by plan (1302) and return the queue priority their plan gives."""
    plan = ctx.plans.plan_of(caller.account_id) if ctx.plans is not None else None
    if plan is None:
        return 0
    ctx.rate.take(caller.account_id, plan.requests_per_minute)
    return plan.priority


def bill(ctx: ApiContext, spec: AnySpec, model: str, parent: ParentVideo | None) -> dict[str, Any]:
    """What the task costs and holds, for the billing hook that charges it in the create transaction."""
    if isinstance(spec, TextToImage):
        seconds, slots = 0.0, spec.n
    elif isinstance(spec, ExtendVideo):
        seconds, slots = spec.seconds, 1
    else:
        seconds, slots = spec.duration or 5.0, 1
    total = seconds + (parent.duration if parent is not None else 0.0)
    if isinstance(spec, TextToImage):
        credits = ctx.prices.price(model, spec.kind, spec.mode, seconds, spec.n)
    else:  # every draw is a video of its own
        credits = spec.n * ctx.prices.price(model, spec.kind, spec.mode, seconds, 1)
    return {"credits": credits, "seconds": seconds, "mode": spec.mode, "slots": slots, "total_seconds": total}


def spec_or_error(factory: type[AnySpec], **fields: Any) -> AnySpec:
    """Build a spec request, turning its validation errors into 1201 naming the field."""
    try:
        return factory(**{k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise ApiError(1201, f"{where}: {message}" if where else message) from None
