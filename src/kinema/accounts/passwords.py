"""Passwords for the studio's sign-in: the policy, and scrypt hashes that describe their own cost.

A hash reads `scrypt$ln=17,r=8,p=1$<salt>$<key>` (salt and key in unpadded base64): scrypt with
N = 2**17, r = 8, p = 1 is OWASP's recommended setting (128 MiB and about a third of a second per
check on one core). The cost is kept in the hash, so raising `COST` later re-hashes each password at its
next successful sign-in (`needs_rehash`), and old hashes keep verifying. Checks compare in constant
time, and a sign-in for a name that does not exist still pays for one hash (`burn`), so timing does not
tell which names exist. The standard library's `hashlib.scrypt` is the whole dependency.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from kinema.errors import InvalidRequest

MIN_LENGTH = 8
MAX_LENGTH = 256  # scrypt's input is hashed first, but a megabyte password is still a denial of service
SALT_BYTES = 16
KEY_BYTES = 32
_PREFIX = "scrypt"


@dataclass(frozen=True, slots=True)
class Cost:
    """scrypt's cost: N = 2**log_n, block size r, parallelism p."""

    log_n: int = 17
    r: int = 8
    p: int = 1

    @property
    def maxmem(self) -> int:
        return 256 * self.r * (1 << self.log_n) + (1 << 20)

    def text(self) -> str:
        return f"ln={self.log_n},r={self.r},p={self.p}"


COST = Cost()


def check_password(password: object, *, name: str | None = None) -> str:
    """The password if it may be used, else `InvalidRequest` saying what to change."""
    if not isinstance(password, str):
        raise InvalidRequest("password: must be a string")
    if len(password) < MIN_LENGTH:
        raise InvalidRequest(f"password: use at least {MIN_LENGTH} characters (a few words are easiest)")
    if len(password) > MAX_LENGTH:
        raise InvalidRequest(f"password: use at most {MAX_LENGTH} characters")
    if "\x00" in password:
        raise InvalidRequest("password: contains a NUL character; remove it")
    if not password.strip():
        raise InvalidRequest("password: must not be only spaces")
    if name is not None and password.casefold() == name.casefold():
        raise InvalidRequest("password: must not be the account's name")
    return password


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _derive(password: str, salt: bytes, cost: Cost, length: int = KEY_BYTES) -> bytes:
    return hashlib.scrypt(
        password.encode("utf-8"),
        salt=salt,
        n=1 << cost.log_n,
        r=cost.r,
        p=cost.p,
        maxmem=cost.maxmem,
        dklen=length,
    )


def hash_password(password: str, *, cost: Cost | None = None) -> str:
    """A new salted hash of `password` (check it with `check_password` first)."""
    cost = cost or COST
    salt = secrets.token_bytes(SALT_BYTES)
    return f"{_PREFIX}${cost.text()}${_b64(salt)}${_b64(_derive(password, salt, cost))}"


def _parse(encoded: str) -> tuple[Cost, bytes, bytes] | None:
    try:
        prefix, params, salt, key = encoded.split("$")
        if prefix != _PREFIX:
            return None
        fields = dict(part.split("=", 1) for part in params.split(","))
        cost = Cost(log_n=int(fields["ln"]), r=int(fields["r"]), p=int(fields["p"]))
        if not (1 <= cost.log_n <= 24 and 1 <= cost.r <= 64 and 1 <= cost.p <= 16):
            return None
        return cost, _unb64(salt), _unb64(key)
    except (ValueError, KeyError):
        return None


def verify_password(password: str, encoded: str | None) -> bool:
    """Whether `password` matches `encoded`; False for no hash or a malformed one (never raises)."""
    parsed = _parse(encoded) if encoded else None
    if parsed is None or not isinstance(password, str) or len(password) > MAX_LENGTH:
        burn()
        return False
    cost, salt, key = parsed
    return hmac.compare_digest(_derive(password, salt, cost, len(key)), key)


def needs_rehash(encoded: str, *, cost: Cost | None = None) -> bool:
    """Whether `encoded` was made with another cost than today's (re-hash at the next sign-in)."""
    parsed = _parse(encoded)
    return parsed is None or parsed[0] != (cost or COST)


_BURN_SALT = secrets.token_bytes(SALT_BYTES)


def burn() -> None:
    """Spend what one check costs, so a refusal takes as long whether or not the account exists."""
    _derive("kinema", _BURN_SALT, COST)
