"""Queue tasks by a stored place that ages: tasks.queue_at = created_at - priority * 60 s, indexed.

Claims used to take the highest priority first, so a steady stream of high-priority tasks could starve
a low-priority one forever. Now a task's place in the queue is its submission time moved earlier by
60 s per priority step (the store's default `aging_seconds`), clamped to [1900-01-01, 9000-01-01] as
`kinema.jobs.transitions.queue_place` does; the claim reads the earliest place off `ix_tasks_queue`.
Existing rows are backfilled in one UPDATE per database. A store opened with another `aging_seconds`
places the tasks it creates or retries with its own value; rows placed before keep their place.

Revision ID: 0004
Revises: 0003
Create Date: 2026-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# Frozen here (a migration is history): the default aging and the clamp bounds when 0004 was written.
_AGING_SECONDS = 60
_FLOOR, _CEILING = "1900-01-01 00:00:00", "9000-01-01 00:00:00"

# SQLite keeps timestamps as naive UTC text 'YYYY-MM-DD HH:MM:SS.ffffff' (SQLAlchemy's format); the
# offset is whole seconds, so the fraction carries over unchanged. julianday() only decides the clamp.
_SQLITE_BACKFILL = f"""
UPDATE tasks SET queue_at = CASE
    WHEN julianday(created_at) - priority * {_AGING_SECONDS} / 86400.0 <= julianday('{_FLOOR}')
        THEN '{_FLOOR}.000000'
    WHEN julianday(created_at) - priority * {_AGING_SECONDS} / 86400.0 >= julianday('{_CEILING}')
        THEN '{_CEILING}.000000'
    ELSE strftime('%Y-%m-%d %H:%M:%S', created_at, printf('%+d seconds', -{_AGING_SECONDS} * priority))
        || substr(created_at, 20)
END
"""
_POSTGRES_BACKFILL = f"""
UPDATE tasks SET queue_at = LEAST(
    GREATEST(created_at - priority * interval '{_AGING_SECONDS} seconds', timestamptz '{_FLOOR}+00'),
    timestamptz '{_CEILING}+00'
)
"""


def upgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    op.add_column("tasks", sa.Column("queue_at", sa.DateTime(timezone=True), nullable=True))
    dialect = op.get_bind().dialect.name
    op.execute(_POSTGRES_BACKFILL if dialect == "postgresql" else _SQLITE_BACKFILL)
    # On SQLite this copies the table into a new one (its only way to add NOT NULL), keeping every
    # other column, constraint and index; Postgres alters the column in place.
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("queue_at", existing_type=sa.DateTime(timezone=True), nullable=False)
    op.create_index("ix_tasks_queue", "tasks", ["status", "queue_at", "task_id"])


def downgrade() -> None:
    op.drop_index("ix_tasks_queue", table_name="tasks")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("queue_at")
    op.create_index("ix_tasks_queue", "tasks", ["status", sa.text("priority DESC"), "created_at", "task_id"])
