"""The task store on SQL: SQLite (embedded, WAL) or Postgres (at scale), through SQLAlchemy 2.

`open_store(url)` migrates the database and returns a `SqlTaskStore`. Writes take row locks: on Postgres
`SELECT … FOR UPDATE` (claims add `SKIP LOCKED`, so workers never wait on each other); on SQLite every
write transaction is `BEGIN IMMEDIATE`, which serialises writers across processes. A status change calls
the store's hook on the transaction's connection after the row is flushed and before the commit, so what
the hook writes commits with the task or not at all; the change's callback goes into the outbox table
(`kinema.jobs.sql_outbox`) in the same transaction. The state machine lives in `transitions`; this
module only reads, locks and writes rows.
"""

from __future__ import annotations

import builtins
import dataclasses
import weakref
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    CursorResult,
    Engine,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    func,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.util.concurrency import await_only, greenlet_spawn, in_greenlet

from kinema.db.base import UTCDateTime
from kinema.db.clock import Clock, SystemClock, to_ms
from kinema.db.database import dispose_loop_engine, loop_engine, write_turn
from kinema.db.events import EventName, TaskHook
from kinema.db.migrate import open_database
from kinema.jobs import transitions as tr
from kinema.jobs.ids import new_task_id
from kinema.jobs.outbox import CallbackFor, callback_of, new_entry
from kinema.jobs.schema import CallbackRow, TaskRow, WorkerRow
from kinema.jobs.sql_outbox import SqlOutbox, new_row
from kinema.jobs.store import (
    AGING_SECONDS,
    DEFAULT_RETENTION,
    STATUSES,
    DuplicateTask,
    Heartbeat,
    Status,
    Task,
    TaskNotFound,
    TaskPage,
    WorkerInfo,
)
from kinema.spec import Kind

T = TypeVar("T")
TASKS = cast(Table, TaskRow.__table__)
_COLUMNS = ", ".join(column.name for column in TASKS.columns)


@dataclass(frozen=True)
class _Read:
    """A hot single-task read, built once (no statement or cache key to build per call): as a SQLAlchemy
    statement, and as an asyncpg one for the event loop's Postgres connections ($n is `names[n-1]`)."""

    query: Select[Any]
    raw: str
    names: tuple[str, ...]

    @classmethod
    def where(cls, *names: str) -> _Read:
        query = select(TASKS).where(*(TASKS.c[name] == bindparam(name) for name in names))
        match = " AND ".join(f"{name} = ${i}" for i, name in enumerate(names, 1))
        return cls(query, f"SELECT {_COLUMNS} FROM tasks WHERE {match}", names)


_BY_ID = _Read.where("task_id", "account_id")
_BY_EXTERNAL = _Read.where("account_id", "external_task_id")
_INSERT_TASK = TASKS.insert()
_INSERT_CALLBACK = cast(Table, CallbackRow.__table__).insert()
_UTC = UTCDateTime()
_TASK_FIELDS = tuple(field.name for field in dataclasses.fields(Task))
_TIMES = tuple(c.name for c in TASKS.columns if isinstance(c.type, UTCDateTime) and c.name in _TASK_FIELDS)


def open_store(
    url: str,
    *,
    clock: Clock | None = None,
    retention: timedelta = DEFAULT_RETENTION,
    hook: TaskHook | None = None,
    callbacks: CallbackFor | None = None,
    aging_seconds: float = AGING_SECONDS,
) -> SqlTaskStore:
    """Connect to `url` (sqlite:///path or postgresql://...), apply pending migrations, return the store.

    The migrations bring the whole database up to date, the accounts' tables included. `hook` runs in
    the transaction of every status change (see `kinema.db.events`); `callbacks` says what each change
    records in the outbox (see `kinema.jobs.outbox`); `aging_seconds` is what one priority step is worth
    in waiting time (see `TaskStore.claim`).
    """
    tr.check_aging(aging_seconds)
    engine = open_database(url)
    return SqlTaskStore(
        engine,
        clock=clock,
        retention=retention,
        hook=hook,
        callbacks=callbacks,
        aging_seconds=aging_seconds,
    )


def claim_query(models: Collection[str] | None) -> Select[TaskRow]:
    """The next queued task, earliest place in the queue first, read off the index `ix_tasks_queue`."""
    query = select(TaskRow).where(TaskRow.status == "submitted")
    if models is not None:
        query = query.where(TaskRow.model.in_(models))
    query = query.order_by(TaskRow.queue_at, TaskRow.task_id).limit(1)
    # SKIP LOCKED (Postgres): a row another worker is claiming right now is passed over, not waited for.
    return query.with_for_update(skip_locked=True)


class SqlTaskStore:
    """A `TaskStore` on one SQLAlchemy engine; thread-safe (one session per operation)."""

    def __init__(
        self,
        engine: Engine,
        *,
        clock: Clock | None = None,
        retention: timedelta = DEFAULT_RETENTION,
        hook: TaskHook | None = None,
        callbacks: CallbackFor | None = None,
        aging_seconds: float = AGING_SECONDS,
    ) -> None:
        tr.check_aging(aging_seconds)
        self.engine = engine
        self._clock = clock or SystemClock()
        self._retention = retention
        self._hook = hook
        self._callbacks = callbacks
        self._aging = aging_seconds
        self.outbox = SqlOutbox(engine, clock=self._clock, retention=retention)
        self._postgres = engine.dialect.name == "postgresql"
        self._threaded = _Paths.to(engine)
        self._looped: weakref.WeakKeyDictionary[Engine, _Paths] = weakref.WeakKeyDictionary()

    @property
    def _at(self) -> _Paths:
        """The caller's way to the database: inside `on_loop` on Postgres, the running loop's asyncio
        twin of the engine (kinema.db.database.loop_engine); everywhere else the engine itself."""
        if not (self._postgres and in_greenlet()):
            return self._threaded
        twin = loop_engine(self.engine)
        paths = self._looped.get(twin)
        if paths is None:
            paths = self._looped[twin] = _Paths.to(twin)
        return paths

    async def on_loop(self, call: Callable[..., T], *args: Any) -> T:
        if not self._postgres:
            return call(*args)  # SQLite: the caller reads, or writes in its turn; nothing to await
        return await greenlet_spawn(call, *args)

    async def leave_loop(self) -> None:
        if self._postgres:
            await dispose_loop_engine(self.engine)

    def _now(self) -> datetime:
        return to_ms(self._clock.now())

    def _locked(self, session: Session, task_id: str) -> TaskRow | None:
        return session.get(TaskRow, task_id, with_for_update=True)

    def _fire(self, session: Session, event: EventName | None, row: TaskRow) -> None:
        """Tell the hook about `row`'s change, in the session's transaction, once the row is written."""
        if event is None or self._hook is None:
            return
        session.flush()
        self._hook(session.connection(), tr.task_event(event, row))

    def _announce(self, session: Session, row: TaskRow) -> None:
        """Record the callback of `row`'s change, if it has one, in the session's transaction."""
        if self._callbacks is None:
            return
        task = _to_task(row)
        callback = callback_of(self._callbacks, task)
        if callback is not None:
            session.add(new_row(task, callback, self._now()))

    def _change(self, session: Session, row: TaskRow, changes: tr.Changes) -> None:
        """Apply `changes` to the locked `row`, fire the event they make, if any, and record the callback."""
        before = row.status
        _apply(row, changes)
        self._fire(session, tr.finish_event(before, changes), row)
        if changes:
            self._announce(session, row)

    def _owned(self, session: Session, task_id: str, account_id: str) -> TaskRow:
        row = self._locked(session, task_id)
        if row is None or row.account_id != account_id:
            raise TaskNotFound(f"no task {task_id} in account {account_id!r}; check the id and the account")
        return row

    def write_turn(self) -> AbstractAsyncContextManager[bool]:
        if self._postgres:
            return _any_time()  # Postgres takes writers side by side; `on_loop` awaits their round trips
        return write_turn(self.engine)  # SQLite's writer queue

    def create(
        self,
        *,
        account_id: str,
        kind: Kind,
        model: str,
        request: Mapping[str, Any],
        external_task_id: str | None = None,
        priority: int = 0,
        max_attempts: int = 3,
    ) -> Task:
        tr.check_new_task(
            account_id=account_id,
            kind=kind,
            model=model,
            external_task_id=external_task_id,
            priority=priority,
            max_attempts=max_attempts,
        )
        stored_request = tr.json_copy("request", dict(request))
        for _ in range(3):  # a fresh id only collides by a freak of chance; try again with another
            now = self._now()
            values = _new_values(
                account_id=account_id,
                kind=kind,
                model=model,
                request=stored_request,
                external_task_id=external_task_id,
                priority=priority,
                max_attempts=max_attempts,
                now=now,
                queue_at=tr.queue_place(now, priority, self._aging),
            )
            task = _to_task_values(values)
            try:
                # Core statements on a connection, not an ORM session: a create is the API's hottest
                # write, and the unit of work cost about 30 % of its store time (RESULTS.md, session 8).
                with self._at.write_connections.begin() as connection:
                    try:
                        connection.execute(_INSERT_TASK, values)
                    except IntegrityError as error:
                        raise _Clash from error  # only the task's own insert; the hook's errors pass
                    if self._hook is not None:
                        self._hook(connection, tr.task_event("created", task))
                    callback = callback_of(self._callbacks, task)
                    if callback is not None:
                        connection.execute(_INSERT_CALLBACK, new_entry(task, callback, now))
                return task
            except _Clash:
                if external_task_id is not None and (
                    dup := self.get_by_external(external_task_id, account_id)
                ):
                    raise DuplicateTask(
                        tr.duplicate_message(account_id, external_task_id, dup.task_id)
                    ) from None
        raise RuntimeError("three fresh task ids collided in a row; the id generator is broken, report a bug")

    def _one(self, read: _Read, **params: str) -> Task | None:
        """One task by a single-statement read without a transaction (no BEGIN on SQLite, autocommit on
        Postgres): the polls. On the event loop's Postgres twin the statement goes to the asyncpg
        connection itself: SQLAlchemy's cursor layer and row processing cost more than asyncpg's
        prepared statement and its decoded row (RESULTS.md)."""
        with self._at.single_reads.connect() as connection:
            if self._postgres and in_greenlet():
                return _fetch_task(connection, read.raw, [params[name] for name in read.names])
            row = connection.execute(read.query, params).one_or_none()
            return _to_task(row) if row is not None else None

    def get(self, task_id: str, account_id: str) -> Task | None:
        return self._one(_BY_ID, task_id=task_id, account_id=account_id)

    def get_by_external(self, external_task_id: str, account_id: str) -> Task | None:
        return self._one(_BY_EXTERNAL, external_task_id=external_task_id, account_id=account_id)

    def list(
        self,
        account_id: str,
        *,
        kinds: Collection[Kind] | None = None,
        statuses: Collection[Status] | None = None,
        offset: int = 0,
        limit: int = 50,
        models: Collection[str] | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> TaskPage:
        tr.check_list(offset=offset, limit=limit, kinds=kinds, statuses=statuses, models=models)
        where: list[ColumnElement[bool]] = [TaskRow.account_id == account_id]
        if kinds is not None:
            where.append(TaskRow.kind.in_(kinds))
        if statuses is not None:
            where.append(TaskRow.status.in_(statuses))
        if models is not None:
            where.append(TaskRow.model.in_(models))
        if created_after is not None:
            where.append(TaskRow.created_at >= created_after)
        if created_before is not None:
            where.append(TaskRow.created_at < created_before)
        page = select(TASKS).where(*where).order_by(TaskRow.created_at.desc(), TaskRow.task_id.desc())
        with self.engine.begin() as connection:  # one read transaction: the count and the page agree
            total = connection.scalar(select(func.count()).select_from(TASKS).where(*where)) or 0
            rows = connection.execute(page.offset(offset).limit(limit)).all()
            return TaskPage(tuple(_to_task(row) for row in rows), total)

    def claim(
        self, worker_id: str, lease_seconds: float, models: Collection[str] | None = None
    ) -> Task | None:
        tr.check_lease(worker_id, lease_seconds)
        tr.check_names("models", models)
        now = self._now()
        with self._at.writes.begin() as session:
            self._settle_expired(session, now)
            row = session.scalars(claim_query(models)).one_or_none()
            if row is None:
                return None
            _apply(row, tr.claimed(row, worker_id, lease_seconds, now))
            self._announce(session, row)
            return _to_task(row)

    def _settle_expired(self, session: Session, now: datetime) -> None:
        query = (
            select(TaskRow)
            .where(TaskRow.status == "processing", TaskRow.lease_expires_at <= now)
            .with_for_update(skip_locked=True)
        )
        settled = []
        for row in session.scalars(query):
            before = row.status
            changes = tr.lease_expired(row, now, self._retention)
            _apply(row, changes)
            settled.append((tr.finish_event(before, changes), row))
        session.flush()
        for event, row in settled:
            self._fire(session, event, row)
            self._announce(session, row)

    def heartbeat(
        self,
        task_id: str,
        worker_id: str,
        lease_seconds: float,
        *,
        progress: float | None = None,
        stage: str | None = None,
        preview_key: str | None = None,
    ) -> Heartbeat:
        tr.check_lease(worker_id, lease_seconds)
        changes = tr.heartbeat(
            self._now(), lease_seconds, progress=progress, stage=stage, preview_key=preview_key
        )
        with self._at.writes.begin() as session:
            row = self._locked(session, task_id)
            if row is None or row.status != "processing" or row.lease_owner != worker_id:
                return Heartbeat(held=False, cancel_requested=row is not None and row.cancel_requested)
            _apply(row, changes)
            return Heartbeat(held=True, cancel_requested=row.cancel_requested)

    def complete(self, task_id: str, worker_id: str, outputs: Sequence[Mapping[str, Any]]) -> Task:
        stored = tr.json_outputs(outputs)
        with self._at.writes.begin() as session:
            row = tr.check_holder(self._locked(session, task_id), task_id, worker_id)
            self._change(session, row, tr.completed(stored, self._now(), self._retention))
            return _to_task(row)

    def fail(self, task_id: str, worker_id: str, *, error: str, retryable: bool) -> Task:
        tr.check_error(error)
        with self._at.writes.begin() as session:
            row = tr.check_holder(self._locked(session, task_id), task_id, worker_id)
            changes = tr.failed(row, error, retryable=retryable, now=self._now(), retention=self._retention)
            self._change(session, row, changes)
            return _to_task(row)

    def request_cancel(self, task_id: str, account_id: str) -> Task:
        with self._at.writes.begin() as session:
            row = self._owned(session, task_id, account_id)
            self._change(session, row, tr.cancel(row, self._now(), self._retention))
            return _to_task(row)

    def retry(self, task_id: str, account_id: str) -> Task:
        with self._at.writes.begin() as session:
            row = self._owned(session, task_id, account_id)
            now = self._now()
            _apply(row, tr.retried(row, now))
            row.queue_at = tr.queue_place(now, row.priority, self._aging)
            self._fire(session, "requeued", row)
            self._announce(session, row)
            return _to_task(row)

    def delete(self, task_id: str, account_id: str) -> None:
        with self._at.writes.begin() as session:
            row = self._owned(session, task_id, account_id)
            tr.check_deletable(row)
            session.delete(row)

    def counts_by_status(self) -> dict[Status, int]:
        counts = dict.fromkeys(STATUSES, 0)
        with self._at.reads() as session:
            for status, count in session.execute(
                select(TaskRow.status, func.count()).group_by(TaskRow.status)
            ):
                counts[cast(Status, status)] = count
        return counts

    def expired(self, now: datetime, limit: int = 100) -> Sequence[Task]:
        tr.check_list(offset=0, limit=limit, kinds=None, statuses=None)
        query = (
            select(TaskRow)
            .where(TaskRow.expires_at.is_not(None), TaskRow.expires_at <= to_ms(now))
            .order_by(TaskRow.expires_at, TaskRow.task_id)
            .limit(limit)
        )
        with self._at.reads() as session:
            return [_to_task(row) for row in session.scalars(query)]

    def register_worker(self, worker_id: str, models: Sequence[Mapping[str, Any]]) -> None:
        stored = tr.worker_models(worker_id, models)
        now = self._now()
        # One atomic upsert: a worker's first registration may race its own heartbeat thread.
        upsert = _insert(self.engine).values(worker_id=worker_id, models=stored, started_at=now, seen_at=now)
        upsert = upsert.on_conflict_do_update(
            index_elements=[WorkerRow.worker_id], set_={"models": stored, "seen_at": now}
        )
        with self._at.writes.begin() as session:
            session.execute(upsert)

    def workers(self) -> builtins.list[WorkerInfo]:
        query = select(WorkerRow).order_by(WorkerRow.seen_at.desc(), WorkerRow.worker_id.desc())
        with self._at.reads() as session:
            return [
                WorkerInfo(row.worker_id, row.models, row.started_at, row.seen_at)
                for row in session.scalars(query)
            ]

    def remove_worker(self, worker_id: str) -> None:
        with self._at.writes.begin() as session:
            session.execute(delete(WorkerRow).where(WorkerRow.worker_id == worker_id))

    def prune_workers(self, seen_before: datetime) -> int:
        gone = delete(WorkerRow).where(WorkerRow.seen_at < to_ms(seen_before))
        with self._at.writes.begin() as session:
            return cast(CursorResult[Any], session.execute(gone)).rowcount

    def close(self) -> None:
        self.engine.dispose()


@dataclass(frozen=True)
class _Paths:
    """The store's ways to one engine: read and write sessions, and single statements without a
    transaction around them (on SQLite no BEGIN; on Postgres autocommit, so a poll costs one round trip,
    not three)."""

    reads: sessionmaker[Session]
    writes: sessionmaker[Session]
    write_connections: Engine  # Core statements in a write transaction, as `writes` opens them
    single_reads: Engine

    @classmethod
    def to(cls, engine: Engine) -> _Paths:
        writing = engine.execution_options(kinema_sqlite_begin="IMMEDIATE")
        return cls(
            reads=sessionmaker(engine, expire_on_commit=False),
            writes=sessionmaker(writing, expire_on_commit=False),
            write_connections=writing,
            single_reads=(
                engine.execution_options(isolation_level="AUTOCOMMIT")
                if engine.dialect.name == "postgresql"
                else engine.execution_options(kinema_sqlite_begin="NONE")
            ),
        )


@asynccontextmanager
async def _any_time() -> AsyncIterator[bool]:
    yield True


class _Clash(Exception):
    """The new task's row clashed with a unique index (its id, or the account's external id)."""


def _insert(engine: Engine) -> postgresql.Insert | sqlite.Insert:
    """An INSERT that can turn into an update on conflict, in the engine's dialect."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(WorkerRow)
    return sqlite.insert(WorkerRow)


def _new_values(
    *,
    account_id: str,
    kind: str,
    model: str,
    request: dict[str, Any],
    external_task_id: str | None,
    priority: int,
    max_attempts: int,
    now: datetime,
    queue_at: datetime,
) -> dict[str, Any]:
    """The columns of a new, queued task."""
    return dict(
        task_id=new_task_id(),
        account_id=account_id,
        external_task_id=external_task_id,
        kind=kind,
        model=model,
        request=request,
        status="submitted",
        priority=priority,
        attempt=0,
        max_attempts=max_attempts,
        lease_owner=None,
        lease_expires_at=None,
        cancel_requested=False,
        progress=0.0,
        stage="",
        preview_key=None,
        outputs=[],
        error=None,
        created_at=now,
        updated_at=now,
        started_at=None,
        finished_at=None,
        expires_at=None,
        queue_at=queue_at,
    )


def _apply(row: TaskRow, changes: tr.Changes) -> None:
    for name, value in changes.items():
        setattr(row, name, value)


def _fetch_task(connection: Connection, sql: str, params: Sequence[str]) -> Task | None:
    """Run `sql` on `connection`'s asyncpg driver from inside `greenlet_spawn`; its JSON columns come back
    decoded (SQLAlchemy's asyncpg dialect sets the codecs on every pooled connection) and its
    timestamps aware UTC, as the SQLAlchemy path gives them. A connection the error closed is
    invalidated, so the pool drops it."""
    driver: Any = connection.connection.driver_connection  # an asyncpg Connection
    try:
        record = await_only(driver.fetchrow(sql, *params))
    except Exception:
        if driver.is_closed():
            connection.invalidate()
        raise
    if record is None:
        return None
    values = {name: record[name] for name in _TASK_FIELDS}
    for name in _TIMES:  # as the column type hands them to the SQLAlchemy path
        values[name] = _UTC.process_result_value(values[name], connection.dialect)
    return _to_task_values(values)


def _to_task_values(values: Mapping[str, Any]) -> Task:
    return Task(**{name: values[name] for name in _TASK_FIELDS})


def _to_task(row: TaskRow | Row[Any]) -> Task:
    return Task(
        task_id=row.task_id,
        account_id=row.account_id,
        external_task_id=row.external_task_id,
        kind=cast(Kind, row.kind),
        model=row.model,
        request=row.request,
        status=cast(Status, row.status),
        priority=row.priority,
        attempt=row.attempt,
        max_attempts=row.max_attempts,
        lease_owner=row.lease_owner,
        lease_expires_at=row.lease_expires_at,
        cancel_requested=row.cancel_requested,
        progress=row.progress,
        stage=row.stage,
        preview_key=row.preview_key,
        outputs=row.outputs,
        error=row.error,
        created_at=row.created_at,
        updated_at=row.updated_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        expires_at=row.expires_at,
    )
