"""`kinema serve`: the HTTP API (and, by default, worker threads) in one process.

Every option is also a `KINEMA_…` environment variable (KINEMA_HOST, KINEMA_PORT, KINEMA_TLS_CERT,
KINEMA_TLS_KEY, KINEMA_DATA_DIR, KINEMA_DATABASE_URL, KINEMA_WORKERS, KINEMA_API_PROCESSES); the command
line wins. With `--workers 0` the process serves HTTP only and never imports torch: run `kinema worker`
beside it. `--api-processes N` adds HTTP processes on the same port (kinema.cli.processes).
"""

from __future__ import annotations

import gc
import logging
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from kinema.cli.main import app, clear_errors, console, fail
from kinema.errors import InvalidRequest
from kinema.settings import Settings

KEEP_ALIVE_SECONDS = 75

# The collector's thresholds for an HTTP process (Python's default is 700, 10, 10). With 32 requests in
# flight, the default's frequent young collections promote their live objects, which then die and set
# off a full collection every second or so: on the Postgres path 16 in 15 s, 1.6 s in all, the longest
# 127 ms, a pause every request in flight waits for (benchmarks/RESULTS.md, 2026-12-01 session 5).
GC_THRESHOLDS = (50_000, 20, 100)

# A worker that stopped without removing itself (killed, its machine gone) stays in the catalog this long
# after its last heartbeat: long enough to show as offline while someone looks into it.
DEAD_WORKER_KEPT = timedelta(days=1)


def _settings(**overrides: Any) -> Settings:
    base = Settings()
    changes = {k: v for k, v in overrides.items() if v is not None}
    return base.model_copy(update=changes)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [KINEMA_HOST, 127.0.0.1].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [KINEMA_PORT, 8000].")] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="TLS certificate (PEM) for https.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Database, media and secrets [kinema-data].")] = None,
    database_url: Annotated[
        str | None, typer.Option(help="sqlite:///path or postgresql://… [SQLite in the data dir].")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="In-process workers (0: API only, run `kinema worker`) [1].")
    ] = None,
    public_url: Annotated[
        str | None, typer.Option(help="How clients reach this server, for result links.")
    ] = None,
    api_processes: Annotated[
        int | None,
        typer.Option(
            help="HTTP processes sharing the port, one core each (Linux) [KINEMA_API_PROCESSES, 1]."
        ),
    ] = None,
    reuse_port: Annotated[bool, typer.Option("--reuse-port", hidden=True)] = False,
) -> None:
    """Serve the task API (Kling-compatible /v1 and Kinema's /api/v1) with in-process workers."""
    import uvicorn

    from kinema.cli import processes

    settings = _settings(
        host=host, port=port, tls_cert=tls_cert, tls_key=tls_key, data_dir=data_dir,
        database_url=database_url, workers=workers, public_url=public_url, api_processes=api_processes,
    )  # fmt: skip
    if not 1 <= settings.api_processes <= 64:
        raise fail("--api-processes must be between 1 and 64 (one per core is plenty)")
    if (settings.tls_cert is None) != (settings.tls_key is None):
        raise fail("--tls-cert and --tls-key go together; give both for https, or neither")
    for path in (settings.tls_cert, settings.tls_key):
        if path is not None and not path.is_file():
            raise fail(f"{path} does not exist; give the path of a PEM file")
    if settings.workers < 0:
        raise fail("--workers must be 0 or more")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    with clear_errors():
        server = build_server(settings)
    config = uvicorn.Config(
        server.app,
        host=settings.host,
        port=settings.port,
        ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
        ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        log_level="warning",
        timeout_graceful_shutdown=5,
        # Idle keep-alive connections stay open 75 s (uvicorn's default is 5 s): longer than the 60 s of
        # common proxies and client pools, so the client side closes first and never sends a request
        # on a connection the server is closing (a ReadError seen in the 1,000-task load test).
        timeout_keep_alive=KEEP_ALIVE_SECONDS,
    )
    sockets, children = None, []
    with clear_errors():
        if reuse_port or settings.api_processes > 1:
            sockets = [processes.reuse_port_socket(settings.host, settings.port)]
    if reuse_port:  # one of the main process's extra HTTP processes
        processes.watch_parent()
        server.upkeep_enabled = False
    else:
        console.print(
            f"Kinema API at {settings.resolved_public_url()} (OpenAPI: /docs), data in "
            f"{settings.data_dir}, {settings.workers} in-process worker(s), "
            f"{settings.api_processes} HTTP process(es)",
            highlight=False,
        )
        children = processes.start_children(settings, settings.api_processes - 1)
    tune_gc()
    try:
        server.start()
        uvicorn.Server(config).run(sockets=sockets)
    finally:
        processes.stop_children(children)
        server.stop()


def tune_gc() -> None:
    """Set the collector up for serving: what start-up built is frozen out of every later collection
    (modules, the app, models), and young collections run at `GC_THRESHOLDS`. Cyclic garbage is still
    collected, in batches of up to 50,000 new objects instead of 700."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Server:
    """The pieces `kinema serve` runs: the app, the worker pool, the callback sender, upkeep."""

    def __init__(
        self, app: Any, services: Any, pool: Any, sender: Any, upkeep_seconds: float = 600.0
    ) -> None:
        self.app, self.services, self.pool, self.sender = app, services, pool, sender
        self.upkeep_seconds = upkeep_seconds
        self.upkeep_enabled = True  # off in the extra HTTP processes: the main process keeps house
        self._stop = threading.Event()
        self._upkeep = threading.Thread(target=self._upkeep_loop, name="upkeep", daemon=True)

    def start(self) -> None:
        self.sender.start()
        if self.pool is not None:
            self.pool.start()
        if self.upkeep_enabled:
            self._upkeep.start()

    def _upkeep_loop(self) -> None:
        while not self._stop.is_set():
            self.upkeep()
            self._stop.wait(self.upkeep_seconds)

    def upkeep(self) -> None:
        """Write off credits of packs that expired, forget ended sessions and workers dead for a day
        (each idempotent; a failure is logged and retried at the next round)."""
        log = logging.getLogger("kinema.serve")
        try:
            expired = self.services.accounts.sweep_expired()
            if expired:
                log.info("wrote off %d expired credit packs", expired)
        except Exception:
            log.exception("the credit expiry sweep failed")
        try:
            self.services.accounts.sweep_sessions()
        except Exception:
            log.exception("the session sweep failed")
        try:
            gone = self.services.store.prune_workers(datetime.now(UTC) - DEAD_WORKER_KEPT)
            if gone:
                log.info("forgot %d workers not seen for %s", gone, DEAD_WORKER_KEPT)
        except Exception:
            log.exception("the dead-worker sweep failed")

    def stop(self) -> None:
        self._stop.set()
        if self.pool is not None:
            self.pool.stop(timeout=10.0)
        self.sender.close(timeout=2.0)
        self.services.close()


def build_server(settings: Settings) -> Server:
    """The composition root of `kinema serve`; builds everything, starts nothing."""
    from kinema.api.app import create_app
    from kinema.api.catalog import Catalog
    from kinema.api.context import ApiConfig, ApiContext, LoopTurns
    from kinema.api.keycache import CachedKeys
    from kinema.cli.services import build_services, callback_sender, notifier

    services = build_services(settings)
    accounts, prices = services.accounts, services.prices
    first_admin(accounts, settings)
    sender = callback_sender(services)
    catalog = Catalog(services.store)
    ctx = ApiContext(
        store=services.store,
        keys=CachedKeys(accounts),
        accounts=accounts,
        prices=prices,
        storage=services.storage,
        catalog=catalog,
        config=ApiConfig(
            kling_models=settings.kling_models,
            link_seconds=settings.link_seconds,
            fetch_policy=sender.policy,
            session_hours=settings.session_hours,
        ),
        secret=services.secret,
        turns=LoopTurns(settings.loop_reads, settings.loop_writes),
    )
    api = create_app(ctx)
    notify = notifier(sender, observe=api.state.metrics.observe_task)
    ctx.notify = notify
    pool = None
    if settings.workers > 0:
        from kinema.cli.main import build_engine
        from kinema.worker import WorkerPool, catalog_of

        engine, registry = build_engine(settings)
        pool = WorkerPool(
            settings.workers,
            services.store,
            services.storage,
            engine,
            lease_seconds=settings.lease_seconds,
            notify=notify,
            catalog=catalog_of(registry),
        )
        # Publish the models now, so the first request after start-up already finds them.
        for worker in pool.workers[:1]:
            worker.publish()
    return Server(api, services, pool, sender)


def first_admin(accounts: Any, settings: Settings) -> None:
    """On the very first start, create the `admin` account; print its key pair and password once."""
    if accounts.account_by_name("admin") is not None:
        return
    from kinema.cli.accounts import make_admin

    try:
        account, pair, password = make_admin(accounts, settings.admin_password)
    except InvalidRequest as exc:
        raise typer.BadParameter(f"KINEMA_ADMIN_PASSWORD: {exc}") from None
    del account
    shown = "(KINEMA_ADMIN_PASSWORD)" if settings.admin_password else password
    console.print(
        "[bold]First start:[/bold] created account 'admin'. Sign in to the studio as admin with password\n"
        f"  {shown}\nIts key pair for the API, shown only now:\n"
        f"  access key  {pair.access_key}\n  secret key  {pair.secret_key}\n"
        "Change the password on the studio's Account page; make more keys with "
        "`kinema keys create --account NAME`.",
        highlight=False,
    )
