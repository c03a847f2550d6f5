"""Helpers for the open-model backend tests: tiny options, a recording backend, input media."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from kinema.backends.base import Backend, Segment, StepCallback, StopCheck
from kinema.engine import video
from kinema.engine.generation import Engine
from kinema.spec import Capabilities

NEEDS_DIFFUSERS = "needs the diffusers extra: pip install 'kinema[diffusers]'"


def tiny_options(side: int, *, max_frames: int) -> dict[str, Any]:
    """Options that serve a tiny model on a CPU: small canvases, two steps."""
    return {
        "dtype": "float32",
        "device": "cpu",
        "canvases": {"16:9": [side, 2 * side], "9:16": [2 * side, side], "1:1": [side, side]},
        "max_frames": max_frames,
        "steps": {"std": 2, "pro": 2},
    }


class Recorder:
    """A backend wrapper that keeps every segment and the frames returned for it."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.calls: list[tuple[Segment, np.ndarray]] = []

    def capabilities(self) -> Capabilities:
        return self.backend.capabilities()

    def generate(self, segment: Segment, *, on_step: StepCallback, should_stop: StopCheck) -> np.ndarray:
        frames = self.backend.generate(segment, on_step=on_step, should_stop=should_stop)
        self.calls.append((segment, frames.copy()))
        return frames


def engine_for(backend: Backend) -> Engine:
    return Engine(lambda model: backend)


def gradient(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image (H, W, 3) uint8 that survives resizing."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    base = rng.integers(40, 200, 3)
    image = base + 40 * np.stack([y / height, x / width, (x + y) / (height + width)], axis=-1)
    return np.asarray(image, np.uint8)


def write_image(path: Path, image: np.ndarray) -> Path:
    from PIL import Image

    Image.fromarray(image).save(path)
    return path


def write_clip(path: Path, *, frames: int, height: int, width: int, fps: int) -> Path:
    clip = np.stack([np.roll(gradient(height, width), 2 * t, axis=1) for t in range(frames)])
    video.write_video(path, clip, fps=fps)
    return path


def no_progress(step: int, total: int, preview: np.ndarray | None) -> None:
    del step, total, preview


def never() -> bool:
    return False
