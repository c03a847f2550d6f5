"""Index tasks by (account_id, status, kind): an account's live tasks without reading its history.

Billing counts the slots an account has in flight on every create, and the studio lists an account's
queued and running tasks; both filter on status, which `ix_tasks_account_created` cannot narrow, so their
cost grew with every task the account ever made.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_tasks_account_status", "tasks", ["account_id", "status", "kind"])


def downgrade() -> None:
    op.drop_index("ix_tasks_account_status", table_name="tasks")
