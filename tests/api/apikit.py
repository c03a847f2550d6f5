"""Helpers for the API tests: an API over the in-memory store, local media in tmp_path and a worker
running the fake backend.

The tests drive the worker by hand (`drain`), so every state they assert on is deterministic.
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from kinema.accounts import MemoryAccountStore
from kinema.accounts.billing import Billing
from kinema.api.app import create_app
from kinema.api.catalog import Catalog
from kinema.api.context import ApiConfig, ApiContext
from kinema.backends.fake import FakeBackend
from kinema.engine.generation import Engine
from kinema.jobs import MemoryTaskStore, Task
from kinema.storage.local import LocalStorage
from kinema.worker import Worker


@dataclass
class Keys:
    """Two accounts, each with a key pair and a static key."""

    pairs: dict[str, tuple[str, str]] = field(
        default_factory=lambda: {"ak_a": ("acc_a", "sk_a" * 8), "ak_b": ("acc_b", "sk_b" * 8)}
    )
    static: dict[str, str] = field(default_factory=lambda: {"kn_static_a": "acc_a"})

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        return self.pairs.get(access_key)

    def account_for_api_key(self, api_key: str) -> str | None:
        return self.static.get(api_key)


def token(access_key: str = "ak_a", secret: str | None = None, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": access_key, "exp": now + 1800, "nbf": now - 5, **claims}
    return jwt.encode(body, secret or Keys().pairs[access_key][1], algorithm="HS256")


def auth(access_key: str = "ak_a") -> dict[str, str]:
    return {"Authorization": f"Bearer {token(access_key)}"}


def png_b64(width: int = 640, height: int = 360, colour: tuple[int, int, int] = (40, 90, 220)) -> str:
    image = np.zeros((height, width, 3), np.uint8)
    image[:] = colour
    image[height // 3 : height // 2, width // 3 : width // 2] = (220, 40, 40)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@dataclass
class Api:
    client: TestClient
    ctx: ApiContext
    store: MemoryTaskStore
    storage: LocalStorage
    worker: Worker
    notified: list[Task]

    def drain(self, limit: int = 50) -> int:
        """Run queued tasks to the end; returns how many ran."""
        ran = 0
        while ran < limit and self.worker.run_once():
            ran += 1
        return ran

    def fetch(self, url: str) -> bytes:
        response = self.client.get(url)
        assert response.status_code == 200, response.text
        return response.content


def make_api(tmp_path: Path, accounts: MemoryAccountStore | None = None) -> Iterator[Api]:
    """The app over memory stores; with `accounts`, keys, plans and credits come from it (billing on)."""
    hook = None if accounts is None else Billing(accounts).hook
    store = MemoryTaskStore(hook=hook)
    storage = LocalStorage(tmp_path / "media", base_url="http://testserver", secret=b"s" * 32)
    backend = FakeBackend("fake")
    engine = Engine(lambda model: backend)
    caps = backend.capabilities()
    catalog_entries = [
        {"id": "fake", "family": "fake", "capabilities": caps.model_dump(mode="json"), "error": None}
    ]
    notified: list[Task] = []
    worker = Worker(
        store, storage, engine, catalog=lambda: catalog_entries, notify=notified.append, sweep_seconds=None,
        temp_dir=tmp_path,
    )  # fmt: skip
    worker.publish()
    ctx = ApiContext(
        store=store,
        keys=Keys() if accounts is None else accounts,
        accounts=accounts,
        storage=storage,
        catalog=Catalog(store, cache_seconds=0.0),
        config=ApiConfig(kling_models={"*": "fake"}, sse_poll_seconds=0.02),
        notify=notified.append,
    )
    with TestClient(create_app(ctx)) as client:
        yield Api(client, ctx, store, storage, worker, notified)
