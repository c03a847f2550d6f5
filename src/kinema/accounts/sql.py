"""The account store on SQL, in the same database as the task store (SQLite or Postgres).

`open_accounts(url)` migrates the database (every table, through the one chain in `kinema.db`) and
returns a `SqlAccountStore`. Ids and keys are drawn in `keys`; the rules live in `store`, `ledger` and
`billing`; credits are read and written by `sql_ledger`. This module only reads and writes rows.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import cast

from sqlalchemy import Connection, Engine, delete, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from kinema.accounts import keys
from kinema.accounts import ledger as books
from kinema.accounts.credits import LedgerPage, check_page
from kinema.accounts.plans import Plan, check_plan, check_plan_name, missing_plan, plan_for_role
from kinema.accounts.schema import AccountRow, ApiKeyRow, PlanRow, WebSessionRow
from kinema.accounts.sessions import SignIns, WebSession
from kinema.accounts.sql_ledger import PLANS, SqlLedger, insert_plan, plan_of
from kinema.accounts.store import (
    Account,
    DuplicateAccount,
    KeyInfo,
    KeyKind,
    KeyPair,
    Role,
    StaticKey,
    check_name,
    check_role,
    duplicate_message,
    missing_account,
    missing_key,
)
from kinema.accounts.usage import UsageRow, usage_rows
from kinema.db.clock import Clock, SystemClock, to_ms
from kinema.db.migrate import open_database
from kinema.errors import KinemaError

_DAY = timedelta(days=1)
_ATTEMPTS = 3  # a fresh random id or key collides only by a freak of chance; then draw another
_COLLIDED = "three fresh random ids or keys collided in a row; the random source is broken, report a bug"


def open_accounts(url: str, *, clock: Clock | None = None) -> SqlAccountStore:
    """Connect to `url` (sqlite:///path or postgresql://...), apply pending migrations, return the store."""
    engine = open_database(url)
    return SqlAccountStore(engine, clock=clock)


class SqlAccountStore(books.Bookkeeping, SignIns):
    """An `AccountStore` on one SQLAlchemy engine; thread-safe (one session per operation)."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        self.engine = engine
        self._clock = clock or SystemClock()
        self._reads = sessionmaker(engine, expire_on_commit=False)
        self._writer = engine.execution_options(kinema_sqlite_begin="IMMEDIATE")
        self._writes = sessionmaker(self._writer, expire_on_commit=False)

    def _now(self) -> datetime:
        return to_ms(self._clock.now())

    def _account(self, session: Session, account_id: str, *, lock: bool = False) -> AccountRow:
        row = session.get(AccountRow, account_id, with_for_update=lock)
        if row is None:
            raise missing_account(account_id)
        return row

    # --- accounts -------------------------------------------------------------------------------------

    def create_account(self, name: str, *, role: Role = "member", plan: str | None = None) -> Account:
        check_name(name)
        check_role(role)
        plan = plan_for_role(role, plan)
        for _ in range(_ATTEMPTS):
            row = AccountRow(
                account_id=keys.new_account_id(),
                name=name,
                role=role,
                disabled=False,
                webhook_secret=None,
                created_at=self._now(),
                plan=plan,
            )
            try:
                with self._writes.begin() as session:
                    if session.get(PlanRow, plan) is None:
                        raise missing_plan(plan)
                    session.add(row)
                return _to_account(row)
            except IntegrityError:
                if self.account_by_name(name) is not None:
                    raise DuplicateAccount(duplicate_message(name)) from None
        raise RuntimeError(_COLLIDED)

    def get_account(self, account_id: str) -> Account | None:
        with self._reads() as session:
            row = session.get(AccountRow, account_id)
            return _to_account(row) if row is not None else None

    def account_by_name(self, name: str) -> Account | None:
        with self._reads() as session:
            row = session.scalars(select(AccountRow).where(AccountRow.name == name)).one_or_none()
            return _to_account(row) if row is not None else None

    def list_accounts(self) -> builtins.list[Account]:
        with self._reads() as session:
            return [_to_account(row) for row in session.scalars(select(AccountRow).order_by(AccountRow.name))]

    def ensure_account(self, name: str, *, role: Role = "member", plan: str | None = None) -> Account:
        check_name(name)
        check_role(role)
        if (found := self.account_by_name(name)) is not None:
            return found
        try:
            return self.create_account(name, role=role, plan=plan)
        except DuplicateAccount:  # another process created it between our look and our insert
            found = self.account_by_name(name)
            if found is None:
                raise
            return found

    def set_disabled(self, account_id: str, disabled: bool) -> Account:
        with self._writes.begin() as session:
            row = self._account(session, account_id, lock=True)
            row.disabled = disabled
            return _to_account(row)

    def set_webhook_secret(self, account_id: str) -> str:
        secret = keys.new_webhook_secret()
        with self._writes.begin() as session:
            self._account(session, account_id, lock=True).webhook_secret = secret
        return secret

    def webhook_secret(self, account_id: str) -> str | None:
        with self._reads() as session:
            return self._account(session, account_id).webhook_secret

    # --- keys -----------------------------------------------------------------------------------------

    def _inserted(self, account_id: str, row: ApiKeyRow) -> bool:
        """Add a key row; False when its random id or key collided with another (draw again)."""
        try:
            with self._writes.begin() as session:
                self._account(session, account_id)
                session.add(row)
        except IntegrityError:
            return False
        return True

    def create_key_pair(self, account_id: str) -> KeyPair:
        for _ in range(_ATTEMPTS):
            pair = KeyPair(keys.new_key_id(), keys.new_access_key(), keys.new_secret_key())
            if self._inserted(account_id, _pair_row(pair, account_id, self._now())):
                return pair
        raise RuntimeError(_COLLIDED)

    def create_api_key(self, account_id: str) -> StaticKey:
        for _ in range(_ATTEMPTS):
            static = StaticKey(keys.new_key_id(), keys.new_api_key())
            if self._inserted(account_id, _static_row(static, account_id, self._now())):
                return static
        raise RuntimeError(_COLLIDED)

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        query = (
            select(ApiKeyRow.account_id, ApiKeyRow.secret)
            .join(AccountRow, AccountRow.account_id == ApiKeyRow.account_id)
            .where(
                ApiKeyRow.access_key == access_key,
                ApiKeyRow.revoked_at.is_(None),
                AccountRow.disabled.is_(False),
            )
        )
        with self._reads() as session:
            found = session.execute(query).one_or_none()
        if found is None or found.secret is None:
            return None
        return found.account_id, found.secret

    def account_for_api_key(self, api_key: str) -> str | None:
        query = (
            select(ApiKeyRow.account_id)
            .join(AccountRow, AccountRow.account_id == ApiKeyRow.account_id)
            .where(
                ApiKeyRow.api_key_hash == keys.hash_api_key(api_key),
                ApiKeyRow.revoked_at.is_(None),
                AccountRow.disabled.is_(False),
            )
        )
        with self._reads() as session:
            return session.scalars(query).one_or_none()

    def list_keys(self, account_id: str) -> builtins.list[KeyInfo]:
        query = (
            select(ApiKeyRow)
            .where(ApiKeyRow.account_id == account_id)
            .order_by(ApiKeyRow.created_at, ApiKeyRow.key_id)
        )
        with self._reads() as session:
            self._account(session, account_id)
            return [_to_info(row) for row in session.scalars(query)]

    def revoke_key(self, account_id: str, key_id: str) -> KeyInfo:
        with self._writes.begin() as session:
            row = session.get(ApiKeyRow, key_id, with_for_update=True)
            if row is None or row.account_id != account_id:
                raise missing_key(account_id, key_id)
            if row.revoked_at is None:
                row.revoked_at = self._now()
            return _to_info(row)

    # --- passwords and sessions (rules in kinema.accounts.sessions) ------------------------------------

    def _account_and_hash(self, name: str) -> tuple[Account, str | None] | None:
        with self._reads() as session:
            row = session.scalars(select(AccountRow).where(AccountRow.name == name)).one_or_none()
            return (_to_account(row), row.password_hash) if row is not None else None

    def _store_password(
        self, account_id: str, encoded: str | None, *, keep_session: str | None, revoke: bool = True
    ) -> None:
        now = self._now()
        with self._writes.begin() as session:
            self._account(session, account_id, lock=True).password_hash = encoded
            if not revoke:
                return
            query = update(WebSessionRow).where(
                WebSessionRow.account_id == account_id, WebSessionRow.revoked_at.is_(None)
            )
            if keep_session is not None:
                query = query.where(WebSessionRow.session_id != keep_session)
            session.execute(query.values(revoked_at=now))

    def _insert_session(self, hashed: str, session: WebSession) -> None:
        with self._writes.begin() as db:
            db.add(
                WebSessionRow(
                    token_hash=hashed,
                    session_id=session.session_id,
                    account_id=session.account_id,
                    created_at=session.created_at,
                    expires_at=session.expires_at,
                    revoked_at=None,
                    user_agent=session.user_agent,
                )
            )

    def _session_by_hash(self, hashed: str) -> tuple[WebSession, Account] | None:
        query = (
            select(WebSessionRow, AccountRow)
            .join(AccountRow, AccountRow.account_id == WebSessionRow.account_id)
            .where(WebSessionRow.token_hash == hashed)
        )
        with self._reads() as session:
            found = session.execute(query).one_or_none()
            return (_to_session(found[0]), _to_account(found[1])) if found is not None else None

    def _revoke_sessions(self, account_id: str, session_id: str | None) -> int:
        query = update(WebSessionRow).where(
            WebSessionRow.account_id == account_id, WebSessionRow.revoked_at.is_(None)
        )
        if session_id is not None:
            query = query.where(WebSessionRow.session_id == session_id)
        with self._writer.begin() as connection:
            return connection.execute(query.values(revoked_at=self._now())).rowcount

    def _sessions_of(self, account_id: str) -> builtins.list[WebSession]:
        query = (
            select(WebSessionRow)
            .where(WebSessionRow.account_id == account_id)
            .order_by(WebSessionRow.created_at.desc(), WebSessionRow.session_id)
            .limit(1000)
        )
        with self._reads() as session:
            return [_to_session(row) for row in session.scalars(query)]

    def sweep_sessions(self) -> int:
        """Delete sessions that expired or were signed out more than a day ago; how many."""
        cutoff = self._now() - _DAY
        query = delete(WebSessionRow).where(
            or_(WebSessionRow.expires_at < cutoff, WebSessionRow.revoked_at < cutoff)
        )
        with self._writer.begin() as connection:
            return connection.execute(query).rowcount

    # --- plans ----------------------------------------------------------------------------------------

    def get_plan(self, name: str) -> Plan | None:
        with self.engine.connect() as connection:
            row = connection.execute(select(PLANS).where(PLANS.c.name == name)).one_or_none()
            return plan_of(row) if row is not None else None

    def list_plans(self) -> builtins.list[Plan]:
        query = select(PLANS).order_by(PLANS.c.priority, PLANS.c.name)
        with self.engine.connect() as connection:
            return [plan_of(row) for row in connection.execute(query)]

    def upsert_plan(self, plan: Plan) -> Plan:
        check_plan(plan)
        with self._writer.begin() as connection:
            insert_plan(connection, plan)
        return plan

    def set_plan(self, account_id: str, plan: str) -> Account:
        check_plan_name(plan)
        with self._writes.begin() as session:
            row = self._account(session, account_id, lock=True)
            if session.get(PlanRow, plan) is None:
                raise missing_plan(plan)
            row.plan = plan
            return _to_account(row)

    # --- credits --------------------------------------------------------------------------------------

    @contextmanager
    def _ledger(self) -> Iterator[SqlLedger]:
        """A ledger in a write transaction of its own, committed when the block ends without error."""
        with self._writer.begin() as connection:
            yield SqlLedger(connection, self._now())

    @contextmanager
    def ledger_in(self, connection: Connection | None) -> Iterator[SqlLedger]:
        """A ledger inside the caller's transaction on `connection` (the task store's, for billing)."""
        if connection is None:
            raise KinemaError(
                "the SQL account store bills inside the task store's transaction and got no connection; "
                "hook Billing into a SQL task store on the same database"
            )
        yield SqlLedger(connection, self._now())

    def ledger_history(self, account_id: str, *, offset: int = 0, limit: int = 50) -> LedgerPage:
        check_page(offset, limit)
        with self.engine.connect() as connection:
            if self.get_account(account_id) is None:
                raise missing_account(account_id)
            return SqlLedger(connection, self._now()).history(account_id, offset=offset, limit=limit)

    def usage(
        self, start: datetime, end: datetime, *, account_id: str | None = None
    ) -> builtins.list[UsageRow]:
        with self.engine.connect() as connection:
            records = SqlLedger(connection, self._now()).charges_between(start, end, account_id)
        return usage_rows(records, {a.account_id: a.name for a in self.list_accounts()})

    def close(self) -> None:
        self.engine.dispose()


def _pair_row(pair: KeyPair, account_id: str, now: datetime) -> ApiKeyRow:
    return ApiKeyRow(
        key_id=pair.key_id,
        account_id=account_id,
        kind="pair",
        access_key=pair.access_key,
        secret=pair.secret_key,
        api_key_hash=None,
        prefix=keys.display_prefix(pair.access_key),
        created_at=now,
        revoked_at=None,
    )


def _static_row(static: StaticKey, account_id: str, now: datetime) -> ApiKeyRow:
    return ApiKeyRow(
        key_id=static.key_id,
        account_id=account_id,
        kind="static",
        access_key=None,
        secret=None,
        api_key_hash=keys.hash_api_key(static.api_key),
        prefix=keys.display_prefix(static.api_key),
        created_at=now,
        revoked_at=None,
    )


def _to_account(row: AccountRow) -> Account:
    return Account(
        account_id=row.account_id,
        name=row.name,
        role=cast(Role, row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        plan=row.plan,
    )


def _to_session(row: WebSessionRow) -> WebSession:
    return WebSession(
        session_id=row.session_id,
        account_id=row.account_id,
        created_at=row.created_at,
        expires_at=row.expires_at,
        user_agent=row.user_agent,
        revoked_at=row.revoked_at,
    )


def _to_info(row: ApiKeyRow) -> KeyInfo:
    return KeyInfo(
        key_id=row.key_id,
        account_id=row.account_id,
        kind=cast(KeyKind, row.kind),
        access_key=row.access_key,
        prefix=row.prefix,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
    )
