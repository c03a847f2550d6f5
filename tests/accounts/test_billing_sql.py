"""What only SQL billing must do: share the task's transaction, keep a balance from going negative under
racing creates, make double charges and refunds impossible in the schema itself, and migrate cleanly."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from billingkit import Billed
from sqlalchemy import Connection, Engine, event, text
from sqlalchemy.exc import IntegrityError

import kinema.accounts.schema
from dbfixtures import SQL_BACKENDS
from kinema.accounts import DEFAULT_PLANS, ConcurrencyExceeded, InsufficientCredits, Plan, open_accounts
from kinema.db import make_engine, migrate
from kinema.db.events import TaskEvent

MY_TABLES = {"plans", "credit_packs", "credit_ledger", "task_charges", "accounts"}
over_sql = pytest.mark.parametrize("sql_url", SQL_BACKENDS, indirect=True)


def writer(engine: Engine) -> Engine:
    return engine.execution_options(kinema_sqlite_begin="IMMEDIATE")


def created(account_id: str, task_id: str = "1000000000000000001", credits: int = 10) -> TaskEvent:
    request: dict[str, Any] = {"billing": {"credits": credits, "seconds": 5.0, "mode": "std", "slots": 1}}
    return TaskEvent("created", task_id, account_id, "text2video", "wan", request, 0)


def copy_entries(kind: str) -> str:
    """SQL that inserts a copy of every ledger entry of `kind` (the key `entry_id` drawn afresh)."""
    columns = "account_id, pack_id, kind, amount, task_id, seq, created_at, note"
    return f"INSERT INTO credit_ledger ({columns}) SELECT {columns} FROM credit_ledger WHERE kind = '{kind}'"


def count(connection: Connection, table: str) -> int:
    return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


# --- one transaction ------------------------------------------------------------------------------------


def test_charging_an_unmetered_create_takes_two_statements(billed_sql: Billed) -> None:
    """Every round trip of a create waits for a turn of the busy event loop: the account, its plan and
    the task's charges come in one locked read, then the charge itself."""
    acme = billed_sql.member(plan="unlimited")
    assert billed_sql.engine is not None
    seen: list[str] = []
    with writer(billed_sql.engine).connect() as connection, connection.begin():
        event.listen(connection, "before_cursor_execute", lambda *a: seen.append(a[2].split()[0]))
        billed_sql.billing.hook(connection, created(acme.account_id, credits=0))
        statements = list(seen)
        assert count(connection, "task_charges") == 1
    assert statements == ["SELECT", "INSERT"]


def test_a_charge_made_in_a_transaction_that_rolls_back_leaves_nothing(billed_sql: Billed) -> None:
    acme = billed_sql.member(credits=30)
    assert billed_sql.engine is not None

    with writer(billed_sql.engine).connect() as connection:
        transaction = connection.begin()
        billed_sql.billing.hook(connection, created(acme.account_id))
        assert (count(connection, "credit_ledger"), count(connection, "task_charges")) == (2, 1)
        transaction.rollback()

    assert billed_sql.balance(acme) == 30
    with billed_sql.engine.connect() as connection:
        assert (count(connection, "credit_ledger"), count(connection, "task_charges")) == (1, 0)


def test_what_the_hook_wrote_rolls_back_with_a_failed_task_change(billed_sql: Billed) -> None:
    acme = billed_sql.member(credits=30)

    def bill_then_fail(connection: Connection | None, event: TaskEvent) -> None:
        billed_sql.billing.hook(connection, event)
        raise RuntimeError("the disk is full")

    with pytest.raises(RuntimeError, match="the disk is full"):
        billed_sql.open_tasks(bill_then_fail).create(
            account_id=acme.account_id, kind="text2video", model="wan", request={"billing": {"credits": 10}}
        )

    assert billed_sql.balance(acme) == 30
    assert billed_sql.tasks.list(acme.account_id).total == 0


def test_the_sql_hook_refuses_to_bill_outside_a_transaction(billed_sql: Billed) -> None:
    acme = billed_sql.member(credits=30)

    with pytest.raises(Exception, match="bills inside the task store's transaction"):
        billed_sql.billing.hook(None, created(acme.account_id))


# --- racing creates -------------------------------------------------------------------------------------


def test_racing_creates_never_spend_more_than_the_balance(billed_sql: Billed) -> None:
    billed_sql.accounts.upsert_plan(Plan("wide", video_concurrency=100))
    acme = billed_sql.member(credits=25, plan="wide")
    stores = [billed_sql.tasks, billed_sql.open_tasks(billed_sql.billing.hook)]  # two pools, two "servers"
    start = threading.Barrier(8, timeout=60)

    def create_ten(thread: int) -> tuple[int, int]:
        start.wait()
        made = refused = 0
        for _ in range(10):
            try:
                stores[thread % 2].create(
                    account_id=acme.account_id,
                    kind="text2video",
                    model="wan",
                    request={"billing": {"credits": 1, "seconds": 5.0, "mode": "std", "slots": 1}},
                )
                made += 1
            except InsufficientCredits:
                refused += 1
        return made, refused

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(create_ten, range(8), timeout=240))

    assert sum(made for made, _ in results) == 25 and sum(refused for _, refused in results) == 55
    assert billed_sql.tasks.list(acme.account_id).total == 25
    assert billed_sql.balance(acme) == 0
    assert billed_sql.engine is not None
    with billed_sql.engine.connect() as connection:
        per_pack = connection.execute(
            text("SELECT sum(amount) FROM credit_ledger GROUP BY pack_id")
        ).scalars()
        assert list(per_pack) == [0]
        assert count(connection, "task_charges") == 25


def test_racing_creates_never_run_more_tasks_than_the_plan_allows(billed_sql: Billed) -> None:
    billed_sql.accounts.upsert_plan(Plan("three", video_concurrency=3))
    acme = billed_sql.member(credits=100, plan="three")
    stores = [billed_sql.tasks, billed_sql.open_tasks(billed_sql.billing.hook)]
    start = threading.Barrier(8, timeout=60)

    def create(thread: int) -> bool:
        start.wait()
        try:
            stores[thread % 2].create(
                account_id=acme.account_id,
                kind="text2video",
                model="wan",
                request={"billing": {"credits": 1}},
            )
        except ConcurrencyExceeded:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        made = list(pool.map(create, range(8), timeout=240))

    assert made.count(True) == 3 and billed_sql.balance(acme) == 97


# --- the schema forbids repeats -------------------------------------------------------------------------


def test_the_schema_refuses_a_second_charge_or_refund_of_the_same_rows(billed_sql: Billed) -> None:
    acme = billed_sql.member(credits=30)
    task = billed_sql.video(acme, credits=10)
    billed_sql.tasks.request_cancel(task.task_id, acme.account_id)
    assert billed_sql.engine is not None
    copies = {
        "charge entry": copy_entries("charge"),
        "refund entry": copy_entries("refund"),
        "grant entry": copy_entries("grant"),
        "task charge": "INSERT INTO task_charges SELECT * FROM task_charges WHERE kind = 'charge'",
        "task refund": "INSERT INTO task_charges SELECT * FROM task_charges WHERE kind = 'refund'",
    }
    for what, statement in copies.items():
        with pytest.raises(IntegrityError), writer(billed_sql.engine).begin() as connection:
            connection.execute(text(statement))
            pytest.fail(f"a second {what} was accepted")


def test_the_schema_refuses_a_second_daily_pack_and_a_second_expiry(billed_sql: Billed) -> None:
    free = billed_sql.member("newcomer", plan="free")
    assert billed_sql.balance(free) == 66
    billed_sql.clock.advance(86_400)
    assert billed_sql.accounts.sweep_expired() == 1
    assert billed_sql.engine is not None
    copies = ["INSERT INTO credit_packs SELECT * FROM credit_packs", copy_entries("expiry")]
    for statement in copies:
        with pytest.raises(IntegrityError), writer(billed_sql.engine).begin() as connection:
            connection.execute(text(statement))


def test_the_schema_refuses_a_charge_that_adds_credits(billed_sql: Billed) -> None:
    acme = billed_sql.member(credits=30)
    billed_sql.video(acme, credits=10)
    assert billed_sql.engine is not None

    with pytest.raises(IntegrityError), writer(billed_sql.engine).begin() as connection:
        connection.execute(text("UPDATE credit_ledger SET amount = 10 WHERE kind = 'charge'"))


# --- migration ------------------------------------------------------------------------------------------


@over_sql
def test_the_migration_builds_exactly_the_orm_tables_of_plans_and_credits(sql_url: str) -> None:
    engine = make_engine(sql_url)
    migrate.upgrade(engine)

    def mine(item: Any, name: str | None, kind: str, reflected: bool, compare_to: Any) -> bool:
        table = name if kind == "table" else getattr(getattr(item, "table", None), "name", None)
        return table in MY_TABLES

    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"include_object": mine})
            assert compare_metadata(context, kinema.accounts.schema.Base.metadata) == []
    finally:
        engine.dispose()


@over_sql
def test_upgrading_puts_existing_accounts_on_plans_and_seeds_the_defaults(sql_url: str) -> None:
    engine = make_engine(sql_url)
    config = migrate.alembic_config()
    with writer(engine).begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "0004")
        now = datetime(2025, 1, 1, tzinfo=UTC)
        for account_id, role in (("acc_1", "admin"), ("acc_2", "member")):
            connection.execute(
                text(
                    "INSERT INTO accounts (account_id, name, role, disabled, created_at) "
                    "VALUES (:id, :name, :role, false, :now)"
                ),
                {"id": account_id, "name": account_id, "role": role, "now": now},
            )
    engine.dispose()

    store = open_accounts(sql_url)
    try:
        plans = {a.name: a.plan for a in store.list_accounts()}
        assert plans == {"acc_1": "unlimited", "acc_2": "free"}
        assert store.list_plans() == sorted(DEFAULT_PLANS, key=lambda plan: (plan.priority, plan.name))
    finally:
        store.close()
