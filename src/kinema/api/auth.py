"""Who is calling: HS256 JWTs signed with an account's secret key, or an opaque static API key.

Exactly the rules of shared/KLING_API.md §2: `iss` names the access key, `exp`/`nbf` are checked with
leeway for clock skew, only HS256 is accepted (`alg: none` and every other algorithm are refused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import jwt

from kinema.api.errors import ApiError

LEEWAY_SECONDS = 10
VERIFIED_TOKENS = 4096  # tokens remembered after a full check (a Kling client reuses one for ~30 min)


@dataclass(frozen=True)
class Caller:
    account_id: str
    access_key: str | None  # None when a static API key or a session cookie was used
    session_id: str | None = None  # the studio's session, when signed in with a password


# access key -> (account id, secret key); static API key -> account id. None when unknown.
SecretLookup = Callable[[str], tuple[str, str] | None]
ApiKeyLookup = Callable[[str], str | None]


def authenticate(
    header: str | None, *, secret_for: SecretLookup, account_for_api_key: ApiKeyLookup
) -> Caller:
    """The caller named by an `Authorization` header, or an ApiError with code 1000–1004."""
    if not header or not header.strip():
        raise ApiError(1001, "Authorization header is missing; send 'Authorization: Bearer <token>'")
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise ApiError(1002, "Authorization header must be 'Bearer <token>'")
    if token.count(".") != 2:
        account = account_for_api_key(token)
        if account is None:
            raise ApiError(1002, "unknown API key; create one with `kinema keys create`")
        return Caller(account_id=account, access_key=None)
    return _verify_jwt(token, secret_for)


@dataclass(frozen=True)
class _Verified:
    """What a full check of a token established: its signature under `secret`, and its time window."""

    issuer: str
    account_id: str
    secret: str
    expires: float
    not_before: float | None


class _VerifiedTokens:
    """Tokens whose signature was checked, so a client reusing one pays a dict lookup, not a JWT decode.

    A hit still asks `secret_for` (itself cached a few seconds) and counts only while the issuer's secret
    is the one the signature was checked with, so a revoked or rotated key ends it as fast as before;
    `exp` and `nbf` are checked on every use."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._tokens: dict[str, _Verified] = {}

    def check(self, token: str, secret_for: SecretLookup) -> Caller | None:
        with self._lock:
            known = self._tokens.get(token)
        if known is None or secret_for(known.issuer) != (known.account_id, known.secret):
            return None
        now = time.time()
        if now >= known.expires + LEEWAY_SECONDS:  # the bounds PyJWT applies on a full check
            raise ApiError(1004, "the token has expired (exp); sign a new one")
        if known.not_before is not None and now < known.not_before - LEEWAY_SECONDS:
            raise ApiError(1003, "the token is not valid yet (nbf); check the client's clock")
        return Caller(account_id=known.account_id, access_key=known.issuer)

    def remember(self, token: str, verified: _Verified) -> None:
        with self._lock:
            if len(self._tokens) >= self.size:
                self._tokens.clear()
            self._tokens[token] = verified


_verified = _VerifiedTokens(VERIFIED_TOKENS)


def _verify_jwt(token: str, secret_for: SecretLookup) -> Caller:
    known = _verified.check(token, secret_for)
    if known is not None:
        return known
    try:
        header = jwt.get_unverified_header(token)
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise ApiError(1002, "the token is not a well-formed JWT") from None
    if header.get("alg") != "HS256":
        raise ApiError(1002, f"JWT algorithm {header.get('alg')!r} is not accepted; sign with HS256")
    issuer = claims.get("iss")
    # A NUL can sit in a JSON string but not in a SQL text column (Postgres refuses the whole query).
    found = secret_for(issuer) if isinstance(issuer, str) and "\x00" not in issuer else None
    if found is None:
        raise ApiError(1002, "unknown access key in the token's 'iss' claim")
    account_id, secret = found
    try:
        checked = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=LEEWAY_SECONDS,
            options={"require": ["exp"], "verify_iat": False, "verify_aud": False},
        )
    except jwt.ImmatureSignatureError:
        raise ApiError(1003, "the token is not valid yet (nbf); check the client's clock") from None
    except jwt.ExpiredSignatureError:
        raise ApiError(1004, "the token has expired (exp); sign a new one") from None
    except jwt.MissingRequiredClaimError:
        raise ApiError(1002, "the token has no 'exp' claim; add one (e.g. now + 1800 s)") from None
    except jwt.InvalidSignatureError:
        raise ApiError(1002, "the token's signature does not match the secret key") from None
    except jwt.PyJWTError as exc:
        raise ApiError(1000, f"the token was refused: {exc}") from None
    nbf = checked.get("nbf")
    _verified.remember(
        token,
        _Verified(
            issuer=str(issuer),
            account_id=account_id,
            secret=secret,
            expires=float(checked["exp"]),
            not_before=float(nbf) if nbf is not None else None,
        ),
    )
    return Caller(account_id=account_id, access_key=issuer)
