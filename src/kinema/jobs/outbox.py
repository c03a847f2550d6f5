"""The callback outbox: every callback a task's status change must send, kept until it is delivered.

A task store given `callbacks=` (a `CallbackFor`: the `Callback` a task's new state sends, or None)
records one entry per status change inside the change's own transaction, so a callback exists exactly
when its change does, and a process killed afterwards loses nothing. Senders
(`kinema.net.webhooks.CallbackSender`) claim due entries under a lease, so two senders never hold one
entry at once, and then record it delivered, due again later, or given up. This module holds the types,
the `Outbox` Protocol and the in-memory outbox of `MemoryTaskStore`; the SQL one is `kinema.jobs.sql_outbox`.
It knows no HTTP: a body is the JSON text to send.
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeAlias, get_args

from kinema.db.clock import Clock, SystemClock, to_ms
from kinema.errors import InvalidRequest
from kinema.jobs.store import DEFAULT_RETENTION, Task
from kinema.jobs.transitions import MAX_WORKER, check_text

log = logging.getLogger(__name__)

EntryState = Literal["pending", "delivered", "failed"]
ENTRY_STATES: tuple[EntryState, ...] = get_args(EntryState)
MAX_MSG_ID = 128
MAX_URL = 65_536
MAX_ERROR = 2000  # an error longer than this is cut: it is a note for operators, not a log


@dataclass(frozen=True, slots=True)
class Callback:
    """What one status change sends: `body` is the JSON text, `msg_id` the `webhook-id` of every attempt."""

    url: str
    body: str
    msg_id: str


CallbackFor: TypeAlias = Callable[[Task], Callback | None]
"""The callback a task's new state sends (None: none); runs inside the change's transaction."""


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One recorded callback. `attempts` counts the attempts started, a claimed one included.

    `next_attempt_at` is when a pending entry is due; while a sender holds it (`lease_owner`), when that
    claim lapses and the entry is due again. `finished_at` is set once it is delivered or given up.
    """

    callback_id: int
    task_id: str
    account_id: str
    url: str
    body: str
    msg_id: str
    state: EntryState
    attempts: int
    next_attempt_at: datetime
    lease_owner: str | None
    last_error: str | None
    created_at: datetime
    finished_at: datetime | None


class Outbox(Protocol):
    """The recorded callbacks, and the queue senders claim them from (at least once, one sender at a time).

    What an owner records (`delivered`, `retry_later`, `give_up`) applies only while `owner` still holds
    the entry's claim; otherwise nothing changes and the call returns False.
    """

    def claim(self, owner: str, lease_seconds: float) -> OutboxEntry | None:
        """Lease the pending entry due first to `owner` for `lease_seconds` and count an attempt.

        None when nothing is due. An entry whose claim lapsed (its sender died) is due again.
        """
        ...

    def delivered(self, callback_id: int, owner: str) -> bool: ...

    def retry_later(self, callback_id: int, owner: str, *, delay_seconds: float, error: str) -> bool:
        """Release the claim; the entry is due again in `delay_seconds`, with `error` as its last error."""
        ...

    def give_up(self, callback_id: int, owner: str, *, error: str) -> bool:
        """Stop trying: the entry ends `failed` with `error` as its last error."""
        ...

    def next_due(self) -> datetime | None:
        """When the earliest pending entry is due (or its claim lapses); None when none is pending."""
        ...

    def pending(self) -> int:
        """Entries not yet delivered nor given up."""
        ...

    def entries(self, task_id: str) -> builtins.list[OutboxEntry]:
        """The task's entries, oldest first (for operators and tests; not indexed)."""
        ...

    def prune(self, now: datetime) -> int:
        """Delete entries delivered or given up a retention period or more before `now`; return how many."""
        ...


def callback_of(callbacks: CallbackFor | None, task: Task) -> Callback | None:
    """The callback `task`'s change sends, checked; a failure to make one is logged, never raised.

    The task's change must not be undone because its callback could not be rendered.
    """
    if callbacks is None:
        return None
    try:
        callback = callbacks(task)
        if callback is not None:
            check_text("callback url", callback.url, MAX_URL)
            check_text("callback msg_id", callback.msg_id, MAX_MSG_ID)
    except Exception:
        log.exception("task %s: its %s callback could not be made; none is sent", task.task_id, task.status)
        return None
    return callback


def new_entry(task: Task, callback: Callback, now: datetime) -> dict[str, Any]:
    """The fields of the entry that records `callback` for `task`'s change: pending, due `now`."""
    return {
        "task_id": task.task_id,
        "account_id": task.account_id,
        "url": callback.url,
        "body": callback.body,
        "msg_id": callback.msg_id,
        "state": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "lease_owner": None,
        "last_error": None,
        "created_at": now,
        "finished_at": None,
    }


def check_claim(owner: str, lease_seconds: float) -> None:
    check_text("owner", owner, MAX_WORKER)
    if not 0 < lease_seconds <= 86_400:
        raise InvalidRequest(f"lease_seconds must be in (0, 86400]; got {lease_seconds}")


def check_delay(delay_seconds: float) -> None:
    if not 0 <= delay_seconds <= 86_400:
        raise InvalidRequest(f"delay_seconds must be in [0, 86400]; got {delay_seconds}")


def short_error(error: str) -> str:
    return error if len(error) <= MAX_ERROR else error[: MAX_ERROR - 1] + "…"


class MemoryOutbox:
    """An `Outbox` in a dict, for `MemoryTaskStore`: the same contract, gone when the process ends."""

    def __init__(self, *, clock: Clock | None = None, retention: timedelta = DEFAULT_RETENTION) -> None:
        self._clock = clock or SystemClock()
        self._retention = retention
        self._entries: dict[int, OutboxEntry] = {}
        self._next_id = 0
        self._lock = threading.Lock()

    def _now(self) -> datetime:
        return to_ms(self._clock.now())

    def add(self, task: Task, callback: Callback) -> None:
        """Record `callback` for `task`'s change (the store calls this once the change is made)."""
        with self._lock:
            self._next_id += 1
            fields = new_entry(task, callback, self._now())
            self._entries[self._next_id] = OutboxEntry(callback_id=self._next_id, **fields)

    def claim(self, owner: str, lease_seconds: float) -> OutboxEntry | None:
        check_claim(owner, lease_seconds)
        with self._lock:
            now = self._now()
            due = [e for e in self._entries.values() if e.state == "pending" and e.next_attempt_at <= now]
            if not due:
                return None
            entry = min(due, key=lambda e: (e.next_attempt_at, e.callback_id))
            claimed = replace(
                entry,
                attempts=entry.attempts + 1,
                lease_owner=owner,
                next_attempt_at=to_ms(now + timedelta(seconds=lease_seconds)),
            )
            self._entries[entry.callback_id] = claimed
            return claimed

    def _settle(
        self, callback_id: int, owner: str, *, state: EntryState, due_in: float = 0.0, error: str | None
    ) -> bool:
        with self._lock:
            entry = self._entries.get(callback_id)
            if entry is None or entry.state != "pending" or entry.lease_owner != owner:
                return False
            now = self._now()
            self._entries[callback_id] = replace(
                entry,
                state=state,
                lease_owner=None,
                next_attempt_at=to_ms(now + timedelta(seconds=due_in)),
                last_error=entry.last_error if error is None else short_error(error),
                finished_at=None if state == "pending" else now,
            )
            return True

    def delivered(self, callback_id: int, owner: str) -> bool:
        return self._settle(callback_id, owner, state="delivered", error=None)

    def retry_later(self, callback_id: int, owner: str, *, delay_seconds: float, error: str) -> bool:
        check_delay(delay_seconds)
        return self._settle(callback_id, owner, state="pending", due_in=delay_seconds, error=error)

    def give_up(self, callback_id: int, owner: str, *, error: str) -> bool:
        return self._settle(callback_id, owner, state="failed", error=error)

    def next_due(self) -> datetime | None:
        with self._lock:
            return min(
                (e.next_attempt_at for e in self._entries.values() if e.state == "pending"), default=None
            )

    def pending(self) -> int:
        with self._lock:
            return sum(1 for e in self._entries.values() if e.state == "pending")

    def entries(self, task_id: str) -> builtins.list[OutboxEntry]:
        with self._lock:
            return sorted(
                (e for e in self._entries.values() if e.task_id == task_id), key=lambda e: e.callback_id
            )

    def prune(self, now: datetime) -> int:
        horizon = to_ms(now) - self._retention
        with self._lock:
            old = [
                e.callback_id
                for e in self._entries.values()
                if e.finished_at is not None and e.finished_at <= horizon
            ]
            for callback_id in old:
                del self._entries[callback_id]
        return len(old)
