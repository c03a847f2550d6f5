"""The backend protocol: one generated segment of frames from a concrete request.

A backend turns a `Segment` (a prompt, sizes, steps, seeds and the frames that are given) into
uint8 frames and back; it owns device, dtype and offload. It knows nothing of files, tasks or HTTP:
progress goes out through `on_step` and cancellation comes in through `should_stop`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from kinema.spec import Capabilities

StepCallback = Callable[[int, int, "np.ndarray | None"], None]
StopCheck = Callable[[], bool]


@dataclass(frozen=True)
class Segment:
    """Frames to generate in one backend call, for `len(seeds)` candidates at once.

    `given` maps a frame index to the frames every candidate must keep there, (n, H, W, 3) uint8:
    a first or last image, or the tail of the previous segment when continuing a video.
    """

    prompt: str
    negative_prompt: str | None
    num_frames: int
    height: int
    width: int
    num_inference_steps: int
    guidance_scale: float
    seeds: tuple[int, ...]
    given: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.seeds)


@runtime_checkable
class Backend(Protocol):
    """What the engine needs of a model family."""

    def capabilities(self) -> Capabilities: ...

    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        """Frames (n, T, H, W, 3) uint8; given frames are returned as given."""
        ...


def check_given(segment: Segment) -> None:
    """Refuse given frames that do not fit the segment (a bug upstream, not user input)."""
    for index, frames in segment.given.items():
        if not 0 <= index < segment.num_frames:
            raise ValueError(f"given frame index {index} is outside 0..{segment.num_frames - 1}")
        if frames.shape != (segment.n, segment.height, segment.width, 3) or frames.dtype != np.uint8:
            raise ValueError(
                f"given frame {index} has shape {frames.shape} {frames.dtype}; "
                f"expected ({segment.n}, {segment.height}, {segment.width}, 3) uint8"
            )
