"""The `tasks` table as a SQLAlchemy 2 typed ORM model, with its indexes and constraints.

The Alembic migrations under `migrations/` create exactly this (a test compares them). Timestamps go in
as aware UTC datetimes and come out the same on SQLite (stored naive UTC) and Postgres (timestamptz).
This module knows the table, not the state machine.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, DateTime, Dialect, Float, Index, Integer, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from kinema.jobs.store import STATUSES
from kinema.jobs.transitions import MAX_ACCOUNT, MAX_EXTERNAL, MAX_KEY, MAX_MODEL, MAX_STAGE, MAX_WORKER


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every database; SQLite keeps them as naive UTC text that sorts correctly."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"datetime {value.isoformat()} has no timezone; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    pass


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

    __table_args__ = (
        CheckConstraint(f"status IN {tuple(STATUSES)!r}", name="ck_tasks_status"),
        # NULLs are distinct in unique indexes on both databases: tasks without an external id never clash.
        Index("uq_tasks_account_external", "account_id", "external_task_id", unique=True),
        # claim: the next queued task in claim order, read straight off the index (no sort); its status
        # prefix also serves counts_by_status.
        Index("ix_tasks_queue", "status", sql_text("priority DESC"), "created_at", "task_id"),
        # claim, first step: running tasks whose lease expired.
        Index("ix_tasks_lease", "status", "lease_expires_at"),
        # list: one account's tasks, newest first.
        Index("ix_tasks_account_created", "account_id", "created_at", "task_id"),
        # the retention sweep.
        Index("ix_tasks_expires", "expires_at"),
    )
