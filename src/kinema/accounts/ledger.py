"""The rules of the credit ledger, written once over a `Ledger`: one transaction's view of the books.

A store opens a `Ledger` (SQL: on a connection, inside a transaction; memory: under its lock, undone if
the block raises) and these functions do the rest: grants and purchases, the lazy daily and monthly
packs, the balance, the expiry sweep and the `/account/costs` view. Billing tasks is `billing`'s.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Sequence
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from typing import Any, Protocol

from kinema.accounts import credits as cr
from kinema.accounts.credits import Charge, LedgerEntry, LedgerPage, Pack, PackBalance, PackSource
from kinema.accounts.plans import Plan
from kinema.accounts.store import Account
from kinema.errors import InvalidRequest

MAX_GRANT_DAYS = 36_600


class Ledger(Protocol):
    """One transaction on the books. Writes become visible with the transaction, or never."""

    @property
    def now(self) -> datetime:
        """The time of this transaction (UTC, milliseconds)."""
        ...

    def lock_account(self, account_id: str, *, task_id: str | None = None) -> Account:
        """The account, locked until the transaction ends (`SELECT … FOR UPDATE`); `AccountNotFound`.

        With `task_id`, the ledger may read that task's charges along (one round trip on SQL).
        """
        ...

    def plan(self, name: str) -> Plan:
        """The plan called `name`; `PlanNotFound` if there is none."""
        ...

    def packs(self, account_id: str, *, live: bool = False) -> builtins.list[PackBalance]:
        """The account's packs (with `live`, only those spendable now) with the sums of their entries."""
        ...

    def has_pack(self, pack_id: str) -> bool: ...

    def add_pack(self, pack: Pack, opening: LedgerEntry) -> None:
        """Store a new pack and the entry that fills it."""
        ...

    def add_entries(self, entries: Sequence[LedgerEntry]) -> None: ...

    def charges(self, task_id: str) -> builtins.list[Charge]:
        """The task's charges and refunds, in the order they were made."""
        ...

    def task_entries(self, task_id: str, seq: int) -> builtins.list[LedgerEntry]:
        """The ledger entries of the task's `seq`-th charge and of its refund."""
        ...

    def add_charge(self, charge: Charge) -> None: ...

    def track(self, task_id: str, account_id: str, kind: str, slots: int) -> None:
        """Note the slots a live task holds (0 once finished): the in-memory ledger's tally of tasks.

        The SQL ledger ignores this and counts the `tasks` table on the same connection instead.
        """
        ...

    def active_slots(self, account_id: str, kinds: Collection[str], *, excluding: str) -> int:
        """Slots held by the account's tasks of `kinds` in `submitted` or `processing`, but `excluding`."""
        ...

    def expired_packs(self) -> builtins.list[PackBalance]:
        """Packs of every account past their `invalid_at` with credits left."""
        ...

    def history(self, account_id: str, *, offset: int, limit: int) -> LedgerPage: ...

    def charges_between(
        self, start: datetime, end: datetime, account_id: str | None
    ) -> builtins.list[Charge]:
        """Charges made in [start, end), of one account or all, and the refunds of those charges."""
        ...


def ensure_periodic(ledger: Ledger, account: Account) -> None:
    """Grant the account's plan's daily and monthly packs for today, unless granted already."""
    for pack in cr.periodic_packs(account.account_id, ledger.plan(account.plan), ledger.now):
        if not ledger.has_pack(pack.pack_id):
            ledger.add_pack(pack, _opening(pack, "grant", ledger.now, f"{pack.source} allowance"))


def grant(
    ledger: Ledger,
    account_id: str,
    credits: int,
    *,
    source: PackSource,
    days: float | None = None,
    name: str | None = None,
    note: str = "",
) -> Pack:
    """A new `grant` or `purchase` pack of `credits`, valid from now for `days` (None: for ever)."""
    if isinstance(credits, bool) or not isinstance(credits, int) or not 0 < credits <= cr.MAX_CREDITS:
        raise InvalidRequest(f"credits must be a whole number in 1..{cr.MAX_CREDITS}; got {credits!r}")
    if days is not None and not 0 < days <= MAX_GRANT_DAYS:
        raise InvalidRequest(f"days must be more than 0 and at most {MAX_GRANT_DAYS}; got {days}")
    if source not in ("grant", "purchase"):
        raise InvalidRequest(f"a pack made by hand is a grant or a purchase, not {source!r}")
    account = ledger.lock_account(account_id)
    now = ledger.now
    pack = Pack(
        pack_id=cr.new_pack_id(),
        account_id=account.account_id,
        name=name or ("granted credits" if source == "grant" else "purchased credits"),
        type="decreasing_total",
        total=credits,
        purchased_at=now,
        effective_at=now,
        invalid_at=None if days is None else now + timedelta(days=days),
        source=source,
    )
    ledger.add_pack(pack, _opening(pack, source, now, note))
    return pack


def balance(ledger: Ledger, account_id: str) -> int:
    """The account's spendable credits now, after granting today's allowance if it was not yet."""
    ensure_periodic(ledger, ledger.lock_account(account_id))
    return cr.spendable(ledger.packs(account_id, live=True), ledger.now)


def sweep(ledger: Ledger) -> int:
    """Write an `expiry` entry for the credits left in each pack past its `invalid_at`; the count written.

    Idempotent: a swept pack holds nothing, so a second sweep finds nothing to write.
    """
    written = 0
    for found in ledger.expired_packs():
        ledger.lock_account(found.pack.account_id)
        fresh = next(b for b in ledger.packs(found.pack.account_id) if b.pack.pack_id == found.pack.pack_id)
        if fresh.remaining <= 0:
            continue
        entry = LedgerEntry(
            entry_id=None,
            account_id=fresh.pack.account_id,
            pack_id=fresh.pack.pack_id,
            kind="expiry",
            amount=-fresh.remaining,
            task_id=None,
            seq=fresh.expiries + 1,  # a refund may refill a swept pack; its next sweep is entry 2
            created_at=ledger.now,
            note="expired unspent",
        )
        ledger.add_entries([entry])
        written += 1
    return written


def resource_packs(
    ledger: Ledger, account_id: str, start: datetime, end: datetime, name: str | None = None
) -> builtins.list[dict[str, Any]]:
    """The account's packs valid at some time in [start, end] as `/account/costs` lists them."""
    if end < start:
        raise InvalidRequest("end_time is before start_time; give a start before the end")
    ensure_periodic(ledger, ledger.lock_account(account_id))
    shown = [
        b
        for b in ledger.packs(account_id)
        if cr.overlaps(b.pack, start, end) and (name is None or b.pack.name == name)
    ]
    shown.sort(key=lambda b: (b.pack.purchased_at, b.pack.pack_id))
    return [cr.pack_view(b, ledger.now) for b in shown]


def _opening(pack: Pack, kind: cr.EntryKind, now: datetime, note: str) -> LedgerEntry:
    return LedgerEntry(
        entry_id=None,
        account_id=pack.account_id,
        pack_id=pack.pack_id,
        kind=kind,
        amount=pack.total,
        task_id=None,
        seq=0,
        created_at=now,
        note=note,
    )


class Bookkeeping:
    """The credit operations of an account store, written once: each opens the store's `_ledger()` (a
    transaction of its own) and applies the rules above. `MemoryAccountStore` and `SqlAccountStore`
    differ only in how they open that ledger."""

    def _ledger(self) -> AbstractContextManager[Ledger]:
        raise NotImplementedError

    def grant_credits(
        self,
        account_id: str,
        credits: int,
        *,
        days: float | None = None,
        name: str | None = None,
        note: str = "",
    ) -> Pack:
        with self._ledger() as ledger:
            return grant(ledger, account_id, credits, source="grant", days=days, name=name, note=note)

    def purchase_credits(
        self,
        account_id: str,
        credits: int,
        *,
        days: float | None = None,
        name: str | None = None,
        note: str = "",
    ) -> Pack:
        with self._ledger() as ledger:
            return grant(ledger, account_id, credits, source="purchase", days=days, name=name, note=note)

    def balance(self, account_id: str) -> int:
        with self._ledger() as ledger:
            return balance(ledger, account_id)

    def resource_packs(
        self, account_id: str, start_ms: int, end_ms: int, name: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        start, end = cr.from_ms(start_ms, "start_time"), cr.from_ms(end_ms, "end_time")
        with self._ledger() as ledger:
            return resource_packs(ledger, account_id, start, end, name)

    def sweep_expired(self) -> int:
        with self._ledger() as ledger:
            return sweep(ledger)
