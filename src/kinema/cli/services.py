"""The composition root of the service: the task store, media storage and signing secret from Settings.

`kinema serve` and `kinema worker` build the same things here, so a worker process sees exactly the
database and media the server sees. Nothing in this module imports torch.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from kinema.errors import KinemaError
from kinema.jobs import SqlTaskStore, open_store
from kinema.settings import Settings
from kinema.storage.base import MediaStorage

SECRET_FILE = "secret.key"


@dataclass
class Services:
    settings: Settings
    store: SqlTaskStore
    storage: MediaStorage
    secret: bytes

    def close(self) -> None:
        self.store.close()


def signing_secret(settings: Settings) -> bytes:
    """`KINEMA_SECRET`, else a random secret created once in the data folder (mode 0600)."""
    if settings.secret:
        return settings.secret.encode()
    path = settings.data_dir / SECRET_FILE
    if not path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def build_storage(settings: Settings, secret: bytes) -> MediaStorage:
    if settings.storage == "local":
        from kinema.storage.local import LocalStorage

        return LocalStorage(
            settings.data_dir / "media", base_url=settings.resolved_public_url(), secret=secret
        )
    if settings.storage == "s3":
        if not settings.s3_bucket:
            raise KinemaError("KINEMA_STORAGE=s3 needs KINEMA_S3_BUCKET (and usually KINEMA_S3_ENDPOINT_URL)")
        from kinema.storage.s3 import S3Storage

        return S3Storage(
            settings.s3_bucket,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            prefix=settings.s3_prefix,
        )
    raise KinemaError(f"KINEMA_STORAGE must be 'local' or 's3', not {settings.storage!r}")


def build_services(settings: Settings) -> Services:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = signing_secret(settings)
    store = open_store(
        settings.resolved_database_url(), retention=timedelta(days=settings.retention_days)
    )
    return Services(settings=settings, store=store, storage=build_storage(settings, secret), secret=secret)


def data_path(settings: Settings, *parts: str) -> Path:
    return settings.data_dir.joinpath(*parts)
