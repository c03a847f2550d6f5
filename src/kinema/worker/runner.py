"""The worker: claims a task from the store, runs it through the engine and records how it ended.

`Worker.run_once` is the one visible path of a task, as numbered steps; `run_forever` polls, keeps the
worker's models published in the store and sweeps expired media now and then. Many workers may share
one store, in threads or processes; the store's leases keep each task with one of them. The worker
never builds an engine or a backend: the composition root passes them in.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from pydantic import TypeAdapter, ValidationError

from kinema.errors import Cancelled, InvalidRequest, ModelLoadError
from kinema.jobs.clock import Clock, SystemClock
from kinema.jobs.store import LeaseLost, Task, TaskStore
from kinema.spec import ExtendVideo, ImageToVideo, Request, Result, TextToImage, TextToVideo
from kinema.storage.base import MediaStorage, MissingMedia
from kinema.storage.layout import preview_key
from kinema.worker import media, retention
from kinema.worker.lease import Lease

log = logging.getLogger(__name__)

AnyRequest = TextToVideo | ImageToVideo | ExtendVideo | TextToImage
StepCallback = Callable[[int, int, "np.ndarray | None"], None]
GENERATING = 0.95  # share of progress that generation takes; encoding and uploading share the rest
SHUTDOWN = "the worker shut down before the task finished"
_REQUEST: TypeAdapter[AnyRequest] = TypeAdapter(Request)


class Generator(Protocol):
    """What the worker needs of `kinema.engine.generation.Engine`."""

    def run(
        self, request: AnyRequest, out_dir: Path, *, on_step: StepCallback, should_stop: Callable[[], bool]
    ) -> Result: ...


def new_worker_id() -> str:
    """A worker id unique per process and per worker: host, pid and a random suffix."""
    return f"{socket.gethostname()[:64]}-{os.getpid()}-{secrets.token_hex(4)}"


def _ignore(task: Task) -> None:
    del task


def _no_models() -> list[dict[str, Any]]:
    return []


class Worker:
    """Runs tasks from `store` one at a time; see the module docstring."""

    def __init__(
        self,
        store: TaskStore,
        storage: MediaStorage,
        engine: Generator,
        *,
        worker_id: str | None = None,
        models: Collection[str] | None = None,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 2.0,
        poll_seconds: float = 0.5,
        preview_seconds: float = 1.0,
        catalog_seconds: float = 30.0,
        sweep_seconds: float | None = 600.0,
        notify: Callable[[Task], None] = _ignore,
        catalog: Callable[[], list[dict[str, Any]]] = _no_models,
        clock: Clock | None = None,
        temp_dir: Path | None = None,
    ) -> None:
        self.store, self.storage, self.engine = store, storage, engine
        self.worker_id = worker_id or new_worker_id()
        self.models = None if models is None else frozenset(models)
        self.lease_seconds, self.heartbeat_seconds = lease_seconds, heartbeat_seconds
        self.poll_seconds, self.preview_seconds = poll_seconds, preview_seconds
        self.catalog_seconds, self.sweep_seconds = catalog_seconds, sweep_seconds
        self.notify, self.catalog = notify, catalog
        self.clock = clock or SystemClock()
        self.temp_dir = temp_dir
        # Set by `WorkerPool.stop` when the grace time is over: the running task stops between steps.
        self.abort = threading.Event()

    # --- the loop ------------------------------------------------------------------------------------
    def run_forever(self, stop: threading.Event) -> None:
        """Claim and run tasks until `stop` is set; the running task is finished first."""
        log.info("worker %s started (models: %s)", self.worker_id, _names(self.models))
        next_sweep = time.monotonic()
        with self._published(stop):
            while not stop.is_set():
                if self.sweep_seconds is not None and time.monotonic() >= next_sweep:
                    self.sweep()
                    next_sweep = time.monotonic() + self.sweep_seconds
                try:
                    worked = self.run_once()
                except Exception:  # the store is unreachable: wait and try again (leases cover the rest)
                    log.exception("worker %s: the task store failed", self.worker_id)
                    worked = False
                if not worked:
                    stop.wait(self.poll_seconds)
        log.info("worker %s stopped", self.worker_id)

    @contextmanager
    def _published(self, stop: threading.Event) -> Iterator[None]:
        """Keep this worker and its models in the store's workers table while the loop runs."""
        done = threading.Event()

        def publish_until_done() -> None:
            while True:
                self.publish()
                if done.wait(self.catalog_seconds):
                    return

        thread = threading.Thread(target=publish_until_done, name=f"catalog-{self.worker_id}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self._unpublish()

    def publish(self) -> None:
        """Write this worker's models to the store (a failure is logged; the next interval retries)."""
        try:
            self.store.register_worker(self.worker_id, self.catalog())
        except Exception:
            log.exception("worker %s could not publish its models", self.worker_id)

    def _unpublish(self) -> None:
        try:
            self.store.remove_worker(self.worker_id)
        except Exception:
            log.exception("worker %s could not remove itself from the workers table", self.worker_id)

    def sweep(self) -> int:
        """Delete expired finished tasks and their media; a failure is logged and retried later."""
        try:
            return retention.sweep(self.store, self.storage, self.clock.now())
        except Exception:
            log.exception("worker %s: the retention sweep failed", self.worker_id)
            return 0

    # --- one task ------------------------------------------------------------------------------------
    def run_once(self) -> bool:
        """Claim one task and run it to its end; False when no task was ready."""
        task = self.store.claim(self.worker_id, self.lease_seconds, self.models)
        if task is None:
            return False
        log.info("worker %s claimed task %s (%s, %s)", self.worker_id, task.task_id, task.kind, task.model)
        self._notify(task)
        lease = Lease(
            self.store,
            task.task_id,
            self.worker_id,
            lease_seconds=self.lease_seconds,
            interval=self.heartbeat_seconds,
        )
        try:
            with (
                lease,
                tempfile.TemporaryDirectory(prefix=f"kinema-{task.task_id}-", dir=self.temp_dir) as tmp,
            ):
                outputs = self._run(task, Path(tmp), lease)
        except Exception as exc:
            self._fail(task, exc, lease)
        else:
            self._finish(task, lambda: self.store.complete(task.task_id, self.worker_id, outputs))
        return True

    def _run(self, task: Task, folder: Path, lease: Lease) -> list[dict[str, Any]]:
        # 1. Fetch the input media named by key and validate the request with local paths.
        spec = task.request.get("spec")
        if not isinstance(spec, dict):
            raise InvalidRequest(f"task {task.task_id} has no request spec; create the task again")
        inputs = folder / "inputs"
        inputs.mkdir()
        request = _validate(media.download_inputs(self.storage, spec, inputs))
        # 2. Generate, reporting progress and previews, stopping when the heartbeat says so.
        result = self.engine.run(
            request,
            folder / "out",
            on_step=self._on_step(task.task_id, lease),
            should_stop=lambda: lease.should_stop or self.abort.is_set(),
        )
        # 3. Upload the results under the task's keys; the caller records them.
        lease.report(progress=GENERATING + 0.02, stage="uploading")
        return media.upload_outputs(self.storage, task.task_id, result)

    def _on_step(self, task_id: str, lease: Lease) -> StepCallback:
        last_preview = -float("inf")

        def on_step(step: int, total: int, preview: np.ndarray | None) -> None:
            nonlocal last_preview
            key = None
            if preview is not None and time.monotonic() - last_preview >= self.preview_seconds:
                last_preview = time.monotonic()
                key = self._put_preview(task_id, preview)
            stage = "encoding" if step >= total else "generating"
            lease.report(progress=GENERATING * step / max(total, 1), stage=stage, preview_key=key)

        return on_step

    def _put_preview(self, task_id: str, frame: np.ndarray) -> str | None:
        """Store a preview PNG and return its key; a preview that fails is skipped, not fatal."""
        key = preview_key(task_id)
        try:
            self.storage.put_bytes(key, media.preview_png(frame), content_type="image/png")
        except Exception:
            log.warning("task %s: storing a preview failed", task_id, exc_info=True)
            return None
        return key

    def _fail(self, task: Task, exc: Exception, lease: Lease) -> None:
        error, retryable = _classify(exc)
        if isinstance(exc, Cancelled) and self.abort.is_set() and not lease.should_stop:
            error, retryable = SHUTDOWN, True  # another worker picks it up again
        if retryable:
            log.error("task %s failed: %s", task.task_id, error, exc_info=exc)
        else:
            log.info("task %s ended: %s", task.task_id, error)
        self._finish(
            task, lambda: self.store.fail(task.task_id, self.worker_id, error=error, retryable=retryable)
        )

    def _finish(self, task: Task, record: Callable[[], Task]) -> None:
        try:
            ended = record()
        except LeaseLost as exc:
            log.warning("task %s: result dropped: %s", task.task_id, exc)
            return
        log.info("task %s is %s", ended.task_id, ended.status)
        self._notify(ended)

    def _notify(self, task: Task) -> None:
        try:
            self.notify(task)
        except Exception:
            log.exception("notifying the change of task %s failed", task.task_id)


def _validate(spec: dict[str, Any]) -> AnyRequest:
    try:
        return _REQUEST.validate_python(spec)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = first["loc"][1:] if first["loc"][:1] == (spec.get("kind"),) else first["loc"]  # drop the tag
        message = first["msg"].removeprefix("Value error, ")
        raise InvalidRequest(f"{'.'.join(map(str, loc))}: {message}" if loc else message) from None


def _classify(exc: Exception) -> tuple[str, bool]:
    """The error text a task records for `exc`, and whether another attempt could succeed."""
    if isinstance(exc, Cancelled):
        return "cancelled", False
    if isinstance(exc, InvalidRequest | MissingMedia | ModelLoadError):
        return _message(exc) or type(exc).__name__, False
    return f"{type(exc).__name__}: {_message(exc)}", True


def _message(exc: Exception) -> str:
    # `str()` of a KeyError (MissingMedia is one) quotes its message; the first argument does not.
    return str(exc.args[0]) if len(exc.args) == 1 else str(exc)


def _names(models: Collection[str] | None) -> str:
    return "all" if models is None else ", ".join(sorted(models)) or "none"
