"""Studio sign-in: an account's password and the browser sessions it opens, written once over storage.

A session is an opaque random token (`kss_…`) that the browser keeps in an HttpOnly cookie; the store
keeps only its SHA-256, so a copy of the database signs nobody in. A session ends when it expires, when
it is signed out, when its account is disabled or when the account's password changes (every session
of the account ends; the caller may keep the one it is using). `SignIns` holds the rules;
`MemoryAccountStore` and `SqlAccountStore` supply the storage primitives.
"""

from __future__ import annotations

import builtins
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from kinema.accounts import passwords
from kinema.accounts.store import Account, missing_account
from kinema.errors import InvalidRequest, KinemaError

TOKEN_PREFIX = "kss_"
DEFAULT_SESSION_HOURS = 7 * 24.0
MAX_SESSION_HOURS = 366 * 24.0
MAX_USER_AGENT = 256


class WrongPassword(KinemaError):
    """The name or the password is wrong (which one is not said), or the account has no password."""


@dataclass(frozen=True, slots=True)
class WebSession:
    """A signed-in browser as listed: `session_id` names it (for signing it out); never its token."""

    session_id: str
    account_id: str
    created_at: datetime
    expires_at: datetime
    user_agent: str
    revoked_at: datetime | None = None

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and now < self.expires_at


@dataclass(frozen=True, slots=True)
class NewSession:
    """A session just opened: `token` goes into the cookie and is shown nowhere else."""

    token: str
    session: WebSession
    account: Account


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def check_hours(hours: float) -> float:
    if not isinstance(hours, int | float) or not 0 < hours <= MAX_SESSION_HOURS:
        raise InvalidRequest(
            f"session length {hours!r} h is not valid; use 0 < hours <= {MAX_SESSION_HOURS:g}"
        )
    return float(hours)


class SignIns:
    """Passwords and sessions for an account store. Subclasses provide the storage primitives."""

    # --- storage primitives (each one transaction) ------------------------------------------------------

    def _now(self) -> datetime:
        raise NotImplementedError

    def _account_and_hash(self, name: str) -> tuple[Account, str | None] | None:
        """The account called `name` and its password hash (None: it has none), or None if no account."""
        raise NotImplementedError

    def _store_password(
        self, account_id: str, encoded: str | None, *, keep_session: str | None, revoke: bool = True
    ) -> None:
        """Write the hash (None removes the password) and, with `revoke`, end every live session of the
        account except the one whose id is `keep_session`; `AccountNotFound` if there is no account."""
        raise NotImplementedError

    def _insert_session(self, hashed: str, session: WebSession) -> None:
        raise NotImplementedError

    def _session_by_hash(self, hashed: str) -> tuple[WebSession, Account] | None:
        raise NotImplementedError

    def _revoke_sessions(self, account_id: str, session_id: str | None) -> int:
        """Revoke the account's live session `session_id` (None: all of them); how many were revoked."""
        raise NotImplementedError

    def _sessions_of(self, account_id: str) -> builtins.list[WebSession]:
        """The account's sessions, newest first (revoked and expired ones included)."""
        raise NotImplementedError

    def get_account(self, account_id: str) -> Account | None:
        raise NotImplementedError

    # --- the rules ----------------------------------------------------------------------------------------

    def set_password(self, account_id: str, password: str | None, *, keep_session: str | None = None) -> None:
        """Give the account a password (checked against the policy) or take it away (None); every other
        session of the account ends. `AccountNotFound` if there is no such account."""
        account = self.get_account(account_id)
        if account is None:
            raise missing_account(account_id)
        encoded = None
        if password is not None:
            encoded = passwords.hash_password(passwords.check_password(password, name=account.name))
        self._store_password(account_id, encoded, keep_session=keep_session)

    def has_password(self, account_id: str) -> bool:
        account = self.get_account(account_id)
        found = self._account_and_hash(account.name) if account else None
        return found is not None and found[1] is not None

    def verify_password(self, account_id: str, password: str) -> bool:
        """Whether `password` is the account's password (False when it has none)."""
        account = self.get_account(account_id)
        found = self._account_and_hash(account.name) if account else None
        return passwords.verify_password(password, found[1] if found else None)

    def sign_in(
        self, name: str, password: str, *, hours: float = DEFAULT_SESSION_HOURS, user_agent: str = ""
    ) -> NewSession:
        """Open a session for `name` if `password` is its password; `WrongPassword` otherwise (also for
        an unknown name or an account without a password), `AccountDisabled` for a disabled account."""
        from kinema.accounts.billing import AccountDisabled

        hours = check_hours(hours)
        found = self._account_and_hash(name) if isinstance(name, str) else None
        if found is None or not passwords.verify_password(password, found[1]):
            if found is None:
                passwords.burn()
            raise WrongPassword("the name or the password is wrong; check both (names are case-sensitive)")
        account, encoded = found
        if account.disabled:
            raise AccountDisabled(f"account {account.name!r} is disabled; ask an administrator")
        if encoded is not None and passwords.needs_rehash(encoded):
            rehashed = passwords.hash_password(password)
            self._store_password(account.account_id, rehashed, keep_session=None, revoke=False)
        now = self._now()
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        session = WebSession(
            session_id="ses_" + secrets.token_hex(12),
            account_id=account.account_id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
            user_agent=(user_agent or "")[:MAX_USER_AGENT].replace("\x00", ""),
        )
        self._insert_session(token_hash(token), session)
        return NewSession(token=token, session=session, account=account)

    def session(self, token: str) -> WebSession | None:
        """The live session behind a cookie token: None if unknown, expired, signed out or disabled."""
        if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 128:
            return None
        found = self._session_by_hash(token_hash(token))
        if found is None:
            return None
        session, account = found
        if account.disabled or not session.live(self._now()):
            return None
        return session

    def sign_out(self, account_id: str, session_id: str | None = None) -> int:
        """End one of the account's sessions (None: all of them); how many ended. Again is harmless."""
        return self._revoke_sessions(account_id, session_id)

    def list_sessions(self, account_id: str) -> builtins.list[WebSession]:
        """The account's live sessions, newest first."""
        now = self._now()
        return [s for s in self._sessions_of(account_id) if s.live(now)]
