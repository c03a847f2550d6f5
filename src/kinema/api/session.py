"""Signing in to the studio with a name and password: a session cookie, CSRF-checked, under /api/v1/session.

`POST /api/v1/session` checks the password and sets `kinema_session`, an HttpOnly, SameSite=Strict
cookie (Secure over HTTPS) holding an opaque token; the answer carries a `csrf_token` that the page must
echo in an `X-CSRF-Token` header on every request that changes something (the token is an HMAC of the
session token under the server's secret, so it needs no storage and dies with the session). API clients
keep using `Authorization` headers and never need either. Failed sign-ins are throttled per name and
address (429 / 1302, `kinema.api.ratelimit.SignInThrottle`), and at most a few password checks run at
once, since each holds 128 MiB.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import ConfigDict, Field

from kinema.accounts import Account, AccountDisabled
from kinema.accounts.sessions import MAX_USER_AGENT, WebSession, WrongPassword
from kinema.api.account import accounts_of
from kinema.api.auth import Caller
from kinema.api.bodies import Body
from kinema.api.context import ApiContext
from kinema.api.deps import SESSION_COOKIE, caller, check_csrf, context, csrf_token
from kinema.api.errors import ApiError, envelope
from kinema.api.views import ms

router = APIRouter(prefix="/api/v1/session", tags=["session"])
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Caller, Depends(caller)]

CHECKS_AT_ONCE = 4  # scrypt holds 128 MiB per check


_checks = threading.BoundedSemaphore(CHECKS_AT_ONCE)


class SignIn(Body):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, description="The account's name.")
    password: str = Field(min_length=1, max_length=256)
    remember: bool = Field(
        default=True,
        description="Keep the cookie after the browser closes (until the session expires); "
        "false makes it a browser-session cookie.",
    )


def session_view(ctx: ApiContext, session: WebSession, token: str | None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "session_id": session.session_id,
        "account_id": session.account_id,
        "created_at": ms(session.created_at),
        "expires_at": ms(session.expires_at),
        "user_agent": session.user_agent,
    }
    if token is not None:
        view["csrf_token"] = csrf_token(ctx, token)
    return view


def who_view(account: Account) -> dict[str, Any]:
    return {"account_id": account.account_id, "name": account.name, "role": account.role}


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_cookie(response: Response, request: Request, token: str, session: WebSession, remember: bool) -> None:
    max_age = int((session.expires_at - session.created_at).total_seconds()) if remember else None
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=max_age,
        path="/",
        secure=_secure(request),
        httponly=True,
        samesite="strict",
    )


def clear_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=_secure(request), httponly=True, samesite="strict"
    )


@router.post("")
def sign_in(body: SignIn, request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    """Check the name and password; on success set the session cookie and return the CSRF token."""
    accounts = accounts_of(ctx)
    address = request.client.host if request.client else ""
    throttle = ctx.sign_ins
    throttle.check(body.name, address)
    agent = request.headers.get("user-agent", "")[:MAX_USER_AGENT]
    with _checks:
        try:
            opened = accounts.sign_in(
                body.name, body.password, hours=ctx.config.session_hours, user_agent=agent
            )
        except WrongPassword as exc:
            throttle.failed(body.name, address)
            raise ApiError(1002, str(exc)) from None
        except AccountDisabled as exc:
            raise ApiError(1103, str(exc)) from None
    throttle.succeeded(body.name, address)
    set_cookie(response, request, opened.token, opened.session, body.remember)
    view = session_view(ctx, opened.session, opened.token)
    view["account"] = who_view(opened.account)
    return envelope(view)


@router.get("")
def current_session(request: Request, ctx: Ctx, who: Who) -> dict[str, Any]:
    """The session this browser is signed in with (401 / 1001 when it has none), with its CSRF token."""
    token = request.cookies.get(SESSION_COOKIE)
    session = accounts_of(ctx).session(token) if token and who.session_id else None
    if session is None or token is None:
        raise ApiError(1001, "not signed in with a session cookie; POST /api/v1/session to sign in")
    account = accounts_of(ctx).get_account(session.account_id)
    view = session_view(ctx, session, token)
    view["account"] = who_view(account) if account else None
    return envelope(view)


@router.delete("")
def sign_out(request: Request, response: Response, ctx: Ctx) -> dict[str, Any]:
    """End this browser's session and clear its cookie; harmless when not signed in."""
    token = request.cookies.get(SESSION_COOKIE)
    accounts = accounts_of(ctx)
    session = accounts.session(token) if token else None
    if session is not None and token is not None:
        check_csrf(request, ctx, token)  # a cross-site page cannot sign anybody out either
        accounts.sign_out(session.account_id, session.session_id)
    clear_cookie(response, request)
    return envelope({"signed_out": session is not None})
