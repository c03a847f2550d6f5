"""The `tasks`, `workers` and `callbacks` tables as SQLAlchemy 2 typed ORM models, with their indexes and
constraints.

The Alembic migrations in `kinema.db.migrations` create exactly this (a test compares them); the column
types and the declarative base come from `kinema.db.base`. This module knows the tables, not the state
machine.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, CheckConstraint, Float, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from kinema.db.base import Base, JSONDocument, UTCDateTime
from kinema.jobs.outbox import ENTRY_STATES, MAX_MSG_ID
from kinema.jobs.store import STATUSES
from kinema.jobs.transitions import MAX_ACCOUNT, MAX_EXTERNAL, MAX_KEY, MAX_MODEL, MAX_STAGE, MAX_WORKER


class TaskRow(Base):
    __tablename__ = "tasks"

    task_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(String(MAX_ACCOUNT))
    external_task_id: Mapped[str | None] = mapped_column(String(MAX_EXTERNAL))
    kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(MAX_MODEL))
    request: Mapped[dict[str, Any]] = mapped_column(JSONDocument)
    status: Mapped[str] = mapped_column(String(16))
    priority: Mapped[int] = mapped_column(Integer)
    attempt: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    lease_owner: Mapped[str | None] = mapped_column(String(MAX_WORKER))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_requested: Mapped[bool] = mapped_column(Boolean)
    progress: Mapped[float] = mapped_column(Float)
    stage: Mapped[str] = mapped_column(String(MAX_STAGE))
    preview_key: Mapped[str | None] = mapped_column(String(MAX_KEY))
    outputs: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The task's place in the claim order: created_at - priority * aging seconds (transitions.queue_place),
    # set at create, renewed by retry, kept by the re-queue after a lost lease or a retryable failure.
    queue_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(f"status IN {tuple(STATUSES)!r}", name="ck_tasks_status"),
        # NULLs are distinct in unique indexes on both databases: tasks without an external id never clash.
        Index("uq_tasks_account_external", "account_id", "external_task_id", unique=True),
        # claim: the next queued task in claim order, read straight off the index (no sort); its status
        # prefix also serves counts_by_status.
        Index("ix_tasks_queue", "status", "queue_at", "task_id"),
        # claim, first step: running tasks whose lease expired.
        Index("ix_tasks_lease", "status", "lease_expires_at"),
        # list: one account's tasks, newest first.
        Index("ix_tasks_account_created", "account_id", "created_at", "task_id"),
        # billing's slots in flight and lists by status: one account's live tasks, not its history.
        Index("ix_tasks_account_status", "account_id", "status", "kind"),
        # the retention sweep.
        Index("ix_tasks_expires", "expires_at"),
    )


class WorkerRow(Base):
    """One running worker and the models it serves: the catalog the API reads instead of loading models."""

    __tablename__ = "workers"

    worker_id: Mapped[str] = mapped_column(String(MAX_WORKER), primary_key=True)
    models: Mapped[list[dict[str, Any]]] = mapped_column(JSONDocument)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime)

    # workers(): newest seen first.
    __table_args__ = (Index("ix_workers_seen", "seen_at"),)


CallbackId = BigInteger().with_variant(Integer(), "sqlite")  # SQLite numbers rows only as INTEGER


class CallbackRow(Base):
    """The callback outbox (`kinema.jobs.outbox`): each callback a task's change must send, until it is sent.

    Written in the transaction of the task's change; claimed by senders under a lease (`lease_owner`,
    and `next_attempt_at` moved to when the claim lapses). `body` is the exact JSON text to send.
    """

    __tablename__ = "callbacks"

    callback_id: Mapped[int] = mapped_column(CallbackId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(String(MAX_ACCOUNT))
    url: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    msg_id: Mapped[str] = mapped_column(String(MAX_MSG_ID))
    state: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(MAX_WORKER))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(f"state IN {tuple(ENTRY_STATES)!r}", name="ck_callbacks_state"),
        # claim and next_due: the pending entry due first, read straight off the index.
        Index("ix_callbacks_due", "state", "next_attempt_at", "callback_id"),
        # prune: entries finished before the retention horizon.
        Index("ix_callbacks_finished", "finished_at"),
    )
