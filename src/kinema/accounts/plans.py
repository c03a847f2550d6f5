"""Plans: what an account may do — credits it receives, parallel tasks, priority, models, modes, length.

Every account is on one plan (`free` unless told otherwise; admins on `unlimited`). The plans live in
the database, seeded with `DEFAULT_PLANS` by the migration, and an admin may edit them. This module
holds the record and its checks; it knows no SQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kinema.errors import InvalidRequest, KinemaError

MODES = ("std", "pro")
MAX_PLAN_NAME = 32
_PLAN_NAME = re.compile(rf"[a-z0-9_-]{{1,{MAX_PLAN_NAME}}}")
DEFAULT_PLAN = "free"
ADMIN_PLAN = "unlimited"


class PlanNotFound(KinemaError, LookupError):
    """No plan with this name."""


@dataclass(frozen=True, slots=True)
class Plan:
    """One plan. `allowed_models` None means every model; `priority` is higher-first in the queue.

    `daily_free_credits` arrive each UTC day and expire at its end; `monthly_credits` each calendar
    month, valid for that month. An account on an unmetered plan is never charged (admins, operators).
    Concurrency counts tasks in `submitted` or `processing`; an image task takes `n` image slots.
    """

    name: str
    daily_free_credits: int = 0
    monthly_credits: int = 0
    video_concurrency: int = 1
    image_concurrency: int = 1
    priority: int = 0
    allowed_models: tuple[str, ...] | None = None
    allowed_modes: tuple[str, ...] = ("std",)
    max_duration_s: float = 10.0
    requests_per_minute: int = 30  # task creations a minute; 0 is no limit
    metered: bool = True


DEFAULT_PLANS: tuple[Plan, ...] = (
    Plan("free", daily_free_credits=66, video_concurrency=1, image_concurrency=2, priority=0),
    Plan(
        "creator",
        monthly_credits=660,
        video_concurrency=3,
        image_concurrency=4,
        priority=1,
        allowed_modes=MODES,
        requests_per_minute=120,
    ),
    Plan(
        "pro",
        monthly_credits=3000,
        video_concurrency=5,
        image_concurrency=9,
        priority=2,
        allowed_modes=MODES,
        max_duration_s=60.0,
        requests_per_minute=300,
    ),
    Plan(
        "enterprise",
        video_concurrency=20,
        image_concurrency=40,
        priority=3,
        allowed_modes=MODES,
        max_duration_s=180.0,
        requests_per_minute=1200,
    ),
    Plan(
        ADMIN_PLAN,
        video_concurrency=1_000_000,
        image_concurrency=1_000_000,
        priority=3,
        allowed_modes=MODES,
        max_duration_s=180.0,
        requests_per_minute=0,
        metered=False,
    ),
)


def check_plan(plan: Plan) -> None:
    """Refuse a plan an admin could not have meant: bad name, negative numbers, unknown modes."""
    check_plan_name(plan.name)
    counts = {
        "daily_free_credits": plan.daily_free_credits,
        "monthly_credits": plan.monthly_credits,
        "video_concurrency": plan.video_concurrency,
        "image_concurrency": plan.image_concurrency,
        "requests_per_minute": plan.requests_per_minute,
    }
    for field, value in counts.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidRequest(f"plan {plan.name!r}: {field} must be a whole number ≥ 0; got {value!r}")
    if not isinstance(plan.priority, int) or not -100 <= plan.priority <= 100:
        raise InvalidRequest(f"plan {plan.name!r}: priority must be a whole number in -100..100")
    if not plan.allowed_modes or any(mode not in MODES for mode in plan.allowed_modes):
        raise InvalidRequest(
            f"plan {plan.name!r}: allowed_modes must list one or more of {', '.join(MODES)}; "
            f"got {list(plan.allowed_modes)}"
        )
    if plan.allowed_models is not None and not all(isinstance(m, str) and m for m in plan.allowed_models):
        raise InvalidRequest(f"plan {plan.name!r}: allowed_models must be model ids, or none for every model")
    if not 0 < plan.max_duration_s <= 3600:
        raise InvalidRequest(
            f"plan {plan.name!r}: max_duration_s must be in (0, 3600]; got {plan.max_duration_s}"
        )


def check_plan_name(name: str) -> None:
    if not isinstance(name, str) or not _PLAN_NAME.fullmatch(name):
        raise InvalidRequest(
            f"plan name {name!r} is not valid; use 1 to {MAX_PLAN_NAME} lowercase letters, digits, _ or -"
        )


def slots_of(kind: str, request: Mapping[str, Any] | None) -> int:
    """Concurrency slots a task holds: its bill's `slots`, else an image task's `n` images, else one."""
    request = request if isinstance(request, Mapping) else {}
    billing = request.get("billing")
    if isinstance(billing, Mapping):
        slots = billing.get("slots")
    else:
        slots = request.get("n") if kind == "text2image" else 1
    return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0 else 1


def plan_for_role(role: str, plan: str | None) -> str:
    """The plan a new account goes on: the one asked for, else `unlimited` for an admin, `free` for others."""
    if plan is None:
        return ADMIN_PLAN if role == "admin" else DEFAULT_PLAN
    check_plan_name(plan)
    return plan


def missing_plan(name: str) -> PlanNotFound:
    return PlanNotFound(f"no plan {name!r}; list the plans with `kinema accounts plans`")
