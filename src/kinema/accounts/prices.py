"""What a task costs in credits: video by the second and mode, images by the picture, per model.

A `PriceTable` maps model ids (or `*`, any other model) to prices; the built-in model is free by
default. An operator's TOML file overrides the defaults model by model:

    [models."*"]
    video = { std = 2, pro = 7 }   # credits per second of video
    image = 1                      # credits per image

Prices round up to whole credits. This module knows no accounts or tasks.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kinema.errors import InvalidRequest

ANY_MODEL = "*"
IMAGE_KINDS = frozenset({"text2image"})


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """Credits per second of video in each mode, and per image."""

    video_std: float
    video_pro: float
    image: float


DEFAULT_PRICES: Mapping[str, ModelPrice] = MappingProxyType(
    {
        ANY_MODEL: ModelPrice(video_std=2.0, video_pro=7.0, image=1.0),
        "builtin": ModelPrice(video_std=0.0, video_pro=0.0, image=0.0),
    }
)


class _Video(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    std: float = Field(ge=0)
    pro: float = Field(ge=0)


class _Entry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    video: _Video
    image: float = Field(ge=0)


class _File(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    models: dict[str, _Entry]


class PriceTable:
    """Prices per model id, falling back to `*`; `price(...)` is what a task costs."""

    def __init__(self, prices: Mapping[str, ModelPrice] = DEFAULT_PRICES) -> None:
        self._prices = dict(prices)

    @classmethod
    def from_toml(cls, path: Path) -> PriceTable:
        """The defaults, overridden model by model by the `[models.<id>]` tables of the file at `path`."""
        try:
            parsed = _File.model_validate(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as error:
            raise InvalidRequest(f"price file {path} is not valid TOML ({error}); fix the file") from None
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise InvalidRequest(f"price file {path}: {where}: {first['msg']}; fix the file") from None
        prices = dict(DEFAULT_PRICES)
        for model, entry in parsed.models.items():
            prices[model] = ModelPrice(
                video_std=entry.video.std, video_pro=entry.video.pro, image=entry.image
            )
        return cls(prices)

    def for_model(self, model: str) -> ModelPrice:
        found = self._prices.get(model) or self._prices.get(ANY_MODEL)
        if found is None:
            raise InvalidRequest(f'no price for model {model!r}; add [models.{model!r}] or [models."*"]')
        return found

    def price(self, model: str, kind: str, mode: str, seconds: float, n: int) -> int:
        """Credits for one task: `n` images of an image kind, else `seconds` of video in `mode`."""
        entry = self.for_model(model)
        if kind in IMAGE_KINDS:
            return math.ceil(entry.image * n - 1e-9)
        if mode not in ("std", "pro"):
            raise InvalidRequest(f"mode {mode!r} has no price; use std or pro")
        per_second = entry.video_std if mode == "std" else entry.video_pro
        return math.ceil(per_second * seconds - 1e-9)
