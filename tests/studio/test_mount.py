"""The studio as `kinema serve` ships it: its page at `/`, hashed assets, and every API route untouched.

No browser here: these run in the fast suite. The committed OpenAPI document must match the app.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kinema.accounts.memory import MemoryAccountStore
from kinema.api.app import create_app
from kinema.api.catalog import Catalog
from kinema.api.context import ApiContext
from kinema.api.studio import mount_studio
from kinema.jobs import MemoryTaskStore
from kinema.storage.local import LocalStorage
from kinema.studio import BUILD, built

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    store = MemoryTaskStore()
    accounts = MemoryAccountStore()
    storage = LocalStorage(tmp_path, base_url="http://testserver", secret=b"s" * 32)
    ctx = ApiContext(store=store, keys=accounts, accounts=accounts, storage=storage, catalog=Catalog(store))
    with TestClient(create_app(ctx)) as test_client:
        yield test_client


def test_the_package_ships_a_built_studio() -> None:
    assert built(), f"{BUILD} is missing; run `npm ci && npm run build` in studio/"


def test_the_page_is_served_at_the_root_under_a_strict_content_policy(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert '<div id="app">' in page.text
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["cache-control"] == "no-cache"
    assert client.head("/").status_code == 200


def test_assets_have_hashed_names_and_are_cached_for_good(client: TestClient) -> None:
    names = re.findall(r'"/assets/([^"]+)"', client.get("/").text)
    assert {Path(n).suffix for n in names} == {".js", ".css"}
    for name in names:
        asset = client.get(f"/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert client.get("/assets/nothing-here.js").status_code == 404


def test_every_api_route_keeps_its_answer(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").json()["info"]["title"] == "Kinema"
    assert client.get("/docs").status_code == 200
    refused = client.get("/api/v1/tasks")
    assert (refused.status_code, refused.json()["code"]) == (401, 1001)
    unknown = client.get("/api/v1/nothing")
    assert (unknown.status_code, unknown.json()["code"]) == (404, 1202)
    assert "/" not in client.get("/openapi.json").json()["paths"]


def test_without_a_build_the_root_stays_unrouted(tmp_path: Path) -> None:
    app = FastAPI()
    mount_studio(app, tmp_path)
    assert TestClient(app).get("/").status_code == 404


def test_the_committed_openapi_document_matches_the_app() -> None:
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "openapi.py"), "--check"], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stderr
