"""kill -9 between the charge and the enqueue: the charge and the task share one transaction, so a
process killed after the charge is written but before the commit leaves neither (SQLite and Postgres)."""

from __future__ import annotations

import signal
import subprocess
import sys
from contextlib import closing
from pathlib import Path

import pytest
from billingkit import METERED

from dbfixtures import SQL_BACKENDS
from kinema.accounts import Billing, open_accounts
from kinema.jobs import open_store

CHILD = Path(__file__).with_name("kill_child.py")


@pytest.mark.parametrize("sql_url", SQL_BACKENDS, indirect=True)
def test_kill_9_between_charge_and_enqueue_loses_neither_credit_nor_makes_a_task(sql_url: str) -> None:
    with closing(open_accounts(sql_url)) as accounts:
        accounts.upsert_plan(METERED)
        acme = accounts.create_account("acme", plan="metered")
        accounts.grant_credits(acme.account_id, 30)

    child = subprocess.run(
        [sys.executable, str(CHILD), sql_url, acme.account_id], capture_output=True, text=True, timeout=120
    )

    assert child.returncode == -signal.SIGKILL, child.stderr
    assert "charged" in child.stdout and "not reached" not in child.stdout
    with closing(open_accounts(sql_url)) as accounts:
        assert accounts.balance(acme.account_id) == 30
        assert [e.kind for e in accounts.ledger_history(acme.account_id).entries] == ["grant"]
        store = open_store(sql_url, hook=Billing(accounts).hook)
        try:
            assert store.list(acme.account_id).total == 0
            # The database is not left locked: the next create goes through and is charged once.
            bill = {"credits": 10, "seconds": 5.0, "mode": "std", "slots": 1}
            store.create(
                account_id=acme.account_id, kind="text2video", model="wan", request={"billing": bill}
            )
            assert accounts.balance(acme.account_id) == 20 and store.list(acme.account_id).total == 1
        finally:
            store.close()
