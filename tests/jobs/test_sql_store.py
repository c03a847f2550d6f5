"""What only the SQL task store must do: migrate on open (idempotent, racing processes), use its indexes,
upsert workers atomically, commit what the hook writes with the task or not at all (even when the process
dies inside the hook), and keep the queue exact across real worker processes."""

from __future__ import annotations

import asyncio
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from sqlalchemy import Connection, text
from sqlalchemy.exc import IntegrityError
from storehelpers import LEASE, make

from dbfixtures import SQL_BACKENDS, ticking
from kinema.db import database, migrate
from kinema.jobs import FakeClock, SqlTaskStore, Task, TaskEvent, open_store
from kinema.jobs.sql import claim_query

CHILD = Path(__file__).with_name("store_child.py")
T = TypeVar("T")

over_sql = pytest.mark.parametrize("sql_url", SQL_BACKENDS, indirect=True)
Opener = Callable[..., SqlTaskStore]


@pytest.fixture
def opener() -> Iterator[Opener]:
    """`open_store`, with every store it opened closed after the test (even a failing one)."""
    opened: list[SqlTaskStore] = []

    def open_one(url: str, **options: Any) -> SqlTaskStore:
        opened.append(open_store(url, **options))
        return opened[-1]

    yield open_one
    for store in opened:
        store.close()


@over_sql
def test_opening_twice_is_idempotent(opener: Opener, sql_url: str, clock: FakeClock) -> None:
    first = opener(sql_url, clock=clock)
    task = first.create(account_id="acme", kind="text2image", model="builtin", request={"prompt": "a cube"})
    first.close()

    second = opener(sql_url, clock=clock)
    third = opener(sql_url, clock=clock)

    assert migrate.current(second.engine) == migrate.current(third.engine) == migrate.head()
    assert second.get(task.task_id, "acme") == task


@over_sql
def test_claim_reads_the_queue_index_without_sorting(opener: Opener, sql_url: str) -> None:
    store = opener(sql_url)
    query = claim_query(["builtin", "wan2.1-t2v-1.3b"])
    sql = str(query.compile(store.engine, compile_kwargs={"literal_binds": True}))
    with store.engine.connect() as connection:
        if connection.dialect.name == "sqlite":
            plan = " | ".join(row[-1] for row in connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}"))
            assert "ix_tasks_queue" in plan and "TEMP B-TREE" not in plan, plan
        else:
            connection.exec_driver_sql("SET enable_seqscan = off")  # an empty table would be scanned anyway
            plan = " | ".join(row[0] for row in connection.exec_driver_sql(f"EXPLAIN {sql}"))
            assert "ix_tasks_queue" in plan and "Sort" not in plan and "SKIP LOCKED" in sql, plan


# --- the hook's SQL commits with the task, or not at all ------------------------------------------------


class Refused(Exception):
    pass


def scratch_table(store: SqlTaskStore) -> None:
    """A table of the test's own, standing in for the accounts' ledger that a real hook writes."""
    with store.engine.begin() as connection:
        connection.execute(text("CREATE TABLE hook_rows (task_id VARCHAR(32) NOT NULL, event VARCHAR(16))"))


def hook_rows(store: SqlTaskStore) -> list[tuple[str, str]]:
    with store.engine.connect() as connection:
        rows = connection.execute(text("SELECT task_id, event FROM hook_rows ORDER BY task_id, event"))
        return [(row[0], row[1]) for row in rows]


class LedgerHook:
    """Writes each event into `hook_rows` on the store's connection, then raises for `refuse` events."""

    def __init__(self) -> None:
        self.refuse: set[str] = set()
        self.task_ids: list[str] = []

    def __call__(self, connection: Connection | None, event: TaskEvent) -> None:
        assert connection is not None and connection.in_transaction()
        connection.execute(
            text("INSERT INTO hook_rows (task_id, event) VALUES (:task_id, :event)"),
            {"task_id": event.task_id, "event": event.event},
        )
        self.task_ids.append(event.task_id)
        if event.event in self.refuse:
            raise Refused(f"refused {event.event}")


@over_sql
def test_the_hooks_rows_commit_with_the_task(opener: Opener, sql_url: str, clock: FakeClock) -> None:
    hook = LedgerHook()
    store = opener(sql_url, clock=clock, hook=hook)
    scratch_table(store)

    task = make(store)
    store.claim("w1", LEASE)
    store.complete(task.task_id, "w1", [{"video": "v.mp4"}])

    assert hook_rows(store) == [(task.task_id, "created"), (task.task_id, "succeed")]


@over_sql
def test_a_refused_create_leaves_neither_the_task_nor_the_hooks_row(
    opener: Opener, sql_url: str, clock: FakeClock
) -> None:
    hook = LedgerHook()
    store = opener(sql_url, clock=clock, hook=hook)
    scratch_table(store)
    hook.refuse = {"created"}

    with pytest.raises(Refused):
        make(store)

    (task_id,) = hook.task_ids  # the hook did write its row, on the store's transaction
    assert store.list("acme").total == 0 and hook_rows(store) == []
    hook.refuse = set()
    assert store.get(task_id, "acme") is None


@over_sql
def test_a_refused_fail_leaves_neither_the_failure_nor_the_hooks_row(
    opener: Opener, sql_url: str, clock: FakeClock
) -> None:
    hook = LedgerHook()
    store = opener(sql_url, clock=clock, hook=hook)
    scratch_table(store)
    task = make(store)
    store.claim("w1", LEASE)
    hook.refuse = {"failed"}

    with pytest.raises(Refused):
        store.fail(task.task_id, "w1", error="decoder crashed", retryable=False)

    stored = store.get(task.task_id, "acme")
    assert stored is not None and (stored.status, stored.lease_owner) == ("processing", "w1")
    assert hook_rows(store) == [(task.task_id, "created")]


@over_sql
def test_a_hooks_own_constraint_error_reaches_the_caller_as_it_is(
    opener: Opener, sql_url: str, clock: FakeClock
) -> None:
    """An IntegrityError from the hook is not mistaken for a clash of task ids (no silent second try)."""
    calls: list[str] = []

    def duplicate(connection: Connection | None, event: TaskEvent) -> None:
        assert connection is not None
        calls.append(event.task_id)
        for _ in range(2):
            connection.execute(text("INSERT INTO once (k) VALUES (1)"))

    store = opener(sql_url, clock=clock, hook=duplicate)
    with store.engine.begin() as connection:
        connection.execute(text("CREATE TABLE once (k INTEGER PRIMARY KEY)"))

    with pytest.raises(IntegrityError, match="once"):
        make(store, external_task_id="x")

    assert len(calls) == 1
    assert store.list("acme").total == 0


@pytest.mark.slow
@over_sql
def test_a_process_killed_inside_the_hook_leaves_neither_the_task_nor_the_hooks_row(
    opener: Opener, sql_url: str, tmp_path: Path
) -> None:
    setup = opener(sql_url)
    scratch_table(setup)
    setup.close()

    with children(1, "hook", sql_url, tmp_path) as (doomed,):
        line = doomed.read()
        assert line.startswith("in-hook "), line  # the task row and the hook's row are written...
        task_id = line.removeprefix("in-hook ")
        doomed.process.send_signal(signal.SIGKILL)  # ...and the process dies before the commit
        assert doomed.close() == -signal.SIGKILL

    hook = LedgerHook()
    restarted = opener(sql_url, hook=hook)
    assert restarted.get(task_id, "acme") is None and restarted.list("acme").total == 0
    assert hook_rows(restarted) == []
    task = make(restarted)  # the dead transaction holds no lock: writing goes on
    assert hook_rows(restarted) == [(task.task_id, "created")]


@over_sql
def test_a_worker_registering_from_many_threads_at_once_keeps_one_row(opener: Opener, sql_url: str) -> None:
    stores = [opener(sql_url) for _ in range(2)]
    start = threading.Barrier(8, timeout=30)

    def register(index: int) -> None:
        start.wait()
        stores[index % 2].register_worker("gpu-0", [{"id": "builtin", "n": index}])

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(register, range(8), timeout=120))

    (worker,) = stores[0].workers()
    assert worker.worker_id == "gpu-0" and worker.models[0]["n"] in range(8)


# --- real processes -------------------------------------------------------------------------------------


class Child:
    """A `store_child.py` process whose stdout lines are read with a timeout."""

    def __init__(self, mode: str, url: str, worker_id: str, log: IO[str]) -> None:
        self.log = log
        self.process = subprocess.Popen(
            [sys.executable, str(CHILD), mode, url, worker_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        self.reader = threading.Thread(target=self._pump, daemon=True)
        self.reader.start()

    def _pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def _stderr(self) -> str:
        self.log.seek(0)
        return self.log.read()[-3000:]

    def read(self, timeout: float = 60) -> str:
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line from the child within {timeout} s; its stderr:\n{self._stderr()}")
        if line is None:
            pytest.fail(f"the child exited with {self.process.wait()}; its stderr:\n{self._stderr()}")
        return line

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def close(self, timeout: float = 60) -> int:
        """Wait for the child to exit (killing it after `timeout`) and return its exit code."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            self.process.stdin.close()
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(timeout=30)
        self.reader.join(timeout=30)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code


@contextmanager
def children(count: int, mode: str, url: str, tmp_path: Path) -> Iterator[list[Child]]:
    """Start `count` children, wait until each is ready, then let them all go at once."""
    with ExitStack() as stack:
        started = []
        for index in range(count):
            log = stack.enter_context(open(tmp_path / f"child-{index}.log", "w+"))
            started.append(Child(mode, url, f"proc-{index}", log))
            stack.callback(started[-1].close)
        for child in started:
            assert child.read() == "ready"
        for child in started:
            child.send("go")
        yield started


def wait_for(condition: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while (value := condition()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)  # the polling interval of the wait, not a synchronisation
    return value


@pytest.mark.slow
@over_sql
def test_first_opens_racing_each_other_all_succeed(opener: Opener, sql_url: str, tmp_path: Path) -> None:
    with children(4, "open", sql_url, tmp_path) as racing:
        revisions = [child.read() for child in racing]
        codes = [child.close() for child in racing]

    assert revisions == [migrate.head()] * 4 and codes == [0] * 4
    store = opener(sql_url)
    assert store.counts_by_status()["submitted"] == 0


@pytest.mark.slow
@over_sql
def test_worker_processes_never_claim_the_same_task(opener: Opener, sql_url: str, tmp_path: Path) -> None:
    store = opener(sql_url)
    created = [
        store.create(account_id="acme", kind="text2video", model="builtin", request={"i": i}).task_id
        for i in range(60)
    ]

    with children(3, "drain", sql_url, tmp_path) as workers:
        per_worker = [json.loads(worker.read()) for worker in workers]
        codes = [worker.close() for worker in workers]

    assert codes == [0, 0, 0]
    assert sorted(task_id for claimed in per_worker for task_id in claimed) == sorted(created)
    assert store.counts_by_status()["succeed"] == 60


@pytest.mark.slow
@over_sql
def test_killed_worker_process_task_is_finished_by_another(
    opener: Opener, sql_url: str, tmp_path: Path
) -> None:
    store = opener(sql_url)
    task = store.create(account_id="acme", kind="text2video", model="builtin", request={"prompt": "a ball"})

    with children(1, "hang", sql_url, tmp_path) as (doomed,):
        assert doomed.read() == task.task_id
        doomed.process.send_signal(signal.SIGKILL)
        assert doomed.close() == -signal.SIGKILL

    # The killed worker's 1 s lease runs out on the real clock; then the survivor claims the task.
    reclaimed = wait_for(lambda: store.claim("survivor", 60), timeout=30, what="the expired lease")
    assert (reclaimed.task_id, reclaimed.attempt) == (task.task_id, 2)
    assert reclaimed.error is not None and "'proc-0'" in reclaimed.error
    done = store.complete(task.task_id, "survivor", [{"video": "tasks/a/2.mp4"}])
    assert (done.status, done.outputs) == ("succeed", [{"video": "tasks/a/2.mp4"}])


@over_sql
def test_on_loop_runs_store_calls_on_the_loops_thread_and_postgres_awaits_them(sql_url: str) -> None:
    postgres = not sql_url.startswith("sqlite")

    def slow_create(connection: Connection | None, event: TaskEvent) -> None:
        if postgres and connection is not None and event.event == "created":
            connection.exec_driver_sql("SELECT pg_sleep(0.3)")  # a slow round trip inside the create

    store = open_store(sql_url, hook=slow_create)
    here = threading.current_thread()

    def create_and_read() -> tuple[threading.Thread, Task, Task | None]:
        made = make(store)
        return threading.current_thread(), made, store.get(made.task_id, made.account_id)

    async def main() -> tuple[threading.Thread, Task, Task | None, int]:
        async with ticking() as ticks, store.write_turn() as turn:
            assert turn
            thread, made, read = await store.on_loop(create_and_read)
        await store.leave_loop()
        return thread, made, read, ticks[0]

    try:
        thread, made, read, ticks = asyncio.run(main())
    finally:
        store.close()
    assert thread is here  # the loop's own thread, not the thread pool
    assert read == made
    if postgres:
        assert ticks >= 10  # the loop served others while the create's round trips were awaited
        assert not database._LOOP_ENGINES.get(store.engine)  # leave_loop closed its connections


@over_sql
def test_reads_on_the_loop_give_the_same_task_as_reads_on_a_thread(sql_url: str) -> None:
    # On Postgres the loop's polls go to asyncpg directly, not through SQLAlchemy's rows: every field
    # must come back the same (decoded JSON, aware UTC times, NULLs), for a found task and a missing one.
    store = open_store(sql_url)
    try:
        done = make(store, external_task_id="ext-1", request={"prompt": "p", "n": 2, "nested": {"a": [1]}})
        claimed = store.claim("w1", LEASE)
        assert claimed is not None and claimed.task_id == done.task_id
        store.heartbeat(done.task_id, "w1", LEASE, progress=0.5, stage="denoise", preview_key="p/1.png")
        done = store.complete(done.task_id, "w1", [{"video": "tasks/acme/1.mp4", "seconds": 5.0}])
        failed = make(store)
        assert store.claim("w2", LEASE) is not None
        failed = store.fail(failed.task_id, "w2", error="out of memory", retryable=True)  # queued, error kept
        queued = make(store, priority=3)
        lookups = [
            (done.task_id, "acme", None), (failed.task_id, "acme", None), (queued.task_id, "acme", None),
            (done.task_id, "other", None), ("404", "acme", None), (None, "acme", "ext-1"),
            (None, "other", "ext-1"), (None, "acme", "ext-2"),
        ]  # fmt: skip

        def read_all() -> list[Task | None]:
            return [
                store.get(task_id, account) if task_id else store.get_by_external(str(external), account)
                for task_id, account, external in lookups
            ]

        async def on_loop() -> list[Task | None]:
            found = await store.on_loop(read_all)
            await store.leave_loop()
            return found

        looped, threaded = asyncio.run(on_loop()), read_all()
    finally:
        store.close()
    assert looped == threaded
    assert [task is not None for task in looped] == [True, True, True, False, False, True, False, False]
    assert looped[0] is not None and looped[0].outputs == [{"video": "tasks/acme/1.mp4", "seconds": 5.0}]
    assert looped[0].finished_at is not None and looped[0].finished_at.utcoffset() == timedelta(0)
    assert looped[1] is not None and looped[1].error == "out of memory"


@pytest.mark.postgres
def test_a_loop_read_on_a_connection_the_server_dropped_fails_once_then_the_pool_renews_it(
    postgres_url: str,
) -> None:
    store = open_store(postgres_url)
    made = make(store)

    def drop_loop_connections() -> None:
        with store.engine.connect() as connection:  # a thread-side connection kills the loop's
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND datname = current_database() "
                    "AND query LIKE 'SELECT task_id%'"
                )
            )

    async def main() -> list[str]:
        outcomes = []
        assert await store.on_loop(store.get, made.task_id, "acme") == made
        await asyncio.to_thread(drop_loop_connections)
        await asyncio.sleep(0.1)
        for _ in range(3):
            try:
                found = await store.on_loop(store.get, made.task_id, "acme")
                outcomes.append("found" if found == made else "wrong")
            except Exception as error:  # the dead connection's own error, whatever the driver calls it
                outcomes.append(type(error).__name__)
        await store.leave_loop()
        return outcomes

    try:
        outcomes = asyncio.run(main())
    finally:
        store.close()
    assert outcomes[1:] == ["found", "found"], outcomes  # at most the first read meets the dead connection
