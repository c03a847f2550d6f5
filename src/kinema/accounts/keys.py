"""Drawing ids, keys and secrets from the operating system's CSPRNG, and hashing static keys.

Access keys are `ak_` + 24 URL-safe characters, secret keys `sk_` + 40, static API keys `kn_` + 40;
webhook secrets follow Standard Webhooks (`whsec_` + base64 of 24 random bytes). This module knows
nothing about where keys are kept.
"""

from __future__ import annotations

import base64
import hashlib
import secrets

PREFIX_LENGTH = 7  # "ak_" or "kn_" and four characters: enough to tell keys apart in a list


def new_account_id() -> str:
    return "acc_" + secrets.token_hex(8)


def new_key_id() -> str:
    return "key_" + secrets.token_hex(8)


def new_access_key() -> str:
    return "ak_" + secrets.token_urlsafe(18)  # 18 bytes are exactly 24 base64url characters


def new_secret_key() -> str:
    return "sk_" + secrets.token_urlsafe(30)  # 40 characters


def new_api_key() -> str:
    return "kn_" + secrets.token_urlsafe(30)  # 40 characters


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def hash_api_key(api_key: str) -> str:
    """The SHA-256 hex digest a static key is stored and looked up by (the key itself is never stored)."""
    return hashlib.sha256(api_key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:PREFIX_LENGTH]
