"""Create the callbacks table: the durable outbox of task callbacks, written with each status change.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_CALLBACK_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "callbacks",
        sa.Column("callback_id", _CALLBACK_ID, primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("msg_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("state IN ('pending', 'delivered', 'failed')", name="ck_callbacks_state"),
    )
    op.create_index("ix_callbacks_due", "callbacks", ["state", "next_attempt_at", "callback_id"])
    op.create_index("ix_callbacks_finished", "callbacks", ["finished_at"])


def downgrade() -> None:
    op.drop_index("ix_callbacks_finished", table_name="callbacks")
    op.drop_index("ix_callbacks_due", table_name="callbacks")
    op.drop_table("callbacks")
