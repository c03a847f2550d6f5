"""Requests, capabilities and results shared by every layer, in Kinema's one parameter vocabulary.

A request says what the user wants (`TextToVideo`, `ImageToVideo`, `ExtendVideo`, `TextToImage`) with
product knobs (aspect ratio, duration, std/pro mode) and optional concrete overrides (`num_frames`,
`height`, `width`, ...). `resolve` turns it into a concrete `Plan` for one model's `Capabilities`.
Pure pydantic: no torch, no SQL, no HTTP. Media are referenced by local path, never held inline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from kinema.errors import InvalidRequest

AspectRatio = Literal["16:9", "9:16", "1:1"]
Mode = Literal["std", "pro"]
Kind = Literal["text2video", "image2video", "extend", "text2image"]
ASPECT_RATIOS: tuple[AspectRatio, ...] = ("16:9", "9:16", "1:1")
MAX_PROMPT = 2500
MAX_CANDIDATES = 4
MAX_SECONDS = 180.0

Prompt = Annotated[str, Field(max_length=MAX_PROMPT)]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = "builtin"
    prompt: Prompt = ""
    negative_prompt: Prompt | None = None
    mode: Mode = "std"
    seed: int | None = Field(default=None, ge=0, lt=2**63)
    n: int = Field(default=1, ge=1, le=MAX_CANDIDATES, description="candidates (draws) per request")
    num_inference_steps: int | None = Field(default=None, ge=1, le=200)
    guidance_scale: float | None = Field(default=None, ge=0.0, le=30.0)
    height: int | None = Field(default=None, ge=8, le=4096)
    width: int | None = Field(default=None, ge=8, le=4096)


class _Video(_Request):
    aspect_ratio: AspectRatio = "16:9"
    duration: float | None = Field(
        default=None, gt=0.0, le=MAX_SECONDS, description="seconds; 5 or 10 usually"
    )
    num_frames: int | None = Field(default=None, ge=1, le=10_000)
    fps: int | None = Field(default=None, ge=1, le=60)


class TextToVideo(_Video):
    kind: Literal["text2video"] = "text2video"

    @model_validator(mode="after")
    def _needs_prompt(self) -> TextToVideo:
        if not self.prompt.strip():
            raise ValueError("prompt is empty; describe the video you want")
        return self


class ImageToVideo(_Video):
    """First frame (`image`) and/or last frame (`image_tail`), as local file paths."""

    kind: Literal["image2video"] = "image2video"
    image: str | None = None
    image_tail: str | None = None

    @model_validator(mode="after")
    def _needs_an_image(self) -> ImageToVideo:
        if not self.image and not self.image_tail:
            raise ValueError("image-to-video needs `image` (first frame), `image_tail` (last frame) or both")
        return self


class ExtendVideo(_Video):
    """Continue `video` (a local file path) by `seconds`; the prompt may steer the continuation."""

    kind: Literal["extend"] = "extend"
    video: str
    seconds: float = Field(default=5.0, gt=0.0, le=MAX_SECONDS)


class TextToImage(_Request):
    kind: Literal["text2image"] = "text2image"
    aspect_ratio: AspectRatio = "16:9"

    @model_validator(mode="after")
    def _needs_prompt(self) -> TextToImage:
        if not self.prompt.strip():
            raise ValueError("prompt is empty; describe the image you want")
        return self


Request = Annotated[TextToVideo | ImageToVideo | ExtendVideo | TextToImage, Field(discriminator="kind")]


class Capabilities(BaseModel):
    """What one model can do and the legal values of its parameters."""

    model_config = ConfigDict(frozen=True)

    model: str
    family: str
    kinds: frozenset[Kind]
    first_last_frame: bool = False
    canvases: dict[AspectRatio, tuple[int, int]]  # (height, width) in std mode
    pro_canvases: dict[AspectRatio, tuple[int, int]] | None = None
    size_multiple: int = 8
    fps: int
    frame_multiple: int = 1  # legal frame counts are k * frame_multiple + frame_offset
    frame_offset: int = 0
    max_frames: int  # per generated segment; longer videos are chained segments
    context_frames: int  # frames of the previous segment that condition the next
    steps: dict[Mode, int]
    guidance: float
    guidance_range: tuple[float, float]
    description: str = ""


class Plan(BaseModel):
    """A request made concrete for one model: every number the backend needs."""

    model_config = ConfigDict(frozen=True)

    kind: Kind
    model: str
    prompt: str
    negative_prompt: str | None
    height: int
    width: int
    fps: int
    num_frames: int  # total frames of the output (for extend: the new frames only)
    num_inference_steps: int
    guidance_scale: float
    seed: int
    n: int


def nearest_aspect(
    ratio: float, canvases: Mapping[AspectRatio, tuple[int, int]] | None = None
) -> AspectRatio:
    """The aspect ratio closest (in log ratio) to a picture `ratio` = width / height wide.

    Among the nominal ratios (16:9 is 16/9), or, given a model's `canvases` ((height, width) per
    ratio), among the shapes that model really renders.
    """

    def log_ratio(aspect: AspectRatio) -> float:
        if canvases is not None:
            height, width = canvases[aspect]
        else:
            w, h = aspect.split(":")
            width, height = int(w), int(h)
        return math.log(width / height)

    candidates = [a for a in ASPECT_RATIOS if canvases is None or a in canvases]
    return min(candidates, key=lambda aspect: abs(log_ratio(aspect) - math.log(ratio)))


def legal_frames(num_frames: int, caps: Capabilities) -> int:
    """The nearest legal frame count at or above `num_frames` (k * multiple + offset)."""
    k = max(1, math.ceil((num_frames - caps.frame_offset) / caps.frame_multiple))
    return k * caps.frame_multiple + caps.frame_offset


def resolve(
    request: TextToVideo | ImageToVideo | ExtendVideo | TextToImage, caps: Capabilities, *, seed: int
) -> Plan:
    """Turn product knobs into concrete sizes, frame counts, steps and guidance for `caps`."""
    if request.kind not in caps.kinds:
        raise InvalidRequest(f"model {caps.model!r} cannot do {request.kind}; pick a model that lists it")
    if (
        isinstance(request, ImageToVideo)
        and request.image
        and request.image_tail
        and not caps.first_last_frame
    ):
        raise InvalidRequest(f"model {caps.model!r} cannot take both a first and a last frame; send one")
    canvases = caps.pro_canvases if request.mode == "pro" and caps.pro_canvases else caps.canvases
    height, width = canvases[request.aspect_ratio]
    if request.height is not None or request.width is not None:
        height, width = request.height or height, request.width or width
        if height % caps.size_multiple or width % caps.size_multiple:
            raise InvalidRequest(
                f"height and width must be multiples of {caps.size_multiple} for {caps.model!r}; "
                f"got {height}x{width}"
            )
    fps, num_frames = caps.fps, 1
    if not isinstance(request, TextToImage):
        fps = request.fps or caps.fps
        if fps != caps.fps:
            raise InvalidRequest(
                f"model {caps.model!r} generates at {caps.fps} fps; leave fps unset or use it"
            )
        seconds = request.seconds if isinstance(request, ExtendVideo) else (request.duration or 5.0)
        num_frames = legal_frames(request.num_frames or round(seconds * fps), caps)
    guidance = caps.guidance if request.guidance_scale is None else request.guidance_scale
    low, high = caps.guidance_range
    if not low <= guidance <= high:
        raise InvalidRequest(f"guidance_scale {guidance} is outside {low}..{high} for {caps.model!r}")
    return Plan(
        kind=request.kind,
        model=caps.model,
        prompt=request.prompt,
        negative_prompt=request.negative_prompt,
        height=height,
        width=width,
        fps=fps,
        num_frames=num_frames,
        num_inference_steps=request.num_inference_steps or caps.steps[request.mode],
        guidance_scale=guidance,
        seed=seed,
        n=request.n,
    )


class Candidate(BaseModel):
    """One draw of a request: its files and the seed that reproduces it."""

    index: int
    seed: int
    video: str | None = None  # path of the MP4 (video kinds)
    image: str | None = None  # path of the PNG (images)
    poster: str | None = None
    num_frames: int = 1
    duration_s: float = 0.0


class Result(BaseModel):
    kind: Kind
    plan: Plan
    candidates: list[Candidate]
    display_height: int
    display_width: int
    elapsed_s: float
