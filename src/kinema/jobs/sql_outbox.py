"""The callback outbox on SQL: the `callbacks` table, claimed with row locks as the task queue is.

`SqlTaskStore` adds entries inside its own transactions (`new_row`); senders claim them here. A claim is
one write transaction: on Postgres `SELECT … FOR UPDATE SKIP LOCKED` (senders never wait on each other),
on SQLite `BEGIN IMMEDIATE` (one writer at a time); an idle poll only reads, so it never takes SQLite's
write lock. What an entry means is `kinema.jobs.outbox`; this module only reads and writes rows.
"""

from __future__ import annotations

import builtins
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, func, select, update
from sqlalchemy.orm import sessionmaker

from kinema.db.clock import Clock, SystemClock, to_ms
from kinema.jobs.outbox import (
    Callback,
    EntryState,
    OutboxEntry,
    check_claim,
    check_delay,
    new_entry,
    short_error,
)
from kinema.jobs.schema import CallbackRow
from kinema.jobs.store import DEFAULT_RETENTION, Task

_PENDING = CallbackRow.state == "pending"


def new_row(task: Task, callback: Callback, now: datetime) -> CallbackRow:
    """The pending entry of `task`'s change, for the store to add in that change's session."""
    return CallbackRow(**new_entry(task, callback, now))


class SqlOutbox:
    """An `Outbox` on the engine of a `SqlTaskStore`; thread-safe (one session per operation)."""

    def __init__(
        self, engine: Engine, *, clock: Clock | None = None, retention: timedelta = DEFAULT_RETENTION
    ) -> None:
        self._clock = clock or SystemClock()
        self._retention = retention
        self._reads = sessionmaker(engine, expire_on_commit=False)
        self._writes = sessionmaker(
            engine.execution_options(kinema_sqlite_begin="IMMEDIATE"), expire_on_commit=False
        )

    def _now(self) -> datetime:
        return to_ms(self._clock.now())

    def claim(self, owner: str, lease_seconds: float) -> OutboxEntry | None:
        check_claim(owner, lease_seconds)
        now = self._now()
        due = (
            select(CallbackRow)
            .where(_PENDING, CallbackRow.next_attempt_at <= now)
            .order_by(CallbackRow.next_attempt_at, CallbackRow.callback_id)
            .limit(1)
        )
        with self._reads() as session:  # nothing due (the usual answer): no write transaction at all
            if session.scalars(due.with_only_columns(CallbackRow.callback_id)).first() is None:
                return None
        with self._writes.begin() as session:
            row = session.scalars(due.with_for_update(skip_locked=True)).one_or_none()
            if row is None:
                return None
            row.attempts += 1
            row.lease_owner = owner
            row.next_attempt_at = to_ms(now + timedelta(seconds=lease_seconds))
            return _entry(row)

    def _settle(self, callback_id: int, owner: str, **values: Any) -> bool:
        held = update(CallbackRow).where(
            CallbackRow.callback_id == callback_id, CallbackRow.lease_owner == owner, _PENDING
        )
        with self._writes.begin() as session:
            result = cast(CursorResult[Any], session.execute(held.values(lease_owner=None, **values)))
            return result.rowcount == 1

    def delivered(self, callback_id: int, owner: str) -> bool:
        return self._settle(callback_id, owner, state="delivered", finished_at=self._now())

    def retry_later(self, callback_id: int, owner: str, *, delay_seconds: float, error: str) -> bool:
        check_delay(delay_seconds)
        due = to_ms(self._now() + timedelta(seconds=delay_seconds))
        return self._settle(callback_id, owner, next_attempt_at=due, last_error=short_error(error))

    def give_up(self, callback_id: int, owner: str, *, error: str) -> bool:
        return self._settle(
            callback_id, owner, state="failed", finished_at=self._now(), last_error=short_error(error)
        )

    def next_due(self) -> datetime | None:
        with self._reads() as session:
            return session.scalar(select(func.min(CallbackRow.next_attempt_at)).where(_PENDING))

    def pending(self) -> int:
        with self._reads() as session:
            return session.scalar(select(func.count()).select_from(CallbackRow).where(_PENDING)) or 0

    def entries(self, task_id: str) -> builtins.list[OutboxEntry]:
        query = select(CallbackRow).where(CallbackRow.task_id == task_id).order_by(CallbackRow.callback_id)
        with self._reads() as session:
            return [_entry(row) for row in session.scalars(query)]

    def prune(self, now: datetime) -> int:
        horizon = to_ms(now) - self._retention
        old = delete(CallbackRow).where(
            CallbackRow.finished_at.is_not(None), CallbackRow.finished_at <= horizon
        )
        with self._writes.begin() as session:
            return cast(CursorResult[Any], session.execute(old)).rowcount


def _entry(row: CallbackRow) -> OutboxEntry:
    return OutboxEntry(
        callback_id=row.callback_id,
        task_id=row.task_id,
        account_id=row.account_id,
        url=row.url,
        body=row.body,
        msg_id=row.msg_id,
        state=cast(EntryState, row.state),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        lease_owner=row.lease_owner,
        last_error=row.last_error,
        created_at=row.created_at,
        finished_at=row.finished_at,
    )
