"""The few-second caches in front of key and plan lookups: hits inside the window, fresh answers after it."""

from __future__ import annotations

from kinema.accounts import MemoryAccountStore
from kinema.api.keycache import CachedKeys, CachedPlans


class Ticker:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Counting(MemoryAccountStore):
    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        self.lookups += 1
        return super().secret_for(access_key)

    def get_account(self, account_id: str):  # type: ignore[no-untyped-def]
        self.lookups += 1
        return super().get_account(account_id)


def test_a_revoked_key_works_until_the_entry_ages_out_and_unknown_keys_are_cached_too() -> None:
    store, clock = Counting(), Ticker()
    account = store.create_account("acme")
    pair = store.create_key_pair(account.account_id)
    keys = CachedKeys(store, ttl_seconds=5.0, clock=clock)
    assert keys.secret_for(pair.access_key) == (account.account_id, pair.secret_key)
    store.revoke_key(account.account_id, pair.key_id)
    clock.now += 4.9
    assert keys.secret_for(pair.access_key) is not None and store.lookups == 1
    clock.now += 0.1
    assert keys.secret_for(pair.access_key) is None and store.lookups == 2
    for _ in range(3):
        assert keys.secret_for("ak_unknown") is None
    assert store.lookups == 3


def test_plans_are_cached_per_account_for_a_few_seconds() -> None:
    store, clock = Counting(), Ticker()
    account = store.create_account("acme")
    plans = CachedPlans(store, ttl_seconds=5.0, clock=clock)
    first = plans.plan_of(account.account_id)
    assert first is not None and first.name == "free"
    store.set_plan(account.account_id, "pro")
    assert plans.plan_of(account.account_id) == first
    clock.now += 5.0
    found = plans.plan_of(account.account_id)
    assert found is not None and found.name == "pro"
    assert plans.plan_of("acc_missing") is None
