"""API throughput on loopback: create-and-poll requests per second and p50/p99 latency of `kinema serve`.

Reproduce with `python -m benchmarks api` (or `make bench`). A real server process runs with
`--workers 0`, so no generation competes for the CPU; the benchmark publishes the fake model in the
workers table, the way a worker would. Client processes with keep-alive connections send a fixed
number of requests after a warm-up: each connection creates a task (POST /api/v1/tasks) and polls it
(GET /api/v1/tasks/{id}) a few times, authenticating with one cached JWT (or a static API key). The
client is a minimal HTTP/1.1 writer on asyncio, cheaper per request than httpx (`--client httpx`
compares); its own ceiling against a stub server is printed too, since client and server share the CPUs.
Runs on SQLite, and on Postgres when `--database-url` or KINEMA_TEST_POSTGRES_URL names a server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import queue
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

KINEMA = Path(sys.executable).with_name("kinema")
GOAL_RPS, GOAL_P99_MS = 1000.0, 50.0
PHASE_SECONDS = 120.0  # no phase may take longer; the benchmark stops itself
Call = Callable[[str, str, bytes | None], Awaitable[tuple[int, bytes]]]
Close = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Load:
    """What every client process does: `requests` in all after `warmup`, over `connections` each."""

    url: str
    token: str
    requests: int
    warmup: int
    clients: int
    connections: int
    polls: int
    client: str  # "raw" or "httpx"
    path: str = ""  # a fixed GET path instead of create-and-poll (the ceiling runs)


# --- the client ------------------------------------------------------------------------------------------
async def raw_connection(url: str, token: str) -> tuple[Call, Close]:
    """One keep-alive HTTP/1.1 connection; responses must carry Content-Length (uvicorn's JSON ones do)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    common = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n"

    async def call(method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        head = f"{method} {path} HTTP/1.1\r\n{common}"
        if body is not None:
            head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"\r\n" + (body or b""))
        header = await reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        length = next(
            int(line.split(b":", 1)[1])
            for line in header.split(b"\r\n")
            if line[:15].lower() == b"content-length:"
        )
        return status, await reader.readexactly(length)

    async def close() -> None:
        writer.close()

    return call, close


async def httpx_connection(url: str, token: str) -> tuple[Call, Close]:
    import httpx

    limits = httpx.Limits(max_connections=1)
    client = httpx.AsyncClient(
        base_url=url, headers={"Authorization": f"Bearer {token}"}, limits=limits, timeout=30
    )

    async def call(method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else None
        response = await client.request(method, path, content=body, headers=headers)
        return response.status_code, response.content

    return call, client.aclose


def create_body(n: int) -> bytes:
    return json.dumps(
        {"kind": "text2video", "model": "fake", "prompt": f"a red circle moving right, {n}", "duration": 0.5}
    ).encode()


@dataclass
class Cycle:
    """Where one connection is in its create-then-polls cycle. Connections start their cycles staggered
    (the first cycle of connection i skips i mod (polls + 1) polls) and carry them over from warm-up to
    measuring, so that the measured phase does not open with every connection creating at once: a
    burst of 32 creates is 3 % of a 5,000-request phase's creates, enough to be their p99."""

    skip: int = 0  # polls the first cycle leaves out
    task_id: str = ""  # none yet: the next request creates one
    polls: int = 0


async def drive(
    call: Call, load: Load, budget: list[int], seen: dict[str, list[float]], cycle: Cycle
) -> None:
    """Take requests from `budget` until it is spent: a create, then `load.polls` polls of that task."""
    while budget[0] > 0:
        budget[0] -= 1
        start = time.perf_counter()
        if load.path:
            kind, (status, body) = "get", await call("GET", load.path, None)
        elif not cycle.task_id or cycle.polls >= load.polls:
            kind, (status, body) = "create", await call("POST", "/api/v1/tasks", create_body(budget[0]))
            if status == 200:
                cycle.task_id, cycle.polls = json.loads(body)["data"]["id"], cycle.skip
                cycle.skip = 0
        else:
            kind, (status, body) = "poll", await call("GET", f"/api/v1/tasks/{cycle.task_id}", None)
            cycle.polls += 1
        elapsed = time.perf_counter() - start
        if status != 200:
            seen.setdefault("errors", []).append(float(status))
            if len(seen["errors"]) == 1:
                print(f"first error: {status} {body[:300]!r}", file=sys.stderr)
        seen.setdefault(kind, []).append(elapsed)


async def phases(load: Load, barrier: Any) -> dict[str, Any]:
    connect = raw_connection if load.client == "raw" else httpx_connection
    tokens = load.token.split()  # one per account: connection i speaks for account i mod K
    opened = [await connect(load.url, tokens[i % len(tokens)]) for i in range(load.connections)]
    calls = [call for call, _ in opened]
    cycles = [Cycle(skip=i % (load.polls + 1)) for i in range(len(calls))]
    try:
        warm: dict[str, list[float]] = {}
        budget = [load.warmup // load.clients]
        await asyncio.wait_for(
            asyncio.gather(*(drive(c, load, budget, warm, y) for c, y in zip(calls, cycles, strict=True))),
            PHASE_SECONDS,
        )
        await asyncio.to_thread(barrier.wait, PHASE_SECONDS)
        seen: dict[str, list[float]] = {}
        budget = [load.requests // load.clients]
        began = time.monotonic()
        await asyncio.wait_for(
            asyncio.gather(*(drive(c, load, budget, seen, y) for c, y in zip(calls, cycles, strict=True))),
            PHASE_SECONDS,
        )
        return {"began": began, "ended": time.monotonic(), **seen}
    finally:
        for _, close in opened:
            await close()


def client_process(load: Load, barrier: Any, results: Any) -> None:
    """The body of one client process: warm up, wait for the others, measure; send what it saw."""
    try:
        import uvloop

        factory: Any = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        results.put(runner.run(phases(load, barrier)))


def collect(results: Any, processes: list[Any]) -> list[dict[str, Any]]:
    """One result from each client process; a process that died or a run past the deadline is an error."""
    parts: list[dict[str, Any]] = []
    deadline = time.monotonic() + 3 * PHASE_SECONDS
    while len(parts) < len(processes):
        try:
            parts.append(results.get(timeout=1.0))
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in processes):
                raise RuntimeError("a client process failed; its traceback is above") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"the clients did not finish in {3 * PHASE_SECONDS:.0f} s") from None
    return parts


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its live descendants have used so far."""
    import psutil

    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def run_load(load: Load, server_pid: int | None = None) -> dict[str, float]:
    """Run `load.clients` client processes and merge what they measured into one set of numbers; with
    `server_pid`, also the server's CPU time per request (less sensitive than req/s to other load on the
    machine, though the warm-up's share is in it)."""
    cpu_before = cpu_seconds(server_pid) if server_pid is not None else 0.0
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(load.clients), context.Queue()
    processes = [
        context.Process(target=client_process, args=(load, barrier, results)) for _ in range(load.clients)
    ]
    for process in processes:
        process.start()
    try:
        parts = collect(results, processes)
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
    seconds = max(p["ended"] for p in parts) - min(p["began"] for p in parts)
    merged = {k: sorted(v for p in parts for v in p.get(k, [])) for k in ("create", "poll", "get", "errors")}
    every = sorted(merged["create"] + merged["poll"] + merged["get"])
    numbers = {
        "requests": len(every),
        "seconds": seconds,
        "rps": len(every) / seconds,
        "errors": len(merged["errors"]),
    }
    if server_pid is not None:
        used = cpu_seconds(server_pid) - cpu_before
        numbers["server_cpu_ms"] = 1e3 * used / (len(every) * (1 + load.warmup / load.requests))
    for name, values in (("all", every), ("create", merged["create"]), ("poll", merged["poll"])):
        if values:
            numbers[f"{name}_p50_ms"] = 1e3 * values[len(values) // 2]
            numbers[f"{name}_p99_ms"] = 1e3 * values[min(len(values) - 1, int(0.99 * len(values)))]
    return numbers


# --- the servers ------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def stub_server() -> Iterator[str]:
    """A process that answers every request with a fixed tiny response: the client's own ceiling."""
    port = free_port()
    code = (
        "import asyncio, sys\n"
        "R = b'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\nContent-Type: application/json\\r\\n\\r\\n{}'\n"
        "async def serve(reader, writer):\n"
        "    try:\n"
        "        while await reader.readuntil(b'\\r\\n\\r\\n'):\n"
        "            writer.write(R)\n"
        "    except (asyncio.IncompleteReadError, ConnectionError):\n"
        "        writer.close()\n"
        "async def main():\n"
        "    server = await asyncio.start_server(serve, '127.0.0.1', int(sys.argv[1]))\n"
        "    print('ready', flush=True)\n"
        "    await server.serve_forever()\n"
        "asyncio.run(main())\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


@dataclass
class Serving:
    url: str
    token: str
    pid: int


@contextmanager
def kinema_server(
    database_url: str | None,
    auth: str,
    processes: int = 1,
    accounts: int = 1,
    server_env: dict[str, str] | None = None,
) -> Iterator[Serving]:
    """`kinema serve --workers 0 --api-processes N` on a fresh data dir (and database), the fake model
    published; the server sees no KINEMA_* variable of this shell, only those of `server_env`."""
    with tempfile.TemporaryDirectory(prefix="kinema-bench-") as tmp:
        data, log_path, port = Path(tmp) / "data", Path(tmp) / "serve.log", free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("KINEMA_")} | (server_env or {})
        args = [str(KINEMA), "serve", "--port", str(port), "--data-dir", str(data), "--workers", "0"]
        args += ["--database-url", database_url] if database_url else []
        args += ["--api-processes", str(processes)]
        with log_path.open("w") as log:
            process = subprocess.Popen(args, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, process, log_path)
            db = database_url or f"sqlite:///{data / 'kinema.db'}"
            publish_fake_model(db)
            yield Serving(url, credential(db, log_path.read_text(), auth, accounts), process.pid)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_ready(url: str, process: subprocess.Popen[str], log: Path) -> None:
    import httpx

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"kinema serve exited:\n{log.read_text()}")
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"kinema serve did not become ready in 60 s:\n{log.read_text()}")


def publish_fake_model(database_url: str) -> None:
    """Write the fake model to the workers table, as a worker serving it would; no task is ever run."""
    from kinema.backends.fake import FakeBackend
    from kinema.jobs import open_store

    capabilities = FakeBackend().capabilities().model_dump(mode="json")
    store = open_store(database_url)
    try:
        store.register_worker("benchmark", [{"id": "fake", "family": "fake", "capabilities": capabilities}])
    finally:
        store.close()


def credential(database_url: str, log: str, auth: str, members: int = 1) -> str:
    """One JWT signed with the admin pair printed at first start, or a fresh static API key; with
    `members` K > 1, K member accounts on the unlimited plan and a credential each, space-separated."""
    import jwt

    from kinema.accounts import open_accounts

    if members > 1:
        return " ".join(member_credentials(database_url, auth, members))
    if auth == "jwt":
        access = log.split("access key", 1)[1].split()[0]
        secret = log.split("secret key", 1)[1].split()[0]
        now = int(time.time())
        return jwt.encode({"iss": access, "exp": now + 1800, "nbf": now - 5}, secret, algorithm="HS256")
    accounts = open_accounts(database_url)
    try:
        admin = accounts.account_by_name("admin")
        assert admin is not None
        return accounts.create_api_key(admin.account_id).api_key
    finally:
        accounts.close()


def member_credentials(database_url: str, auth: str, count: int) -> list[str]:
    """`count` member accounts (plan unlimited: no credits or rate limit in the way, but every create
    still locks its own account's row for the charge) and a JWT or static key for each."""
    import jwt

    from kinema.accounts import open_accounts

    store = open_accounts(database_url)
    try:
        found = []
        for i in range(count):
            account = store.create_account(f"bench-{i}", plan="unlimited")
            if auth == "static":
                found.append(store.create_api_key(account.account_id).api_key)
                continue
            pair = store.create_key_pair(account.account_id)
            now = int(time.time())
            claims = {"iss": pair.access_key, "exp": now + 1800, "nbf": now - 5}
            found.append(jwt.encode(claims, pair.secret_key, algorithm="HS256"))
        return found
    finally:
        store.close()


@contextmanager
def fresh_schema(server_url: str) -> Iterator[str]:
    """A URL on `server_url` whose search_path is a new schema, dropped afterwards."""
    from sqlalchemy import create_engine, text

    from kinema.db import normalise_url

    schema = f"kinema_bench_{secrets.token_hex(6)}"
    url = normalise_url(server_url)
    admin = create_engine(url)
    with admin.begin() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield url.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
            hide_password=False
        )
    finally:
        with admin.begin() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


# --- the report ------------------------------------------------------------------------------------------
def line(name: str, numbers: dict[str, float], *, goal: bool = True) -> str:
    text = (
        f"{name}: {numbers['requests']:.0f} requests in {numbers['seconds']:.2f} s = "
        f"{numbers['rps']:.0f} req/s; p50 {numbers['all_p50_ms']:.1f} ms, p99 {numbers['all_p99_ms']:.1f} ms"
    )
    if "create_p50_ms" in numbers:
        text += (
            f" (create p50/p99 {numbers['create_p50_ms']:.1f}/{numbers['create_p99_ms']:.1f} ms, "
            f"poll {numbers['poll_p50_ms']:.1f}/{numbers['poll_p99_ms']:.1f} ms)"
        )
    if "server_cpu_ms" in numbers:
        text += f"; server CPU {numbers['server_cpu_ms']:.2f} ms per request"
    if numbers["errors"]:
        text += f"; {numbers['errors']:.0f} ERRORS"
    if goal:
        text += f" (goal >= {GOAL_RPS:.0f} req/s, p99 < {GOAL_P99_MS:.0f} ms)"
    return text


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks api", description=__doc__)
    parser.add_argument("--requests", type=int, default=5000, help="measured requests per database")
    parser.add_argument("--warmup", type=int, default=500, help="requests before measuring")
    parser.add_argument("--clients", type=int, default=2, help="client processes")
    parser.add_argument("--connections", type=int, default=16, help="keep-alive connections per client")
    parser.add_argument("--polls", type=int, default=4, help="polls after each create")
    parser.add_argument("--client", choices=["raw", "httpx"], default="raw")
    parser.add_argument("--auth", choices=["jwt", "static"], default="jwt")
    parser.add_argument(
        "--database-url", default=os.environ.get("KINEMA_TEST_POSTGRES_URL"), help="a Postgres server"
    )
    parser.add_argument("--api-processes", type=int, default=1, help="HTTP processes of the server")
    parser.add_argument(
        "--accounts", type=int, default=1, help="accounts the connections speak for (1: the admin's)"
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KINEMA_NAME=VALUE",
        help="a setting for the server, e.g. KINEMA_DATABASE_POOL=16 (repeatable)",
    )
    args = parser.parse_args(argv)
    server_env = dict(pair.split("=", 1) for pair in args.server_env if "=" in pair)
    if len(server_env) != len(args.server_env):
        parser.error("--server-env takes NAME=VALUE")

    def load(url: str, token: str, path: str = "") -> Load:
        return Load(
            url=url, token=token, path=path, requests=args.requests, warmup=args.warmup,
            clients=args.clients, connections=args.connections, polls=args.polls, client=args.client,
        )  # fmt: skip

    print(
        f"# python -m benchmarks api --requests {args.requests} --warmup {args.warmup} "
        f"--clients {args.clients} --connections {args.connections} --polls {args.polls} "
        f"--client {args.client} --auth {args.auth} --api-processes {args.api_processes} "
        f"--accounts {args.accounts}"
        + "".join(f" --server-env {name}={value}" for name, value in server_env.items())
        + (" --database-url URL" if args.database_url else "")
    )
    results: dict[str, dict[str, float]] = {}
    with stub_server() as url:
        results["stub"] = run_load(load(url, "-", "/"))
    print(line("client ceiling (stub server answering a fixed response)", results["stub"], goal=False))
    with kinema_server(None, args.auth, args.api_processes, args.accounts, server_env) as served:
        results["healthz"] = run_load(load(served.url, served.token, "/healthz"), served.pid)
        print(line("framework floor (GET /healthz, no auth, no database)", results["healthz"], goal=False))
        results["sqlite"] = run_load(load(served.url, served.token), served.pid)
    print(line("SQLite create-and-poll", results["sqlite"]))
    if args.database_url:
        with (
            fresh_schema(args.database_url) as url,
            kinema_server(url, args.auth, args.api_processes, args.accounts, server_env) as served,
        ):
            results["postgres"] = run_load(load(served.url, served.token), served.pid)
        print(line("Postgres create-and-poll", results["postgres"]))
    else:
        print("Postgres: skipped; give --database-url postgresql://... or set KINEMA_TEST_POSTGRES_URL")
    print(json.dumps({name: {k: round(v, 2) for k, v in n.items()} for name, n in results.items()}))
    return results


if __name__ == "__main__":
    main()
