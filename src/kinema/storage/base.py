"""The media storage protocol, key rules and signed, expiring links.

Keys are relative POSIX paths of safe characters (`tasks/123/video-0.mp4`). A link to a key is signed
with HMAC-SHA256 and carries its expiry, so the API can serve local files without a session and an S3
bucket can stay private. Storage knows nothing of tasks, HTTP routing or torch.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path
from typing import Protocol, runtime_checkable

from kinema.errors import KinemaError

KEY_PATTERN = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


class StorageError(KinemaError):
    """A key that is malformed or missing, or a storage backend that failed."""


class MissingMedia(StorageError, KeyError):
    """No object under this key (deleted, expired or never written)."""


def check_key(key: str) -> str:
    """Return `key` if it is a safe relative path, else raise: no '..', no leading '/', no odd characters."""
    if len(key) > 512 or not KEY_PATTERN.match(key) or any(part in (".", "..") for part in key.split("/")):
        raise StorageError(
            f"invalid storage key {key!r}: use letters, digits, '.', '_', '-' and '/' separators, no '..'"
        )
    return key


def sign(secret: bytes, key: str, expires: int) -> str:
    """Hex HMAC-SHA256 over the key and its expiry (Unix seconds)."""
    return hmac.new(secret, f"{key}\n{expires}".encode(), hashlib.sha256).hexdigest()


def verify(secret: bytes, key: str, expires: int, signature: str, *, now: float) -> bool:
    """True if the signature matches and the link has not expired."""
    if not signature.isascii():  # compare_digest refuses non-ASCII text; no valid signature has any
        return False
    return now <= expires and hmac.compare_digest(sign(secret, key, expires), signature)


@runtime_checkable
class MediaStorage(Protocol):
    """Put, fetch, link and delete media by key."""

    def put_file(self, key: str, source: Path, *, content_type: str) -> None: ...

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None: ...

    def get_bytes(self, key: str) -> bytes: ...

    def download(self, key: str, target: Path) -> Path: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

    def url(self, key: str, *, expires_in: int) -> str:
        """A link that works for `expires_in` seconds, without credentials."""
        ...
