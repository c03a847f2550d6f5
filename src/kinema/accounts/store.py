"""Accounts, their keys, plans and credits: the `AccountStore` Protocol, its records, errors and checks.

An account owns key pairs (an access key and the secret key that signs its HS256 JWTs, shared/KLING_API.md
§2) and static API keys, may hold a webhook signing secret, is on one plan and holds credit packs. This
module says what every store promises; it knows no SQL or HTTP. Implementations: `kinema.accounts.sql`
and `kinema.accounts.memory`.
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol, get_args

from kinema.errors import InvalidRequest, KinemaError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from sqlalchemy import Connection

    from kinema.accounts.credits import LedgerPage, Pack
    from kinema.accounts.ledger import Ledger
    from kinema.accounts.plans import Plan
    from kinema.accounts.sessions import NewSession, WebSession
    from kinema.accounts.usage import UsageRow

Role = Literal["admin", "member"]
ROLES: tuple[Role, ...] = get_args(Role)
KeyKind = Literal["pair", "static"]
KEY_KINDS: tuple[KeyKind, ...] = get_args(KeyKind)
MAX_NAME = 64
_NAME = re.compile(rf"[A-Za-z0-9_.@-]{{1,{MAX_NAME}}}")


class DuplicateAccount(InvalidRequest):
    """An account with this name already exists."""


class AccountNotFound(KinemaError, LookupError):
    """No account with this id."""


class KeyNotFound(KinemaError, LookupError):
    """No key with this id in the account (another account's key is not found either)."""


@dataclass(frozen=True, slots=True)
class Account:
    """One account. `account_id` (`acc_<hex>`) is what tasks record; `name` is what people type.

    `plan` names the account's plan (`kinema.accounts.plans`).
    """

    account_id: str
    name: str
    role: Role
    disabled: bool
    created_at: datetime
    plan: str = "free"


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A new key pair, shown once: clients sign JWTs with `secret_key` and name `access_key` as `iss`."""

    key_id: str
    access_key: str
    secret_key: str


@dataclass(frozen=True, slots=True)
class StaticKey:
    """A new static API key, shown once: the store keeps only its SHA-256 hash."""

    key_id: str
    api_key: str


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A key as listed: never its secret. `access_key` is the public half of a pair (None for static).

    `prefix` is the key's first characters, enough to tell keys apart on screen.
    """

    key_id: str
    account_id: str
    kind: KeyKind
    access_key: str | None
    prefix: str
    created_at: datetime
    revoked_at: datetime | None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


def check_name(name: str) -> None:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidRequest(
            f"account name {name!r} is not valid; "
            f"use 1 to {MAX_NAME} letters, digits or the characters _ . - @"
        )


def check_role(role: str) -> None:
    if role not in ROLES:
        raise InvalidRequest(f"role {role!r} is not known; use one of {', '.join(ROLES)}")


def duplicate_message(name: str) -> str:
    return f"an account named {name!r} already exists; pick another name or use that account"


def missing_account(account_id: str) -> AccountNotFound:
    return AccountNotFound(f"no account {account_id!r}; check the id (list accounts to see them)")


def missing_key(account_id: str, key_id: str) -> KeyNotFound:
    return KeyNotFound(f"no key {key_id!r} in account {account_id!r}; list the account's keys to see them")


class AccountStore(Protocol):
    """Accounts, their keys and webhook secrets; the two lookups are what the API authenticates with.

    Keys of a disabled account and revoked keys authenticate nobody. Operations on an account that
    does not exist raise `AccountNotFound`.
    """

    def create_account(self, name: str, *, role: Role = "member", plan: str | None = None) -> Account:
        """A new account; raises `DuplicateAccount` if the name is taken, `InvalidRequest` if malformed.

        `plan` None puts a member on `free` and an admin on `unlimited`; an unknown plan is refused.
        """
        ...

    def get_account(self, account_id: str) -> Account | None: ...

    def account_by_name(self, name: str) -> Account | None: ...

    def list_accounts(self) -> builtins.list[Account]:
        """Every account, by name."""
        ...

    def ensure_account(self, name: str, *, role: Role = "member", plan: str | None = None) -> Account:
        """The account named `name`, created with `role` and `plan` if there is none (else unchanged)."""
        ...

    def create_key_pair(self, account_id: str) -> KeyPair: ...

    def create_api_key(self, account_id: str) -> StaticKey: ...

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        """(account id, secret key) of a live key pair, or None (unknown, revoked, account disabled)."""
        ...

    def account_for_api_key(self, api_key: str) -> str | None:
        """The account id of a live static API key, or None (unknown, revoked, account disabled)."""
        ...

    def list_keys(self, account_id: str) -> builtins.list[KeyInfo]:
        """The account's keys, revoked ones included, oldest first."""
        ...

    def revoke_key(self, account_id: str, key_id: str) -> KeyInfo:
        """Revoke one of the account's keys (again is harmless); raises `KeyNotFound` for any other key."""
        ...

    def set_disabled(self, account_id: str, disabled: bool) -> Account:
        """Disable an account (its keys stop working at once) or enable it again."""
        ...

    def set_webhook_secret(self, account_id: str) -> str:
        """Draw a new webhook signing secret (`whsec_<base64>`, Standard Webhooks), store and return it."""
        ...

    def webhook_secret(self, account_id: str) -> str | None:
        """The account's webhook signing secret, or None if it never had one."""
        ...

    # --- passwords and studio sessions (kinema.accounts.sessions) ---------------------------------------

    def set_password(self, account_id: str, password: str | None, *, keep_session: str | None = None) -> None:
        """Set (policy-checked, scrypt-hashed) or remove the password; ends the account's other sessions."""
        ...

    def has_password(self, account_id: str) -> bool: ...

    def verify_password(self, account_id: str, password: str) -> bool: ...

    def sign_in(self, name: str, password: str, *, hours: float = ..., user_agent: str = "") -> NewSession:
        """A new session for the right name and password; `WrongPassword` or `AccountDisabled` otherwise."""
        ...

    def session(self, token: str) -> WebSession | None:
        """The live session behind a cookie token, or None."""
        ...

    def sign_out(self, account_id: str, session_id: str | None = None) -> int:
        """End one of the account's sessions, or all of them (None); how many ended."""
        ...

    def list_sessions(self, account_id: str) -> builtins.list[WebSession]:
        """The account's live sessions, newest first."""
        ...

    def sweep_sessions(self) -> int:
        """Forget sessions that expired or were signed out more than a day ago; how many."""
        ...

    # --- plans ------------------------------------------------------------------------------------------

    def get_plan(self, name: str) -> Plan | None: ...

    def list_plans(self) -> builtins.list[Plan]:
        """Every plan, lowest priority first, then by name."""
        ...

    def upsert_plan(self, plan: Plan) -> Plan:
        """Create the plan or replace the one of that name (admins edit plans); `InvalidRequest` if bad."""
        ...

    def set_plan(self, account_id: str, plan: str) -> Account:
        """Move the account to another plan; `PlanNotFound` if there is no such plan."""
        ...

    # --- credits ----------------------------------------------------------------------------------------

    def grant_credits(
        self,
        account_id: str,
        credits: int,
        *,
        days: float | None = None,
        name: str | None = None,
        note: str = "",
    ) -> Pack:
        """Give the account a `grant` pack of `credits`, valid from now for `days` (None: no expiry)."""
        ...

    def purchase_credits(
        self,
        account_id: str,
        credits: int,
        *,
        days: float | None = None,
        name: str | None = None,
        note: str = "",
    ) -> Pack:
        """Record a bought `purchase` pack of `credits`, valid from now for `days` (None: no expiry)."""
        ...

    def balance(self, account_id: str) -> int:
        """Credits the account can spend now; grants today's daily (and this month's) allowance if due."""
        ...

    def ledger_history(self, account_id: str, *, offset: int = 0, limit: int = 50) -> LedgerPage:
        """The account's ledger entries, newest first, `limit` (1..1000) after skipping `offset`."""
        ...

    def resource_packs(
        self, account_id: str, start_ms: int, end_ms: int, name: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """`/account/costs`: the account's packs valid at some time in [start_ms, end_ms] (§4.6 fields)."""
        ...

    def sweep_expired(self) -> int:
        """Write off the credits left in every expired pack (an `expiry` entry each); the number written."""
        ...

    def usage(
        self, start: datetime, end: datetime, *, account_id: str | None = None
    ) -> builtins.list[UsageRow]:
        """One row per charge made in [start, end), oldest first: what was generated and what it cost."""
        ...

    def ledger_in(self, connection: Connection | None) -> AbstractContextManager[Ledger]:
        """The ledger inside a task store's transaction, for `Billing`: the SQL store needs that
        transaction's connection, the in-memory one None (it pairs with the in-memory task store)."""
        ...

    def close(self) -> None: ...
