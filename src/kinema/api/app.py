"""The HTTP application: Kling's task API, Kinema's own API, media links, health and metrics.

`create_app(ctx)` wires routers and error handlers around an `ApiContext`; the composition root
(`kinema serve`) builds the context from Settings. Errors always wear the Kling envelope with a
non-2xx status; an unexpected exception is a 500/5000 with its id in the log, never a traceback out.
"""

from __future__ import annotations

import logging
import mimetypes
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from kinema import __version__
from kinema.api import account, admin, kling, session, tasks
from kinema.api.context import ApiContext
from kinema.api.errors import (
    ERROR_RESPONSES,
    STATUS_OF_CODE,
    ApiError,
    error_body,
    handle_api_error,
    handle_http,
    handle_validation,
)
from kinema.api.metrics import Metrics, MetricsMiddleware
from kinema.api.studio import mount_studio
from kinema.errors import InvalidRequest, KinemaError
from kinema.storage.base import MissingMedia, StorageError, verify
from kinema.storage.local import LocalStorage

log = logging.getLogger("kinema.api")


async def handle_kinema_error(request: Request, exc: Exception) -> JSONResponse:
    code = getattr(exc, "code", None)
    if isinstance(code, int) and code in STATUS_OF_CODE and code != 5000:  # billing: 1100, 1102, 1103, 1303
        return JSONResponse(error_body(code, str(exc)), status_code=STATUS_OF_CODE[code])
    if isinstance(exc, MissingMedia):
        return JSONResponse(error_body(1203, str(exc)), status_code=404)
    if isinstance(exc, InvalidRequest):
        return JSONResponse(error_body(1201, str(exc)), status_code=400)
    log.exception("request %s %s failed", request.method, request.url.path)
    return JSONResponse(error_body(5000, f"internal error: {exc}"), status_code=500)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("request %s %s failed", request.method, request.url.path)
    return JSONResponse(error_body(5000, "internal error; the server log has the details"), status_code=500)


async def refuse_nul(request: Request) -> None:
    """Path and query values with a NUL are 1201: SQL text columns cannot hold one (Postgres errors).

    A coroutine: a plain function would cost every request a trip through the thread pool."""
    for name, value in [*request.path_params.items(), *request.query_params.multi_items()]:
        if isinstance(value, str) and "\x00" in value:
            raise ApiError(1201, f"{name}: contains a NUL character (%00); remove it")


def create_app(ctx: ApiContext) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        yield
        await ctx.store.leave_loop()  # the store's connections of this loop (Postgres) close with it

    app = FastAPI(
        lifespan=lifespan,
        title="Kinema",
        version=__version__,
        description="Open, self-hostable AI video generation: a Kling-compatible task API and Kinema's own.",
    )
    app.state.kinema = ctx
    metrics = Metrics(ctx.store, ctx.catalog)
    app.state.metrics = metrics
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_exception_handler(ApiError, handle_api_error)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(StarletteHTTPException, handle_http)
    app.add_exception_handler(KinemaError, handle_kinema_error)
    app.add_exception_handler(Exception, handle_unexpected)
    checked = [Depends(refuse_nul)]
    app.include_router(kling.router, responses=ERROR_RESPONSES, dependencies=checked)
    app.include_router(tasks.router, responses=ERROR_RESPONSES, dependencies=checked)
    app.include_router(account.router, responses=ERROR_RESPONSES, dependencies=checked)
    app.include_router(admin.router, responses=ERROR_RESPONSES, dependencies=checked)
    app.include_router(session.router, responses=ERROR_RESPONSES, dependencies=checked)

    @app.get("/healthz", tags=["operations"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """The database answers; says how many workers are live (0 means tasks will wait in the queue)."""
        try:
            counts = ctx.store.counts_by_status()
            workers = ctx.catalog.live_workers()
        except Exception as exc:  # the database is down: not ready
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, status_code=503)
        return JSONResponse({"status": "ready", "workers": workers, "queued": counts.get("submitted", 0)})

    @app.get("/metrics", tags=["operations"], include_in_schema=False)
    async def prometheus() -> Response:
        body = await run_in_threadpool(generate_latest, metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    @app.get("/media/{key:path}", tags=["media"], responses=ERROR_RESPONSES)
    def media(key: str, expires: int = 0, signature: str = "") -> Any:
        """A stored file behind a signed link that expires (local storage; S3 links go to the bucket)."""
        storage = ctx.storage
        if not isinstance(storage, LocalStorage):
            raise ApiError(1203, "media are served by the storage bucket's own links")
        if not verify(storage.secret, key, expires, signature, now=time.time()):
            raise ApiError(1203, "this media link is invalid or has expired; ask the task for a fresh one")
        try:
            path = storage.path(key)
        except StorageError:
            raise ApiError(1203, "no such media") from None
        if not path.is_file():
            raise ApiError(1203, "no such media; it may have expired or been deleted")
        media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return FileResponse(path, media_type=media_type, headers={"Cache-Control": "private, max-age=3600"})

    mount_studio(app)  # last: every API route above keeps its answer
    return app
