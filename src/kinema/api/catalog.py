"""The models the API may hand tasks to: what workers published to the store, cached briefly.

A model is known once any worker has published it; it is `online` while a worker that serves it has
been seen within `online_seconds`. Tasks for a known model that is offline are still accepted: they
wait in the queue until a worker comes back.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import ValidationError

from kinema.jobs import TaskStore
from kinema.spec import Capabilities


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    family: str
    capabilities: Capabilities | None
    error: str | None
    online: bool
    workers: int
    seen_at: datetime


class Catalog:
    def __init__(self, store: TaskStore, *, online_seconds: float = 90.0, cache_seconds: float = 1.0) -> None:
        self.store = store
        self.online_seconds = online_seconds
        self.cache_seconds = cache_seconds
        self._lock = threading.Lock()
        self._cached: dict[str, CatalogEntry] = {}
        self._cached_at = -1e9

    def entries(self) -> dict[str, CatalogEntry]:
        with self._lock:
            if time.monotonic() - self._cached_at < self.cache_seconds:
                return self._cached
        entries = self._load()
        with self._lock:
            self._cached, self._cached_at = entries, time.monotonic()
        return entries

    def get(self, model_id: str) -> CatalogEntry | None:
        return self.entries().get(model_id)

    def invalidate(self) -> None:
        with self._lock:
            self._cached_at = -1e9

    def live_workers(self) -> int:
        horizon = datetime.now(UTC) - timedelta(seconds=self.online_seconds)
        return sum(1 for w in self.store.workers() if w.seen_at >= horizon)

    def _load(self) -> dict[str, CatalogEntry]:
        horizon = datetime.now(UTC) - timedelta(seconds=self.online_seconds)
        found: dict[str, CatalogEntry] = {}
        # Newest first: the most recent description of a model wins; online if any live worker has it.
        for worker in sorted(self.store.workers(), key=lambda w: w.seen_at, reverse=True):
            live = worker.seen_at >= horizon
            for model in worker.models:
                entry = _entry(model, live, worker.seen_at)
                if entry is None:
                    continue
                old = found.get(entry.id)
                if old is None:
                    found[entry.id] = entry
                else:
                    found[entry.id] = CatalogEntry(
                        id=old.id,
                        family=old.family,
                        capabilities=old.capabilities or entry.capabilities,
                        error=old.error if old.capabilities is None else None,
                        online=old.online or live,
                        workers=old.workers + (1 if live else 0),
                        seen_at=old.seen_at,
                    )
        return found


def _entry(model: dict[str, Any], live: bool, seen_at: datetime) -> CatalogEntry | None:
    model_id = model.get("id")
    if not isinstance(model_id, str):
        return None
    caps = None
    if model.get("capabilities"):
        try:
            caps = Capabilities.model_validate(model["capabilities"])
        except ValidationError:
            caps = None
    return CatalogEntry(
        id=model_id,
        family=str(model.get("family", "")),
        capabilities=caps,
        error=model.get("error") if caps is None else None,
        online=live and caps is not None,
        workers=1 if live else 0,
        seen_at=seen_at,
    )
