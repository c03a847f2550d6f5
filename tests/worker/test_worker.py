"""A worker runs queued tasks end to end: inputs from storage, the engine, outputs back, the store told."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from worker_fakes import ACCOUNT, GatedBackend, StallableStore, wait_for

from kinema.engine import video
from kinema.engine.generation import Engine
from kinema.jobs import FakeClock, LeaseLost, MemoryTaskStore, Task
from kinema.spec import Result
from kinema.storage.local import LocalStorage
from kinema.worker import Worker
from kinema.worker.runner import SHUTDOWN

Queue = Callable[..., Task]
MakeWorker = Callable[..., Worker]


def finished(store: MemoryTaskStore, task: Task) -> Task:
    found = store.get(task.task_id, ACCOUNT)
    assert found is not None
    return found


def put_image(storage: LocalStorage, key: str, colour: tuple[int, int, int], size: tuple[int, int]) -> str:
    path = storage.root / "upload.png"
    video.write_poster(np.full((*size, 3), colour, np.uint8), path)
    storage.put_file(key, path, content_type="image/png")
    path.unlink()
    return key


def test_text_to_video_succeeds_with_the_outputs_of_the_contract(
    store: MemoryTaskStore, storage: LocalStorage, queue: Queue, make_worker: MakeWorker, tmp_path: Path
) -> None:
    task = queue("text2video")
    assert make_worker().run_once() is True
    done = finished(store, task)
    assert (done.status, done.progress, done.error) == ("succeed", 1.0, None)
    [output] = done.outputs
    tid = task.task_id
    info = video.probe(storage.path(f"tasks/{tid}/video-0.mp4"))
    assert output == {
        "id": f"{tid}-0",
        "index": 0,
        "type": "video",
        "key": f"tasks/{tid}/video-0.mp4",
        "poster_key": f"tasks/{tid}/video-0.png",
        "duration": 1.0,
        "num_frames": 8,
        "fps": 8,
        "width": info.width,
        "height": info.height,
        "seed": 7,
    }
    assert (info.num_frames, info.fps) == (8, 8)
    assert storage.exists(output["poster_key"])
    assert not list((tmp_path / "work").iterdir())  # the private folder is gone


def test_run_once_is_false_when_no_task_is_ready_for_its_models(
    store: MemoryTaskStore, queue: Queue, make_worker: MakeWorker
) -> None:
    assert make_worker().run_once() is False
    task = queue("text2image")
    assert make_worker(models=["other"]).run_once() is False
    assert finished(store, task).status == "submitted"


def test_image_to_video_downloads_its_input_and_keeps_the_first_frame(
    store: MemoryTaskStore, storage: LocalStorage, queue: Queue, make_worker: MakeWorker, fake: GatedBackend
) -> None:
    key = put_image(storage, "inputs/0a1b/image.png", (200, 30, 30), (320, 180))
    task = queue("image2video", image=key)
    make_worker().run_once()
    done = finished(store, task)
    assert done.status == "succeed", done.error
    assert list(fake.calls[0].given) == [0]
    assert fake.calls[0].height > fake.calls[0].width  # the portrait input chose 9:16
    frames = video.read_video(
        storage.path(done.outputs[0]["key"]), max_frames=100, max_pixels=10**7, size=(32, 18)
    ).frames
    assert np.abs(frames[0].astype(int) - (200, 30, 30)).mean() < 6


def test_extend_continues_a_previous_output_by_its_key(
    store: MemoryTaskStore, storage: LocalStorage, queue: Queue, make_worker: MakeWorker
) -> None:
    worker = make_worker()
    first = queue("text2video")
    worker.run_once()
    parent_key = finished(store, first).outputs[0]["key"]
    longer = queue("extend", video=parent_key, seconds=1.0, prompt="keep going")
    worker.run_once()
    done = finished(store, longer)
    assert done.status == "succeed", done.error
    assert (done.outputs[0]["num_frames"], done.outputs[0]["duration"]) == (16, 2.0)
    assert video.probe(storage.path(done.outputs[0]["key"])).num_frames == 16
    assert storage.exists(parent_key)  # the original is untouched


def test_text_to_image_stores_a_png_without_duration(
    store: MemoryTaskStore, storage: LocalStorage, queue: Queue, make_worker: MakeWorker
) -> None:
    task = queue("text2image", n=2)
    make_worker().run_once()
    done = finished(store, task)
    assert done.status == "succeed", done.error
    assert [(o["type"], o["key"], o["seed"]) for o in done.outputs] == [
        ("image", f"tasks/{task.task_id}/image-0.png", 7),
        ("image", f"tasks/{task.task_id}/image-1.png", 8),
    ]
    assert all("duration" not in o and storage.exists(o["key"]) for o in done.outputs)
    assert video.read_image(storage.path(done.outputs[1]["key"]), max_pixels=10**7).shape[:2] == (
        done.outputs[1]["height"],
        done.outputs[1]["width"],
    )


def test_progress_stage_and_preview_advance_while_it_runs(
    store: MemoryTaskStore, storage: LocalStorage, queue: Queue, make_worker: MakeWorker, fake: GatedBackend
) -> None:
    fake.pause_at = 3  # of 2 segments x 4 steps
    task = queue("text2video", num_frames=24)
    runner = threading.Thread(target=make_worker().run_once)
    runner.start()
    assert fake.paused.wait(10)
    wait_for(lambda: finished(store, task).progress == pytest.approx(0.95 * 3 / 8))
    running = finished(store, task)
    assert running.status == "processing"
    assert running.progress == pytest.approx(0.95 * 3 / 8)
    assert (running.stage, running.preview_key) == ("generating", f"tasks/{task.task_id}/preview.png")
    preview = video.read_image(storage.path(running.preview_key), max_pixels=10**6)
    assert max(preview.shape[:2]) <= 160
    fake.go.set()
    runner.join(10)
    assert (finished(store, task).status, finished(store, task).progress) == ("succeed", 1.0)


def test_cancel_mid_run_stops_the_engine_and_ends_cancelled(
    store: MemoryTaskStore, storage: LocalStorage, queue: Queue, make_worker: MakeWorker, fake: GatedBackend
) -> None:
    fake.pause_at = 2
    task = queue("text2video", num_frames=40)
    runner = threading.Thread(target=make_worker().run_once)
    runner.start()
    assert fake.paused.wait(10)
    store.request_cancel(task.task_id, ACCOUNT)
    runner.join(10)
    done = finished(store, task)
    assert (done.status, done.outputs) == ("cancelled", [])
    assert fake.steps_run == 2 and len(fake.calls) == 1  # stopped inside the first of 3 segments
    assert not storage.exists(f"tasks/{task.task_id}/video-0.mp4")


class BrokenEngine:
    """Fails its first `failures` runs with a RuntimeError, then runs the real engine."""

    def __init__(self, engine: Engine, failures: int) -> None:
        self.engine, self.failures = engine, failures

    def run(self, request: Any, out_dir: Path, **callbacks: Any) -> Result:
        if self.failures > 0:
            self.failures -= 1
            raise RuntimeError("GPU fell off the bus")
        return self.engine.run(request, out_dir, **callbacks)


def test_an_unexpected_error_is_retried_then_fails_with_the_reason(
    store: MemoryTaskStore, queue: Queue, make_worker: MakeWorker, engine: Engine
) -> None:
    task = queue("text2image", max_attempts=2)
    worker = make_worker(engine=BrokenEngine(engine, failures=5))
    worker.run_once()
    queued = finished(store, task)
    assert (queued.status, queued.attempt, queued.error) == (
        "submitted",
        1,
        "RuntimeError: GPU fell off the bus",
    )
    worker.run_once()
    done = finished(store, task)
    assert (done.status, done.attempt) == ("failed", 2)
    assert done.error == "RuntimeError: GPU fell off the bus (gave up after 2 of 2 attempts)"
    assert worker.run_once() is False


def test_a_retried_attempt_can_succeed(
    store: MemoryTaskStore, queue: Queue, make_worker: MakeWorker, engine: Engine
) -> None:
    task = queue("text2image")
    worker = make_worker(engine=BrokenEngine(engine, failures=1))
    worker.run_once()
    worker.run_once()
    done = finished(store, task)
    assert (done.status, done.attempt, done.error, len(done.outputs)) == ("succeed", 2, None, 1)


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        ({"kind": "text2video", "prompt": " "}, "prompt is empty"),
        ({"kind": "text2video", "model": "nope"}, "unknown model 'nope'"),
        (
            {"kind": "image2video", "image": "inputs/gone/image.png"},
            "no media under key 'inputs/gone/image.png'",
        ),
        ({"kind": "image2video", "image": "../etc/passwd"}, "image: invalid storage key"),
        ({"kind": "text2video", "fps": 24}, "generates at 8 fps"),
    ],
)
def test_an_invalid_request_fails_at_once(
    store: MemoryTaskStore, queue: Queue, make_worker: MakeWorker, spec: dict[str, Any], reason: str
) -> None:
    task = queue(**spec)
    make_worker().run_once()
    done = finished(store, task)
    assert (done.status, done.attempt) == ("failed", 1)
    assert reason in (done.error or "")


def test_notify_sees_the_claim_and_the_end(queue: Queue, make_worker: MakeWorker) -> None:
    seen: list[str] = []

    def notify(task: Task) -> None:
        seen.append(task.status)
        raise RuntimeError("a broken callback must not break the worker")

    task = queue("text2image")
    make_worker(notify=notify).run_once()
    assert seen == ["processing", "succeed"]
    del task


class CountingEngine:
    def __init__(self, engine: Engine) -> None:
        self.engine, self.runs, self.lock = engine, Counter[str](), threading.Lock()

    def run(self, request: Any, out_dir: Path, **callbacks: Any) -> Result:
        with self.lock:
            self.runs[request.prompt] += 1
        return self.engine.run(request, out_dir, **callbacks)


def test_two_workers_never_run_the_same_task(
    store: MemoryTaskStore, queue: Queue, make_worker: MakeWorker, engine: Engine
) -> None:
    tasks = [queue("text2image", prompt=f"shot {i}") for i in range(20)]
    counting = CountingEngine(engine)
    workers = [make_worker(engine=counting, worker_id=f"w{i}") for i in range(2)]
    stop = threading.Event()
    threads = [threading.Thread(target=w.run_forever, args=(stop,)) for w in workers]
    for thread in threads:
        thread.start()
    try:
        wait_for(lambda: store.counts_by_status()["succeed"] == 20)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert counting.runs == Counter({f"shot {i}": 1 for i in range(20)})
    assert {finished(store, t).attempt for t in tasks} == {1}


def test_an_expired_lease_is_reclaimed_and_finished_with_one_set_of_outputs(
    store: MemoryTaskStore, storage: LocalStorage, clock: FakeClock, queue: Queue, make_worker: MakeWorker
) -> None:
    task = queue("text2video")
    assert store.claim("dead-host-1-0000", 30) is not None  # a worker that is then killed
    storage.put_bytes(f"tasks/{task.task_id}/video-0.mp4", b"half a file", content_type="video/mp4")
    clock.advance(31)
    assert make_worker().run_once() is True
    done = finished(store, task)
    assert (done.status, done.attempt, len(done.outputs)) == ("succeed", 2, 1)
    assert video.probe(storage.path(done.outputs[0]["key"])).num_frames == 8  # overwritten
    with pytest.raises(LeaseLost):
        store.complete(task.task_id, "dead-host-1-0000", [{"key": "tasks/x/video-0.mp4"}])


def test_a_worker_that_lost_its_lease_stops_and_drops_its_result(
    store: StallableStore, clock: FakeClock, queue: Queue, make_worker: MakeWorker, fake: GatedBackend
) -> None:
    fake.pause_at = 1
    task = queue("text2video", num_frames=24)
    runner = threading.Thread(target=make_worker(worker_id="slow", lease_seconds=5).run_once)
    runner.start()
    assert fake.paused.wait(10)
    with store.stall:  # the worker hangs past its lease and another worker takes the task over
        clock.advance(60)
        assert store.claim("thief", 30) is not None
    runner.join(10)
    assert not runner.is_alive()
    taken = finished(store, task)
    assert (taken.status, taken.lease_owner, taken.outputs, taken.attempt) == ("processing", "thief", [], 2)
    assert fake.steps_run == 1 and len(fake.calls) == 1


def test_run_forever_publishes_its_models_survives_bad_tasks_and_leaves_cleanly(
    store: MemoryTaskStore, queue: Queue, make_worker: MakeWorker
) -> None:
    models = [{"id": "fake", "family": "fake", "capabilities": None, "error": "just a test"}]
    worker = make_worker(worker_id="w-pub", catalog=lambda: models)
    bad, good = queue("text2video", prompt=""), queue("text2image")
    stop = threading.Event()
    thread = threading.Thread(target=worker.run_forever, args=(stop,))
    thread.start()
    try:
        wait_for(lambda: finished(store, good).finished)
        assert [(w.worker_id, w.models) for w in store.workers()] == [("w-pub", models)]
    finally:
        stop.set()
        thread.join(10)
    assert (finished(store, bad).status, finished(store, good).status) == ("failed", "succeed")
    assert store.workers() == []


def test_an_aborted_worker_gives_its_task_back_to_the_queue(
    store: MemoryTaskStore, queue: Queue, make_worker: MakeWorker, fake: GatedBackend
) -> None:
    fake.pause_at = 1
    task = queue("text2video", num_frames=24)
    worker = make_worker()
    runner = threading.Thread(target=worker.run_once)
    runner.start()
    assert fake.paused.wait(10)
    worker.abort.set()
    runner.join(10)
    queued = finished(store, task)
    assert (queued.status, queued.error, queued.lease_owner) == ("submitted", SHUTDOWN, None)
