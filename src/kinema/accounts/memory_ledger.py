"""The credit ledger in memory: a `Ledger` over lists and dicts, for `MemoryAccountStore`.

The in-memory task store has no table to count, so this ledger keeps its own tally of live tasks from
the hook's calls. It enforces the SQL tables' unique keys too, so a rule that would double-charge fails
here as it would there. Transactions (the lock, undo on error) are the store's; this module only reads
and writes the books.
"""

from __future__ import annotations

import builtins
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from kinema.accounts.credits import Charge, LedgerEntry, LedgerPage, Pack, PackBalance
from kinema.accounts.plans import Plan, missing_plan
from kinema.accounts.store import Account, missing_account
from kinema.errors import KinemaError


class DuplicateEntry(KinemaError):
    """A write that the SQL tables' unique keys would refuse: a bug in the rules, never a user's error."""


@dataclass
class MemoryBooks:
    """Everything the ledger holds. `live` maps a live task's id to (account id, kind, slots)."""

    packs: dict[str, Pack] = field(default_factory=dict)
    entries: list[LedgerEntry] = field(default_factory=list)
    charges: list[Charge] = field(default_factory=list)
    live: dict[str, tuple[str, str, int]] = field(default_factory=dict)

    def copy(self) -> MemoryBooks:
        """A copy to restore if a transaction fails (the records themselves are immutable)."""
        return MemoryBooks(dict(self.packs), list(self.entries), list(self.charges), dict(self.live))


class MemoryLedger:
    """A `Ledger` on `books`; the caller holds the store's lock for as long as it is used."""

    def __init__(
        self, books: MemoryBooks, accounts: Mapping[str, Account], plans: Mapping[str, Plan], now: datetime
    ) -> None:
        self._books = books
        self._accounts = accounts
        self._plans = plans
        self._now = now

    @property
    def now(self) -> datetime:
        return self._now

    def lock_account(self, account_id: str, *, task_id: str | None = None) -> Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise missing_account(account_id)
        return account

    def plan(self, name: str) -> Plan:
        plan = self._plans.get(name)
        if plan is None:
            raise missing_plan(name)
        return plan

    def packs(self, account_id: str, *, live: bool = False) -> builtins.list[PackBalance]:
        sums: dict[str, list[int]] = {}
        for entry in self._books.entries:
            if entry.account_id == account_id:
                total = sums.setdefault(entry.pack_id, [0, 0, 0])
                total[0] += entry.amount
                if entry.kind == "expiry":
                    total[1] += entry.amount
                    total[2] += 1
        mine = [
            p
            for p in self._books.packs.values()
            if p.account_id == account_id and (not live or p.live(self._now))
        ]
        mine.sort(key=lambda p: (p.purchased_at, p.pack_id))
        return [PackBalance(p, *sums.get(p.pack_id, [0, 0, 0])) for p in mine]

    def has_pack(self, pack_id: str) -> bool:
        return pack_id in self._books.packs

    def add_pack(self, pack: Pack, opening: LedgerEntry) -> None:
        if pack.pack_id in self._books.packs:
            raise DuplicateEntry(f"pack {pack.pack_id} exists already")
        self._books.packs[pack.pack_id] = pack
        self.add_entries([opening])

    def add_entries(self, entries: Sequence[LedgerEntry]) -> None:
        for entry in entries:
            if any(_same_key(entry, old) for old in self._books.entries):
                raise DuplicateEntry(f"ledger entry {entry} exists already")
            self._books.entries.append(replace(entry, entry_id=len(self._books.entries) + 1))

    def charges(self, task_id: str) -> builtins.list[Charge]:
        return [c for c in self._books.charges if c.task_id == task_id]

    def task_entries(self, task_id: str, seq: int) -> builtins.list[LedgerEntry]:
        return [e for e in self._books.entries if e.task_id == task_id and e.seq == seq]

    def add_charge(self, charge: Charge) -> None:
        key = (charge.task_id, charge.seq, charge.kind)
        if any((c.task_id, c.seq, c.kind) == key for c in self._books.charges):
            raise DuplicateEntry(f"task charge {key} exists already")
        self._books.charges.append(charge)

    def track(self, task_id: str, account_id: str, kind: str, slots: int) -> None:
        if slots > 0:
            self._books.live[task_id] = (account_id, kind, slots)
        else:
            self._books.live.pop(task_id, None)

    def active_slots(self, account_id: str, kinds: Collection[str], *, excluding: str) -> int:
        return sum(
            slots
            for task_id, (owner, kind, slots) in self._books.live.items()
            if owner == account_id and kind in kinds and task_id != excluding
        )

    def expired_packs(self) -> builtins.list[PackBalance]:
        owners = sorted({p.account_id for p in self._books.packs.values() if p.expired(self._now)})
        return [
            b for owner in owners for b in self.packs(owner) if b.pack.expired(self._now) and b.remaining > 0
        ]

    def history(self, account_id: str, *, offset: int, limit: int) -> LedgerPage:
        mine = [e for e in reversed(self._books.entries) if e.account_id == account_id]
        return LedgerPage(tuple(mine[offset : offset + limit]), len(mine))

    def charges_between(
        self, start: datetime, end: datetime, account_id: str | None
    ) -> builtins.list[Charge]:
        made = {
            (c.task_id, c.seq)
            for c in self._books.charges
            if c.kind == "charge"
            and start <= c.created_at < end
            and (account_id is None or c.account_id == account_id)
        }
        return [c for c in self._books.charges if (c.task_id, c.seq) in made]


def _same_key(new: LedgerEntry, old: LedgerEntry) -> bool:
    """Whether the SQL unique indexes on `credit_ledger` would take `new` for a repeat of `old`."""
    if new.task_id is not None:
        return (new.task_id, new.kind, new.seq, new.pack_id) == (old.task_id, old.kind, old.seq, old.pack_id)
    return old.task_id is None and (new.pack_id, new.kind, new.seq) == (old.pack_id, old.kind, old.seq)
