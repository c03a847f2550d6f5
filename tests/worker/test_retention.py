"""Retention: expired finished tasks lose their media, then their rows; live tasks and others' media stay;
sent callbacks leave the outbox a retention period after they finished."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import numpy as np
from worker_fakes import ACCOUNT

from kinema.engine import video
from kinema.jobs import DEFAULT_RETENTION, Callback, FakeClock, MemoryTaskStore, Task
from kinema.storage.local import LocalStorage
from kinema.worker import Worker, sweep

Queue = Callable[..., Task]
MakeWorker = Callable[..., Worker]


def test_sweep_deletes_the_media_and_rows_of_expired_tasks_only(
    store: MemoryTaskStore,
    storage: LocalStorage,
    clock: FakeClock,
    queue: Queue,
    make_worker: MakeWorker,
) -> None:
    upload = storage.root / "upload.png"
    video.write_poster(np.full((18, 32, 3), 90, np.uint8), upload)
    storage.put_file("inputs/u1/image.png", upload, content_type="image/png")
    worker = make_worker()
    old = queue("image2video", image="inputs/u1/image.png")
    worker.run_once()
    old_done = store.get(old.task_id, ACCOUNT)
    assert old_done is not None and old_done.status == "succeed"
    old_keys = [o[k] for o in old_done.outputs for k in ("key", "poster_key")]
    doomed = queue("text2video", prompt="")  # fails at once
    worker.run_once()
    clock.advance(timedelta(days=10).total_seconds())
    young = queue("extend", video=old_keys[0], seconds=1.0)  # expires 10 days after the others
    worker.run_once()
    storage.put_bytes(f"tasks/{old.task_id}/preview.png", b"png", content_type="image/png")

    clock.advance((DEFAULT_RETENTION - timedelta(days=9)).total_seconds())
    assert sweep(store, storage, clock.now()) == 2
    assert store.get(old.task_id, ACCOUNT) is None and store.get(doomed.task_id, ACCOUNT) is None
    assert not any(storage.exists(key) for key in [*old_keys, "inputs/u1/image.png"])
    assert not storage.exists(f"tasks/{old.task_id}/preview.png")
    kept = store.get(young.task_id, ACCOUNT)
    assert kept is not None and storage.exists(kept.outputs[0]["key"])
    assert sweep(store, storage, clock.now()) == 0  # idempotent


def test_sweep_prunes_callbacks_finished_a_retention_period_ago(
    clock: FakeClock, storage: LocalStorage
) -> None:
    def callbacks(task: Task) -> Callback:
        return Callback(
            url="https://hooks.example.com/k", body="{}", msg_id=f"msg_{task.task_id}_{task.status}"
        )

    store = MemoryTaskStore(clock=clock, callbacks=callbacks)
    sent, waiting = (
        store.create(account_id=ACCOUNT, kind="text2image", model="fake", request={}) for _ in range(2)
    )
    entry = store.outbox.claim("sender", 60)
    assert entry is not None and entry.task_id == sent.task_id
    assert store.outbox.delivered(entry.callback_id, "sender")

    clock.advance(DEFAULT_RETENTION.total_seconds() - 1)
    sweep(store, storage, clock.now())
    assert len(store.outbox.entries(sent.task_id)) == 1
    clock.advance(1)
    sweep(store, storage, clock.now())
    assert store.outbox.entries(sent.task_id) == []
    assert [e.state for e in store.outbox.entries(waiting.task_id)] == ["pending"]  # never pruned unsent
