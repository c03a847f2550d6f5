"""Media around one task: input keys to local files, results to storage keys, small preview PNGs.

The keys follow `kinema.storage.layout`, the layout the API and retention share. This module knows
storage and the spec, not the task store.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
from PIL import Image

from kinema.errors import InvalidRequest
from kinema.spec import Result
from kinema.storage.base import MediaStorage, StorageError, check_key
from kinema.storage.layout import MEDIA_FIELDS, output_keys

PREVIEW_SIZE = 160  # longest side of a preview, in pixels


def download_inputs(storage: MediaStorage, spec: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """A copy of `spec` whose media keys are replaced by local files downloaded into `folder`."""
    local = dict(spec)
    for field in MEDIA_FIELDS:
        key = spec.get(field)
        if not isinstance(key, str):
            continue  # absent, or a wrong type that validation reports
        try:
            check_key(key)
        except StorageError as exc:
            raise InvalidRequest(f"{field}: {exc}") from None
        target = folder / f"{field}{PurePosixPath(key).suffix}"
        local[field] = str(storage.download(key, target))
    return local


def upload_outputs(storage: MediaStorage, task_id: str, result: Result) -> list[dict[str, Any]]:
    """Store every candidate under its task key and describe it as a `tasks.outputs` entry."""
    outputs = []
    size = {"width": result.display_width, "height": result.display_height}
    for cand in result.candidates:
        video_key, poster_key, image_key = output_keys(task_id, cand.index)
        entry: dict[str, Any] = {"id": f"{task_id}-{cand.index}", "index": cand.index}
        if cand.video is not None:
            storage.put_file(video_key, Path(cand.video), content_type="video/mp4")
            entry.update(type="video", key=video_key)
            if cand.poster is not None:
                storage.put_file(poster_key, Path(cand.poster), content_type="image/png")
                entry["poster_key"] = poster_key
            entry.update(duration=cand.duration_s, num_frames=cand.num_frames, fps=result.plan.fps)
        elif cand.image is not None:
            storage.put_file(image_key, Path(cand.image), content_type="image/png")
            entry.update(type="image", key=image_key)
        else:
            raise ValueError(f"candidate {cand.index} of task {task_id} has neither a video nor an image")
        entry.update(size, seed=cand.seed)
        outputs.append(entry)
    return outputs


def preview_png(frame: np.ndarray, max_side: int = PREVIEW_SIZE) -> bytes:
    """A small PNG of one (H, W, 3) uint8 frame, at most `max_side` pixels on its longest side."""
    image = Image.fromarray(np.ascontiguousarray(frame, dtype=np.uint8))
    image.thumbnail((max_side, max_side))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
