"""Request-scoped helpers: the API context from app state and the authenticated caller.

A caller is named by an `Authorization` header (a JWT signed with a key pair, or a static API key; what
API clients send) or, failing that, by the studio's `kinema_session` cookie. A cookie rides along with
every request the browser makes, including ones a hostile page triggers, so a cookie-authenticated
request that changes something (any method but GET, HEAD, OPTIONS) must also carry the session's CSRF
token in `X-CSRF-Token`; SameSite=Strict on the cookie is the second line.

Both dependencies are `async` so FastAPI runs them on the event loop instead of hopping to the thread
pool: the context is a dict lookup and header authentication is an HMAC over cached keys
(kinema.api.keycache). A session cookie costs one indexed query, so sign-out takes effect at once.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from kinema.api.auth import Caller, authenticate
from kinema.api.context import ApiContext
from kinema.api.errors import ApiError

SESSION_COOKIE = "kinema_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
T = TypeVar("T")


def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.kinema
    return ctx


async def context(request: Request) -> ApiContext:
    return context_of(request)


async def quick_read(ctx: ApiContext, read: Callable[..., T], *args: Any) -> T:
    """Run a task-store read on the event loop (`TaskStore.on_loop`: SQLite and memory directly, Postgres
    awaiting its round trip) in one of the loop's read turns (`LoopTurns`): a hop to the thread pool
    costs more than such a read (0.3 ms of CPU against 0.1 on SQLite)."""
    async with ctx.turns.read():
        return await ctx.store.on_loop(read, *args)


async def quick_write(ctx: ApiContext, write: Callable[..., T], *args: Any) -> T:
    """Run `write` — a request whose only slow part is task-store reads and writes — on the event loop
    within the store's write turn (`TaskStore.on_loop`) and one of the loop's write turns (`LoopTurns`),
    else on the thread pool (no store turn within the busy timeout). On a thread, a writer held SQLite's
    writer queue, or a Postgres transaction, while it waited for the interpreter lock between
    statements; on the loop nobody competes (docs/service.md). `write` must not fetch, decode media,
    resolve names or touch remote storage: those belong on the thread pool."""
    async with ctx.store.write_turn() as here:
        if here:
            async with ctx.turns.write():
                return await ctx.store.on_loop(write, *args)
    return await run_in_threadpool(write, *args)


def csrf_token(ctx: ApiContext, session_token: str) -> str:
    """The CSRF token of a session: an HMAC of its cookie token under the server's secret."""
    mac = hmac.new(ctx.secret, b"kinema-csrf\x00" + session_token.encode(), hashlib.sha256)
    return mac.hexdigest()


def check_csrf(request: Request, ctx: ApiContext, session_token: str) -> None:
    """403 / 1103 unless the request's `X-CSRF-Token` is the session's CSRF token."""
    sent = request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), csrf_token(ctx, session_token).encode()):
        raise ApiError(1103, "missing or wrong X-CSRF-Token header; send the csrf_token the sign-in returned")


async def caller(request: Request) -> Caller:
    """The account behind the `Authorization` header or the session cookie; 401 with codes 1000–1004."""
    ctx = context_of(request)
    header = request.headers.get("authorization")
    token = request.cookies.get(SESSION_COOKIE)
    if header is not None or not token or ctx.accounts is None:
        return authenticate(
            header, secret_for=ctx.keys.secret_for, account_for_api_key=ctx.keys.account_for_api_key
        )
    session = await run_in_threadpool(ctx.accounts.session, token)
    if session is None:
        raise ApiError(
            1004,
            "your session has ended (expired or signed out); sign in again",
            clear_cookie=SESSION_COOKIE,
        )
    if request.method not in SAFE_METHODS:
        check_csrf(request, ctx, token)
    return Caller(account_id=session.account_id, access_key=None, session_id=session.session_id)
