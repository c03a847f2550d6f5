"""Plans on every store: seeded with the defaults, members on `free` and admins on `unlimited` unless
told otherwise, editable by an admin, and refused when unknown or malformed."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from kinema.accounts import DEFAULT_PLANS, AccountStore, Plan, PlanNotFound
from kinema.errors import InvalidRequest


def test_the_default_plans_are_there_from_the_start(accounts: AccountStore) -> None:
    listed = accounts.list_plans()

    assert [plan.name for plan in listed] == ["free", "creator", "pro", "enterprise", "unlimited"]
    assert listed == sorted(DEFAULT_PLANS, key=lambda plan: (plan.priority, plan.name))
    free = accounts.get_plan("free")
    assert free is not None
    assert (free.daily_free_credits, free.video_concurrency, free.image_concurrency) == (66, 1, 2)
    assert (free.allowed_modes, free.max_duration_s, free.requests_per_minute) == (("std",), 10.0, 30)
    assert accounts.get_plan("platinum") is None


def test_members_start_on_free_and_admins_on_unlimited(accounts: AccountStore) -> None:
    assert accounts.create_account("acme").plan == "free"
    assert accounts.ensure_account("admin", role="admin").plan == "unlimited"
    assert accounts.create_account("studio", plan="creator").plan == "creator"
    assert accounts.ensure_account("admin").plan == "unlimited"  # an existing account is unchanged


def test_an_unknown_plan_is_refused_and_creates_nothing(accounts: AccountStore) -> None:
    with pytest.raises(PlanNotFound, match="no plan 'platinum'; list the plans"):
        accounts.create_account("acme", plan="platinum")
    with pytest.raises(InvalidRequest, match="plan name 'Not A Plan' is not valid"):
        accounts.create_account("acme", plan="Not A Plan")

    assert accounts.list_accounts() == []


def test_set_plan_moves_an_account_and_refuses_unknown_plans(accounts: AccountStore) -> None:
    acme = accounts.create_account("acme")

    moved = accounts.set_plan(acme.account_id, "pro")

    assert moved.plan == "pro" and accounts.get_account(acme.account_id) == moved
    with pytest.raises(PlanNotFound):
        accounts.set_plan(acme.account_id, "platinum")
    assert accounts.account_by_name("acme") == moved


def test_an_admin_edits_a_plan_and_adds_one(accounts: AccountStore) -> None:
    free = accounts.get_plan("free")
    assert free is not None
    generous = replace(free, daily_free_credits=100, allowed_models=("builtin", "wan"))

    accounts.upsert_plan(generous)
    accounts.upsert_plan(Plan("team", monthly_credits=1000, priority=1, allowed_modes=("std", "pro")))

    assert accounts.get_plan("free") == generous
    assert accounts.get_plan("team") == Plan(
        "team", monthly_credits=1000, priority=1, allowed_modes=("std", "pro")
    )
    assert len(accounts.list_plans()) == 6


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (Plan("x", daily_free_credits=-1), "daily_free_credits must be a whole number ≥ 0"),
        (Plan("x", allowed_modes=("turbo",)), "allowed_modes must list one or more of std, pro"),
        (Plan("x", allowed_modes=()), "allowed_modes must list one or more"),
        (Plan("x", max_duration_s=0), "max_duration_s must be in (0, 3600]"),
        (Plan("x", priority=1000), "priority must be a whole number in -100..100"),
        (Plan("x", allowed_models=("",)), "allowed_models must be model ids"),
        (Plan("UPPER"), "plan name 'UPPER' is not valid"),
    ],
)
def test_a_malformed_plan_is_refused(accounts: AccountStore, plan: Plan, message: str) -> None:
    with pytest.raises(InvalidRequest, match=re.escape(message)):
        accounts.upsert_plan(plan)
    assert accounts.get_plan(plan.name) is None
