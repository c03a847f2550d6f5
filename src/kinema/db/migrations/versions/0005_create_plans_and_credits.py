"""Create plans, credit packs, the credit ledger and task charges; put every account on a plan.

The plans are seeded with Kinema's defaults (kept here as they were at this revision, not imported).
Existing accounts land on `free`, existing admins on `unlimited`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-03-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_ENTRY_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_BOTH = ["std", "pro"]
_PLANS = [
    ("free", 66, 0, 1, 2, 0, None, ["std"], 10.0, 30, True),
    ("creator", 0, 660, 3, 4, 1, None, _BOTH, 10.0, 120, True),
    ("pro", 0, 3000, 5, 9, 2, None, _BOTH, 60.0, 300, True),
    ("enterprise", 0, 0, 20, 40, 3, None, _BOTH, 180.0, 1200, True),
    ("unlimited", 0, 0, 1_000_000, 1_000_000, 3, None, _BOTH, 180.0, 0, False),
]
_PLAN_COLUMNS = (
    "name",
    "daily_free_credits",
    "monthly_credits",
    "video_concurrency",
    "image_concurrency",
    "priority",
    "allowed_models",
    "allowed_modes",
    "max_duration_s",
    "requests_per_minute",
    "metered",
)


def upgrade() -> None:
    plans = op.create_table(
        "plans",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("daily_free_credits", sa.Integer(), nullable=False),
        sa.Column("monthly_credits", sa.Integer(), nullable=False),
        sa.Column("video_concurrency", sa.Integer(), nullable=False),
        sa.Column("image_concurrency", sa.Integer(), nullable=False),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("allowed_models", _JSON, nullable=True),
        sa.Column("allowed_modes", _JSON, nullable=False),
        sa.Column("max_duration_s", sa.Float(), nullable=False),
        sa.Column("requests_per_minute", sa.Integer(), nullable=False),
        sa.Column("metered", sa.Boolean(), nullable=False),
    )
    op.bulk_insert(plans, [dict(zip(_PLAN_COLUMNS, plan, strict=True)) for plan in _PLANS])
    op.add_column("accounts", sa.Column("plan", sa.String(32), nullable=False, server_default="free"))
    op.execute("UPDATE accounts SET plan = 'unlimited' WHERE role = 'admin'")

    op.create_table(
        "credit_packs",
        sa.Column("pack_id", sa.String(64), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("type", sa.String(24), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("purchased_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("invalid_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="fk_credit_packs_account"),
        sa.CheckConstraint("type IN ('decreasing_total', 'constant_period')", name="ck_credit_packs_type"),
        sa.CheckConstraint(
            "source IN ('grant', 'purchase', 'daily', 'monthly')", name="ck_credit_packs_source"
        ),
        sa.CheckConstraint("total >= 0", name="ck_credit_packs_total"),
    )
    op.create_index("ix_credit_packs_account", "credit_packs", ["account_id", "invalid_at"])
    op.create_index("ix_credit_packs_invalid", "credit_packs", ["invalid_at"])

    op.create_table(
        "credit_ledger",
        sa.Column("entry_id", _ENTRY_ID, primary_key=True, autoincrement=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("pack_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("amount", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(32), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="fk_credit_ledger_account"),
        sa.ForeignKeyConstraint(["pack_id"], ["credit_packs.pack_id"], name="fk_credit_ledger_pack"),
        sa.CheckConstraint(
            "kind IN ('grant', 'purchase', 'charge', 'refund', 'expiry')", name="ck_credit_ledger_kind"
        ),
        sa.CheckConstraint(
            "(kind IN ('charge', 'refund') AND task_id IS NOT NULL) OR "
            "(kind IN ('grant', 'purchase', 'expiry') AND task_id IS NULL)",
            name="ck_credit_ledger_task",
        ),
        sa.CheckConstraint(
            "(kind IN ('grant', 'purchase', 'refund') AND amount >= 0) OR "
            "(kind IN ('charge', 'expiry') AND amount <= 0)",
            name="ck_credit_ledger_sign",
        ),
    )
    op.create_index(
        "uq_credit_ledger_task", "credit_ledger", ["task_id", "kind", "seq", "pack_id"], unique=True
    )
    op.create_index(
        "uq_credit_ledger_pack",
        "credit_ledger",
        ["pack_id", "kind", "seq"],
        unique=True,
        sqlite_where=sa.text("task_id IS NULL"),
        postgresql_where=sa.text("task_id IS NULL"),
    )
    op.create_index("ix_credit_ledger_account", "credit_ledger", ["account_id", "entry_id"])
    op.create_index("ix_credit_ledger_pack_amount", "credit_ledger", ["pack_id", "kind", "amount"])

    op.create_table(
        "task_charges",
        sa.Column("task_id", sa.String(32), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("task_kind", sa.String(16), nullable=False),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("mode", sa.String(8), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("slots", sa.Integer(), nullable=False),
        sa.Column("credits", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("task_id", "seq", "kind", name="pk_task_charges"),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="fk_task_charges_account"),
        sa.CheckConstraint("kind IN ('charge', 'refund')", name="ck_task_charges_kind"),
        sa.CheckConstraint("credits >= 0 AND seq >= 1 AND slots >= 1", name="ck_task_charges_numbers"),
    )
    op.create_index("ix_task_charges_created", "task_charges", ["created_at", "account_id"])
    op.create_index("ix_task_charges_account", "task_charges", ["account_id", "created_at"])


def downgrade() -> None:
    op.drop_table("task_charges")
    op.drop_table("credit_ledger")
    op.drop_table("credit_packs")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("plan")
    op.drop_table("plans")
