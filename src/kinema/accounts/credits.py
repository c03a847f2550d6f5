"""Credits as an append-only ledger: the records (packs, ledger entries, task charges) and pure rules.

Credits arrive in packs (a grant, a purchase, a plan's daily or monthly allowance), each valid from
`effective_at` until `invalid_at`. Every movement is a signed ledger entry on one pack; a pack's remaining
credits are the sum of its entries and an account's balance the sum over its live packs, never a number
kept alone. Charges draw from the packs that expire soonest. This module knows no SQL and no clock.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, get_args

from kinema.accounts.plans import Plan
from kinema.errors import InvalidRequest

PackType = Literal["decreasing_total", "constant_period"]
PACK_TYPES: tuple[PackType, ...] = get_args(PackType)
PackSource = Literal["grant", "purchase", "daily", "monthly"]
PACK_SOURCES: tuple[PackSource, ...] = get_args(PackSource)
EntryKind = Literal["grant", "purchase", "charge", "refund", "expiry"]
ENTRY_KINDS: tuple[EntryKind, ...] = get_args(EntryKind)
ChargeKind = Literal["charge", "refund"]
CHARGE_KINDS: tuple[ChargeKind, ...] = get_args(ChargeKind)
PackStatus = Literal["toBeOnline", "online", "expired", "runOut"]
NEVER_MS = 253_402_300_799_000  # 9999-12-31T23:59:59Z: the `invalid_time` shown for a pack that never expires
MAX_CREDITS = 1_000_000_000
MAX_PAGE = 1000


@dataclass(frozen=True, slots=True)
class Pack:
    """A lot of credits. `invalid_at` None never expires; `total` is what it held when it was made."""

    pack_id: str
    account_id: str
    name: str
    type: PackType
    total: int
    purchased_at: datetime
    effective_at: datetime
    invalid_at: datetime | None
    source: PackSource

    def live(self, now: datetime) -> bool:
        return self.effective_at <= now and (self.invalid_at is None or now < self.invalid_at)

    def expired(self, now: datetime) -> bool:
        return self.invalid_at is not None and self.invalid_at <= now


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One signed movement on one pack. `entry_id` is None until stored; then it orders the ledger.

    Charges and refunds name their task and `seq` (the task's n-th charge); grants, purchases and
    expiries name no task and count `seq` per pack.
    """

    entry_id: int | None
    account_id: str
    pack_id: str
    kind: EntryKind
    amount: int
    task_id: str | None
    seq: int
    created_at: datetime
    note: str


@dataclass(frozen=True, slots=True)
class Charge:
    """What one charge of a task (or its refund) was for: the usage record, whatever packs paid it."""

    task_id: str
    seq: int
    kind: ChargeKind
    account_id: str
    task_kind: str
    model: str
    mode: str
    seconds: float
    slots: int
    credits: int
    created_at: datetime


@dataclass(frozen=True, slots=True)
class PackBalance:
    """A pack and the sums of its entries: all of them (`remaining`), its expiry entries alone (`expired`,
    ≤ 0) and how many expiry entries it has."""

    pack: Pack
    remaining: int
    expired: int = 0
    expiries: int = 0


@dataclass(frozen=True, slots=True)
class LedgerPage:
    """One page of an account's ledger, newest first, and how many entries it has in all."""

    entries: tuple[LedgerEntry, ...]
    total: int


def new_pack_id() -> str:
    return "pack_" + secrets.token_hex(8)


def day_start(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def month_start(moment: datetime) -> datetime:
    return day_start(moment).replace(day=1)


def next_month(start: datetime) -> datetime:
    return (
        start.replace(year=start.year + 1, month=1)
        if start.month == 12
        else start.replace(month=start.month + 1)
    )


def periodic_packs(account_id: str, plan: Plan, now: datetime) -> list[Pack]:
    """The plan's daily and monthly packs for the day and month of `now`.

    Their ids are made from the account and the period, so a second grant for the same day is the same
    row: the database's primary key is what makes the daily grant once per day.
    """
    packs = []
    if plan.daily_free_credits > 0:
        start = day_start(now)
        packs.append(
            Pack(
                pack_id=f"daily:{account_id}:{start:%Y%m%d}",
                account_id=account_id,
                name="daily free credits",
                type="constant_period",
                total=plan.daily_free_credits,
                purchased_at=start,
                effective_at=start,
                invalid_at=start + timedelta(days=1),
                source="daily",
            )
        )
    if plan.monthly_credits > 0:
        start = month_start(now)
        packs.append(
            Pack(
                pack_id=f"monthly:{account_id}:{start:%Y%m}",
                account_id=account_id,
                name=f"{plan.name} monthly credits",
                type="constant_period",
                total=plan.monthly_credits,
                purchased_at=start,
                effective_at=start,
                invalid_at=next_month(start),
                source="monthly",
            )
        )
    return packs


def spendable(packs: Sequence[PackBalance], now: datetime) -> int:
    """The balance: remaining credits over the packs that are effective and not expired."""
    return sum(max(b.remaining, 0) for b in packs if b.pack.live(now))


def draw(packs: Sequence[PackBalance], credits: int, now: datetime) -> list[tuple[str, int]] | None:
    """(pack id, credits) to take for a charge of `credits`, soonest-expiring packs first; None if short."""
    never = datetime.max.replace(tzinfo=UTC)
    order = sorted(
        (b for b in packs if b.pack.live(now) and b.remaining > 0),
        key=lambda b: (b.pack.invalid_at or never, b.pack.effective_at, b.pack.pack_id),
    )
    taken, left = [], credits
    for balance in order:
        if left == 0:
            break
        amount = min(balance.remaining, left)
        taken.append((balance.pack.pack_id, amount))
        left -= amount
    return taken if left == 0 else None


def pack_status(balance: PackBalance, now: datetime) -> PackStatus:
    if balance.pack.expired(now):
        return "expired"
    if now < balance.pack.effective_at:
        return "toBeOnline"
    return "runOut" if balance.remaining <= 0 else "online"


def epoch_ms(moment: datetime | None) -> int:
    return NEVER_MS if moment is None else math.floor(moment.timestamp() * 1000)


def pack_view(balance: PackBalance, now: datetime) -> dict[str, Any]:
    """One element of `/account/costs`' `resource_pack_subscribe_infos` (shared/KLING_API.md §4.6).

    `remaining_quantity` of an expired pack is what was left when it expired, swept or not.
    """
    pack = balance.pack
    return {
        "resource_pack_name": pack.name,
        "resource_pack_id": pack.pack_id,
        "resource_pack_type": pack.type,
        "total_quantity": pack.total,
        "remaining_quantity": max(balance.remaining - balance.expired, 0),
        "purchase_time": epoch_ms(pack.purchased_at),
        "effective_time": epoch_ms(pack.effective_at),
        "invalid_time": epoch_ms(pack.invalid_at),
        "status": pack_status(balance, now),
    }


def overlaps(pack: Pack, start: datetime, end: datetime) -> bool:
    """Whether the pack's validity [effective_at, invalid_at) meets the window [start, end]."""
    return pack.effective_at <= end and (pack.invalid_at is None or pack.invalid_at > start)


def from_ms(value: int, field: str) -> datetime:
    """A Unix time in milliseconds (as the Kling API sends it) as an aware UTC datetime."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= NEVER_MS:
        raise InvalidRequest(f"{field} must be Unix epoch milliseconds (a whole number ≥ 0); got {value!r}")
    return datetime.fromtimestamp(value / 1000, UTC)


def check_page(offset: int, limit: int) -> None:
    if offset < 0 or not 1 <= limit <= MAX_PAGE:
        raise InvalidRequest(
            f"offset must be ≥ 0 and limit 1..{MAX_PAGE}; got offset {offset}, limit {limit}"
        )
