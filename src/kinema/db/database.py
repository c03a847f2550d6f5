"""Connecting to Kinema's database: URL parsing and one engine per URL, tuned per database.

SQLite runs in WAL mode with a busy timeout, and every write transaction opens with `BEGIN IMMEDIATE`
(ask for it with the execution option `kinema_sqlite_begin`). Writers of a database file also queue
before they BEGIN — on a lock within the process and an advisory file lock across processes — which
passes to the next writer the moment the last one commits; SQLite's own busy handler, which polls with
sleeps of up to 100 ms, is left to arbitrate only with writers outside Kinema. Postgres goes through
psycopg 3 on threads and asyncpg on an event loop. This module knows connections, not tables.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Engine, create_engine, event, make_url
from sqlalchemy.engine import URL
from sqlalchemy.exc import ArgumentError, DisconnectionError, NoSuchModuleError

from kinema.errors import InvalidRequest, KinemaError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

SQLITE_BUSY_TIMEOUT_S = 30
_WRITE_QUEUES: dict[str, _WriterQueue] = {}
_WRITE_QUEUES_GUARD = threading.Lock()
_ENGINE_QUEUES: weakref.WeakKeyDictionary[Engine, _WriterQueue] = weakref.WeakKeyDictionary()


class _WriterQueue:
    """The writers of one SQLite file: first an in-process lock, then an advisory lock (flock) on the file
    `<database>.writers` beside it, which the writers of every Kinema process on the file take.

    Both locks pass to the next writer the moment the last one's COMMIT or ROLLBACK returns (the
    in-process one wakes a waiting thread; the cross-process one is tried every 0.2 to 2 ms), where
    SQLite's own busy handler would sleep up to 100 ms between tries. Each wait is bounded by the busy
    timeout: a writer that waited that long goes ahead to BEGIN and lets SQLite decide, so a lock held by
    a stuck process or leaked by a bug slows writes but never stops them. A killed process's flock is
    released by the kernel.

    An event loop takes a whole turn instead (`take_turn`, awaited without blocking the loop): the
    writes its thread then makes skip the queue until `end_turn`.
    """

    def __init__(self, path: str) -> None:
        self.threads = threading.Lock()
        self.lock_path = f"{path}.writers"
        self._file: tuple[int, int] | None = None  # (pid, fd): reopened in a forked child
        self._flocked = False
        self.turn_owner: int | None = None  # the thread holding a turn, whose writes do not queue

    def acquire(self) -> bool:
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        if not self.threads.acquire(timeout=SQLITE_BUSY_TIMEOUT_S):
            return False
        if fcntl is None:  # no flock (Windows): SQLite's busy handler arbitrates between processes
            return True
        try:
            self._flocked = self._flock(deadline)
        except BaseException:  # the lock file cannot be opened or locked: let the next writer in
            self.threads.release()
            raise
        return True

    def _flock(self, deadline: float) -> bool:
        fd = self._fd()
        for pause in _pauses(deadline):
            if _try_flock(fd):
                return True
            time.sleep(pause)  # lets go of the GIL
        return False  # this process's writers stay queued; SQLite decides the rest

    async def take_turn(self) -> bool:
        """Take both locks for the calling thread, waiting with `asyncio.sleep` instead of blocking: True
        once held, False (holding nothing) if that took longer than the busy timeout."""
        deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
        for pause in _pauses(deadline):
            if self.threads.acquire(blocking=False):
                break
            await asyncio.sleep(pause)
        else:
            return False
        try:
            if fcntl is not None and not await self._flock_awaiting(deadline):
                self.threads.release()
                return False
        except BaseException:  # cancelled while waiting, or the lock file cannot be opened
            self.threads.release()
            raise
        self._flocked = fcntl is not None
        self.turn_owner = threading.get_ident()
        return True

    async def _flock_awaiting(self, deadline: float) -> bool:
        """`_flock`, sleeping with `asyncio.sleep` between tries."""
        fd = self._fd()
        for pause in _pauses(deadline):
            if _try_flock(fd):
                return True
            await asyncio.sleep(pause)
        return False

    def end_turn(self) -> None:
        self.turn_owner = None
        self.release()

    def release(self) -> None:
        if self._flocked:
            self._flocked = False
            assert fcntl is not None and self._file is not None
            fcntl.flock(self._file[1], fcntl.LOCK_UN)
        self.threads.release()

    def _fd(self) -> int:
        if self._file is None or self._file[0] != os.getpid():
            try:
                fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError as error:
                raise KinemaError(
                    f"cannot open {self.lock_path} ({error.strerror}); Kinema's processes queue their "
                    "SQLite writes on this file beside the database: make its folder writable"
                ) from None
            self._file = (os.getpid(), fd)
        return self._file[1]


def _pauses(deadline: float) -> Iterator[float]:
    """The sleeps between tries of a lock (the first try always comes), until `deadline`: 0.2 ms,
    doubling up to 2 ms."""
    pause = 0.0002
    while True:
        yield pause
        if time.monotonic() > deadline:
            return
        pause = min(2 * pause, 0.002)


def _try_flock(fd: int) -> bool:
    assert fcntl is not None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@asynccontextmanager
async def write_turn(engine: Engine) -> AsyncIterator[bool]:
    """Hold `engine`'s writer turn, awaited without blocking the event loop; yields True if held.

    Within the turn, this thread's write transactions on the file skip the writer queue: nobody else
    of Kinema writes. A request that does nothing slow but its write can so run on the event loop: on a
    thread, the writer held the lock while it waited for the interpreter lock (4.65 ms at the median
    against 0.80 ms on the loop; benchmarks/RESULTS.md, session 5). Yields False, holding nothing,
    for an engine that is not SQLite's or after a wait longer than the busy timeout: write on a thread.
    """
    queue = _ENGINE_QUEUES.get(engine)
    if queue is None or not await queue.take_turn():
        yield False
        return
    try:
        yield True
    finally:
        queue.end_turn()


def _writer_queue(path: str) -> _WriterQueue:
    """The writer queue of one SQLite file (every engine of this process on it shares it)."""
    with _WRITE_QUEUES_GUARD:
        if path not in _WRITE_QUEUES:
            _WRITE_QUEUES[path] = _WriterQueue(path)
        return _WRITE_QUEUES[path]


class _QueuedWriterConnection(sqlite3.Connection):
    """A SQLite connection that holds its file's writer queue from `BEGIN IMMEDIATE` until its COMMIT
    or ROLLBACK has finished, so the next writer never meets SQLite's lock and its sleeping busy handler."""

    write_queue: _WriterQueue | None = None
    holds_write_lock = False

    def queue_for_write(self) -> None:
        queue = self.write_queue
        if queue is None or queue.turn_owner == threading.get_ident():
            return  # this thread holds the whole turn (write_turn): it ends the turn, not this commit
        if queue.acquire():
            self.holds_write_lock = True

    def pass_write_lock(self) -> None:
        if self.holds_write_lock and self.write_queue is not None:
            self.holds_write_lock = False
            self.write_queue.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.pass_write_lock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.pass_write_lock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.pass_write_lock()


def normalise_url(url: str) -> URL:
    """Parse `url`; plain postgresql:// and postgres:// mean the psycopg 3 driver."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise InvalidRequest(
            f"cannot parse database url {url!r}; use sqlite:///path/kinema.db or postgresql://user@host/db"
        ) from None
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


# Postgres connections one process may hold (all its stores share one engine): the API's thread pool
# (40) plus worker, upkeep and callback threads would rather not wait for a connection, but every one
# counts against the server's max_connections (100 by default), shared with the other processes.
POSTGRES_POOL_SIZE = 32
POSTGRES_PING_IDLE_S = 1.0


def make_engine(url: str, *, pool_size: int = POSTGRES_POOL_SIZE) -> Engine:
    """An engine for `url`; on Postgres holding at most `pool_size` connections (+8 in bursts)."""
    if pool_size < 1:
        raise InvalidRequest(f"the database pool needs at least 1 connection, not {pool_size}")
    parsed = normalise_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    if backend != "postgresql":
        raise InvalidRequest(
            f"database {backend!r} is not supported; use sqlite:///path/kinema.db or postgresql://user@host/db"
        )
    try:
        engine = create_engine(parsed, pool_size=pool_size, max_overflow=8)
        import asyncpg  # noqa: F401  (the event loop's driver: `loop_engine`)
    except (ModuleNotFoundError, NoSuchModuleError) as error:
        missing = parsed.drivername if isinstance(error, NoSuchModuleError) else error.name
        raise InvalidRequest(
            f"the Postgres driver {missing} is not installed; pip install 'kinema[postgres]'"
        ) from None
    asyncpg_dsn(parsed)  # the event loop's connections use the same URL
    _ping_after_idle(engine)
    return engine


# Per Postgres engine, one asyncio twin per event loop (asyncio connections belong to the loop that
# opened them): see `loop_engine`.
_LOOP_ENGINES: weakref.WeakKeyDictionary[
    Engine, weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any]
] = weakref.WeakKeyDictionary()
_LOOP_ENGINES_GUARD = threading.Lock()


def loop_engine(engine: Engine) -> Engine:
    """The running event loop's twin of Postgres `engine`: a synchronous facade over asyncio connections.

    Code that runs inside SQLAlchemy's `greenlet_spawn` on the loop may use it like any engine; each
    round trip then awaits its socket instead of blocking, so neither the loop nor a thread hop pays
    for it (kinema.jobs.sql, `SqlTaskStore.on_loop`). The driver is asyncpg, which costs the loop less
    per statement than psycopg's asyncio mode (benchmarks/RESULTS.md). Its pool holds half as many
    connections as `engine`'s, plus 8 in bursts, and pings after idle as `engine` does.
    `dispose_loop_engine` closes it.
    """
    from sqlalchemy.ext.asyncio import create_async_engine

    loop = asyncio.get_running_loop()
    with _LOOP_ENGINES_GUARD:
        twins = _LOOP_ENGINES.setdefault(engine, weakref.WeakKeyDictionary())
        twin = twins.get(loop)
        if twin is None:
            import asyncpg

            dsn, timeout = asyncpg_dsn(engine.url)

            async def connect() -> Any:
                return await asyncpg.connect(dsn, timeout=timeout)

            size = max(2, engine.pool.size() // 2)  # type: ignore[attr-defined]
            twin = twins[loop] = create_async_engine(
                "postgresql+asyncpg://", async_creator=connect, pool_size=size, max_overflow=8
            )
            _ping_after_idle(twin.sync_engine)
    return cast(Engine, twin.sync_engine)


# Connection parameters libpq knows and asyncpg does not, which it would send to the server as settings.
_LIBPQ_ONLY = ("keepalives", "keepalives_idle", "keepalives_interval", "keepalives_count", "tcp_user_timeout")


def asyncpg_dsn(url: URL) -> tuple[str, float]:
    """`url` (a psycopg one) as a DSN asyncpg reads the same way, and its connect timeout in seconds.

    asyncpg reads host, port, user, password, database and the ssl* parameters as libpq does and sends
    any other to the server in the startup packet, as libpq does with `options` (`-csearch_path=...`)
    and `application_name`; libpq's `connect_timeout` becomes the timeout (0, libpq's "wait forever",
    becomes asyncpg's default of 60 s), and its TCP keep-alive knobs, which no server would accept as
    settings, are left out. `make_engine` checks the URL with it, so a bad one fails at start, not at
    the first request.
    """
    query = dict(url.query)
    timeout = query.pop("connect_timeout", "60")
    for name in _LIBPQ_ONLY:
        query.pop(name, None)
    try:
        seconds = float(timeout if isinstance(timeout, str) else timeout[-1])
    except ValueError:
        raise InvalidRequest(f"connect_timeout must be a number of seconds, not {timeout!r}") from None
    plain = url.set(drivername="postgresql", query=query)
    return plain.render_as_string(hide_password=False), seconds if seconds > 0 else 60.0


async def dispose_loop_engine(engine: Engine) -> None:
    """Close the connections of the running loop's twin of `engine`, if it has one."""
    with _LOOP_ENGINES_GUARD:
        twins = _LOOP_ENGINES.get(engine)
        twin = twins.pop(asyncio.get_running_loop(), None) if twins is not None else None
    if twin is not None:
        await twin.dispose()


def _ping_after_idle(engine: Engine) -> None:
    """Check a pooled Postgres connection with one round trip before use, when it sat idle a while.

    A restarted or failed-over server leaves dead connections in the pool; a ping finds them and the
    pool opens fresh ones. SQLAlchemy's `pool_pre_ping` pings on every checkout, a third of a busy
    poll's cost; a connection back in use within `POSTGRES_PING_IDLE_S` is taken as alive (if the
    server died in that second, the statement fails and the pool is renewed as a whole).
    """

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["kinema_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("kinema_idle_since")
        if idle_since is None or time.monotonic() - idle_since < POSTGRES_PING_IDLE_S:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            # The pool discards this connection and checks out another (a fresh one if need be).
            raise DisconnectionError(f"pooled connection failed its ping: {error}") from error


def _sqlite_engine(url: URL) -> Engine:
    if not url.database or url.database == ":memory:" or url.database.startswith("file:"):
        raise InvalidRequest(
            "SQLite needs a file path such as sqlite:///kinema-data/kinema.db; "
            "for stores in memory use kinema.jobs.MemoryTaskStore and kinema.accounts.MemoryAccountStore"
        )
    folder = Path(url.database).expanduser().resolve().parent
    if not folder.is_dir():
        raise InvalidRequest(f"folder {folder} for the SQLite database does not exist; create it first")
    # Enough pooled connections for every thread of the API's thread pool (40) plus workers: a smaller
    # pool made SQLAlchemy open and close a connection (and rerun the PRAGMAs) on most requests.
    write_queue = _writer_queue(str(Path(url.database).expanduser().resolve()))
    engine = create_engine(
        url,
        connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S, "factory": _QueuedWriterConnection},
        pool_size=48,
        max_overflow=16,
    )
    _ENGINE_QUEUES[engine] = write_queue

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.write_queue = write_queue
        dbapi_connection.isolation_level = None  # the driver must not open transactions: we do, below
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_S * 1000}")
        _use_wal(cursor, url.database or "")
        # NORMAL in WAL mode: a killed process loses no committed write; a power cut may lose the last few.
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Writers BEGIN IMMEDIATE: they take the write lock up front (waiting up to busy_timeout), so
        # a read-then-write transaction can never fail to upgrade its lock halfway through.
        # NONE: a single-statement read runs in SQLite's own implicit transaction, saving the BEGIN and
        # the ROLLBACK round trips (the hot polling path).
        mode = connection.get_execution_options().get("kinema_sqlite_begin", "DEFERRED")
        if mode not in ("DEFERRED", "IMMEDIATE", "NONE"):
            raise ValueError(f"kinema_sqlite_begin must be DEFERRED, IMMEDIATE or NONE; got {mode!r}")
        if mode == "NONE":
            return
        dbapi_connection = connection.connection.dbapi_connection
        if mode == "IMMEDIATE":
            dbapi_connection.queue_for_write()
        try:
            connection.exec_driver_sql(f"BEGIN {mode}")
        except BaseException:
            dbapi_connection.pass_write_lock()  # no transaction began: nothing will commit it
            raise

    return engine


def _use_wal(cursor: Any, path: str) -> None:
    """Switch the file to WAL (a lasting property of the file, so usually already done).

    The switch needs the file to itself and SQLite runs no busy handler for it, so processes that open a
    fresh database together retry here until one has switched it.
    """
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) and "busy" not in str(error):
                raise
        if time.monotonic() > deadline:
            raise KinemaError(
                f"could not switch SQLite database {path} to WAL mode in {SQLITE_BUSY_TIMEOUT_S} s; "
                "another process holds it locked: stop that process or use another file"
            )
        time.sleep(0.01)  # back off briefly before asking again
