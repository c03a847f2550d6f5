"""The media-key layout the API, the workers and retention share."""

from __future__ import annotations

import re

from kinema.jobs import MemoryTaskStore
from kinema.storage.layout import input_key, media_keys, output_keys, preview_key


def test_result_keys_depend_only_on_the_task_and_the_candidate() -> None:
    assert preview_key("123") == "tasks/123/preview.png"
    assert output_keys("123", 2) == (
        "tasks/123/video-2.mp4",
        "tasks/123/video-2.png",
        "tasks/123/image-2.png",
    )


def test_each_upload_gets_a_fresh_input_key() -> None:
    first, second = input_key("image"), input_key("image")
    assert re.fullmatch(r"inputs/[0-9a-f]{32}/image\.png", first) and first != second


def test_media_keys_cover_crashed_attempts_but_not_the_extended_video() -> None:
    store = MemoryTaskStore()
    spec = {"kind": "extend", "model": "fake", "video": "tasks/111/video-0.mp4", "n": 2}
    task = store.create(account_id="acme", kind="extend", model="fake", request={"spec": spec})
    keys = media_keys(task)
    tid = task.task_id
    assert f"tasks/{tid}/video-1.mp4" in keys and f"tasks/{tid}/preview.png" in keys
    assert "tasks/111/video-0.mp4" not in keys
    assert all(key.startswith(f"tasks/{tid}/") for key in keys)


def test_media_keys_include_recorded_outputs_and_own_uploads_only() -> None:
    store = MemoryTaskStore()
    upload = input_key("image")
    spec = {"kind": "image2video", "image": upload, "image_tail": "tasks/9/video-0.png"}
    task = store.create(account_id="acme", kind="image2video", model="fake", request={"spec": spec})
    assert store.claim("w1", 30) is not None
    done = store.complete(task.task_id, "w1", [{"key": "elsewhere/v.mp4", "poster_key": "../bad"}])
    keys = media_keys(done)
    assert upload in keys and "elsewhere/v.mp4" in keys
    assert "tasks/9/video-0.png" not in keys  # another task's poster used as a frame stays
    assert "../bad" not in keys  # an invalid key is never handed to storage
