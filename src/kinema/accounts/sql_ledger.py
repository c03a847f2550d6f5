"""The credit ledger on SQL: a `Ledger` over one connection, inside a transaction someone else owns.

The account store opens one for its own writes; the billing hook gets the task store's connection, so a
charge commits or rolls back with the task. Locks: `SELECT … FOR UPDATE` on the account's row (Postgres);
SQLite writers already hold the database's write lock (`BEGIN IMMEDIATE`). Concurrency is counted in
the `tasks` table, which lives in the same database. This module reads and writes rows; `ledger` and
`billing` hold the rules.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import (
    Connection,
    Row,
    Table,
    and_,
    bindparam,
    case,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    table,
    tuple_,
)
from sqlalchemy.exc import IntegrityError

from kinema.accounts.credits import Charge, ChargeKind, LedgerEntry, LedgerPage, Pack, PackBalance
from kinema.accounts.plans import Plan, missing_plan, slots_of
from kinema.accounts.schema import AccountRow, CreditLedgerRow, CreditPackRow, PlanRow, TaskChargeRow
from kinema.accounts.store import Account, Role, missing_account
from kinema.db.base import JSONDocument

ACCOUNTS = cast(Table, AccountRow.__table__)
PLANS = cast(Table, PlanRow.__table__)
PACKS = cast(Table, CreditPackRow.__table__)
ENTRIES = cast(Table, CreditLedgerRow.__table__)
CHARGES = cast(Table, TaskChargeRow.__table__)
# The task store's table, named here by the columns billing reads (kinema.jobs owns it; this layer cannot
# import it).
TASKS = table(
    "tasks",
    column("task_id"),
    column("account_id"),
    column("kind"),
    column("status"),
    column("request", JSONDocument),
)
LIVE_STATUSES = ("submitted", "processing")
# Built once: a create charges its task with these, and `.values(...)` per call cost a statement build.
_INSERT_CHARGE = insert(CHARGES)
_INSERT_ENTRY = insert(ENTRIES)
# An account, its plan and one task's charges in one round trip, the account's row locked (not the
# others): a create's billing needs all three, and on the event loop every round trip waits for a turn
# of the loop. One row per charge, or one with the charge's columns empty.
_PLAN_PREFIX, _CHARGE_PREFIX = "plan__", "charge__"
_ACCOUNT_PLAN_AND_CHARGES = (
    select(
        ACCOUNTS,
        *(c.label(_PLAN_PREFIX + c.name) for c in PLANS.c),
        *(c.label(_CHARGE_PREFIX + c.name) for c in CHARGES.c),
    )
    .join_from(ACCOUNTS, PLANS, PLANS.c.name == ACCOUNTS.c.plan, isouter=True)
    .join_from(
        ACCOUNTS,
        CHARGES,
        and_(CHARGES.c.task_id == bindparam("task_id"), CHARGES.c.account_id == ACCOUNTS.c.account_id),
        isouter=True,
    )
    .where(ACCOUNTS.c.account_id == bindparam("account_id"))
    .order_by(CHARGES.c.seq, CHARGES.c.created_at, CHARGES.c.kind)
    .with_for_update(of=ACCOUNTS)
)


class SqlLedger:
    """A `Ledger` on `connection`; it never commits or rolls back (the transaction's owner does)."""

    def __init__(self, connection: Connection, now: datetime) -> None:
        self._connection = connection
        self._now = now
        self._plans: dict[str, Plan] = {}  # read with a locked account, in this transaction
        self._charges: dict[str, list[Charge]] = {}  # likewise, kept up to date by `add_charge`

    @property
    def now(self) -> datetime:
        return self._now

    def lock_account(self, account_id: str, *, task_id: str | None = None) -> Account:
        params = {"account_id": account_id, "task_id": task_id}
        rows = self._connection.execute(_ACCOUNT_PLAN_AND_CHARGES, params).all()
        if not rows:
            raise missing_account(account_id)
        first = rows[0]._mapping
        if first[_PLAN_PREFIX + "name"] is not None:
            self._plans[first[_PLAN_PREFIX + "name"]] = plan_of(_prefixed(first, _PLAN_PREFIX, PLANS))
        if task_id is not None:
            self._charges[task_id] = [
                _charge_of(_prefixed(row._mapping, _CHARGE_PREFIX, CHARGES))
                for row in rows
                if row._mapping[_CHARGE_PREFIX + "task_id"] is not None
            ]
        return account_of(rows[0])

    def plan(self, name: str) -> Plan:
        if name in self._plans:
            return self._plans[name]
        row = self._connection.execute(select(PLANS).where(PLANS.c.name == name)).one_or_none()
        if row is None:
            raise missing_plan(name)
        return plan_of(row)

    def packs(self, account_id: str, *, live: bool = False) -> builtins.list[PackBalance]:
        chosen = [PACKS.c.account_id == account_id]
        if live:  # sum only what can be spent now: old daily packs and their entries stay unread
            chosen += [
                PACKS.c.effective_at <= self._now,
                or_(PACKS.c.invalid_at.is_(None), PACKS.c.invalid_at > self._now),
            ]
        expiry = ENTRIES.c.kind == "expiry"
        sums = (
            select(
                ENTRIES.c.pack_id,
                func.sum(ENTRIES.c.amount).label("remaining"),
                func.sum(case((expiry, ENTRIES.c.amount), else_=0)).label("expired"),
                func.sum(case((expiry, 1), else_=0)).label("expiries"),
            )
            .where(ENTRIES.c.pack_id.in_(select(PACKS.c.pack_id).where(*chosen)))
            .group_by(ENTRIES.c.pack_id)
            .subquery()
        )
        query = (
            select(PACKS, sums.c.remaining, sums.c.expired, sums.c.expiries)
            .join(sums, sums.c.pack_id == PACKS.c.pack_id, isouter=True)
            .where(*chosen)
            .order_by(PACKS.c.purchased_at, PACKS.c.pack_id)
        )
        return [_balance_of(row) for row in self._connection.execute(query)]

    def has_pack(self, pack_id: str) -> bool:
        found = self._connection.execute(select(PACKS.c.pack_id).where(PACKS.c.pack_id == pack_id))
        return found.first() is not None

    def add_pack(self, pack: Pack, opening: LedgerEntry) -> None:
        self._connection.execute(insert(PACKS).values(**_pack_values(pack)))
        self.add_entries([opening])

    def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        if entries:
            self._connection.execute(_INSERT_ENTRY, [_entry_values(entry) for entry in entries])

    def charges(self, task_id: str) -> builtins.list[Charge]:
        if task_id in self._charges:
            return list(self._charges[task_id])
        query = (
            select(CHARGES)
            .where(CHARGES.c.task_id == task_id)
            .order_by(CHARGES.c.seq, CHARGES.c.created_at, CHARGES.c.kind)
        )
        return [_charge_of(row) for row in self._connection.execute(query)]

    def task_entries(self, task_id: str, seq: int) -> builtins.list[LedgerEntry]:
        query = (
            select(ENTRIES)
            .where(ENTRIES.c.task_id == task_id, ENTRIES.c.seq == seq)
            .order_by(ENTRIES.c.entry_id)
        )
        return [_entry_of(row) for row in self._connection.execute(query)]

    def add_charge(self, charge: Charge) -> None:
        self._connection.execute(_INSERT_CHARGE, _charge_values(charge))
        if charge.task_id in self._charges:
            self._charges[charge.task_id].append(charge)

    def track(self, task_id: str, account_id: str, kind: str, slots: int) -> None:
        del task_id, account_id, kind, slots  # the tasks table already says which tasks are live

    def active_slots(self, account_id: str, kinds: Collection[str], *, excluding: str) -> int:
        query = select(TASKS.c.kind, TASKS.c.request).where(
            TASKS.c.account_id == account_id,
            TASKS.c.status.in_(LIVE_STATUSES),
            TASKS.c.kind.in_(list(kinds)),
            TASKS.c.task_id != excluding,
        )
        return sum(slots_of(row.kind, row.request) for row in self._connection.execute(query))

    def expired_packs(self) -> builtins.list[PackBalance]:
        remaining = func.coalesce(func.sum(ENTRIES.c.amount), 0)
        query = (
            select(PACKS.c.pack_id, PACKS.c.account_id)
            .join(ENTRIES, ENTRIES.c.pack_id == PACKS.c.pack_id)
            .where(PACKS.c.invalid_at <= self._now)
            .group_by(PACKS.c.pack_id, PACKS.c.account_id)
            .having(remaining > 0)
            .order_by(PACKS.c.account_id, PACKS.c.pack_id)
        )
        found = []
        for row in self._connection.execute(query).all():
            found += [b for b in self.packs(row.account_id) if b.pack.pack_id == row.pack_id]
        return found

    def history(self, account_id: str, *, offset: int, limit: int) -> LedgerPage:
        mine = ENTRIES.c.account_id == account_id
        total = self._connection.execute(select(func.count()).select_from(ENTRIES).where(mine)).scalar_one()
        query = select(ENTRIES).where(mine).order_by(ENTRIES.c.entry_id.desc()).offset(offset).limit(limit)
        return LedgerPage(tuple(_entry_of(row) for row in self._connection.execute(query)), total)

    def charges_between(
        self, start: datetime, end: datetime, account_id: str | None
    ) -> builtins.list[Charge]:
        made = and_(CHARGES.c.kind == "charge", CHARGES.c.created_at >= start, CHARGES.c.created_at < end)
        if account_id is not None:
            made = and_(made, CHARGES.c.account_id == account_id)
        charged = select(CHARGES.c.task_id, CHARGES.c.seq).where(made)
        query = (
            select(CHARGES)
            .where(tuple_(CHARGES.c.task_id, CHARGES.c.seq).in_(charged))
            .order_by(CHARGES.c.created_at, CHARGES.c.task_id, CHARGES.c.seq, CHARGES.c.kind)
        )
        return [_charge_of(row) for row in self._connection.execute(query)]


def insert_plan(connection: Connection, plan: Plan) -> None:
    """Create or replace `plan` (delete and insert: portable, and plans change rarely)."""
    connection.execute(delete(PLANS).where(PLANS.c.name == plan.name))
    connection.execute(insert(PLANS).values(**_plan_values(plan)))


def account_of(row: Row[Any]) -> Account:
    return Account(
        account_id=row.account_id,
        name=row.name,
        role=cast(Role, row.role),
        disabled=row.disabled,
        created_at=row.created_at,
        plan=row.plan,
    )


def plan_of(row: Row[Any] | SimpleNamespace) -> Plan:
    models = row.allowed_models
    return Plan(
        name=row.name,
        daily_free_credits=row.daily_free_credits,
        monthly_credits=row.monthly_credits,
        video_concurrency=row.video_concurrency,
        image_concurrency=row.image_concurrency,
        priority=row.priority,
        allowed_models=None if models is None else tuple(models),
        allowed_modes=tuple(row.allowed_modes),
        max_duration_s=row.max_duration_s,
        requests_per_minute=row.requests_per_minute,
        metered=row.metered,
    )


def is_unique_violation(error: IntegrityError) -> bool:
    """Whether `error` is a duplicate key (as opposed to a broken check or foreign key)."""
    text = str(error.orig).lower()
    return "unique" in text or "duplicate key" in text


def _plan_values(plan: Plan) -> dict[str, Any]:
    return {
        "name": plan.name,
        "daily_free_credits": plan.daily_free_credits,
        "monthly_credits": plan.monthly_credits,
        "video_concurrency": plan.video_concurrency,
        "image_concurrency": plan.image_concurrency,
        "priority": plan.priority,
        "allowed_models": None if plan.allowed_models is None else list(plan.allowed_models),
        "allowed_modes": list(plan.allowed_modes),
        "max_duration_s": plan.max_duration_s,
        "requests_per_minute": plan.requests_per_minute,
        "metered": plan.metered,
    }


def _pack_values(pack: Pack) -> dict[str, Any]:
    return {
        "pack_id": pack.pack_id,
        "account_id": pack.account_id,
        "name": pack.name,
        "type": pack.type,
        "total": pack.total,
        "purchased_at": pack.purchased_at,
        "effective_at": pack.effective_at,
        "invalid_at": pack.invalid_at,
        "source": pack.source,
    }


def _balance_of(row: Row[Any]) -> PackBalance:
    pack = Pack(
        pack_id=row.pack_id,
        account_id=row.account_id,
        name=row.name,
        type=row.type,
        total=row.total,
        purchased_at=row.purchased_at,
        effective_at=row.effective_at,
        invalid_at=row.invalid_at,
        source=row.source,
    )
    return PackBalance(pack, int(row.remaining or 0), int(row.expired or 0), int(row.expiries or 0))


def _entry_values(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "account_id": entry.account_id,
        "pack_id": entry.pack_id,
        "kind": entry.kind,
        "amount": entry.amount,
        "task_id": entry.task_id,
        "seq": entry.seq,
        "created_at": entry.created_at,
        "note": entry.note,
    }


def _entry_of(row: Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        entry_id=row.entry_id,
        account_id=row.account_id,
        pack_id=row.pack_id,
        kind=row.kind,
        amount=row.amount,
        task_id=row.task_id,
        seq=row.seq,
        created_at=row.created_at,
        note=row.note,
    )


def _charge_values(charge: Charge) -> dict[str, Any]:
    return {
        "task_id": charge.task_id,
        "seq": charge.seq,
        "kind": charge.kind,
        "account_id": charge.account_id,
        "task_kind": charge.task_kind,
        "model": charge.model,
        "mode": charge.mode,
        "seconds": charge.seconds,
        "slots": charge.slots,
        "credits": charge.credits,
        "created_at": charge.created_at,
    }


def _prefixed(found: Any, prefix: str, of: Table) -> SimpleNamespace:
    """The columns of `of` in a joined row, where they were labelled `prefix` + name."""
    return SimpleNamespace(**{c.name: found[prefix + c.name] for c in of.c})


def _charge_of(row: Row[Any] | SimpleNamespace) -> Charge:
    return Charge(
        task_id=row.task_id,
        seq=row.seq,
        kind=cast(ChargeKind, row.kind),
        account_id=row.account_id,
        task_kind=row.task_kind,
        model=row.model,
        mode=row.mode,
        seconds=row.seconds,
        slots=row.slots,
        credits=row.credits,
        created_at=row.created_at,
    )
