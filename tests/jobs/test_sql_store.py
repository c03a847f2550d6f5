"""What only the SQL store must do: migrate on open (idempotent, racing processes), match the ORM schema,
use its indexes, refuse bad URLs, and keep the queue exact across real worker processes."""

from __future__ import annotations

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
from pathlib import Path
from typing import IO, Any, TypeVar

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine

from kinema.errors import InvalidRequest
from kinema.jobs import FakeClock, SqlTaskStore, migrate, open_store
from kinema.jobs.database import make_engine, normalise_url
from kinema.jobs.schema import Base
from kinema.jobs.sql import claim_query

SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
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
def test_migrations_build_exactly_the_orm_schema(opener: Opener, sql_url: str) -> None:
    store = opener(sql_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        if connection.dialect.name == "sqlite":
            # SQLite's reflection drops an index column's DESC, so alembic sees ix_tasks_queue change;
            # check the index's own DDL instead.
            ddl = connection.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'ix_tasks_queue'"
            ).scalar()
            assert ddl is not None and "(status, priority DESC, created_at, task_id)" in ddl
            differences = [d for d in differences if d[0][-5:] != "index" or d[1].name != "ix_tasks_queue"]

    assert differences == []


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


def test_a_postgres_url_means_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_bad_database_urls_are_refused_with_the_fix(tmp_path: Path) -> None:
    cases = {
        "mysql://u@h/db": "database 'mysql' is not supported; use sqlite:///",
        "sqlite://": "SQLite needs a file path",
        "sqlite:///:memory:": "MemoryTaskStore",
        f"sqlite:///{tmp_path}/missing/kinema.db": "does not exist; create it first",
        "not a url": "cannot parse database url 'not a url'",
    }
    for url, message in cases.items():
        with pytest.raises(InvalidRequest, match=message):
            make_engine(url)


def test_connections_racing_on_a_fresh_sqlite_file_all_end_in_wal_mode(tmp_path: Path) -> None:
    engines = [make_engine(f"sqlite:///{tmp_path / 'fresh.db'}") for _ in range(12)]
    start = threading.Barrier(len(engines), timeout=30)

    def journal_mode(engine: Engine) -> str:
        start.wait()
        with engine.connect() as connection:
            return str(connection.exec_driver_sql("PRAGMA journal_mode").scalar())

    with ThreadPoolExecutor(len(engines)) as pool:
        modes = list(pool.map(journal_mode, engines, timeout=120))
    for engine in engines:
        engine.dispose()

    assert modes == ["wal"] * len(engines)


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
