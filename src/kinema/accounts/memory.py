"""An in-memory `AccountStore` for tests elsewhere: the same contract as the SQL store, held in dicts.

Thread-safe (one lock around every operation); gone when the process ends. Like the SQL store it keeps
a static key only as its hash. A ledger transaction that raises leaves the books as they were, as a
rolled-back SQL transaction would.
"""

from __future__ import annotations

import builtins
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import Connection

from kinema.accounts import keys
from kinema.accounts import ledger as books
from kinema.accounts.credits import LedgerPage, check_page
from kinema.accounts.memory_ledger import MemoryBooks, MemoryLedger
from kinema.accounts.plans import (
    DEFAULT_PLANS,
    Plan,
    check_plan,
    check_plan_name,
    missing_plan,
    plan_for_role,
)
from kinema.accounts.sessions import SignIns, WebSession
from kinema.accounts.store import (
    Account,
    DuplicateAccount,
    KeyInfo,
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
from kinema.errors import KinemaError


@dataclass(frozen=True, slots=True)
class _Key:
    info: KeyInfo
    secret: str | None  # a pair's secret key
    api_key_hash: str | None  # a static key's SHA-256


class MemoryAccountStore(books.Bookkeeping, SignIns):
    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock = clock or SystemClock()
        self._accounts: dict[str, Account] = {}
        self._webhook_secrets: dict[str, str] = {}
        self._passwords: dict[str, str] = {}
        self._sessions: dict[str, WebSession] = {}  # by the token's hash
        self._keys: dict[str, _Key] = {}
        self._plans: dict[str, Plan] = {plan.name: plan for plan in DEFAULT_PLANS}
        self._books = MemoryBooks()
        self._lock = threading.RLock()

    def _now(self) -> datetime:
        return to_ms(self._clock.now())

    def _account(self, account_id: str) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise missing_account(account_id)
        return account

    def _live(self, key: _Key) -> bool:
        account = self._accounts[key.info.account_id]
        return not key.info.revoked and not account.disabled

    # --- accounts -------------------------------------------------------------------------------------

    def create_account(self, name: str, *, role: Role = "member", plan: str | None = None) -> Account:
        check_name(name)
        check_role(role)
        plan = plan_for_role(role, plan)
        with self._lock:
            if self.account_by_name(name) is not None:
                raise DuplicateAccount(duplicate_message(name))
            if plan not in self._plans:
                raise missing_plan(plan)
            account = Account(
                keys.new_account_id(), name, role, disabled=False, created_at=self._now(), plan=plan
            )
            self._accounts[account.account_id] = account
            return account

    def get_account(self, account_id: str) -> Account | None:
        with self._lock:
            return self._accounts.get(account_id)

    def account_by_name(self, name: str) -> Account | None:
        with self._lock:
            return next((a for a in self._accounts.values() if a.name == name), None)

    def list_accounts(self) -> builtins.list[Account]:
        with self._lock:
            return sorted(self._accounts.values(), key=lambda account: account.name)

    def ensure_account(self, name: str, *, role: Role = "member", plan: str | None = None) -> Account:
        check_name(name)
        check_role(role)
        with self._lock:
            return self.account_by_name(name) or self.create_account(name, role=role, plan=plan)

    def set_disabled(self, account_id: str, disabled: bool) -> Account:
        with self._lock:
            account = replace(self._account(account_id), disabled=disabled)
            self._accounts[account_id] = account
            return account

    def set_webhook_secret(self, account_id: str) -> str:
        with self._lock:
            self._account(account_id)
            self._webhook_secrets[account_id] = secret = keys.new_webhook_secret()
            return secret

    def webhook_secret(self, account_id: str) -> str | None:
        with self._lock:
            self._account(account_id)
            return self._webhook_secrets.get(account_id)

    # --- keys -----------------------------------------------------------------------------------------

    def create_key_pair(self, account_id: str) -> KeyPair:
        pair = KeyPair(keys.new_key_id(), keys.new_access_key(), keys.new_secret_key())
        with self._lock:
            self._account(account_id)
            info = KeyInfo(
                pair.key_id,
                account_id,
                "pair",
                pair.access_key,
                keys.display_prefix(pair.access_key),
                created_at=self._now(),
                revoked_at=None,
            )
            self._keys[pair.key_id] = _Key(info, secret=pair.secret_key, api_key_hash=None)
        return pair

    def create_api_key(self, account_id: str) -> StaticKey:
        static = StaticKey(keys.new_key_id(), keys.new_api_key())
        with self._lock:
            self._account(account_id)
            info = KeyInfo(
                static.key_id,
                account_id,
                "static",
                None,
                keys.display_prefix(static.api_key),
                created_at=self._now(),
                revoked_at=None,
            )
            self._keys[static.key_id] = _Key(
                info, secret=None, api_key_hash=keys.hash_api_key(static.api_key)
            )
        return static

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        with self._lock:
            for key in self._keys.values():
                if key.info.access_key == access_key and key.secret is not None and self._live(key):
                    return key.info.account_id, key.secret
        return None

    def account_for_api_key(self, api_key: str) -> str | None:
        digest = keys.hash_api_key(api_key)
        with self._lock:
            for key in self._keys.values():
                if key.api_key_hash == digest and self._live(key):
                    return key.info.account_id
        return None

    def list_keys(self, account_id: str) -> builtins.list[KeyInfo]:
        with self._lock:
            self._account(account_id)
            found = [key.info for key in self._keys.values() if key.info.account_id == account_id]
        return sorted(found, key=lambda info: (info.created_at, info.key_id))

    def revoke_key(self, account_id: str, key_id: str) -> KeyInfo:
        with self._lock:
            key = self._keys.get(key_id)
            if key is None or key.info.account_id != account_id:
                raise missing_key(account_id, key_id)
            if not key.info.revoked:
                key = replace(key, info=replace(key.info, revoked_at=self._now()))
                self._keys[key_id] = key
            return key.info

    # --- passwords and sessions (rules in kinema.accounts.sessions) ------------------------------------

    def _account_and_hash(self, name: str) -> tuple[Account, str | None] | None:
        with self._lock:
            account = self.account_by_name(name)
            return (account, self._passwords.get(account.account_id)) if account else None

    def _store_password(
        self, account_id: str, encoded: str | None, *, keep_session: str | None, revoke: bool = True
    ) -> None:
        with self._lock:
            self._account(account_id)
            if encoded is None:
                self._passwords.pop(account_id, None)
            else:
                self._passwords[account_id] = encoded
            for hashed, session in list(self._sessions.items()):
                if revoke and session.account_id == account_id and session.session_id != keep_session:
                    self._revoke(hashed)

    def _revoke(self, hashed: str) -> bool:
        session = self._sessions[hashed]
        if session.revoked_at is not None:
            return False
        self._sessions[hashed] = replace(session, revoked_at=self._now())
        return True

    def _insert_session(self, hashed: str, session: WebSession) -> None:
        with self._lock:
            self._account(session.account_id)
            self._sessions[hashed] = session

    def _session_by_hash(self, hashed: str) -> tuple[WebSession, Account] | None:
        with self._lock:
            session = self._sessions.get(hashed)
            return (session, self._accounts[session.account_id]) if session else None

    def _revoke_sessions(self, account_id: str, session_id: str | None) -> int:
        with self._lock:
            return sum(
                self._revoke(hashed)
                for hashed, session in list(self._sessions.items())
                if session.account_id == account_id and session_id in (None, session.session_id)
            )

    def sweep_sessions(self) -> int:
        cutoff = self._now() - timedelta(days=1)
        with self._lock:
            ended = [
                hashed
                for hashed, s in self._sessions.items()
                if s.expires_at < cutoff or (s.revoked_at is not None and s.revoked_at < cutoff)
            ]
            for hashed in ended:
                del self._sessions[hashed]
        return len(ended)

    def _sessions_of(self, account_id: str) -> builtins.list[WebSession]:
        with self._lock:
            found = [s for s in self._sessions.values() if s.account_id == account_id]
        return sorted(found, key=lambda s: (s.created_at, s.session_id), reverse=True)

    # --- plans ----------------------------------------------------------------------------------------

    def get_plan(self, name: str) -> Plan | None:
        with self._lock:
            return self._plans.get(name)

    def list_plans(self) -> builtins.list[Plan]:
        with self._lock:
            return sorted(self._plans.values(), key=lambda plan: (plan.priority, plan.name))

    def upsert_plan(self, plan: Plan) -> Plan:
        check_plan(plan)
        with self._lock:
            self._plans[plan.name] = plan
        return plan

    def set_plan(self, account_id: str, plan: str) -> Account:
        check_plan_name(plan)
        with self._lock:
            account = self._account(account_id)
            if plan not in self._plans:
                raise missing_plan(plan)
            self._accounts[account_id] = account = replace(account, plan=plan)
            return account

    # --- credits --------------------------------------------------------------------------------------

    @contextmanager
    def _ledger(self) -> Iterator[MemoryLedger]:
        """Hold the lock; if the block raises, put the books back as they were."""
        with self._lock:
            saved = self._books.copy()
            try:
                yield MemoryLedger(self._books, self._accounts, self._plans, self._now())
            except BaseException:
                self._books = saved
                raise

    @contextmanager
    def ledger_in(self, connection: Connection | None) -> Iterator[MemoryLedger]:
        """The ledger for the in-memory task store's hook, which passes no connection."""
        if connection is not None:
            raise KinemaError(
                "the in-memory account store cannot bill inside a SQL transaction; "
                "use open_accounts(url) on the task store's database"
            )
        with self._ledger() as ledger:
            yield ledger

    def ledger_history(self, account_id: str, *, offset: int = 0, limit: int = 50) -> LedgerPage:
        check_page(offset, limit)
        with self._ledger() as ledger:
            ledger.lock_account(account_id)
            return ledger.history(account_id, offset=offset, limit=limit)

    def usage(
        self, start: datetime, end: datetime, *, account_id: str | None = None
    ) -> builtins.list[UsageRow]:
        with self._ledger() as ledger:
            records = ledger.charges_between(start, end, account_id)
            names = {a.account_id: a.name for a in self._accounts.values()}
        return usage_rows(records, names)

    def close(self) -> None:
        pass
