"""Passwords and sign-in sessions for the studio: accounts.password_hash and the web_sessions table.

A password is kept only as a self-describing scrypt hash (`kinema.accounts.passwords`); a session only
as the SHA-256 of its cookie token, so a copy of the database signs nobody in.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.add_column("accounts", sa.Column("password_hash", sa.String(255), nullable=True))
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("session_id", sa.String(32), nullable=False),
        sa.Column("account_id", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("user_agent", sa.String(256), nullable=False, server_default=""),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.account_id"], name="fk_web_sessions_account"),
    )
    op.create_index("uq_web_sessions_id", "web_sessions", ["session_id"], unique=True)
    op.create_index("ix_web_sessions_account", "web_sessions", ["account_id", "created_at"])
    op.create_index("ix_web_sessions_expires", "web_sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_expires", table_name="web_sessions")
    op.drop_index("ix_web_sessions_account", table_name="web_sessions")
    op.drop_index("uq_web_sessions_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("password_hash")
