"""Shared pieces of the accounts tests: a metered plan and `Billed`, an account store and a task store
on one backend with the task store billing through `Billing` (the fixtures are in conftest.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from kinema.accounts import (
    Account,
    AccountStore,
    Billing,
    MemoryAccountStore,
    Plan,
    SqlAccountStore,
    open_accounts,
)
from kinema.db.events import TaskEvent, TaskHook
from kinema.jobs import FakeClock, MemoryTaskStore, Task, TaskStore, open_store

# A plan with no allowance, so a test's balance is exactly what it granted.
METERED = Plan(
    "metered",
    video_concurrency=2,
    image_concurrency=4,
    allowed_modes=("std", "pro"),
    max_duration_s=60.0,
)


@dataclass
class Billed:
    """An account store and a task store on one backend, the task store billing through `billing`."""

    accounts: AccountStore
    tasks: TaskStore
    billing: Billing
    clock: FakeClock
    engine: Engine | None  # the database's, None in memory
    open_tasks: Callable[[TaskHook], TaskStore]  # another task store on the backend, with its own hook

    def hook(self, event: TaskEvent) -> None:
        """Call the billing hook once more, in a transaction of its own (a repeated or retried call)."""
        if self.engine is None:
            self.billing.hook(None, event)
            return
        with self.engine.execution_options(kinema_sqlite_begin="IMMEDIATE").begin() as connection:
            self.billing.hook(connection, event)

    def member(self, name: str = "acme", *, credits: int = 0, plan: str = "metered") -> Account:
        account = self.accounts.create_account(name, plan=plan)
        if credits:
            self.accounts.grant_credits(account.account_id, credits)
        return account

    def video(
        self,
        account: Account,
        *,
        credits: int = 10,
        seconds: float = 5.0,
        mode: str = "std",
        model: str = "wan",
        **bill: Any,
    ) -> Task:
        billing = {"credits": credits, "seconds": seconds, "mode": mode, "slots": 1, **bill}
        request = {"prompt": "a red ball", "billing": billing}
        return self.tasks.create(
            account_id=account.account_id, kind="text2video", model=model, request=request
        )

    def images(self, account: Account, n: int, *, credits: int = 1) -> Task:
        billing = {"credits": credits * n, "seconds": 0.0, "mode": "std", "slots": n}
        request = {"prompt": "a red ball", "n": n, "billing": billing}
        return self.tasks.create(
            account_id=account.account_id, kind="text2image", model="wan", request=request
        )

    def balance(self, account: Account) -> int:
        return self.accounts.balance(account.account_id)

    def event(self, task: Task, event: str) -> TaskEvent:
        return TaskEvent(
            event=event,  # type: ignore[arg-type]
            task_id=task.task_id,
            account_id=task.account_id,
            kind=task.kind,
            model=task.model,
            request=dict(task.request),
            attempt=task.attempt,
        )


@contextmanager
def billing_on(url: str | None, clock: FakeClock) -> Iterator[Billed]:
    """Accounts, tasks and billing on the database at `url` (None: in memory), closed after use."""
    opened: list[TaskStore] = []

    def open_tasks(hook: TaskHook) -> TaskStore:
        store: TaskStore
        if url is None:
            store = MemoryTaskStore(clock=clock, hook=hook)
        else:
            store = open_store(url, clock=clock, hook=hook)
        opened.append(store)
        return store

    accounts: AccountStore = (
        MemoryAccountStore(clock=clock) if url is None else open_accounts(url, clock=clock)
    )
    engine = accounts.engine if isinstance(accounts, SqlAccountStore) else None
    billing = Billing(accounts)
    accounts.upsert_plan(METERED)
    try:
        yield Billed(accounts, open_tasks(billing.hook), billing, clock, engine, open_tasks)
    finally:
        for store in opened:
            store.close()
        accounts.close()
