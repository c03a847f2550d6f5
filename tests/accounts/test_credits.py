"""The credit ledger on every store: grants and purchases, the daily and monthly allowances granted once
per period, expiry written off once by the sweep, the `/account/costs` view, paging, and one account's
books invisible to another."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from billingkit import METERED, Billed

from kinema.accounts import AccountNotFound, AccountStore
from kinema.accounts.credits import NEVER_MS, Pack, PackBalance, pack_status
from kinema.errors import InvalidRequest
from kinema.jobs import FakeClock

COSTS_FIELDS = {
    "resource_pack_name",
    "resource_pack_id",
    "resource_pack_type",
    "total_quantity",
    "remaining_quantity",
    "purchase_time",
    "effective_time",
    "invalid_time",
    "status",
}
DAY = 86_400


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def metered(accounts: AccountStore, name: str = "acme") -> str:
    """A new account on a plan with no allowance, so its balance is exactly what it was granted."""
    accounts.upsert_plan(METERED)
    return accounts.create_account(name, plan="metered").account_id


def kinds(accounts: AccountStore, account_id: str) -> list[tuple[str, int]]:
    """The account's ledger, oldest first, as (kind, amount)."""
    page = accounts.ledger_history(account_id, limit=1000)
    return [(entry.kind, entry.amount) for entry in reversed(page.entries)]


# --- grants and the balance -----------------------------------------------------------------------------


def test_grants_and_purchases_add_up_to_the_balance(accounts: AccountStore, clock: FakeClock) -> None:
    acme = metered(accounts)

    granted = accounts.grant_credits(acme, 10, note="welcome")
    bought = accounts.purchase_credits(acme, 5)

    assert accounts.balance(acme) == 15
    assert (granted.source, granted.type, granted.total, granted.invalid_at) == (
        "grant",
        "decreasing_total",
        10,
        None,
    )
    assert (bought.source, bought.name, bought.effective_at) == ("purchase", "purchased credits", clock.now())
    assert kinds(accounts, acme) == [("grant", 10), ("purchase", 5)]
    assert accounts.ledger_history(acme).entries[-1].note == "welcome"


@pytest.mark.parametrize("credits", [0, -5, 2_000_000_000])
def test_a_grant_must_be_a_positive_whole_number(accounts: AccountStore, credits: int) -> None:
    acme = metered(accounts)

    with pytest.raises(InvalidRequest, match=re.escape("credits must be a whole number in 1..1000000000")):
        accounts.grant_credits(acme, credits)
    with pytest.raises(InvalidRequest, match="days must be more than 0"):
        accounts.grant_credits(acme, 10, days=0)
    assert kinds(accounts, acme) == []


def test_a_grant_with_days_stops_counting_when_it_expires(accounts: AccountStore, clock: FakeClock) -> None:
    acme = metered(accounts)
    week = accounts.grant_credits(acme, 10, days=7)
    accounts.grant_credits(acme, 5)

    assert week.invalid_at == clock.now() + timedelta(days=7)
    clock.advance(7 * DAY - 1)
    assert accounts.balance(acme) == 15
    clock.advance(1)
    assert accounts.balance(acme) == 5


def test_the_daily_free_credits_arrive_once_a_utc_day(accounts: AccountStore, clock: FakeClock) -> None:
    clock.set(datetime(2025, 3, 1, 9, 30, tzinfo=UTC))
    free = accounts.create_account("newcomer").account_id

    assert accounts.balance(free) == 66
    assert accounts.balance(free) == 66
    clock.set(datetime(2025, 3, 1, 23, 59, 59, 999_000, tzinfo=UTC))
    assert accounts.balance(free) == 66
    assert kinds(accounts, free) == [("grant", 66)]

    clock.set(datetime(2025, 3, 2, 0, 0, tzinfo=UTC))
    assert accounts.balance(free) == 66
    assert kinds(accounts, free) == [("grant", 66), ("grant", 66)]
    day = ms(datetime(2025, 3, 1, tzinfo=UTC))
    shown = accounts.resource_packs(free, day, day + 2 * DAY * 1000)
    assert [(p["status"], p["effective_time"], p["invalid_time"]) for p in shown] == [
        ("expired", day, day + DAY * 1000),
        ("online", day + DAY * 1000, day + 2 * DAY * 1000),
    ]
    assert {p["resource_pack_type"] for p in shown} == {"constant_period"}


def test_monthly_credits_arrive_once_a_calendar_month(accounts: AccountStore, clock: FakeClock) -> None:
    clock.set(datetime(2025, 12, 15, tzinfo=UTC))
    studio = accounts.create_account("studio", plan="creator").account_id

    assert accounts.balance(studio) == 660
    clock.set(datetime(2025, 12, 31, 23, 0, tzinfo=UTC))
    assert accounts.balance(studio) == 660
    clock.set(datetime(2026, 1, 1, tzinfo=UTC))
    assert accounts.balance(studio) == 660
    assert kinds(accounts, studio) == [("grant", 660), ("grant", 660)]
    [january] = accounts.resource_packs(studio, ms(clock.now()), ms(clock.now()))
    assert january["invalid_time"] == ms(datetime(2026, 2, 1, tzinfo=UTC))
    assert january["resource_pack_name"] == "creator monthly credits"


# --- expiry ---------------------------------------------------------------------------------------------


def test_the_sweep_writes_off_what_is_left_of_an_expired_pack_once(billed: Billed) -> None:
    acme = billed.member()
    day = billed.accounts.grant_credits(acme.account_id, 10, days=1)
    billed.accounts.grant_credits(acme.account_id, 3)
    spent = billed.accounts.grant_credits(acme.account_id, 4, days=0.5)
    task = billed.video(acme, credits=8)  # all 4 of `spent`, which expires first, then 4 of `day`
    billed.clock.advance(DAY)

    assert billed.accounts.sweep_expired() == 1
    assert billed.accounts.sweep_expired() == 0

    assert billed.balance(acme) == 3
    entries = billed.accounts.ledger_history(acme.account_id).entries
    assert [(e.pack_id, e.amount, e.seq) for e in entries if e.kind == "expiry"] == [(day.pack_id, -6, 1)]
    views = billed.accounts.resource_packs(acme.account_id, 0, ms(billed.clock.now()))
    assert sorted((v["status"], v["remaining_quantity"]) for v in views) == [
        ("expired", 0),
        ("expired", 6),
        ("online", 3),
    ]

    billed.tasks.request_cancel(task.task_id, acme.account_id)  # the refund lands on expired packs
    assert billed.balance(acme) == 3
    assert billed.accounts.sweep_expired() == 2
    assert billed.accounts.sweep_expired() == 0
    assert billed.balance(acme) == 3
    entries = billed.accounts.ledger_history(acme.account_id).entries
    assert sorted((e.pack_id, e.amount, e.seq) for e in entries if e.kind == "expiry") == sorted(
        [(day.pack_id, -6, 1), (day.pack_id, -4, 2), (spent.pack_id, -4, 1)]
    )


# --- /account/costs -------------------------------------------------------------------------------------


def test_resource_packs_show_the_kling_fields(billed: Billed) -> None:
    acme = billed.member()
    start = billed.clock.now()
    month = billed.accounts.purchase_credits(acme.account_id, 100, days=30, name="starter pack")
    forever = billed.accounts.grant_credits(acme.account_id, 5)
    billed.video(acme, credits=105)

    shown = billed.accounts.resource_packs(acme.account_id, ms(start), ms(start) + 1000)

    assert all(set(view) == COSTS_FIELDS for view in shown)
    assert sorted(shown, key=lambda view: -view["total_quantity"]) == [
        {
            "resource_pack_name": "starter pack",
            "resource_pack_id": month.pack_id,
            "resource_pack_type": "decreasing_total",
            "total_quantity": 100,
            "remaining_quantity": 0,
            "purchase_time": ms(start),
            "effective_time": ms(start),
            "invalid_time": ms(start + timedelta(days=30)),
            "status": "runOut",
        },
        {
            "resource_pack_name": "granted credits",
            "resource_pack_id": forever.pack_id,
            "resource_pack_type": "decreasing_total",
            "total_quantity": 5,
            "remaining_quantity": 0,
            "purchase_time": ms(start),
            "effective_time": ms(start),
            "invalid_time": NEVER_MS,
            "status": "runOut",
        },
    ]


def test_resource_packs_filter_by_window_and_name(accounts: AccountStore, clock: FakeClock) -> None:
    acme = metered(accounts)
    old = accounts.grant_credits(acme, 1, days=1, name="old")
    clock.advance(10 * DAY)
    new = accounts.grant_credits(acme, 2, name="new")
    now = ms(clock.now())

    def ids(start: int, end: int, name: str | None = None) -> list[str]:
        return [view["resource_pack_id"] for view in accounts.resource_packs(acme, start, end, name)]

    assert ids(0, now) == [old.pack_id, new.pack_id]
    assert ids(now - 1000, now) == [new.pack_id]
    assert ids(0, now - 1000) == [old.pack_id]
    assert ids(0, now, "new") == [new.pack_id] and ids(0, now, "none") == []
    with pytest.raises(InvalidRequest, match="end_time is before start_time"):
        accounts.resource_packs(acme, now, now - 1)
    with pytest.raises(InvalidRequest, match="start_time must be Unix epoch milliseconds"):
        accounts.resource_packs(acme, -1, now)


def test_a_pack_not_yet_effective_is_to_be_online() -> None:
    now = datetime(2025, 1, 1, tzinfo=UTC)
    later = Pack("p", "a", "n", "decreasing_total", 5, now, now + timedelta(days=1), None, "grant")

    assert pack_status(PackBalance(later, 5), now) == "toBeOnline"
    assert pack_status(PackBalance(later, 5), now + timedelta(days=1)) == "online"


# --- paging and privacy ---------------------------------------------------------------------------------


def test_the_ledger_pages_newest_first(accounts: AccountStore) -> None:
    acme = metered(accounts)
    for credits in range(1, 6):
        accounts.grant_credits(acme, credits)

    page = accounts.ledger_history(acme, offset=1, limit=2)

    assert [entry.amount for entry in page.entries] == [4, 3] and page.total == 5
    ids = [entry.entry_id for entry in accounts.ledger_history(acme).entries]
    assert ids == sorted(ids, reverse=True)  # type: ignore[type-var]
    with pytest.raises(InvalidRequest, match=re.escape("limit 1..1000")):
        accounts.ledger_history(acme, limit=0)


def test_one_accounts_books_and_keys_are_invisible_to_another(billed: Billed) -> None:
    a, b = billed.member("alice", credits=20), billed.member("bob")
    billed.accounts.create_key_pair(a.account_id)
    billed.video(a, credits=5)
    start, end = billed.clock.now() - timedelta(days=1), billed.clock.now() + timedelta(days=1)

    assert billed.accounts.ledger_history(b.account_id).total == 0
    assert billed.accounts.resource_packs(b.account_id, 0, ms(end)) == []
    assert billed.accounts.list_keys(b.account_id) == []
    assert billed.accounts.usage(start, end, account_id=b.account_id) == []
    assert billed.balance(b) == 0 and billed.balance(a) == 15
    billed.accounts.grant_credits(b.account_id, 7)
    assert billed.balance(a) == 15
    assert {e.account_id for e in billed.accounts.ledger_history(a.account_id).entries} == {a.account_id}


def test_credits_of_a_missing_account_are_refused(accounts: AccountStore) -> None:
    calls = [
        lambda: accounts.grant_credits("acc_missing", 5),
        lambda: accounts.purchase_credits("acc_missing", 5),
        lambda: accounts.balance("acc_missing"),
        lambda: accounts.ledger_history("acc_missing"),
        lambda: accounts.resource_packs("acc_missing", 0, 1000),
    ]
    for call in calls:
        with pytest.raises(AccountNotFound, match="no account 'acc_missing'"):
            call()
