"""A load test on loopback: 1,000 tasks submitted at once to a real `kinema serve` all succeed, once each.

The server runs as its own process (uvicorn, real HTTP) with four in-process workers on the fast fake
backend, on SQLite and, when KINEMA_TEST_POSTGRES_URL is set, on Postgres. Half the tasks go through
Kling's endpoint, half through Kinema's; every phase has a deadline, so the test stops itself.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
import pytest

from dbfixtures import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]

KINEMA = Path(sys.executable).with_name("kinema")
TASKS = 1000
CONCURRENCY = 50
SUBMIT_SECONDS = 90.0  # all 1,000 creates answered within this
FINISH_SECONDS = 150.0  # and all tasks finished within this after the last create
pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    url: str
    data: Path
    log: Path
    process: subprocess.Popen[str]
    token: str  # one JWT, signed once and reused, as a real client caches it

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def alive(self) -> None:
        assert self.process.poll() is None, f"the server died:\n{self.log.read_text()[-4000:]}"


def wait_ready(url: str, process: subprocess.Popen[str], log: Path, workers: int) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/readyz", timeout=2).json().get("workers", 0) >= workers:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not become ready:\n{log.read_text()}")


def signed_token(log: Path) -> str:
    """A JWT signed with the admin key pair that the first start printed (valid for the whole test)."""
    text = log.read_text()
    access = text.split("access key", 1)[1].split()[0]
    secret = text.split("secret key", 1)[1].split()[0]
    now = int(time.time())
    return jwt.encode({"iss": access, "exp": now + 1800, "nbf": now - 5}, secret, algorithm="HS256")


@pytest.fixture(params=["sqlite", "sqlite-2-processes", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    models = tmp_path / "models.toml"
    models.write_text('[[models]]\nid = "fake"\nfamily = "fake"\n')
    env = {k: v for k, v in os.environ.items() if k not in ("KINEMA_DATA_DIR", "KINEMA_DATABASE_URL")}
    env.update(
        KINEMA_MODELS_FILE=str(models),
        KINEMA_KLING_MODELS='{"*": "fake"}',
        KINEMA_LEASE_SECONDS="10",
        KINEMA_TORCH_THREADS="1",
        HF_HUB_OFFLINE="1",
    )
    port, data, log = free_port(), tmp_path / "data", tmp_path / "serve.log"
    args = [str(KINEMA), "serve", "--port", str(port), "--data-dir", str(data), "--workers", "4"]
    if request.param == "postgres":
        args += ["--database-url", request.getfixturevalue("postgres_url")]
    if request.param == "sqlite-2-processes":  # two event loops take turns at the file's writer queue
        args += ["--api-processes", "2"]
    with log.open("w") as handle:
        process = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log, workers=4)
        yield Served(url, data, log, process, signed_token(log))
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def create_body(i: int) -> tuple[str, dict[str, Any]]:
    """Even tasks on Kling's endpoint (its shortest clip, 5 s), odd ones on Kinema's (half a second)."""
    prompt = f"load task {i}: a red circle moving right"
    if i % 2 == 0:
        return "/v1/videos/text2video", {
            "model_name": "kling-v1",
            "prompt": prompt,
            "external_task_id": f"load-{i}",
        }
    body = {
        "kind": "text2video",
        "model": "fake",
        "prompt": prompt,
        "duration": 0.5,
        "external_task_id": f"load-{i}",
    }
    return "/api/v1/tasks", body


async def submit_all(served: Served) -> list[str]:
    """Create the tasks, CONCURRENCY requests in flight; returns the task ids the server answered."""
    gate = asyncio.Semaphore(CONCURRENCY)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(
        base_url=served.url, headers=served.headers(), limits=limits, timeout=30
    ) as client:

        async def one(i: int) -> str:
            path, body = create_body(i)
            async with gate:
                response = await client.post(path, json=body)
            assert response.status_code == 200, (i, response.text)
            data = response.json()["data"]
            return str(data.get("task_id") or data["id"])

        return await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(TASKS))), SUBMIT_SECONDS)


def get(served: Served, path: str, **params: Any) -> Any:
    response = httpx.get(served.url + path, params=params, headers=served.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def wait_all_finished(served: Served) -> None:
    deadline = time.monotonic() + FINISH_SECONDS
    while True:
        done = get(served, "/api/v1/tasks", status=["succeed"], limit=1)["total"]
        failed = get(served, "/api/v1/tasks", status=["failed", "cancelled"], limit=5)
        assert failed["total"] == 0, failed["tasks"]
        if done >= TASKS:
            return
        served.alive()
        assert time.monotonic() < deadline, (
            f"only {done} of {TASKS} tasks succeeded in {FINISH_SECONDS:.0f} s"
        )
        time.sleep(0.5)


def test_a_thousand_concurrent_tasks_all_succeed_exactly_once(served: Served) -> None:
    # 1. Submit 1,000 tasks at once, half on each API surface.
    start = time.monotonic()
    created = asyncio.run(submit_all(served))
    submitted = time.monotonic()
    assert len(set(created)) == TASKS
    # 2. Poll the list endpoint until every task has succeeded (and fail at once if one did not).
    wait_all_finished(served)
    finished = time.monotonic()
    # 3. Exactly 1,000 tasks exist, each external id once, each with one output whose files exist.
    page = get(served, "/api/v1/tasks", limit=500)
    assert page["total"] == TASKS
    tasks = [*page["tasks"], *get(served, "/api/v1/tasks", limit=500, offset=500)["tasks"]]
    assert sorted(t["id"] for t in tasks) == sorted(created)
    externals = Counter(t["external_task_id"] for t in tasks)
    assert externals == Counter(f"load-{i}" for i in range(TASKS))
    for task in tasks:
        assert task["status"] == "succeed" and len(task["outputs"]) == 1, task
        for link in (task["outputs"][0]["url"], task["outputs"][0]["poster_url"]):
            key = urlsplit(link).path.removeprefix("/media/")
            assert (served.data / "media" / key).stat().st_size > 0, task
    # Kling's list shows the same tasks (it lists the kind, whichever API created them), Kling's own
    # half as 5-second clips.
    kling = [t for n in (1, 2) for t in get(served, "/v1/videos/text2video", pageNum=n, pageSize=500)]
    assert sorted(t["task_id"] for t in kling) == sorted(created)
    assert {t["task_status"] for t in kling} == {"succeed"}
    lengths = {t["task_info"]["external_task_id"]: t["task_result"]["videos"][0]["duration"] for t in kling}
    assert lengths == {f"load-{i}": "5.0" if i % 2 == 0 else "0.5" for i in range(TASKS)}
    # One output really downloads through its signed link.
    assert httpx.get(tasks[0]["outputs"][0]["url"], timeout=30).content[4:8] == b"ftyp"
    attempts = Counter(t["attempt"] for t in tasks)
    print(
        f"\n{TASKS} tasks: submitted in {submitted - start:.1f} s, all succeeded "
        f"{finished - submitted:.1f} s later; attempts {dict(attempts)}"
    )


async def race(served: Served, api_key: str, count: int) -> list[httpx.Response]:
    """`count` creates sent at once with one account's key, half on each API surface."""
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(base_url=served.url, headers=headers, limits=limits, timeout=60) as client:

        async def one(i: int) -> httpx.Response:
            if i % 2 == 0:
                body: dict[str, Any] = {"model_name": "kling-v1", "prompt": f"race {i}", "duration": "5"}
                return await client.post("/v1/videos/text2video", json=body)
            body = {"kind": "text2video", "model": "fake", "prompt": f"race {i}", "duration": 5}
            return await client.post("/api/v1/tasks", json=body)

        return await asyncio.gather(*(one(i) for i in range(count)))


def admin_post(served: Served, method: str, path: str, body: dict[str, Any]) -> Any:
    response = httpx.request(method, served.url + path, json=body, headers=served.headers(), timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_parallel_clients_cannot_overspend(served: Served) -> None:
    """60 creates race for 100 credits at 10 credits each: exactly 10 are charged, 50 refused with 1102,
    and the balance ends at 0, never below (SQLite's write lock; Postgres row locks)."""
    plan = {"daily_free_credits": 0, "monthly_credits": 0, "video_concurrency": 1000, "metered": True}
    admin_post(served, "PUT", "/api/v1/admin/plans/racer", {**plan, "requests_per_minute": 0})
    account = admin_post(served, "POST", "/api/v1/admin/accounts", {"name": "racer", "plan": "racer"})
    ident = account["account_id"]
    admin_post(served, "POST", f"/api/v1/admin/accounts/{ident}/credits", {"credits": 100})
    key = admin_post(served, "POST", f"/api/v1/admin/accounts/{ident}/keys", {"kind": "static"})["api_key"]

    answers = asyncio.run(race(served, key, 60))

    outcomes = Counter((r.status_code, r.json()["code"]) for r in answers)
    assert outcomes == {(200, 0): 10, (429, 1102): 50}, [r.text for r in answers if r.status_code != 200][:3]
    mine = {"Authorization": f"Bearer {key}"}
    me = httpx.get(served.url + "/api/v1/account", headers=mine, timeout=30).json()["data"]
    assert me["balance"] == 0
    ledger = httpx.get(served.url + "/api/v1/account/ledger", headers=mine, timeout=30).json()["data"]
    charges = [e["amount"] for e in ledger["entries"] if e["kind"] == "charge"]
    assert sorted(charges) == [-10] * 10 and ledger["total"] == 11  # the grant and ten charges
