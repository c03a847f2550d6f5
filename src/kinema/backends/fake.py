"""A fast, deterministic backend for tests: coloured frames with a moving bar, no model.

It honours the protocol exactly (given frames, seeds, progress, cancellation), so engine, worker and
API tests exercise the real paths without torch work.
"""

from __future__ import annotations

import numpy as np

from kinema.backends.base import Segment, StepCallback, StopCheck, check_given
from kinema.errors import Cancelled
from kinema.spec import Capabilities


class FakeBackend:
    def __init__(self, model: str = "fake", *, steps: int = 4) -> None:
        self.model = model
        self.steps = steps
        self.calls: list[Segment] = []

    def capabilities(self) -> Capabilities:
        return Capabilities(
            model=self.model,
            family="fake",
            kinds=frozenset({"text2video", "image2video", "extend", "text2image"}),
            first_last_frame=True,
            canvases={"16:9": (18, 32), "9:16": (32, 18), "1:1": (24, 24)},
            size_multiple=2,
            fps=8,
            frame_multiple=4,
            max_frames=16,
            context_frames=4,
            steps={"std": self.steps, "pro": 2 * self.steps},
            guidance=1.0,
            guidance_range=(0.0, 20.0),
            description="test double: deterministic frames, no model",
        )

    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        check_given(segment)
        self.calls.append(segment)
        for step in range(segment.num_inference_steps):
            if should_stop():
                raise Cancelled("generation was cancelled")
            on_step(step + 1, segment.num_inference_steps, None)
        t, h, w = segment.num_frames, segment.height, segment.width
        out = np.empty((segment.n, t, h, w, 3), np.uint8)
        for i, seed in enumerate(segment.seeds):
            colour = np.random.default_rng(seed).integers(0, 256, 3, dtype=np.uint8)
            out[i] = colour
            for f in range(t):
                out[i, f, :, (f * 2) % w] = 255 - colour  # a bar that moves two pixels a frame
        for index, frames in segment.given.items():
            out[:, index] = frames
        return out
