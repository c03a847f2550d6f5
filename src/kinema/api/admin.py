"""Administration under /api/v1/admin (admin accounts only): accounts, plans, credits, keys, usage.

Every route checks the caller's role; a member gets 403 / 1103. The same operations are on the command
line as `kinema accounts …` and `kinema keys …`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from kinema.accounts import Account, AccountNotFound, AccountStore, KeyNotFound
from kinema.accounts.passwords import check_password
from kinema.accounts.plans import Plan, PlanNotFound
from kinema.api.account import (
    CSV_RESPONSE,
    account_view,
    accounts_of,
    key_view,
    new_key,
    period,
    plan_view,
    usage_csv,
    usage_view,
)
from kinema.api.auth import Caller
from kinema.api.bodies import Body
from kinema.api.context import ApiContext
from kinema.api.deps import caller, context
from kinema.api.errors import ApiError, envelope
from kinema.api.views import MAX_MS

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])


def admin(
    ctx: Annotated[ApiContext, Depends(context)], who: Annotated[Caller, Depends(caller)]
) -> AccountStore:
    accounts = accounts_of(ctx)
    account = accounts.get_account(who.account_id)
    if account is None or account.role != "admin":
        raise ApiError(1103, "this endpoint is for administrators; sign in with an admin account's key")
    return accounts


Ctx = Annotated[ApiContext, Depends(context)]
Admin = Annotated[AccountStore, Depends(admin)]


def _account(accounts: AccountStore, account_id: str) -> Account:
    account = accounts.get_account(account_id) or accounts.account_by_name(account_id)
    if account is None:
        raise ApiError(1203, f"account {account_id!r} does not exist")
    return account


class AccountCreate(Body):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64)
    role: Literal["admin", "member"] = "member"
    plan: str | None = Field(None, max_length=64)
    password: str | None = Field(None, max_length=256, description="A studio password (optional).")


@router.get("/accounts")
def list_accounts(ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    return envelope({"accounts": [account_view(ctx, a) for a in accounts.list_accounts()]})


@router.post("/accounts")
def create_account(body: AccountCreate, ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    try:
        if body.password is not None:
            check_password(body.password, name=body.name)
        account = accounts.create_account(body.name, role=body.role, plan=body.plan)
    except PlanNotFound as exc:
        raise ApiError(1201, f"plan: {exc}") from None
    if body.password is not None:
        accounts.set_password(account.account_id, body.password)
    return envelope(account_view(ctx, account))


@router.get("/accounts/{account_id}")
def get_account(account_id: str, ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    return envelope(account_view(ctx, _account(accounts, account_id)))


class PasswordSet(Body):
    model_config = ConfigDict(extra="forbid")

    password: str | None = Field(max_length=256, description="The new password; null removes it.")


@router.put("/accounts/{account_id}/password")
def set_password(account_id: str, body: PasswordSet, ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    """Set or remove an account's studio password (a reset); every session of the account ends."""
    account = _account(accounts, account_id)
    accounts.set_password(account.account_id, body.password)
    return envelope(account_view(ctx, account))


class PlanChange(Body):
    model_config = ConfigDict(extra="forbid")

    plan: str = Field(min_length=1, max_length=64)


@router.post("/accounts/{account_id}/plan")
def change_plan(account_id: str, body: PlanChange, ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    try:
        account = accounts.set_plan(_account(accounts, account_id).account_id, body.plan)
    except PlanNotFound as exc:
        raise ApiError(1201, f"plan: {exc}") from None
    return envelope(account_view(ctx, account))


class CreditChange(Body):
    model_config = ConfigDict(extra="forbid")

    credits: int = Field(gt=0, le=10**9)
    kind: Literal["grant", "purchase"] = "grant"
    days: float | None = Field(None, gt=0, le=3660)
    name: str | None = Field(None, max_length=128)
    note: str = Field("", max_length=500)


@router.post("/accounts/{account_id}/credits")
def add_credits(account_id: str, body: CreditChange, ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    """Grant (free) or record a purchase of a credit pack; the ledger gets the row."""
    target = _account(accounts, account_id).account_id
    give = accounts.grant_credits if body.kind == "grant" else accounts.purchase_credits
    pack = give(target, body.credits, days=body.days, name=body.name, note=body.note)
    return envelope({"pack_id": pack.pack_id, "account": account_view(ctx, _account(accounts, target))})


@router.post("/accounts/{account_id}/disable")
def disable(account_id: str, ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    return envelope(account_view(ctx, accounts.set_disabled(_account(accounts, account_id).account_id, True)))


@router.post("/accounts/{account_id}/enable")
def enable(account_id: str, ctx: Ctx, accounts: Admin) -> dict[str, Any]:
    return envelope(
        account_view(ctx, accounts.set_disabled(_account(accounts, account_id).account_id, False))
    )


class KeyIssue(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["pair", "static"] = "pair"


@router.get("/accounts/{account_id}/keys")
def account_keys(account_id: str, accounts: Admin) -> dict[str, Any]:
    target = _account(accounts, account_id).account_id
    return envelope({"keys": [key_view(k) for k in accounts.list_keys(target)]})


@router.post("/accounts/{account_id}/keys")
def issue_key(account_id: str, body: KeyIssue, accounts: Admin) -> dict[str, Any]:
    return envelope(new_key(accounts, _account(accounts, account_id).account_id, body.kind))


@router.delete("/accounts/{account_id}/keys/{key_id}")
def revoke_key(account_id: str, key_id: str, accounts: Admin) -> dict[str, Any]:
    try:
        return envelope(key_view(accounts.revoke_key(_account(accounts, account_id).account_id, key_id)))
    except (KeyNotFound, AccountNotFound):
        raise ApiError(1203, f"key {key_id!r} does not exist in account {account_id!r}") from None


@router.get("/plans")
def plans(accounts: Admin) -> dict[str, Any]:
    return envelope({"plans": [plan_view(p) for p in accounts.list_plans()]})


class PlanEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    daily_free_credits: int | None = Field(None, ge=0)
    monthly_credits: int | None = Field(None, ge=0)
    video_concurrency: int | None = Field(None, ge=0, le=10_000)
    image_concurrency: int | None = Field(None, ge=0, le=10_000)
    priority: int | None = Field(None, ge=-100, le=100)
    allowed_models: list[str] | None = None
    allowed_modes: list[Literal["std", "pro"]] | None = None
    max_duration_s: float | None = Field(None, gt=0, le=180)
    requests_per_minute: int | None = Field(None, ge=0, le=1_000_000)
    metered: bool | None = None


@router.put("/plans/{name}")
def edit_plan(name: str, body: PlanEdit, accounts: Admin) -> dict[str, Any]:
    """Create a plan or change some of its fields (the others keep their values)."""
    base = accounts.get_plan(name) or Plan(name)
    changes: dict[str, Any] = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    for field in ("allowed_models", "allowed_modes"):
        if field in changes:
            changes[field] = tuple(changes[field])
    if "allowed_models" in body.model_fields_set and body.allowed_models is None:
        changes["allowed_models"] = None
    try:
        plan = accounts.upsert_plan(replace(base, **changes))
    except ValueError as exc:
        raise ApiError(1201, str(exc)) from None
    return envelope(plan_view(plan))


@router.get("/usage", response_model=None, responses=CSV_RESPONSE)
def usage(
    accounts: Admin,
    start_time: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    end_time: Annotated[int | None, Query(ge=0, le=MAX_MS)] = None,
    account: Annotated[str | None, Query(max_length=64)] = None,
    format: Annotated[Literal["json", "csv"], Query()] = "csv",
) -> Any:
    """Usage for a period as CSV (account, task, model, mode, seconds generated, credits) or JSON."""
    start, end = period(start_time, end_time)
    account_id = _account(accounts, account).account_id if account else None
    rows = accounts.usage(start, end, account_id=account_id)
    if format == "csv":
        return usage_csv(rows)
    return envelope({"rows": [{"account": r.account_name, **usage_view(r)} for r in rows]})
