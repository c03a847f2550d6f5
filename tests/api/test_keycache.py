"""The few-second caches in front of key and plan lookups: hits inside the window, fresh answers after it."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import jwt
import pytest
from apikit import make_api

from kinema.accounts import MemoryAccountStore
from kinema.api.keycache import CachedKeys, CachedPlans, NotCached


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


def test_fresh_lookups_answer_only_from_the_window_and_say_so_otherwise() -> None:
    store, clock = Counting(), Ticker()
    account = store.create_account("acme")
    pair = store.create_key_pair(account.account_id)
    keys, plans = CachedKeys(store, ttl_seconds=5.0, clock=clock), CachedPlans(store, clock=clock)
    with pytest.raises(NotCached):
        keys.fresh_secret_for(pair.access_key)
    assert not plans.has_fresh(account.account_id)
    keys.secret_for(pair.access_key)
    plans.plan_of(account.account_id)
    assert keys.fresh_secret_for(pair.access_key) == (account.account_id, pair.secret_key)
    assert plans.has_fresh(account.account_id) and store.lookups == 2
    clock.now += 5.0
    with pytest.raises(NotCached):
        keys.fresh_secret_for(pair.access_key)
    with pytest.raises(NotCached):
        keys.fresh_account_for_api_key("kn_unknown")
    assert not plans.has_fresh(account.account_id) and store.lookups == 2


class OffTheLoop(MemoryAccountStore):
    """Records, per lookup, whether it ran where an event loop was running (it must not)."""

    def __init__(self) -> None:
        super().__init__()
        self.on_loop: list[tuple[str, bool]] = []

    def _note(self, what: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.on_loop.append((what, False))
        else:
            self.on_loop.append((what, True))

    def secret_for(self, access_key: str) -> tuple[str, str] | None:
        self._note("secret_for")
        return super().secret_for(access_key)

    def get_account(self, account_id: str):  # type: ignore[no-untyped-def]
        self._note("get_account")
        return super().get_account(account_id)


def test_key_and_plan_misses_are_read_on_the_thread_pool_never_on_the_loop(tmp_path: Path) -> None:
    accounts = OffTheLoop()
    account = accounts.create_account("acme", plan="unlimited")  # two creates in a row
    pair = accounts.create_key_pair(account.account_id)
    now = int(time.time())
    jwt_token = jwt.encode({"iss": pair.access_key, "exp": now + 600}, pair.secret_key, algorithm="HS256")
    headers = {"Authorization": f"Bearer {jwt_token}"}
    for api in make_api(tmp_path, accounts):
        api.ctx.keys = CachedKeys(accounts)
        body = {"kind": "text2video", "model": "fake", "prompt": "a red circle moving right"}
        created = api.client.post("/api/v1/tasks", json=body, headers=headers)
        assert created.status_code == 200, created.text
        assert ("secret_for", False) in accounts.on_loop and ("get_account", False) in accounts.on_loop
        assert all(not on_loop for _, on_loop in accounts.on_loop)
        seen = len(accounts.on_loop)
        task_id = created.json()["data"]["id"]
        assert api.client.get(f"/api/v1/tasks/{task_id}", headers=headers).status_code == 200
        assert api.client.post("/api/v1/tasks", json=body, headers=headers).status_code == 200
        assert len(accounts.on_loop) == seen  # both answered from the caches
        wrong = {"Authorization": "Bearer kn_not_a_key"}
        assert api.client.get(f"/api/v1/tasks/{task_id}", headers=wrong).json()["code"] == 1002
