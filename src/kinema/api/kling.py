"""The Kling-compatible task API (shared/KLING_API.md §4): create, query one, list, account costs.

Each family (`/v1/videos/text2video`, `/v1/videos/image2video`, `/v1/videos/video-extend`,
`/v1/images/generations`) has POST to create, GET `/{id}` for one task (task_id first, then
external_task_id) and GET for a page of the family's tasks, newest first.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from kinema.api import submit as sub
from kinema.api.auth import Caller
from kinema.api.bodies import Body
from kinema.api.context import ApiContext
from kinema.api.deps import caller, context, quick_read, quick_write
from kinema.api.errors import ApiError, envelope
from kinema.api.views import kling_task, ms
from kinema.jobs import Task
from kinema.spec import (
    MAX_PROMPT,
    ExtendVideo,
    ImageToVideo,
    Kind,
    TextToImage,
    TextToVideo,
    nearest_aspect,
)

router = APIRouter(tags=["kling"])

CAMERA_TYPES = ("simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward")
IMAGE_ASPECTS = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0, "4:3": 4 / 3, "3:4": 3 / 4, "3:2": 1.5,
                 "2:3": 2 / 3, "21:9": 21 / 9}  # fmt: skip


class CameraConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    horizontal: float = Field(0.0, ge=-10, le=10)
    vertical: float = Field(0.0, ge=-10, le=10)
    pan: float = Field(0.0, ge=-10, le=10)
    tilt: float = Field(0.0, ge=-10, le=10)
    roll: float = Field(0.0, ge=-10, le=10)
    zoom: float = Field(0.0, ge=-10, le=10)


class CameraControl(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["simple", "down_back", "forward_up", "right_turn_forward", "left_turn_forward"]
    config: CameraConfig | None = None

    @model_validator(mode="after")
    def _one_axis(self) -> CameraControl:
        if self.type == "simple":
            if self.config is None:
                raise ValueError("camera_control of type 'simple' needs a config")
            moved = [v for v in self.config.model_dump().values() if v != 0]
            if len(moved) != 1:
                raise ValueError("camera_control.config must have exactly one non-zero value")
        elif self.config is not None:
            raise ValueError(f"camera_control.config is only for type 'simple', not {self.type!r}")
        return self


class _Create(Body):
    model_config = ConfigDict(extra="ignore")  # Kling clients send fields Kinema does not use

    model_name: str | None = Field(None, max_length=128)
    model: str | None = Field(None, max_length=128)
    prompt: str = Field("", max_length=MAX_PROMPT)
    negative_prompt: str | None = Field(None, max_length=MAX_PROMPT)
    cfg_scale: float | None = Field(None, ge=0.0, le=1.0)
    callback_url: str | None = Field(None, max_length=2048)
    external_task_id: str | None = Field(None, min_length=1, max_length=256)


class _VideoCreate(_Create):
    mode: Literal["std", "pro"] = "std"
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    duration: Literal["5", "10"] = "5"
    camera_control: CameraControl | None = None

    @field_validator("duration", mode="before")
    @classmethod
    def _duration_text(cls, value: Any) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer():
            return str(int(value))
        return value


class Text2VideoCreate(_VideoCreate):
    pass


class Image2VideoCreate(_VideoCreate):
    image: str | None = Field(None, description="first frame: an http(s) URL or raw base64 (JPG/PNG)")
    image_tail: str | None = Field(None, description="last frame: an http(s) URL or raw base64")
    static_mask: str | None = None
    dynamic_masks: list[Any] | None = None


class ExtendCreate(_Create):
    video_id: str = Field(min_length=1, max_length=128)


class ImageCreate(_Create):
    n: int = Field(1, ge=1, le=9)
    aspect_ratio: Literal["16:9", "9:16", "1:1", "4:3", "3:4", "3:2", "2:3", "21:9"] = "16:9"
    image: str | None = None


def _created(task: Task) -> dict[str, Any]:
    info = {} if task.external_task_id is None else {"external_task_id": task.external_task_id}
    return envelope(
        {
            "task_id": task.task_id,
            "task_status": task.status,
            "task_info": info,
            "created_at": ms(task.created_at),
            "updated_at": ms(task.updated_at),
        }
    )


Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Caller, Depends(caller)]


# Creates without input images run on the event loop (`quick_write`); image2video decodes, perhaps
# fetches, and stores its images on the thread pool.
@router.post("/v1/videos/text2video")
async def create_text2video(body: Text2VideoCreate, ctx: Ctx, who: Who) -> dict[str, Any]:
    callback = await sub.callback_of(ctx, body.callback_url)
    return await quick_write(ctx, _text2video, body, ctx, who, callback)


def _text2video(body: Text2VideoCreate, ctx: ApiContext, who: Caller, callback: str | None) -> dict[str, Any]:
    entry = sub.model_for(ctx, body.model_name or body.model)
    assert entry.capabilities is not None
    spec = sub.spec_or_error(
        TextToVideo,
        model=entry.id,
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        mode=body.mode,
        aspect_ratio=body.aspect_ratio,
        duration=float(body.duration),
        guidance_scale=sub.guidance_from_cfg(body.cfg_scale, entry.capabilities),
    )
    extra = {"camera_control": body.camera_control.model_dump()} if body.camera_control else None
    task = sub.submit(
        ctx, who, spec, entry, api="kling", external_task_id=body.external_task_id,
        callback_url=callback, extra=extra,
    )  # fmt: skip
    return _created(task)


@router.post("/v1/videos/image2video")
def create_image2video(body: Image2VideoCreate, ctx: Ctx, who: Who) -> dict[str, Any]:
    if body.static_mask or body.dynamic_masks:
        raise ApiError(1201, "static_mask/dynamic_masks (motion brush) are not supported yet; leave them out")
    if not body.image and not body.image_tail:
        raise ApiError(1201, "image2video needs image (first frame), image_tail (last frame) or both")
    if body.camera_control and body.image and body.image_tail:
        raise ApiError(1201, "camera_control cannot be combined with image + image_tail; send one group")
    entry = sub.model_for(ctx, body.model_name or body.model)
    assert entry.capabilities is not None
    if body.image and body.image_tail and not entry.capabilities.first_last_frame:
        raise ApiError(1201, f"model {entry.id!r} cannot take both image and image_tail; send one")
    callback = sub.check_callback(ctx, body.callback_url)
    uploaded: list[str] = []
    try:
        keys, ratio = sub.store_images(ctx, {"image": body.image, "image_tail": body.image_tail}, uploaded)
        spec = sub.spec_or_error(
            ImageToVideo,
            model=entry.id,
            prompt=body.prompt,
            negative_prompt=body.negative_prompt,
            mode=body.mode,
            aspect_ratio=nearest_aspect(ratio),  # the image decides, not the request
            duration=float(body.duration),
            guidance_scale=sub.guidance_from_cfg(body.cfg_scale, entry.capabilities),
            **keys,
        )
    except BaseException:
        for key in uploaded:
            ctx.storage.delete(key)
        raise
    extra = {"camera_control": body.camera_control.model_dump()} if body.camera_control else None
    task = sub.submit(
        ctx, who, spec, entry, api="kling", external_task_id=body.external_task_id,
        callback_url=callback, extra=extra, uploaded=tuple(uploaded),
    )  # fmt: skip
    return _created(task)


@router.post("/v1/videos/video-extend")
async def create_extend(body: ExtendCreate, ctx: Ctx, who: Who) -> dict[str, Any]:
    callback = await sub.callback_of(ctx, body.callback_url)
    return await quick_write(ctx, _extend, body, ctx, who, callback)


def _extend(body: ExtendCreate, ctx: ApiContext, who: Caller, callback: str | None) -> dict[str, Any]:
    parent = sub.parent_video(ctx, who, body.video_id)
    step = ctx.config.extend_step_seconds
    if parent.duration + step > ctx.config.max_extend_seconds + 0.5:
        raise ApiError(
            1201,
            f"video {body.video_id} is {parent.duration:.1f} s long; extending it by {step:g} s would pass "
            f"the {ctx.config.max_extend_seconds:g}-second limit",
        )
    entry = sub.model_for(ctx, str(parent.spec.get("model", "")) or None)
    assert entry.capabilities is not None
    spec = sub.spec_or_error(
        ExtendVideo,
        model=entry.id,
        video=parent.key,
        seconds=step,
        prompt=body.prompt or str(parent.spec.get("prompt", "")),
        negative_prompt=body.negative_prompt,
        mode=parent.spec.get("mode", "std"),
        aspect_ratio=parent.spec.get("aspect_ratio", "16:9"),
        guidance_scale=sub.guidance_from_cfg(body.cfg_scale, entry.capabilities),
    )
    task = sub.submit(
        ctx, who, spec, entry, api="kling", external_task_id=body.external_task_id,
        callback_url=callback, parent=parent,
    )  # fmt: skip
    return _created(task)


@router.post("/v1/images/generations")
async def create_image(body: ImageCreate, ctx: Ctx, who: Who) -> dict[str, Any]:
    if body.image:
        raise ApiError(1201, "image (a reference image) is not supported yet; leave it out")
    callback = await sub.callback_of(ctx, body.callback_url)
    return await quick_write(ctx, _image, body, ctx, who, callback)


def _image(body: ImageCreate, ctx: ApiContext, who: Caller, callback: str | None) -> dict[str, Any]:
    entry = sub.model_for(ctx, body.model_name or body.model)
    assert entry.capabilities is not None
    spec = sub.spec_or_error(
        TextToImage,
        model=entry.id,
        prompt=body.prompt,
        negative_prompt=body.negative_prompt,
        n=body.n,
        aspect_ratio=nearest_aspect(IMAGE_ASPECTS[body.aspect_ratio]),
        guidance_scale=sub.guidance_from_cfg(body.cfg_scale, entry.capabilities),
    )
    task = sub.submit(
        ctx, who, spec, entry, api="kling", external_task_id=body.external_task_id,
        callback_url=callback, extra={"aspect_ratio": body.aspect_ratio},
    )  # fmt: skip
    return _created(task)


def _find(ctx: ApiContext, who: Caller, kind: Kind, ident: str) -> Task:
    task = ctx.store.get(ident, who.account_id) or ctx.store.get_by_external(ident, who.account_id)
    if task is None or task.kind != kind:
        raise ApiError(1203, f"task {ident!r} does not exist")
    return task


def _register_queries(path: str, kind: Kind) -> None:
    def found(ident: str, ctx: ApiContext, who: Caller) -> dict[str, Any]:
        task = _find(ctx, who, kind, ident)
        return envelope(kling_task(task, ctx.storage, link_seconds=ctx.config.link_seconds))

    async def one(ident: str, ctx: Ctx, who: Who) -> dict[str, Any]:
        # The polling path: a coroutine, whose read runs on the event loop when the store allows.
        return await quick_read(ctx, found, ident, ctx, who)

    def page(
        ctx: Ctx,
        who: Who,
        page_num: Annotated[int, Query(alias="pageNum", ge=1, le=1000)] = 1,
        page_size: Annotated[int, Query(alias="pageSize", ge=1, le=500)] = 30,
        external_task_id: Annotated[str | None, Query(max_length=256)] = None,
    ) -> dict[str, Any]:
        if external_task_id is not None:
            return found(external_task_id, ctx, who)
        tasks = ctx.store.list(
            who.account_id, kinds=[kind], offset=(page_num - 1) * page_size, limit=page_size
        ).tasks
        return envelope([kling_task(t, ctx.storage, link_seconds=ctx.config.link_seconds) for t in tasks])

    router.add_api_route(f"{path}/{{ident}}", one, methods=["GET"], name=f"get {path}")
    router.add_api_route(path, page, methods=["GET"], name=f"list {path}")


for _path, _kind in (
    ("/v1/videos/text2video", "text2video"),
    ("/v1/videos/image2video", "image2video"),
    ("/v1/videos/video-extend", "extend"),
    ("/v1/images/generations", "text2image"),
):
    _register_queries(_path, _kind)  # type: ignore[arg-type]


@router.get("/account/costs")
def account_costs(
    ctx: Ctx,
    who: Who,
    start_time: Annotated[int | None, Query(ge=0)] = None,
    end_time: Annotated[int | None, Query(ge=0)] = None,
    resource_pack_name: Annotated[str | None, Query(max_length=256)] = None,
) -> dict[str, Any]:
    """The account's resource packs valid at some time in the period (views over the credit ledger)."""
    if start_time is None or end_time is None:
        raise ApiError(1201, "start_time and end_time (Unix milliseconds) are both required")
    if end_time < start_time:
        raise ApiError(1201, "end_time is before start_time")
    packs = (
        []
        if ctx.accounts is None
        else ctx.accounts.resource_packs(who.account_id, start_time, end_time, resource_pack_name)
    )
    return envelope({"code": 0, "msg": "", "resource_pack_subscribe_infos": packs})
