"""`kinema worker`: worker threads in their own process, against the server's database and media.

Settings come from `KINEMA_…` variables (KINEMA_DATA_DIR, KINEMA_DATABASE_URL, KINEMA_MODELS_FILE, ...);
the options win. SIGINT or SIGTERM stops claiming and lets running tasks finish within the lease; a
second signal stops them between steps, and they are queued again for another worker.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from kinema.cli.main import app, build_engine, clear_errors, console, fail, stop_signals
from kinema.settings import Settings

log = logging.getLogger("kinema.worker")


@app.command("worker")
def worker(
    data_dir: Annotated[
        Path | None, typer.Option(help="Database, media and secrets (default: kinema-data).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="sqlite:///path or postgresql://… (default: SQLite in the data dir).")
    ] = None,
    models: Annotated[
        str | None,
        typer.Option(help="Comma-separated model ids to run tasks for (default: every served model)."),
    ] = None,
    concurrency: Annotated[int, typer.Option(help="Tasks run at once, one thread each.")] = 1,
) -> None:
    """Run queued tasks until SIGINT or SIGTERM."""
    if concurrency < 1:
        raise fail("--concurrency must be 1 or more")
    changes = {"data_dir": data_dir, "database_url": database_url}
    settings = Settings().model_copy(update={k: v for k, v in changes.items() if v is not None})
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with clear_errors(), built(settings, models, concurrency) as (pool, served):
        console.print(
            f"kinema worker: {concurrency} thread(s) running {', '.join(served)} tasks from "
            f"{shown_url(settings)}, media in {media_place(settings)}",
            highlight=False,
            soft_wrap=True,
        )
        run_until_signalled(pool, grace=settings.lease_seconds)


@contextmanager
def built(settings: Settings, models: str | None, concurrency: int) -> Iterator[tuple[Any, list[str]]]:
    """The composition root of `kinema worker`: store, storage, engine, callbacks and the pool."""
    from kinema.cli.services import build_services, callback_sender, notifier
    from kinema.worker import WorkerPool, catalog_of

    engine, registry = build_engine(settings)
    served = served_models(sorted(registry.models), models)
    services = build_services(settings)
    sender = callback_sender(services).start()
    try:
        pool = WorkerPool(
            concurrency,
            services.store,
            services.storage,
            engine,
            models=served,
            lease_seconds=settings.lease_seconds,
            notify=notifier(sender),
            catalog=catalog_of(registry, served),
        )
        yield pool, served
    finally:
        sender.close(timeout=2.0)
        services.close()


def served_models(available: list[str], wanted: str | None) -> list[str]:
    """The model ids this worker claims: `--models` (each must be served here) or all of them."""
    if wanted is None:
        return available
    names = [name.strip() for name in wanted.split(",") if name.strip()]
    unknown = [name for name in names if name not in available]
    if not names or unknown:
        raise fail(
            f"--models {wanted!r} names no model served here ({', '.join(unknown) or 'empty'}); "
            f"served: {', '.join(available)} (add models with KINEMA_MODELS_FILE)"
        )
    return names


def run_until_signalled(pool: Any, *, grace: float) -> None:
    """Run `pool` until SIGINT/SIGTERM, then stop it: `grace` s to finish, a second signal aborts."""

    def again(name: str) -> None:
        log.warning("second %s: stopping running tasks between steps", name)
        pool.abort()

    with stop_signals(
        lambda name: log.info("%s: no new tasks; letting running ones finish", name), again
    ) as stop:
        pool.start()
        while not stop.wait(0.5) and pool.running:
            pass
        if not pool.stop(timeout=grace):
            log.warning("some tasks did not stop in time; their leases will expire and they run again")


def shown_url(settings: Settings) -> str:
    from kinema.db import normalise_url

    return normalise_url(settings.resolved_database_url()).render_as_string(hide_password=True)


def media_place(settings: Settings) -> str:
    if settings.storage == "s3":
        return f"s3://{settings.s3_bucket}/{settings.s3_prefix}".rstrip("/")
    return str(settings.data_dir / "media")
