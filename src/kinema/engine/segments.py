"""Long video as chained segments: how many frames each backend call makes and what conditions it.

A video longer than one segment is made segment by segment; each later segment is conditioned on
the last `context_frames` of the one before. Only that tail is kept, so memory does not grow with
length. Colour is anchored to the first segment so that small shifts cannot add up over minutes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from kinema.errors import InvalidRequest
from kinema.spec import Capabilities, legal_frames

MAX_COLOUR_SHIFT = 12.0  # RGB levels; larger differences are content, not drift


@dataclass(frozen=True)
class SegmentPlan:
    context: int  # frames taken from the previous segment (given, not new)
    new: int  # frames this segment adds to the video
    length: int  # frames the backend generates (context + new, rounded up to a legal count)


def plan_segments(total_new: int, caps: Capabilities, *, continues: bool) -> list[SegmentPlan]:
    """Split `total_new` frames into backend calls; `continues` when the first one extends a video."""
    if caps.context_frames == 0 and (continues or total_new > caps.max_frames):
        seconds = caps.max_frames / caps.fps
        raise InvalidRequest(
            f"model {caps.model!r} cannot continue a video (it takes no frames as input); "
            f"ask for at most {seconds:g} s or use a model that can extend"
        )
    plans: list[SegmentPlan] = []
    remaining = total_new
    while remaining > 0:
        context = caps.context_frames if (plans or continues) else 0
        new = min(remaining, caps.max_frames - context)
        if new <= 0:
            raise ValueError(f"{caps.model}: context {context} leaves no room in {caps.max_frames} frames")
        length = min(legal_frames(context + new, caps), caps.max_frames)
        plans.append(SegmentPlan(context=context, new=new, length=length))
        remaining -= new
    return plans


def colour_anchor(frames: np.ndarray) -> np.ndarray:
    """Per-candidate, per-channel median over frames and pixels: (n, 3). Flat backgrounds dominate it."""
    return np.asarray(np.median(frames.reshape(frames.shape[0], -1, 3), axis=1), dtype=np.float64)


def match_colour(frames: np.ndarray, anchor: np.ndarray) -> np.ndarray:
    """Shift each candidate's frames (n, T, H, W, 3) so their median colour returns to `anchor`.

    Only small shifts are corrected: a median that moved by more than MAX_COLOUR_SHIFT is a real change
    of content (a new scene), which the engine must not paint over.
    """
    shift = anchor - colour_anchor(frames)  # (n, 3)
    shift = np.where(np.abs(shift) <= MAX_COLOUR_SHIFT, shift, 0.0)
    out = frames.astype(np.float32) + shift[:, None, None, None, :]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)
