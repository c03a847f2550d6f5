"""Training batches from the rendered world: clips, captions and conditioning masks.

Each sample draws a conditioning mode the way the product uses the model: text-to-video (nothing
given), image-to-video (first and/or last frame given) and continuation (the first k frames given,
as when extending a clip). Held-out (shape, colour, motion) triples are never drawn.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinema.world.captions import caption, tokenize_batch
from kinema.world.render import render_float, sample_scene
from kinema.world.scene import held_out_triples

# Probability of each conditioning mode per video sample.
MODES: dict[str, float] = {"t2v": 0.35, "first": 0.15, "last": 0.05, "first_last": 0.1, "continue": 0.35}
CAPTION_DROPOUT = 0.1


@dataclass(frozen=True)
class Batch:
    clips: np.ndarray  # (B, 3, T, H, W) float32 in [-1, 1]
    given: np.ndarray  # (B, 1, T, 1, 1) float32, 1 where the frame is given clean
    ids: np.ndarray  # (B, L) int64 caption ids (null caption when dropped)
    captions: list[str]


def make_batch(
    rng: np.random.Generator, *, size: int, aspect: str, num_frames: int, still: bool = False
) -> Batch:
    """A batch of clips on one canvas; `still` makes single-image samples (text-to-image)."""
    held_out = held_out_triples()
    clips, captions, given = [], [], np.zeros((size, 1, num_frames, 1, 1), np.float32)
    for i in range(size):
        scene = sample_scene(rng, aspect=aspect)
        while scene.triple in held_out:
            scene = sample_scene(rng, aspect=aspect)
        start = int(rng.integers(0, 64))  # any phase of the motion
        frames = render_float(scene, 1 if still else num_frames, start=start)
        clips.append(np.broadcast_to(frames, (num_frames, *frames.shape[1:])))
        text = caption(
            rng, shape=scene.shape, colour=scene.colour, motion=scene.motion, background=scene.background
        )
        captions.append("" if rng.random() < CAPTION_DROPOUT else text)
        if not still:
            given[i, 0, :, 0, 0] = _given_frames(rng, num_frames)
    video = np.stack(clips).transpose(0, 4, 1, 2, 3) / 127.5 - 1.0  # (B, 3, T, H, W)
    return Batch(video.astype(np.float32), given, tokenize_batch(list(captions)), captions)


def _given_frames(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    mode = rng.choice(list(MODES), p=list(MODES.values()))
    given = np.zeros(num_frames, np.float32)
    if mode in ("first", "first_last"):
        given[0] = 1.0
    if mode in ("last", "first_last"):
        given[-1] = 1.0
    if mode == "continue":
        k = 8 if rng.random() < 0.6 else int(rng.integers(1, num_frames // 2 + 1))
        given[:k] = 1.0
    return given
