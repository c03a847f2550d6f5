"""Billing tasks: the task store's hook that charges at create and refunds on failure, in one transaction.

`Billing(accounts).hook` plugs into a task store (`open_store(url, hook=billing.hook)`). On `created` and
`requeued` it locks the account, checks it is enabled, that its plan allows the model, mode and length,
that a slot is free, and charges the task's price; on `failed` and `cancelled` it refunds the charge
outstanding. Each refusal is a `BillingError` carrying its Kling code. Repeated calls for one change are
harmless: what was charged or refunded is read back before anything is written. No HTTP here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from typing import Any, ClassVar, Protocol

from sqlalchemy import Connection

from kinema.accounts import credits as cr
from kinema.accounts.credits import Charge, LedgerEntry
from kinema.accounts.ledger import Ledger, ensure_periodic
from kinema.accounts.plans import Plan, slots_of
from kinema.accounts.prices import IMAGE_KINDS, PriceTable
from kinema.accounts.store import Account
from kinema.db.events import TaskEvent
from kinema.errors import KinemaError

VIDEO_KINDS = frozenset({"text2video", "image2video", "extend"})
UNLIMITED_SLOTS = 1_000_000  # a plan limit this high (the `unlimited` plan's) is not enforced


class BillingError(KinemaError):
    """A task the account may not have now; `code` is the Kling error code the API answers with."""

    code: ClassVar[int] = 5000


class AccountDisabled(BillingError):
    code = 1100


class InsufficientCredits(BillingError):
    code = 1102


class ModelNotAllowed(BillingError):
    code = 1103


class ConcurrencyExceeded(BillingError):
    code = 1303


@dataclass(frozen=True, slots=True)
class Bill:
    """What a task costs and holds: `request["billing"]`, put there by the API before the create.

    `total_seconds` is the length of the whole video (an extension's chain), checked against the plan.
    """

    credits: int
    seconds: float
    mode: str
    slots: int
    total_seconds: float


class Books(Protocol):
    """A store that can open its ledger inside a transaction (SQL: the caller's connection; memory: None)."""

    def ledger_in(self, connection: Connection | None) -> AbstractContextManager[Ledger]: ...


class Billing:
    """Charges and refunds tasks as the task store changes them; `prices` price requests with no bill."""

    def __init__(self, accounts: Books, *, prices: PriceTable | None = None) -> None:
        self._accounts = accounts
        self._prices = prices or PriceTable()

    def hook(self, connection: Connection | None, event: TaskEvent) -> None:
        """The task store's `TaskHook`: runs inside the change's transaction, raises to roll it back."""
        with self._accounts.ledger_in(connection) as ledger:
            if event.event in ("created", "requeued"):
                self._charge(ledger, event)
            elif event.event in ("failed", "cancelled"):
                _refund(ledger, event)
            else:
                ledger.track(event.task_id, event.account_id, event.kind, 0)

    def bill(self, event: TaskEvent) -> Bill:
        """The task's bill: `request["billing"]`, or priced from the request when the API left none."""
        found = event.request.get("billing")
        if isinstance(found, Mapping):
            return _parse_bill(event, found)
        request = event.request
        mode = str(request.get("mode") or "std")
        seconds = _number(request.get("seconds", request.get("duration", 0)))
        n = request.get("n", 1)
        n = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else 1
        credits = self._prices.price(event.model, event.kind, mode, seconds, n)
        return Bill(credits, seconds, mode, slots_of(event.kind, request), seconds)

    def _charge(self, ledger: Ledger, event: TaskEvent) -> None:
        bill = self.bill(event)
        account = ledger.lock_account(event.account_id, task_id=event.task_id)
        ledger.track(event.task_id, account.account_id, event.kind, bill.slots)
        history = ledger.charges(event.task_id)
        if _outstanding(history) is not None:
            return  # this change is paid for already: a repeated call, or a re-queue that kept its charge
        if account.disabled:
            raise AccountDisabled(f"account {account.name!r} is disabled; ask an administrator to enable it")
        plan = ledger.plan(account.plan)
        check_allowed(plan, event, bill)
        check_slots(ledger, plan, event, bill)
        credits = bill.credits if plan.metered else 0
        seq = 1 + max((charge.seq for charge in history), default=0)
        ledger.add_entries(_draw(ledger, account, plan, event, credits, seq))
        ledger.add_charge(
            Charge(
                task_id=event.task_id,
                seq=seq,
                kind="charge",
                account_id=account.account_id,
                task_kind=event.kind,
                model=event.model,
                mode=bill.mode,
                seconds=bill.seconds,
                slots=bill.slots,
                credits=credits,
                created_at=ledger.now,
            )
        )


def check_allowed(plan: Plan, event: TaskEvent, bill: Bill) -> None:
    """Refuse a model, mode or length the account's plan does not include (Kling 1103)."""
    if plan.allowed_models is not None and event.model not in plan.allowed_models:
        allowed = ", ".join(plan.allowed_models) or "none"
        raise ModelNotAllowed(
            f"model {event.model!r} is not included in plan {plan.name!r} (it allows: {allowed}); "
            "use one of those or move the account to a plan that includes it"
        )
    if event.kind not in VIDEO_KINDS:
        return
    if bill.mode not in plan.allowed_modes:
        raise ModelNotAllowed(
            f"mode {bill.mode!r} is not included in plan {plan.name!r}; "
            f"use mode {' or '.join(plan.allowed_modes)} or move the account to a plan that includes it"
        )
    if bill.total_seconds > plan.max_duration_s:
        raise ModelNotAllowed(
            f"a {bill.total_seconds:g} s video is longer than plan {plan.name!r} allows "
            f"({plan.max_duration_s:g} s); ask for a shorter one "
            "or move the account to a plan with longer videos"
        )


def check_slots(ledger: Ledger, plan: Plan, event: TaskEvent, bill: Bill) -> None:
    """Refuse a task that would take the account over its plan's parallel tasks (Kling 1303)."""
    image = event.kind in IMAGE_KINDS
    group, limit = (IMAGE_KINDS, plan.image_concurrency) if image else (VIDEO_KINDS, plan.video_concurrency)
    if limit >= UNLIMITED_SLOTS:
        return  # counting an operator's queue (it reads every in-flight task) would only slow creates
    used = ledger.active_slots(event.account_id, group, excluding=event.task_id)
    if used + bill.slots > limit:
        what = "image" if image else "video"
        raise ConcurrencyExceeded(
            f"parallel task over resource pack limit: this task needs {bill.slots} {what} slot(s), "
            f"{used} of the {limit} in plan {plan.name!r} are in use; "
            "wait for a running task to finish, or move the account to a larger plan"
        )


def _draw(
    ledger: Ledger, account: Account, plan: Plan, event: TaskEvent, credits: int, seq: int
) -> list[LedgerEntry]:
    """The charge's ledger entries, soonest-expiring packs first; `InsufficientCredits` if short (1102)."""
    if credits == 0:
        return []
    ensure_periodic(ledger, account)
    packs = ledger.packs(account.account_id, live=True)
    taken = cr.draw(packs, credits, ledger.now)
    if taken is None:
        daily = " or wait for tomorrow's free credits" if plan.daily_free_credits else ""
        raise InsufficientCredits(
            f"this task costs {credits} credits but account {account.name!r} has "
            f"{cr.spendable(packs, ledger.now)} left; buy or be granted more credits{daily}"
        )
    return [
        LedgerEntry(
            entry_id=None,
            account_id=account.account_id,
            pack_id=pack_id,
            kind="charge",
            amount=-amount,
            task_id=event.task_id,
            seq=seq,
            created_at=ledger.now,
            note=f"{event.event} {event.kind} {event.model}",
        )
        for pack_id, amount in taken
    ]


def _refund(ledger: Ledger, event: TaskEvent) -> None:
    """Reverse exactly the entries of the task's outstanding charge, once.

    No account lock: a refund only adds credits, the task store's row lock keeps two changes of one task
    apart, and the refund's primary key refuses a second one. A claim that settles several expired tasks
    in one transaction so never takes account locks in an order that could deadlock with another.
    """
    ledger.track(event.task_id, event.account_id, event.kind, 0)
    charge = _outstanding(ledger.charges(event.task_id))
    if charge is None:
        return  # never charged, or refunded already
    refunds = [
        replace(
            entry,
            entry_id=None,
            kind="refund",
            amount=-entry.amount,
            created_at=ledger.now,
            note=f"refund: task {event.event}",
        )
        for entry in ledger.task_entries(event.task_id, charge.seq)
        if entry.kind == "charge"
    ]
    ledger.add_entries(refunds)
    ledger.add_charge(replace(charge, kind="refund", created_at=ledger.now))


def _outstanding(history: Sequence[Charge]) -> Charge | None:
    """The task's charge that has not been refunded, if any (there is at most one)."""
    refunded = {c.seq for c in history if c.kind == "refund"}
    return next((c for c in reversed(history) if c.kind == "charge" and c.seq not in refunded), None)


def _parse_bill(event: TaskEvent, found: Mapping[str, Any]) -> Bill:
    credits, slots = found.get("credits", 0), found.get("slots", 1)
    if not _whole(credits) or credits < 0 or not _whole(slots) or slots < 1:
        raise KinemaError(
            f"task {event.task_id}'s request has a malformed billing {dict(found)!r}; "
            "credits must be a whole number ≥ 0 and slots ≥ 1 (report a bug in the API)"
        )
    seconds = _number(found.get("seconds", 0))
    total = _number(found.get("total_seconds", seconds))
    return Bill(credits, seconds, str(found.get("mode") or "std"), slots, total)


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0.0
    try:
        return float(value)
    except ValueError:
        return 0.0
