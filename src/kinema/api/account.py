"""The caller's own account under /api/v1/account: plan, balance, concurrency, ledger, usage, keys.

Everything here is scoped to the authenticated account; secrets of new keys are shown once.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field

from kinema.accounts import Account, AccountStore, KeyInfo
from kinema.accounts.credits import LedgerEntry
from kinema.accounts.plans import Plan
from kinema.accounts.sessions import WebSession
from kinema.accounts.usage import UsageRow, write_usage_csv
from kinema.api.auth import Caller
from kinema.api.bodies import Body
from kinema.api.context import ApiContext
from kinema.api.deps import caller, context
from kinema.api.errors import ApiError, envelope
from kinema.api.views import MAX_MS, ms
from kinema.errors import InvalidRequest
from kinema.jobs import TaskStore

router = APIRouter(prefix="/api/v1/account", tags=["account"])
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "JSON, or CSV with format=csv",
    }
}
Ctx = Annotated[ApiContext, Depends(context)]
Who = Annotated[Caller, Depends(caller)]
IMAGE_KINDS = ("text2image",)
VIDEO_KINDS = ("text2video", "image2video", "extend")


def accounts_of(ctx: ApiContext) -> AccountStore:
    if ctx.accounts is None:
        raise ApiError(1202, "accounts are not enabled on this server")
    return ctx.accounts


def plan_view(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "daily_free_credits": plan.daily_free_credits,
        "monthly_credits": plan.monthly_credits,
        "video_concurrency": plan.video_concurrency,
        "image_concurrency": plan.image_concurrency,
        "priority": plan.priority,
        "allowed_models": list(plan.allowed_models) if plan.allowed_models is not None else None,
        "allowed_modes": list(plan.allowed_modes),
        "max_duration_s": plan.max_duration_s,
        "requests_per_minute": plan.requests_per_minute,
        "metered": plan.metered,
    }


def key_view(key: KeyInfo) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "kind": key.kind,
        "access_key": key.access_key,
        "prefix": key.prefix,
        "created_at": ms(key.created_at),
        "revoked_at": ms(key.revoked_at),
    }


def entry_view(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "entry_id": entry.entry_id,
        "kind": entry.kind,
        "amount": entry.amount,
        "pack_id": entry.pack_id,
        "task_id": entry.task_id,
        "created_at": ms(entry.created_at),
        "note": getattr(entry, "note", ""),
    }


def usage_view(row: UsageRow) -> dict[str, Any]:
    return {
        "task_id": row.task_id,
        "kind": row.kind,
        "model": row.model,
        "mode": row.mode,
        "seconds": row.seconds,
        "images": row.images,
        "credits": row.credits,
        "charged_at": ms(row.charged_at),
    }


def in_flight(store: TaskStore, account_id: str) -> dict[str, int]:
    """Slots in use now: video tasks count one each, image tasks their `n`."""
    page = store.list(account_id, statuses=["submitted", "processing"], limit=1000)
    video = sum(1 for t in page.tasks if t.kind in VIDEO_KINDS)
    image = sum(int(t.request.get("spec", {}).get("n", 1)) for t in page.tasks if t.kind in IMAGE_KINDS)
    return {"video": video, "image": image}


def account_view(ctx: ApiContext, account: Account) -> dict[str, Any]:
    accounts = accounts_of(ctx)
    plan = accounts.get_plan(account.plan)
    used = in_flight(ctx.store, account.account_id)
    return {
        "account_id": account.account_id,
        "name": account.name,
        "role": account.role,
        "disabled": account.disabled,
        "created_at": ms(account.created_at),
        "plan": plan_view(plan) if plan else {"name": account.plan},
        "balance": accounts.balance(account.account_id),
        "has_password": accounts.has_password(account.account_id),
        "concurrency": {
            "video": {"used": used["video"], "limit": plan.video_concurrency if plan else None},
            "image": {"used": used["image"], "limit": plan.image_concurrency if plan else None},
        },
    }


def period(start: int | None, end: int | None) -> tuple[datetime, datetime]:
    """A [start, end) period from Unix milliseconds; default: the last 30 days."""
    now = datetime.now(UTC)
    end_at = datetime.fromtimestamp(end / 1000, UTC) if end is not None else now
    start_at = datetime.fromtimestamp(start / 1000, UTC) if start is not None else end_at.replace() - _DAYS30
    if end_at < start_at:
        raise ApiError(1201, "end_time is before start_time")
    return start_at, end_at


def usage_csv(rows: list[UsageRow]) -> PlainTextResponse:
    out = io.StringIO()
    write_usage_csv(rows, out)
    headers = {"Content-Disposition": 'attachment; filename="kinema-usage.csv"'}
    return PlainTextResponse(out.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


@router.get("")
def my_account(ctx: Ctx, who: Who) -> dict[str, Any]:
    """Plan, balance (spendable credits now) and the concurrency slots in use."""
    account = accounts_of(ctx).get_account(who.account_id)
    if account is None:
        raise ApiError(1203, "your account no longer exists")
    return envelope(account_view(ctx, account))


@router.get("/ledger")
def my_ledger(
    ctx: Ctx,
    who: Who,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> dict[str, Any]:
    page = accounts_of(ctx).ledger_history(who.account_id, offset=offset, limit=limit)
    return envelope({"entries": [entry_view(e) for e in page.entries], "total": page.total})


@router.get("/usage", response_model=None, responses=CSV_RESPONSE)
def my_usage(
    ctx: Ctx,
    who: Who,
    start_time: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    end_time: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "json",
) -> Any:
    start, end = period(start_time, end_time)
    rows = accounts_of(ctx).usage(start, end, account_id=who.account_id)
    if format == "csv":
        return usage_csv(rows)
    return envelope({"rows": [usage_view(r) for r in rows]})


@router.get("/keys")
def my_keys(ctx: Ctx, who: Who) -> dict[str, Any]:
    return envelope({"keys": [key_view(k) for k in accounts_of(ctx).list_keys(who.account_id)]})


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["pair", "static"] = "pair"


@router.post("/keys")
def create_my_key(body: KeyCreate, ctx: Ctx, who: Who) -> dict[str, Any]:
    """A new key pair (or static key); its secret is in this answer only."""
    return envelope(new_key(accounts_of(ctx), who.account_id, body.kind))


def new_key(accounts: AccountStore, account_id: str, kind: str) -> dict[str, Any]:
    if kind == "static":
        static = accounts.create_api_key(account_id)
        return {"key_id": static.key_id, "kind": "static", "api_key": static.api_key}
    pair = accounts.create_key_pair(account_id)
    return {
        "key_id": pair.key_id,
        "kind": "pair",
        "access_key": pair.access_key,
        "secret_key": pair.secret_key,
    }


@router.delete("/keys/{key_id}")
def revoke_my_key(key_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    from kinema.accounts import KeyNotFound

    try:
        return envelope(key_view(accounts_of(ctx).revoke_key(who.account_id, key_id)))
    except KeyNotFound:
        raise ApiError(1203, f"key {key_id!r} does not exist") from None


@router.post("/webhook-secret")
def rotate_webhook_secret(ctx: Ctx, who: Who) -> dict[str, Any]:
    """A new secret for signing callbacks (Standard Webhooks); shown in this answer only."""
    return envelope({"webhook_secret": accounts_of(ctx).set_webhook_secret(who.account_id)})


class PasswordChange(Body):
    model_config = ConfigDict(extra="forbid")

    current_password: str | None = Field(
        None, max_length=256, description="The password now; needed when the account has one."
    )
    new_password: str | None = Field(
        None, max_length=256, description="At least 8 characters; null removes the password (keys only)."
    )


@router.put("/password")
def change_password(body: PasswordChange, ctx: Ctx, who: Who) -> dict[str, Any]:
    """Set or change the studio password; every other session of the account ends."""
    accounts = accounts_of(ctx)
    if accounts.has_password(who.account_id):
        if body.current_password is None:
            raise ApiError(1201, "current_password: required to change the password")
        if not accounts.verify_password(who.account_id, body.current_password):
            raise ApiError(1201, "current_password: is not the account's password")
    try:
        accounts.set_password(who.account_id, body.new_password, keep_session=who.session_id)
    except InvalidRequest as exc:
        raise ApiError(1201, str(exc)) from None
    return envelope({"has_password": body.new_password is not None})


def web_session_view(session: WebSession, current: str | None) -> dict[str, Any]:
    return {
        "session_id": session.session_id,
        "created_at": ms(session.created_at),
        "expires_at": ms(session.expires_at),
        "user_agent": session.user_agent,
        "current": session.session_id == current,
    }


@router.get("/sessions")
def my_sessions(ctx: Ctx, who: Who) -> dict[str, Any]:
    """Browsers signed in to this account now, newest first."""
    listed = accounts_of(ctx).list_sessions(who.account_id)
    return envelope({"sessions": [web_session_view(s, who.session_id) for s in listed]})


@router.delete("/sessions/{session_id}")
def end_my_session(session_id: str, ctx: Ctx, who: Who) -> dict[str, Any]:
    """Sign one browser out of this account (`all` signs out every browser)."""
    ended = accounts_of(ctx).sign_out(who.account_id, None if session_id == "all" else session_id)
    if ended == 0 and session_id != "all":
        raise ApiError(1203, f"session {session_id!r} does not exist or has already ended")
    return envelope({"ended": ended})


_DAYS30 = datetime(2000, 1, 31, tzinfo=UTC) - datetime(2000, 1, 1, tzinfo=UTC)
