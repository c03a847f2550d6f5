"""The composition root of the service: the task store, media storage and signing secret from Settings.

`kinema serve` and `kinema worker` build the same things here, so a worker process sees exactly the
database and media the server sees. Nothing in this module imports torch.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from kinema.accounts import SqlAccountStore, open_accounts
from kinema.accounts.billing import Billing
from kinema.accounts.prices import PriceTable
from kinema.errors import KinemaError
from kinema.jobs import SqlTaskStore, Task, open_store
from kinema.settings import Settings
from kinema.storage.base import MediaStorage

SECRET_FILE = "secret.key"


@dataclass
class Services:
    settings: Settings
    store: SqlTaskStore
    storage: MediaStorage
    secret: bytes
    accounts: SqlAccountStore
    prices: PriceTable

    def close(self) -> None:
        self.store.close()
        self.accounts.close()


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
    """Store, accounts and media. Credits move inside the store's transactions (the billing hook), so
    every process that changes tasks, servers and workers alike, charges and refunds the same way."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = signing_secret(settings)
    url = settings.resolved_database_url()
    accounts = open_accounts(url)
    prices = PriceTable.from_toml(settings.prices_file) if settings.prices_file else PriceTable()
    billing = Billing(accounts, prices=prices)
    store = open_store(url, retention=timedelta(days=settings.retention_days), hook=billing.hook)
    return Services(
        settings=settings,
        store=store,
        storage=build_storage(settings, secret),
        secret=secret,
        accounts=accounts,
        prices=prices,
    )


def data_path(settings: Settings, *parts: str) -> Path:
    return settings.data_dir.joinpath(*parts)


def notifier(
    services: Services,
    webhook_secret: Callable[[str], str | None],
    sender: Any,
    *,
    observe: Callable[[Task], None] | None = None,
) -> Callable[[Task], None]:
    """What runs after every status change: metrics, then the task's callback (never blocking).

    The callback body is the task as its creator's API shows it: Kling's task object for tasks created
    on `/v1/...`, Kinema's view for `/api/v1/...`, signed when the account has a webhook secret.
    """
    from kinema.api.views import kinema_task, kling_task, ms

    link_seconds = services.settings.link_seconds

    def notify(task: Task) -> None:
        if observe is not None:
            observe(task)
        url = task.request.get("callback_url")
        if not url:
            return
        view = kling_task if task.request.get("api") == "kling" else kinema_task
        body = view(task, services.storage, link_seconds=link_seconds)
        sender.send(
            url,
            body,
            secret=webhook_secret(task.account_id),
            msg_id=f"msg_{task.task_id}_{task.status}_{ms(task.updated_at)}",
        )

    return notify
