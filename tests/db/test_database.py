"""Connecting: URLs are parsed with the fix in every refusal, and SQLite files always end in WAL mode."""

from __future__ import annotations

import asyncio
import fcntl
import os
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from dbfixtures import ticking
from kinema.db import database, make_engine, normalise_url
from kinema.errors import InvalidRequest, KinemaError


def test_a_postgres_url_means_psycopg_3() -> None:
    assert normalise_url("postgresql://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgres://u@h/db").drivername == "postgresql+psycopg"
    assert normalise_url("postgresql+psycopg://u@h/db").drivername == "postgresql+psycopg"


def test_the_event_loops_postgres_url_keeps_libpq_settings_asyncpg_understands() -> None:
    url = normalise_url(
        "postgresql://u:p%40ss@db.example:6432/kinema?options=-csearch_path%3Dtenant&sslmode=require"
        "&application_name=kinema&connect_timeout=3&keepalives=1&keepalives_idle=30"
    )
    dsn, timeout = database.asyncpg_dsn(url)
    assert dsn == (
        "postgresql://u:p%40ss@db.example:6432/kinema?application_name=kinema"
        "&options=-csearch_path%3Dtenant&sslmode=require"
    )
    assert timeout == 3.0
    assert database.asyncpg_dsn(normalise_url("postgresql://u@h/db?connect_timeout=0"))[1] == 60.0
    with pytest.raises(InvalidRequest, match="connect_timeout must be a number of seconds, not 'soon'"):
        make_engine("postgresql://u@h/db?connect_timeout=soon")  # at start, not at the first request


def test_bad_database_urls_are_refused_with_the_fix(tmp_path: Path) -> None:
    cases = {
        "mysql://u@h/db": "database 'mysql' is not supported; use sqlite:///",
        "sqlite://": "SQLite needs a file path",
        "sqlite:///:memory:": "MemoryTaskStore and kinema.accounts.MemoryAccountStore",
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


def _write_lock_of(engine: Engine) -> threading.Lock:
    return database._writer_queue(str(Path(engine.url.database or "").resolve())).threads


def _with_table(path: Path) -> tuple[Engine, Engine]:
    """An engine on a fresh SQLite file holding table t (n INTEGER), and its writer (BEGIN IMMEDIATE)."""
    engine = make_engine(f"sqlite:///{path}")
    writer = engine.execution_options(kinema_sqlite_begin="IMMEDIATE")
    with writer.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    return engine, writer


def test_sqlite_writers_of_a_process_queue_on_one_lock_held_until_commit_or_rollback(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'queue.db'}"
    first, second = make_engine(url), make_engine(url)  # two engines on one file share the lock
    lock = _write_lock_of(first)
    writer = first.execution_options(kinema_sqlite_begin="IMMEDIATE")
    with writer.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
        assert lock.locked()
    assert not lock.locked()
    with pytest.raises(RuntimeError, match="undo"), writer.begin() as connection:
        connection.exec_driver_sql("UPDATE counter SET n = 100")
        raise RuntimeError("undo")
    assert not lock.locked()
    with first.begin() as connection:  # a plain (deferred) read transaction does not queue
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar() == 0
        assert not lock.locked()

    def add_one(engine: Engine) -> None:
        with engine.execution_options(kinema_sqlite_begin="IMMEDIATE").begin() as connection:
            n = connection.exec_driver_sql("SELECT n FROM counter").scalar()
            connection.exec_driver_sql(f"UPDATE counter SET n = {int(n or 0) + 1}")

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add_one, [first, second] * 100, timeout=120))
    with second.connect() as connection:
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar() == 200
    assert not lock.locked()
    first.dispose()
    second.dispose()


def test_a_write_that_cannot_begin_passes_the_lock_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "busy.db"
    engine, writer = _with_table(path)
    lock = _write_lock_of(engine)
    other = sqlite3.connect(path, isolation_level=None)  # another process's writer, as far as SQLite knows
    other.execute("BEGIN IMMEDIATE")
    with pytest.raises(OperationalError, match="locked"), writer.begin():
        pass
    assert not lock.locked()
    other.execute("COMMIT")
    other.close()
    with writer.begin() as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert not lock.locked()
    engine.dispose()


def test_postgres_pool_size_is_set_and_checked() -> None:
    engine = make_engine("postgresql://u@127.0.0.1:1/db", pool_size=7)  # connects lazily: no server needed
    assert engine.pool.size() == 7  # type: ignore[attr-defined]
    engine.dispose()
    with pytest.raises(InvalidRequest, match="at least 1 connection"):
        make_engine("postgresql://u@127.0.0.1:1/db", pool_size=0)


def _file_lock_held(path: Path) -> int:
    """The file lock of `path`'s writers, taken as another Kinema process's writer takes it; close the
    returned descriptor to let it go."""
    fd = os.open(f"{path}.writers", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def test_writers_of_other_processes_wait_on_the_file_lock_then_go(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    engine, writer = _with_table(path)
    other = _file_lock_held(path)  # another process's writer, as far as flock knows
    threading.Timer(0.5, fcntl.flock, (other, fcntl.LOCK_UN)).start()
    began = time.monotonic()
    with writer.begin() as connection:
        waited = time.monotonic() - began
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    assert waited >= 0.4  # it queued behind the other writer ...
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ... and let go when done
    os.close(other)
    engine.dispose()


def test_a_file_lock_never_let_go_delays_writes_by_the_busy_timeout_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.3)
    path = tmp_path / "stuck.db"
    engine, writer = _with_table(path)
    stuck = _file_lock_held(path)  # a stopped process that holds the lock and never writes
    with writer.begin() as connection:
        connection.exec_driver_sql("INSERT INTO t VALUES (1)")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar() == 1
    assert not _write_lock_of(engine).locked()
    os.close(stuck)
    engine.dispose()


def test_a_lock_file_that_cannot_be_opened_is_a_clear_error_and_blocks_no_one(tmp_path: Path) -> None:
    path = tmp_path / "odd.db"
    engine = make_engine(f"sqlite:///{path}")
    Path(f"{path}.writers").mkdir()  # not a file: it cannot be opened for writing
    writer = engine.execution_options(kinema_sqlite_begin="IMMEDIATE")
    for _ in range(2):  # the second writer is refused the same way, not left waiting
        refused = pytest.raises(KinemaError, match=r"odd\.db\.writers .*make its folder writable")
        with refused, writer.begin() as connection:
            connection.exec_driver_sql("CREATE TABLE t (n INTEGER)")
    assert not _write_lock_of(engine).locked()
    engine.dispose()


def test_two_processes_adding_to_one_counter_lose_no_write(tmp_path: Path) -> None:
    path = tmp_path / "counter.db"
    engine = make_engine(f"sqlite:///{path}")
    with engine.execution_options(kinema_sqlite_begin="IMMEDIATE").begin() as connection:
        connection.exec_driver_sql("CREATE TABLE counter (n INTEGER)")
        connection.exec_driver_sql("INSERT INTO counter VALUES (0)")
    script = (
        "import sys\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "from kinema.db import make_engine\n"
        "engine = make_engine(sys.argv[1]).execution_options(kinema_sqlite_begin='IMMEDIATE')\n"
        "def add(_):\n"
        "    with engine.begin() as c:\n"
        "        n = c.exec_driver_sql('SELECT n FROM counter').scalar()\n"
        "        c.exec_driver_sql(f'UPDATE counter SET n = {n + 1}')\n"
        "with ThreadPoolExecutor(4) as pool:\n"
        "    list(pool.map(add, range(150)))\n"
    )
    children = [subprocess.Popen([sys.executable, "-c", script, f"sqlite:///{path}"]) for _ in range(2)]
    assert [child.wait(timeout=120) for child in children] == [0, 0]
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT n FROM counter").scalar() == 300
    engine.dispose()


def test_an_event_loop_holds_the_writer_turn_and_its_own_writes_skip_the_queue(tmp_path: Path) -> None:
    engine, writer = _with_table(tmp_path / "turn.db")
    lock = _write_lock_of(engine)
    other_wrote = threading.Event()

    def other_writer() -> None:  # a worker thread's write, arriving during the turn
        with writer.begin() as connection:
            connection.exec_driver_sql("INSERT INTO t VALUES (2)")
        other_wrote.set()

    async def main() -> threading.Thread:
        async with database.write_turn(engine) as here:
            assert here and lock.locked()
            began = time.monotonic()
            for n in (1, 1):  # two transactions in one turn: neither waits on the turn's own lock
                with writer.begin() as connection:
                    connection.exec_driver_sql(f"INSERT INTO t VALUES ({n})")
                assert lock.locked()  # a commit does not end the turn
            assert time.monotonic() - began < 5  # not the 30 s a writer queued behind itself would wait
            thread = threading.Thread(target=other_writer)
            thread.start()
            assert not other_wrote.wait(0.3)  # the thread queues until the turn ends
        return thread

    asyncio.run(main()).join(timeout=30)
    assert other_wrote.is_set() and not lock.locked()
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT n FROM t ORDER BY rowid").scalars().all() == [1, 1, 2]
    engine.dispose()


def _turn_while_others_run(engine: Engine) -> tuple[bool, float, int]:
    """Take `engine`'s turn on a fresh loop; (held, seconds it took, ticks another coroutine made)."""

    async def main() -> tuple[bool, float, int]:
        async with ticking() as ticks:
            began = time.monotonic()
            async with database.write_turn(engine) as here:
                took = time.monotonic() - began
        return here, took, ticks[0]

    return asyncio.run(main())


def test_the_turn_waits_for_a_threads_write_without_blocking_the_loop(tmp_path: Path) -> None:
    engine, _ = _with_table(tmp_path / "wait.db")
    lock = _write_lock_of(engine)
    lock.acquire()  # a thread of this process is writing
    threading.Timer(0.3, lock.release).start()
    here, took, ticks = _turn_while_others_run(engine)
    assert here and took >= 0.25
    assert ticks >= 10  # the loop kept serving while it waited
    assert not lock.locked()
    engine.dispose()


def test_the_turn_waits_for_another_processs_writer_then_goes(tmp_path: Path) -> None:
    path = tmp_path / "shared-turn.db"
    engine, _ = _with_table(path)
    other = _file_lock_held(path)
    threading.Timer(0.3, fcntl.flock, (other, fcntl.LOCK_UN)).start()
    here, took, ticks = _turn_while_others_run(engine)
    assert here and took >= 0.25 and ticks >= 10
    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the turn let go of the file lock at its end
    os.close(other)
    assert not _write_lock_of(engine).locked()
    engine.dispose()


def test_no_turn_within_the_busy_timeout_yields_false_and_holds_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_S", 0.2)
    path = tmp_path / "stuck-turn.db"
    engine, _ = _with_table(path)
    stuck = _file_lock_held(path)  # a stopped process holding the lock
    here, took, _ = _turn_while_others_run(engine)
    assert not here and 0.15 <= took < 5
    assert not _write_lock_of(engine).locked()
    os.close(stuck)
    engine.dispose()


def test_a_turn_cancelled_while_waiting_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "cancel-turn.db"
    engine, _ = _with_table(path)
    other = _file_lock_held(path)

    async def main() -> None:
        async def take() -> None:
            async with database.write_turn(engine):
                raise AssertionError("the turn came while another process held the lock")

        waiting = asyncio.create_task(take())
        await asyncio.sleep(0.1)
        assert _write_lock_of(engine).locked()  # it got the process's lock and waits for the file's
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting

    asyncio.run(main())
    assert not _write_lock_of(engine).locked()
    os.close(other)
    engine.dispose()


def test_postgres_has_no_writer_turn() -> None:
    engine = make_engine("postgresql://u@127.0.0.1:1/db")  # connects lazily: no server needed

    async def main() -> bool:
        async with database.write_turn(engine) as here:
            return here

    assert asyncio.run(main()) is False
    engine.dispose()


@pytest.mark.postgres
def test_a_postgres_connection_killed_while_idle_in_the_pool_is_replaced(
    postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(database, "POSTGRES_PING_IDLE_S", 0.0)  # every reuse counts as after idle
    engine = make_engine(postgres_server, pool_size=1)
    admin = make_engine(postgres_server, pool_size=1)
    try:
        with engine.connect() as connection:
            first = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        with admin.connect() as connection:  # the server drops it, as a restart or failover would
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({int(first or 0)})")
        with engine.connect() as connection:
            second = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar()
        assert second != first
    finally:
        engine.dispose()
        admin.dispose()


@pytest.mark.postgres
def test_the_loops_pool_speaks_asyncpg_with_the_urls_settings(postgres_url: str) -> None:
    from sqlalchemy.util.concurrency import greenlet_spawn

    url = normalise_url(postgres_url).update_query_dict({"application_name": "kinema-loop-test"})
    engine = make_engine(url.render_as_string(hide_password=False), pool_size=2)

    def settings() -> tuple[str, str, str]:
        with database.loop_engine(engine).connect() as connection:
            driver = type(connection.connection.driver_connection).__module__
            path = connection.exec_driver_sql("SHOW search_path").scalar()
            name = connection.exec_driver_sql("SHOW application_name").scalar()
            return driver, str(path), str(name)

    async def main() -> tuple[str, str, str]:
        try:
            return await greenlet_spawn(settings)
        finally:
            await database.dispose_loop_engine(engine)

    with engine.connect() as connection:  # the threads' pool, through psycopg
        expected = str(connection.exec_driver_sql("SHOW search_path").scalar())
    try:
        driver, path, name = asyncio.run(main())
    finally:
        engine.dispose()
    assert driver.startswith("asyncpg")
    assert expected.startswith("kinema_test_")  # the fixture's schema, set through libpq's `options`
    assert (path, name) == (expected, "kinema-loop-test")


@pytest.mark.postgres
def test_a_killed_connection_of_the_loops_pool_is_replaced_too(
    postgres_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.util.concurrency import greenlet_spawn

    monkeypatch.setattr(database, "POSTGRES_PING_IDLE_S", 0.0)
    engine = make_engine(postgres_server, pool_size=2)  # its loop twin holds max(2, 2 // 2) = 2
    admin = make_engine(postgres_server, pool_size=1)

    def backend_pid() -> int:
        with database.loop_engine(engine).connect() as connection:
            return int(connection.exec_driver_sql("SELECT pg_backend_pid()").scalar() or 0)

    async def main() -> tuple[int, int]:
        first = await greenlet_spawn(backend_pid)
        with admin.connect() as connection:  # the server drops it, as a restart or failover would
            connection.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
        second = await greenlet_spawn(backend_pid)
        await database.dispose_loop_engine(engine)
        return first, second

    try:
        first, second = asyncio.run(main())
    finally:
        engine.dispose()
        admin.dispose()
    assert second != first
