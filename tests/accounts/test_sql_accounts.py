"""What only the SQL account store must do: keep static keys as hashes only, keep the secret keys that
verify signatures, settle racing creators on one account, and stay a torch-free leaf."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import pytest
from sqlalchemy import text

from dbfixtures import SQL_BACKENDS
from kinema.accounts import Account, SqlAccountStore, open_accounts

over_sql = pytest.mark.parametrize("sql_url", SQL_BACKENDS, indirect=True)


@pytest.fixture
def stores(sql_url: str) -> Iterator[list[SqlAccountStore]]:
    """Two handles on one database, each with its own connection pool, as two processes would have."""
    with ExitStack() as stack:
        opened = [open_accounts(sql_url) for _ in range(2)]
        for store in opened:
            stack.callback(store.close)
        yield opened


@over_sql
def test_a_static_key_is_stored_only_as_its_hash(stores: list[SqlAccountStore]) -> None:
    store = stores[0]
    account_id = store.create_account("acme").account_id
    static = store.create_api_key(account_id)

    with store.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM api_keys")).mappings().one()

    assert row["api_key_hash"] == hashlib.sha256(static.api_key.encode()).hexdigest()
    assert static.api_key not in {str(value) for value in row.values()}
    assert (row["kind"], row["secret"], row["access_key"]) == ("static", None, None)


@over_sql
def test_a_pairs_secret_is_stored_so_signatures_can_be_verified(stores: list[SqlAccountStore]) -> None:
    store = stores[0]
    pair = store.create_key_pair(store.create_account("acme").account_id)

    with store.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM api_keys")).mappings().one()

    assert (row["kind"], row["access_key"], row["secret"], row["api_key_hash"]) == (
        "pair",
        pair.access_key,
        pair.secret_key,
        None,
    )


@over_sql
def test_racing_ensure_account_calls_settle_on_one_account(stores: list[SqlAccountStore]) -> None:
    start = threading.Barrier(8, timeout=30)

    def ensure(index: int) -> Account:
        start.wait()
        return stores[index % 2].ensure_account("acme")

    with ThreadPoolExecutor(8) as pool:
        found = list(pool.map(ensure, range(8), timeout=120))

    assert len({account.account_id for account in found}) == 1
    assert stores[0].list_accounts() == [found[0]]


def test_importing_the_account_store_does_not_import_torch() -> None:
    code = "import sys, kinema.accounts; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"
