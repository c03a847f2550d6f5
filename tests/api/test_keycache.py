"""The few-second caches in front of key and plan lookups: hits inside the window, fresh answers after it."""

from __future__ import annotations

from collections.abc import Callable

from kinema.accounts import MemoryAccountStore
from kinema.api.keycache import CachedKeys, CachedPlans


class Jobs:
    """Background refreshes, held until the test runs them."""

    def __init__(self) -> None:
        self.pending: list[Callable[[], None]] = []

    def __call__(self, job: Callable[[], None]) -> None:
        self.pending.append(job)

    def run(self) -> None:
        jobs, self.pending = self.pending, []
        for job in jobs:
            job()


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
    jobs = Jobs()
    keys = CachedKeys(store, ttl_seconds=5.0, clock=clock, refresh=jobs)
    assert keys.secret_for(pair.access_key) == (account.account_id, pair.secret_key)
    store.revoke_key(account.account_id, pair.key_id)
    clock.now += 4.9
    assert keys.secret_for(pair.access_key) is not None and store.lookups == 1  # its reload is still queued
    clock.now += 0.1
    assert keys.secret_for(pair.access_key) is None and store.lookups == 2  # never older than the TTL
    for _ in range(3):
        assert keys.secret_for("ak_unknown") is None
    assert store.lookups == 3


def test_plans_are_cached_per_account_for_a_few_seconds() -> None:
    store, clock = Counting(), Ticker()
    account = store.create_account("acme")
    plans = CachedPlans(store, ttl_seconds=5.0, clock=clock, refresh=Jobs())
    first = plans.plan_of(account.account_id)
    assert first is not None and first.name == "free"
    store.set_plan(account.account_id, "pro")
    assert plans.plan_of(account.account_id) == first
    clock.now += 5.0
    found = plans.plan_of(account.account_id)
    assert found is not None and found.name == "pro"
    assert plans.plan_of("acc_missing") is None


def test_a_key_in_steady_use_is_reloaded_in_the_background_once_and_never_on_the_callers_thread() -> None:
    store, clock, jobs = Counting(), Ticker(), Jobs()
    account = store.create_account("acme")
    pair = store.create_key_pair(account.account_id)
    keys = CachedKeys(store, ttl_seconds=5.0, clock=clock, refresh=jobs)
    found = (account.account_id, pair.secret_key)
    assert keys.secret_for(pair.access_key) == found and store.lookups == 1
    clock.now += 3.0
    assert keys.secret_for(pair.access_key) == found and not jobs.pending  # young: a plain hit
    clock.now += 1.0  # 4 s old: hits go on, one reload is queued however many hits there are
    for _ in range(5):
        assert keys.secret_for(pair.access_key) == found
    assert len(jobs.pending) == 1 and store.lookups == 1
    store.revoke_key(account.account_id, pair.key_id)
    jobs.run()
    assert store.lookups == 2
    clock.now += 2.0  # 6 s after the first load, 2 s after the reload: the reload's answer
    assert keys.secret_for(pair.access_key) is None and store.lookups == 2
    for _ in range(20):  # kept in use: every reload happens in the background
        clock.now += 1.0
        keys.secret_for(pair.access_key)
        jobs.run()
    assert store.lookups == 2 + 20 // 4


class Failing(Counting):
    def __init__(self) -> None:
        super().__init__()
        self.down = False

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        if self.down:
            raise ConnectionError("database unreachable")
        return super().secret_for(access_key)


def test_a_failed_background_reload_leaves_the_entry_to_age_out_and_the_next_caller_sees_the_error() -> None:
    store, clock, jobs = Failing(), Ticker(), Jobs()
    account = store.create_account("acme")
    pair = store.create_key_pair(account.account_id)
    keys = CachedKeys(store, ttl_seconds=5.0, clock=clock, refresh=jobs)
    keys.secret_for(pair.access_key)
    store.down = True
    clock.now += 4.0
    assert keys.secret_for(pair.access_key) is not None
    jobs.run()  # fails quietly
    clock.now += 0.5
    assert keys.secret_for(pair.access_key) is not None and len(jobs.pending) == 1  # a new try is queued
    clock.now += 0.5
    try:
        keys.secret_for(pair.access_key)
    except ConnectionError:
        pass
    else:
        raise AssertionError("an entry older than the TTL was served")
    store.down = False
    jobs.run()
    assert keys.secret_for(pair.access_key) == (account.account_id, pair.secret_key)


def test_the_default_refresher_runs_reloads_on_another_thread() -> None:
    import threading

    store, clock = Counting(), Ticker()
    account = store.create_account("acme")
    pair = store.create_key_pair(account.account_id)
    threads: list[str] = []
    reloaded = threading.Event()

    class Watching(Counting):
        def secret_for(self, access_key: str) -> tuple[str, str] | None:
            threads.append(threading.current_thread().name)
            if len(threads) == 2:
                reloaded.set()
            return store.secret_for(access_key)

    keys = CachedKeys(Watching(), ttl_seconds=5.0, clock=clock)
    keys.secret_for(pair.access_key)
    clock.now += 4.0
    keys.secret_for(pair.access_key)
    assert reloaded.wait(10)
    assert threads[0] == threading.current_thread().name and threads[1].startswith("kinema-keycache")
