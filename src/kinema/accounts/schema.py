"""The accounts' tables as SQLAlchemy 2 typed ORM models, with their constraints: accounts, api_keys,
plans, credit_packs, credit_ledger and task_charges.

The Alembic migrations in `kinema.db.migrations` create exactly this (a test compares them). A pair's
secret key is kept as is, because the server verifies HS256 signatures with it; a static key is kept
only as its SHA-256 hash. The ledger's unique indexes make a double charge or a double refund impossible,
not just unlikely. This module knows the tables, not the rules.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from kinema.accounts.credits import CHARGE_KINDS, ENTRY_KINDS, PACK_SOURCES, PACK_TYPES
from kinema.accounts.plans import MAX_PLAN_NAME
from kinema.accounts.store import KEY_KINDS, MAX_NAME, ROLES
from kinema.db.base import Base, JSONDocument, UTCDateTime

MAX_ID = 64
MAX_TASK_ID = 32
# An autoincrementing 64-bit key; on SQLite only INTEGER PRIMARY KEY autoincrements (it is 64-bit there).
EntryId = BigInteger().with_variant(Integer(), "sqlite")


class AccountRow(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(MAX_ID), primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_NAME))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean)
    webhook_secret: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    plan: Mapped[str] = mapped_column(String(MAX_PLAN_NAME), server_default="free")
    password_hash: Mapped[str | None] = mapped_column(String(255))

    __table_args__ = (
        CheckConstraint(f"role IN {tuple(ROLES)!r}", name="ck_accounts_role"),
        Index("uq_accounts_name", "name", unique=True),
    )


class ApiKeyRow(Base):
    __tablename__ = "api_keys"

    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id", name="fk_api_keys_account"))
    kind: Mapped[str] = mapped_column(String(8))
    access_key: Mapped[str | None] = mapped_column(String(64))
    secret: Mapped[str | None] = mapped_column(String(128))
    api_key_hash: Mapped[str | None] = mapped_column(String(64))
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(f"kind IN {tuple(KEY_KINDS)!r}", name="ck_api_keys_kind"),
        # A pair has an access key and its secret; a static key only its hash.
        CheckConstraint(
            "(kind = 'pair' AND access_key IS NOT NULL AND secret IS NOT NULL AND api_key_hash IS NULL) OR "
            "(kind = 'static' AND api_key_hash IS NOT NULL AND access_key IS NULL AND secret IS NULL)",
            name="ck_api_keys_shape",
        ),
        # NULLs are distinct in unique indexes: static keys (no access key) never clash, nor pairs.
        Index("uq_api_keys_access_key", "access_key", unique=True),
        Index("uq_api_keys_api_key_hash", "api_key_hash", unique=True),
        # list_keys: one account's keys, oldest first.
        Index("ix_api_keys_account", "account_id", "created_at", "key_id"),
    )


class WebSessionRow(Base):
    """A signed-in browser: only the SHA-256 of its cookie token is kept; `session_id` is its public name."""

    __tablename__ = "web_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(String(32))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id", name="fk_web_sessions_account"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    user_agent: Mapped[str] = mapped_column(String(256), server_default="")

    __table_args__ = (
        Index("uq_web_sessions_id", "session_id", unique=True),
        Index("ix_web_sessions_account", "account_id", "created_at"),
        Index("ix_web_sessions_expires", "expires_at"),
    )


class PlanRow(Base):
    __tablename__ = "plans"

    name: Mapped[str] = mapped_column(String(MAX_PLAN_NAME), primary_key=True)
    daily_free_credits: Mapped[int] = mapped_column(Integer)
    monthly_credits: Mapped[int] = mapped_column(Integer)
    video_concurrency: Mapped[int] = mapped_column(Integer)
    image_concurrency: Mapped[int] = mapped_column(Integer)
    priority: Mapped[int] = mapped_column(Integer)
    allowed_models: Mapped[list[str] | None] = mapped_column(JSONDocument)
    allowed_modes: Mapped[list[str]] = mapped_column(JSONDocument)
    max_duration_s: Mapped[float] = mapped_column(Float)
    requests_per_minute: Mapped[int] = mapped_column(Integer)
    metered: Mapped[bool] = mapped_column(Boolean)


class CreditPackRow(Base):
    __tablename__ = "credit_packs"

    pack_id: Mapped[str] = mapped_column(String(MAX_ID), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id", name="fk_credit_packs_account"))
    name: Mapped[str] = mapped_column(String(128))
    type: Mapped[str] = mapped_column(String(24))
    total: Mapped[int] = mapped_column(Integer)
    purchased_at: Mapped[datetime] = mapped_column(UTCDateTime)
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    invalid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        CheckConstraint(f"type IN {tuple(PACK_TYPES)!r}", name="ck_credit_packs_type"),
        CheckConstraint(f"source IN {tuple(PACK_SOURCES)!r}", name="ck_credit_packs_source"),
        CheckConstraint("total >= 0", name="ck_credit_packs_total"),
        Index("ix_credit_packs_account", "account_id", "invalid_at"),
        Index("ix_credit_packs_invalid", "invalid_at"),
    )


class CreditLedgerRow(Base):
    __tablename__ = "credit_ledger"

    entry_id: Mapped[int] = mapped_column(EntryId, primary_key=True, autoincrement=True)
    account_id: Mapped[str] = mapped_column(
        ForeignKey("accounts.account_id", name="fk_credit_ledger_account")
    )
    pack_id: Mapped[str] = mapped_column(ForeignKey("credit_packs.pack_id", name="fk_credit_ledger_pack"))
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[int] = mapped_column(Integer)
    task_id: Mapped[str | None] = mapped_column(String(MAX_TASK_ID))
    seq: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    note: Mapped[str] = mapped_column(Text)

    __table_args__ = (
        CheckConstraint(f"kind IN {tuple(ENTRY_KINDS)!r}", name="ck_credit_ledger_kind"),
        # Charges and refunds belong to a task; grants, purchases and expiries to none.
        CheckConstraint(
            "(kind IN ('charge', 'refund') AND task_id IS NOT NULL) OR "
            "(kind IN ('grant', 'purchase', 'expiry') AND task_id IS NULL)",
            name="ck_credit_ledger_task",
        ),
        # Money in is positive, money out negative.
        CheckConstraint(
            "(kind IN ('grant', 'purchase', 'refund') AND amount >= 0) OR "
            "(kind IN ('charge', 'expiry') AND amount <= 0)",
            name="ck_credit_ledger_sign",
        ),
        # Charged once per (task, seq) from each pack; refunded once per charge.
        Index("uq_credit_ledger_task", "task_id", "kind", "seq", "pack_id", unique=True),
        # A pack is filled once and each of its expiries is written once.
        Index(
            "uq_credit_ledger_pack",
            "pack_id",
            "kind",
            "seq",
            unique=True,
            sqlite_where=text("task_id IS NULL"),
            postgresql_where=text("task_id IS NULL"),
        ),
        Index("ix_credit_ledger_account", "account_id", "entry_id"),
        Index("ix_credit_ledger_pack_amount", "pack_id", "kind", "amount"),
    )


class TaskChargeRow(Base):
    __tablename__ = "task_charges"

    task_id: Mapped[str] = mapped_column(String(MAX_TASK_ID))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id", name="fk_task_charges_account"))
    task_kind: Mapped[str] = mapped_column(String(16))
    model: Mapped[str] = mapped_column(String(128))
    mode: Mapped[str] = mapped_column(String(8))
    seconds: Mapped[float] = mapped_column(Float)
    slots: Mapped[int] = mapped_column(Integer)
    credits: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)

    __table_args__ = (
        # The n-th charge of a task happens once, and so does its refund.
        PrimaryKeyConstraint("task_id", "seq", "kind", name="pk_task_charges"),
        CheckConstraint(f"kind IN {tuple(CHARGE_KINDS)!r}", name="ck_task_charges_kind"),
        CheckConstraint("credits >= 0 AND seq >= 1 AND slots >= 1", name="ck_task_charges_numbers"),
        Index("ix_task_charges_created", "created_at", "account_id"),
        Index("ix_task_charges_account", "account_id", "created_at"),
    )
