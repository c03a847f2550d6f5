"""Request-scoped helpers: the API context from app state and the authenticated caller.

Both are `async` so FastAPI runs them on the event loop instead of hopping to the thread pool: the
context is a dict lookup and authentication is an HMAC over cached keys (kinema.api.keycache), so
neither blocks for long (a key not seen for a few seconds costs one indexed query).
"""

from __future__ import annotations

from fastapi import Request

from kinema.api.auth import Caller, authenticate
from kinema.api.context import ApiContext


def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.kinema
    return ctx


async def context(request: Request) -> ApiContext:
    return context_of(request)


async def caller(request: Request) -> Caller:
    """The account behind the `Authorization` header, or 401 with codes 1000–1004."""
    ctx = context_of(request)
    return authenticate(
        request.headers.get("authorization"),
        secret_for=ctx.keys.secret_for,
        account_for_api_key=ctx.keys.account_for_api_key,
    )
