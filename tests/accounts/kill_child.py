"""Run by test_billing_kill: create one task whose billing hook has just written the charge, then die by
SIGKILL before the transaction commits (as `kill -9` between charge and enqueue would)."""

from __future__ import annotations

import os
import signal
import sys

from kinema.accounts import Billing, open_accounts
from kinema.db.events import TaskEvent
from kinema.jobs import open_store


def main(url: str, account_id: str) -> None:
    accounts = open_accounts(url)
    billing = Billing(accounts)

    def charge_then_die(connection: object, event: TaskEvent) -> None:
        billing.hook(connection, event)  # type: ignore[arg-type]
        print("charged", flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    store = open_store(url, hook=charge_then_die)
    bill = {"credits": 10, "seconds": 5.0, "mode": "std", "slots": 1}
    store.create(account_id=account_id, kind="text2video", model="wan", request={"billing": bill})
    print("not reached", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
