"""Media in a local folder (the default). Links point at the API's `/media/{key}` route, signed.

Writes go to a temporary name and are renamed into place, so a crash never leaves half a file
under a key.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote, urlencode

from kinema.storage.base import MissingMedia, check_key, sign


class LocalStorage:
    def __init__(
        self, root: Path, *, base_url: str, secret: bytes, clock: Callable[[], float] = time.time
    ) -> None:
        self.root = root
        self.base_url = base_url.rstrip("/")
        self.secret = secret
        self.clock = clock
        root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put_file(self, key: str, source: Path, *, content_type: str) -> None:
        del content_type  # the API derives it from the extension when serving
        with source.open("rb") as data:
            self._write(key, lambda handle: shutil.copyfileobj(data, handle))

    def put_bytes(self, key: str, data: bytes, *, content_type: str) -> None:
        del content_type
        self._write(key, lambda handle: handle.write(data))

    def _write(self, key: str, fill: Callable[[BinaryIO], object]) -> None:
        target = self.path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".partial")
        try:
            with os.fdopen(fd, "wb") as handle:
                fill(handle)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def get_bytes(self, key: str) -> bytes:
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise MissingMedia(f"no media under key {key!r}; it may have expired or been deleted") from None

    def download(self, key: str, target: Path) -> Path:
        source = self.path(key)
        if not source.is_file():
            raise MissingMedia(f"no media under key {key!r}; it may have expired or been deleted")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        return target

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def url(self, key: str, *, expires_in: int) -> str:
        expires = int(self.clock()) + expires_in
        query = urlencode({"expires": expires, "signature": sign(self.secret, check_key(key), expires)})
        return f"{self.base_url}/media/{quote(key)}?{query}"
