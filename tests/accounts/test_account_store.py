"""The account-store contract, run against every store: in memory, SQLite and Postgres (see conftest.py)."""

from __future__ import annotations

import base64
import re
import time
from collections.abc import Callable
from dataclasses import asdict

import jwt
import pytest

from kinema.accounts import (
    AccountNotFound,
    AccountStore,
    DuplicateAccount,
    KeyNotFound,
)
from kinema.api.auth import authenticate
from kinema.errors import InvalidRequest
from kinema.jobs import FakeClock

OpenAccounts = Callable[[], AccountStore]  # the conftest fixture `open_handle`
URL_SAFE = "[A-Za-z0-9_-]"


# --- accounts -------------------------------------------------------------------------------------------


def test_create_account_makes_a_member_with_an_acc_id(accounts: AccountStore, clock: FakeClock) -> None:
    account = accounts.create_account("acme")

    assert re.fullmatch("acc_[0-9a-f]{16}", account.account_id)
    assert (account.name, account.role, account.disabled) == ("acme", "member", False)
    assert account.created_at == clock.now()
    assert accounts.get_account(account.account_id) == account
    assert accounts.account_by_name("acme") == account


def test_an_admin_account_keeps_its_role(accounts: AccountStore) -> None:
    assert accounts.create_account("ops", role="admin").role == "admin"


def test_unknown_accounts_are_none(accounts: AccountStore) -> None:
    assert accounts.get_account("acc_0000000000000000") is None
    assert accounts.account_by_name("nobody") is None


def test_a_duplicate_name_is_refused_and_creates_nothing(accounts: AccountStore) -> None:
    first = accounts.create_account("acme")

    with pytest.raises(DuplicateAccount, match="an account named 'acme' already exists"):
        accounts.create_account("acme", role="admin")

    assert accounts.list_accounts() == [first]


@pytest.mark.parametrize("name", ["", "a" * 65, "has space", "ümlaut", "semi;colon", "slash/", "trailing\n"])
def test_an_invalid_name_is_refused_with_the_rule(accounts: AccountStore, name: str) -> None:
    rule = re.escape("use 1 to 64 letters, digits or the characters _ . - @")
    with pytest.raises(InvalidRequest, match=rule):
        accounts.create_account(name)
    with pytest.raises(InvalidRequest, match="is not valid"):
        accounts.ensure_account(name)
    assert accounts.list_accounts() == []


@pytest.mark.parametrize("name", ["a", "a" * 64, "ops@example.com", "Team_1.blue-2"])
def test_valid_names_are_accepted(accounts: AccountStore, name: str) -> None:
    assert accounts.create_account(name).name == name


def test_an_unknown_role_is_refused(accounts: AccountStore) -> None:
    with pytest.raises(InvalidRequest, match="role 'owner' is not known; use one of admin, member"):
        accounts.create_account("acme", role="owner")  # type: ignore[arg-type]


def test_accounts_are_listed_by_name(accounts: AccountStore) -> None:
    for name in ("carol", "alice", "bob"):
        accounts.create_account(name)

    assert [account.name for account in accounts.list_accounts()] == ["alice", "bob", "carol"]


def test_ensure_account_creates_once_then_returns_the_same(accounts: AccountStore) -> None:
    created = accounts.ensure_account("acme", role="admin")

    assert created.role == "admin"
    assert accounts.ensure_account("acme") == created  # the existing account is not changed
    assert accounts.list_accounts() == [created]


# --- keys -----------------------------------------------------------------------------------------------


def test_a_key_pair_authenticates_its_account(accounts: AccountStore) -> None:
    account = accounts.create_account("acme")

    pair = accounts.create_key_pair(account.account_id)

    assert re.fullmatch(f"ak_{URL_SAFE}{{24}}", pair.access_key)
    assert re.fullmatch(f"sk_{URL_SAFE}{{40}}", pair.secret_key)
    assert re.fullmatch("key_[0-9a-f]{16}", pair.key_id)
    assert accounts.secret_for(pair.access_key) == (account.account_id, pair.secret_key)


def test_a_static_key_authenticates_its_account(accounts: AccountStore) -> None:
    account = accounts.create_account("acme")

    static = accounts.create_api_key(account.account_id)

    assert re.fullmatch(f"kn_{URL_SAFE}{{40}}", static.api_key)
    assert accounts.account_for_api_key(static.api_key) == account.account_id


def test_unknown_or_mismatched_keys_authenticate_nobody(accounts: AccountStore) -> None:
    account = accounts.create_account("acme")
    pair = accounts.create_key_pair(account.account_id)
    static = accounts.create_api_key(account.account_id)

    assert accounts.secret_for("ak_" + "x" * 24) is None
    assert accounts.account_for_api_key("kn_" + "x" * 40) is None
    assert accounts.secret_for(pair.secret_key) is None  # the secret is not an access key
    assert accounts.secret_for(static.api_key) is None
    assert accounts.account_for_api_key(pair.access_key) is None
    assert accounts.account_for_api_key(pair.secret_key) is None
    assert accounts.secret_for("") is None and accounts.account_for_api_key("") is None


def test_keys_for_a_missing_account_are_refused(accounts: AccountStore) -> None:
    for create in (accounts.create_key_pair, accounts.create_api_key, accounts.list_keys):
        with pytest.raises(AccountNotFound, match="no account 'acc_missing'"):
            create("acc_missing")


def test_every_drawn_key_is_new(accounts: AccountStore) -> None:
    account_id = accounts.create_account("acme").account_id
    pairs = [accounts.create_key_pair(account_id) for _ in range(20)]
    statics = [accounts.create_api_key(account_id) for _ in range(20)]

    drawn = [p.access_key for p in pairs] + [p.secret_key for p in pairs] + [s.api_key for s in statics]
    key_ids = [p.key_id for p in pairs] + [s.key_id for s in statics]
    assert len(set(drawn)) == 60 and len(set(key_ids)) == 40


def test_list_keys_shows_oldest_first_and_never_a_secret(accounts: AccountStore, clock: FakeClock) -> None:
    account_id = accounts.create_account("acme").account_id
    accounts.create_key_pair(accounts.create_account("other").account_id)
    pair, first = accounts.create_key_pair(account_id), clock.now()
    second = clock.advance(1)
    static = accounts.create_api_key(account_id)

    listed = accounts.list_keys(account_id)

    assert [(k.key_id, k.kind, k.account_id) for k in listed] == [
        (pair.key_id, "pair", account_id),
        (static.key_id, "static", account_id),
    ]
    assert (listed[0].access_key, listed[0].prefix) == (pair.access_key, pair.access_key[:7])
    assert (listed[1].access_key, listed[1].prefix) == (None, static.api_key[:7])
    assert [k.created_at for k in listed] == [first, second]
    shown = repr([asdict(k) for k in listed])
    assert pair.secret_key not in shown and static.api_key not in shown
    assert not any(k.revoked for k in listed)


def test_a_revoked_key_stops_authenticating_and_others_keep_working(
    accounts: AccountStore, clock: FakeClock
) -> None:
    account_id = accounts.create_account("acme").account_id
    pair, kept = accounts.create_key_pair(account_id), accounts.create_key_pair(account_id)
    static = accounts.create_api_key(account_id)
    revoked_at = clock.advance(5)

    info = accounts.revoke_key(account_id, pair.key_id)
    accounts.revoke_key(account_id, static.key_id)

    assert (info.key_id, info.revoked_at, info.revoked) == (pair.key_id, revoked_at, True)
    assert accounts.secret_for(pair.access_key) is None
    assert accounts.account_for_api_key(static.api_key) is None
    assert accounts.secret_for(kept.access_key) == (account_id, kept.secret_key)
    listed = {k.key_id: k.revoked_at for k in accounts.list_keys(account_id)}
    assert listed == {pair.key_id: revoked_at, kept.key_id: None, static.key_id: revoked_at}


def test_revoking_twice_keeps_the_first_time(accounts: AccountStore, clock: FakeClock) -> None:
    account_id = accounts.create_account("acme").account_id
    pair = accounts.create_key_pair(account_id)
    first = accounts.revoke_key(account_id, pair.key_id)
    clock.advance(60)

    assert accounts.revoke_key(account_id, pair.key_id).revoked_at == first.revoked_at


def test_another_accounts_key_is_not_found_and_keeps_working(accounts: AccountStore) -> None:
    mine = accounts.create_account("acme").account_id
    theirs = accounts.create_account("rival").account_id
    pair = accounts.create_key_pair(theirs)

    with pytest.raises(KeyNotFound, match=f"no key '{pair.key_id}' in account '{mine}'"):
        accounts.revoke_key(mine, pair.key_id)
    with pytest.raises(KeyNotFound):
        accounts.revoke_key(mine, "key_0000000000000000")

    assert accounts.secret_for(pair.access_key) == (theirs, pair.secret_key)


def test_a_disabled_accounts_keys_stop_until_it_is_enabled(accounts: AccountStore) -> None:
    account_id = accounts.create_account("acme").account_id
    pair, static = accounts.create_key_pair(account_id), accounts.create_api_key(account_id)

    disabled = accounts.set_disabled(account_id, True)

    assert disabled.disabled and accounts.get_account(account_id) == disabled
    assert accounts.secret_for(pair.access_key) is None
    assert accounts.account_for_api_key(static.api_key) is None
    assert not accounts.set_disabled(account_id, False).disabled
    assert accounts.secret_for(pair.access_key) == (account_id, pair.secret_key)
    assert accounts.account_for_api_key(static.api_key) == account_id


def test_changing_a_missing_account_is_refused(accounts: AccountStore) -> None:
    with pytest.raises(AccountNotFound):
        accounts.set_disabled("acc_missing", True)
    with pytest.raises(AccountNotFound):
        accounts.set_webhook_secret("acc_missing")
    with pytest.raises(AccountNotFound):
        accounts.webhook_secret("acc_missing")


# --- webhook secrets ------------------------------------------------------------------------------------


def test_a_webhook_secret_is_standard_webhooks_form_and_can_be_rotated(accounts: AccountStore) -> None:
    account_id = accounts.create_account("acme").account_id
    assert accounts.webhook_secret(account_id) is None

    first = accounts.set_webhook_secret(account_id)
    assert first.startswith("whsec_") and len(base64.b64decode(first[6:], validate=True)) == 24
    assert accounts.webhook_secret(account_id) == first

    second = accounts.set_webhook_secret(account_id)
    assert second != first and accounts.webhook_secret(account_id) == second


# --- with the API and across handles --------------------------------------------------------------------


def test_the_lookups_plug_into_the_apis_authenticate(accounts: AccountStore) -> None:
    account_id = accounts.create_account("acme").account_id
    pair, static = accounts.create_key_pair(account_id), accounts.create_api_key(account_id)
    now = int(time.time())
    token = jwt.encode({"iss": pair.access_key, "exp": now + 1800, "nbf": now - 5}, pair.secret_key, "HS256")
    lookups = {"secret_for": accounts.secret_for, "account_for_api_key": accounts.account_for_api_key}

    by_jwt = authenticate(f"Bearer {token}", **lookups)
    by_static = authenticate(f"Bearer {static.api_key}", **lookups)

    assert (by_jwt.account_id, by_jwt.access_key) == (account_id, pair.access_key)
    assert (by_static.account_id, by_static.access_key) == (account_id, None)


def test_a_second_handle_sees_the_first_handles_writes(open_handle: OpenAccounts) -> None:
    cli, server = open_handle(), open_handle()
    account = cli.ensure_account("acme")
    pair = cli.create_key_pair(account.account_id)

    assert server.account_by_name("acme") == account
    assert server.secret_for(pair.access_key) == (account.account_id, pair.secret_key)
    cli.revoke_key(account.account_id, pair.key_id)
    assert server.secret_for(pair.access_key) is None
