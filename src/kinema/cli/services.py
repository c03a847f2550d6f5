"""The composition root of the service: the task store, media storage and signing secret from Settings.

`kinema serve` and `kinema worker` build the same things here, so a worker process sees exactly the
database and media the server sees, and both record and send task callbacks the same way. Nothing in
this module imports torch.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from kinema.accounts import SqlAccountStore
from kinema.accounts.billing import Billing
from kinema.accounts.prices import PriceTable
from kinema.db import open_database
from kinema.errors import KinemaError
from kinema.jobs import Callback, CallbackFor, SqlTaskStore, Task
from kinema.net.fetch import FetchPolicy
from kinema.net.webhooks import CallbackSender, json_body
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
    """Store, accounts and media. Credits move inside the store's transactions (the billing hook), and
    so do callbacks (the store's outbox), so every process that changes tasks, servers and workers
    alike, charges, refunds and records callbacks the same way."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = signing_secret(settings)
    # One engine, so one connection pool and one migration check, for both stores of the process: a
    # create's billing and its task row already share a transaction, and a poll should not wait for a
    # pool of its own.
    engine = open_database(settings.resolved_database_url(), pool_size=settings.database_pool)
    accounts = SqlAccountStore(engine)
    prices = PriceTable.from_toml(settings.prices_file) if settings.prices_file else PriceTable()
    billing = Billing(accounts, prices=prices)
    storage = build_storage(settings, secret)
    store = SqlTaskStore(
        engine,
        retention=timedelta(days=settings.retention_days),
        hook=billing.hook,
        callbacks=task_callbacks(storage, link_seconds=settings.link_seconds),
    )
    return Services(
        settings=settings, store=store, storage=storage, secret=secret, accounts=accounts, prices=prices
    )


def data_path(settings: Settings, *parts: str) -> Path:
    return settings.data_dir.joinpath(*parts)


def task_callbacks(storage: MediaStorage, *, link_seconds: int) -> CallbackFor:
    """The callback of a task's change: the task as its creator's API shows it, to its `callback_url`.

    That is Kling's task object for tasks created on `/v1/...`, Kinema's view for `/api/v1/...`; the
    message id names the task, its status and the time of the change, so receivers can drop repeats.
    """
    from kinema.api.views import kinema_task, kling_task, ms

    def callback(task: Task) -> Callback | None:
        url = task.request.get("callback_url")
        if not isinstance(url, str) or not url:
            return None
        view = kling_task if task.request.get("api") == "kling" else kinema_task
        return Callback(
            url=url,
            body=json_body(view(task, storage, link_seconds=link_seconds)),
            msg_id=f"msg_{task.task_id}_{task.status}_{ms(task.updated_at)}",
        )

    return callback


def callback_sender(services: Services) -> CallbackSender:
    """The sender of the store's outbox, signing with each account's webhook secret (not started)."""
    policy = FetchPolicy(allow_hosts=frozenset(services.settings.allow_hosts))
    return CallbackSender(services.store.outbox, policy, secret_of=services.accounts.webhook_secret)


def notifier(
    sender: CallbackSender, *, observe: Callable[[Task], None] | None = None
) -> Callable[[Task], None]:
    """What runs after every status change this process makes: metrics, then a nudge to the sender.

    The callback itself was recorded in the outbox with the change; waking the sender only makes it
    look now instead of at its next poll.
    """

    def notify(task: Task) -> None:
        if observe is not None:
            observe(task)
        if task.request.get("callback_url"):
            sender.wake()

    return notify
