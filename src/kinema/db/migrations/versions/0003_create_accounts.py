"""Create the accounts and api_keys tables: who may call the API, and with which keys.

Revision ID: 0003
Revises: 0002
Create Date: 2026-02-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("webhook_secret", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("role IN ('admin', 'member')", name="ck_accounts_role"),
    )
    op.create_index("uq_accounts_name", "accounts", ["name"], unique=True)
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("access_key", sa.String(64), nullable=True),
        sa.Column("secret", sa.String(128), nullable=True),
        sa.Column("api_key_hash", sa.String(64), nullable=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="fk_api_keys_account"),
        sa.CheckConstraint("kind IN ('pair', 'static')", name="ck_api_keys_kind"),
        sa.CheckConstraint(
            "(kind = 'pair' AND access_key IS NOT NULL AND secret IS NOT NULL AND api_key_hash IS NULL) OR "
            "(kind = 'static' AND api_key_hash IS NOT NULL AND access_key IS NULL AND secret IS NULL)",
            name="ck_api_keys_shape",
        ),
    )
    op.create_index("uq_api_keys_access_key", "api_keys", ["access_key"], unique=True)
    op.create_index("uq_api_keys_api_key_hash", "api_keys", ["api_key_hash"], unique=True)
    op.create_index("ix_api_keys_account", "api_keys", ["account_id", "created_at", "key_id"])


def downgrade() -> None:
    op.drop_table("api_keys")
    op.drop_table("accounts")
