"""Worker fixtures: an in-memory store on a fake clock, local media in tmp_path, the fake backend.

`queue` creates a task the way the API does (a spec whose media fields are storage keys, a seed
always set) and `make_worker` builds a worker with short intervals so tests wait milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from worker_fakes import ACCOUNT, GatedBackend, StallableStore

from kinema.backends.fake import FakeBackend
from kinema.engine.generation import Engine
from kinema.errors import UnknownModel
from kinema.jobs import FakeClock, MemoryTaskStore, Task
from kinema.storage.local import LocalStorage
from kinema.worker import Worker


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(clock: FakeClock) -> StallableStore:
    return StallableStore(clock=clock)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "media", base_url="http://kinema.test", secret=b"test-secret")


@pytest.fixture
def fake() -> GatedBackend:
    return GatedBackend()


@pytest.fixture
def engine(fake: GatedBackend) -> Engine:
    def backend_for(model: str) -> FakeBackend:
        if model != "fake":
            raise UnknownModel(f"unknown model {model!r}; served models: fake")
        return fake

    return Engine(backend_for)


@pytest.fixture
def queue(store: MemoryTaskStore) -> Callable[..., Task]:
    def create(kind: str = "text2video", *, max_attempts: int = 3, **spec: Any) -> Task:
        spec = {"kind": kind, "model": "fake", "seed": 7, **spec}
        if kind != "text2image" and "num_frames" not in spec and "seconds" not in spec:
            spec["num_frames"] = 8
        if kind in ("text2video", "text2image"):
            spec.setdefault("prompt", "a red circle moving right")
        request = {"spec": spec, "api": "kinema"}
        return store.create(
            account_id=ACCOUNT, kind=kind, model=spec["model"], request=request, max_attempts=max_attempts
        )

    return create


@pytest.fixture
def make_worker(
    store: MemoryTaskStore, storage: LocalStorage, engine: Engine, tmp_path: Path
) -> Callable[..., Worker]:
    def build(**options: Any) -> Worker:
        (tmp_path / "work").mkdir(exist_ok=True)
        defaults: dict[str, Any] = dict(
            heartbeat_seconds=0.01,
            poll_seconds=0.01,
            preview_seconds=0.0,
            sweep_seconds=None,
            temp_dir=tmp_path / "work",
        )
        return Worker(store, storage, options.pop("engine", engine), **{**defaults, **options})

    return build
