"""One migration chain for the whole database: it ships in the package, builds exactly the ORM tables of
every owner (tasks, workers and callbacks; accounts, keys, plans and credits), backfills what a new
column needs from the rows already there, and whichever store opens first migrates it all."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, Integer, String, column, inspect, select, table

import kinema.accounts.schema
import kinema.jobs.schema
from dbfixtures import SQL_BACKENDS
from kinema.accounts import open_accounts
from kinema.db import Base, JSONDocument, UTCDateTime, make_engine, migrate
from kinema.jobs import open_store
from kinema.jobs.transitions import QUEUE_FLOOR, queue_place

TABLES = {
    "tasks",
    "workers",
    "callbacks",
    "accounts",
    "api_keys",
    "web_sessions",
    "plans",
    "credit_packs",
    "credit_ledger",
    "task_charges",
}
over_sql = pytest.mark.parametrize("sql_url", SQL_BACKENDS, indirect=True)


@pytest.fixture
def migrated(sql_url: str) -> Iterator[Engine]:
    engine = make_engine(sql_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


def test_the_migrations_ship_inside_the_package_as_one_chain() -> None:
    folder = files("kinema.db") / "migrations"
    assert (folder / "env.py").is_file() and (folder / "script.py.mako").is_file()
    chain = ScriptDirectory.from_config(migrate.alembic_config())
    revisions = [script.revision for script in chain.walk_revisions()]

    assert len(chain.get_heads()) == 1, f"the chain forks: heads {chain.get_heads()}"
    assert revisions[-4:] == ["0004", "0003", "0002", "0001"] and migrate.head() == revisions[0]


def test_the_orm_models_of_every_owner_share_one_metadata() -> None:
    assert kinema.jobs.schema.TaskRow.metadata is kinema.accounts.schema.AccountRow.metadata is Base.metadata
    assert set(Base.metadata.tables) == TABLES


@over_sql
def test_migrations_build_exactly_the_orm_schema(migrated: Engine) -> None:
    with migrated.connect() as connection:
        assert set(inspect(connection).get_table_names()) == TABLES | {"alembic_version"}
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)

    assert differences == []


# The tasks table as revision 0003 left it (before queue_at), for writing rows that predate 0004.
TASKS_0003 = table(
    "tasks",
    *(column(name, String()) for name in ("task_id", "account_id", "kind", "model", "status", "stage")),
    *(column(name, Integer()) for name in ("priority", "attempt", "max_attempts")),
    *(column(name, JSONDocument) for name in ("request", "outputs")),
    column("cancel_requested"),
    column("progress"),
    *(column(name, UTCDateTime()) for name in ("created_at", "updated_at")),
)
QUEUE_AT = table("tasks", column("task_id", String()), column("queue_at", UTCDateTime()))


@over_sql
def test_0004_places_the_tasks_already_queued_as_the_store_would(sql_url: str) -> None:
    engine = make_engine(sql_url)
    migrate.upgrade(engine, "0003")
    created = datetime(2025, 6, 1, 12, 30, 15, 123_000, tzinfo=UTC)
    priorities = [0, 1, 3, -2, 1000, 2**31 - 1, -(2**31)]
    rows = [
        {
            "task_id": str(index),
            "account_id": "acme",
            "kind": "text2video",
            "model": "builtin",
            "status": "submitted",
            "stage": "",
            "priority": priority,
            "attempt": 0,
            "max_attempts": 3,
            "request": {},
            "outputs": [],
            "cancel_requested": False,
            "progress": 0.0,
            "created_at": created + timedelta(seconds=index),
            "updated_at": created,
        }
        for index, priority in enumerate(priorities)
    ]
    with engine.begin() as connection:
        connection.execute(TASKS_0003.insert(), rows)

    migrate.upgrade(engine, "0004")

    with engine.connect() as connection:
        placed = dict(connection.execute(select(QUEUE_AT.c.task_id, QUEUE_AT.c.queue_at)).all())
    engine.dispose()
    expected = {row["task_id"]: queue_place(row["created_at"], row["priority"], 60) for row in rows}
    assert placed == expected
    assert placed["5"] == QUEUE_FLOOR and placed["0"] == created  # clamped; unmoved at priority 0


@over_sql
def test_0004_downgrades_to_the_old_queue_index_and_upgrades_again(sql_url: str) -> None:
    engine = make_engine(sql_url)
    migrate.upgrade(engine, "0004")
    migrate.downgrade(engine, "0003")
    with engine.connect() as connection:
        inspector = inspect(connection)
        assert "queue_at" not in {column["name"] for column in inspector.get_columns("tasks")}
        (queue,) = [index for index in inspector.get_indexes("tasks") if index["name"] == "ix_tasks_queue"]
        assert queue["column_names"][0] == "status" and "created_at" in queue["column_names"]

    migrate.upgrade(engine)

    with engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
    engine.dispose()


@over_sql
def test_0007_downgrades_without_the_callback_outbox_and_upgrades_again(migrated: Engine) -> None:
    migrate.downgrade(migrated, "0006")
    with migrated.connect() as connection:
        assert "callbacks" not in inspect(connection).get_table_names()

    migrate.upgrade(migrated)

    with migrated.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


@over_sql
def test_whichever_store_opens_first_migrates_the_whole_database(sql_url: str) -> None:
    with closing(open_accounts(sql_url)) as accounts:
        assert migrate.current(accounts.engine) == migrate.head()
        account = accounts.create_account("acme")

        with closing(open_store(sql_url)) as tasks, closing(open_accounts(sql_url)) as again:
            task = tasks.create(account_id=account.account_id, kind="text2image", model="builtin", request={})
            tasks.register_worker("w1", [{"id": "builtin"}])

            assert tasks.get(task.task_id, account.account_id) == task
            assert again.account_by_name("acme") == account  # opening again changed nothing


def test_importing_the_database_package_does_not_import_torch() -> None:
    code = "import sys, kinema.db, kinema.db.migrate; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "False"


@over_sql
@pytest.mark.parametrize("back_to", ["0005", "0007"])
def test_the_newest_migrations_downgrade_and_upgrade_again(migrated: Engine, back_to: str) -> None:
    """0006 (passwords, web_sessions) and 0008 (the account-status index) undo cleanly and redo."""
    migrate.downgrade(migrated, back_to)
    with migrated.connect() as connection:
        tables = inspect(connection).get_table_names()
        indexes = {i["name"] for i in inspect(connection).get_indexes("tasks")}
    assert ("web_sessions" in tables) == (back_to != "0005")
    assert "ix_tasks_account_status" not in indexes

    migrate.upgrade(migrated)

    with migrated.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []
