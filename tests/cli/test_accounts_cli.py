"""`kinema accounts`: accounts, plans, credits and usage in the server's database, without torch; every
mistake is one sentence and exit status 2."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from dbfixtures import postgres_server, postgres_url
from kinema.accounts import Billing, open_accounts
from kinema.cli.main import app
from kinema.jobs import FakeClock, open_store

__all__ = ["postgres_server", "postgres_url"]

runner = CliRunner()


def one_line(output: str) -> str:
    """The console wraps long errors; the tests read them as one line."""
    return " ".join(output.split())


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Run in an empty folder with no KINEMA_* database settings from the caller's environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KINEMA_DATA_DIR", raising=False)
    monkeypatch.delenv("KINEMA_DATABASE_URL", raising=False)
    yield tmp_path


@pytest.fixture
def url(tmp_path: Path) -> str:
    """The database the commands use by default (./kinema-data/kinema.db)."""
    (tmp_path / "kinema-data").mkdir(exist_ok=True)
    return f"sqlite:///{tmp_path / 'kinema-data' / 'kinema.db'}"


def accounts(*args: str) -> Result:
    return runner.invoke(app, ["accounts", *args])


def ok(*args: str) -> str:
    result = accounts(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def refused(*args: str) -> str:
    result = accounts(*args)
    assert result.exit_code == 2, result.output
    return one_line(result.output)


def test_create_and_list_show_role_plan_and_state() -> None:
    made = json.loads(ok("create", "acme", "--json"))
    ok("create", "studio", "--plan", "creator")
    ok("create", "ops", "--role", "admin")

    listed = {a["name"]: (a["role"], a["plan"], a["disabled"]) for a in json.loads(ok("list", "--json"))}

    assert made["account_id"].startswith("acc_") and made["plan"] == "free"
    assert listed == {
        "acme": ("member", "free", False),
        "studio": ("member", "creator", False),
        "ops": ("admin", "unlimited", False),
    }
    assert "studio" in ok("list") and "creator" in ok("list")


def test_create_refuses_unknown_plans_roles_and_taken_names() -> None:
    ok("create", "acme")

    assert "no plan 'platinum'; list the plans with `kinema accounts plans`" in refused(
        "create", "other", "--plan", "platinum"
    )
    assert "role 'owner' is not known; use one of admin, member" in refused("create", "x", "--role", "owner")
    assert "an account named 'acme' already exists" in refused("create", "acme")


def test_create_admin_prints_a_working_key_pair_once(url: str) -> None:
    shown = json.loads(ok("create-admin", "--json"))

    with closing(open_accounts(url)) as store:
        admin = store.account_by_name("admin")
        assert admin is not None and (admin.role, admin.plan) == ("admin", "unlimited")
        assert store.secret_for(shown["access_key"]) == (admin.account_id, shown["secret_key"])
        assert len(shown["password"]) >= 16 and store.sign_in("admin", shown["password"]).token
    assert "exists already; make it another key pair with `kinema keys create --account admin`" in refused(
        "create-admin"
    )


def test_create_admin_takes_the_password_from_the_environment(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINEMA_ADMIN_PASSWORD", "short")
    assert "password: use at least 8 characters" in refused("create-admin")
    monkeypatch.setenv("KINEMA_ADMIN_PASSWORD", "the operator's choice")
    assert json.loads(ok("create-admin", "--json"))["password"] == "the operator's choice"
    with closing(open_accounts(url)) as store:
        assert store.sign_in("admin", "the operator's choice").account.role == "admin"


def test_set_password_from_stdin_resets_and_removes(url: str) -> None:
    ok("create", "acme")
    result = runner.invoke(
        app, ["accounts", "set-password", "acme", "--password-stdin"], input="a good phrase\n"
    )
    assert result.exit_code == 0, result.output
    assert "every studio session of the account has ended" in one_line(result.stderr)
    with closing(open_accounts(url)) as store:
        opened = store.sign_in("acme", "a good phrase")
    weak = runner.invoke(app, ["accounts", "set-password", "acme", "--password-stdin"], input="weak\n")
    assert weak.exit_code == 2 and "at least 8 characters" in one_line(weak.output)
    empty = runner.invoke(app, ["accounts", "set-password", "acme", "--password-stdin"], input="")
    assert empty.exit_code == 2 and "no password on standard input" in one_line(empty.output)
    assert "no account named 'nobody'" in refused("set-password", "nobody", "--password-stdin")
    ok("set-password", "acme", "--remove")
    with closing(open_accounts(url)) as store:
        assert store.session(opened.token) is None
        assert not store.has_password(store.account_by_name("acme").account_id)  # type: ignore[union-attr]


def test_create_admin_without_json_shows_the_pair_and_warns(url: str) -> None:
    result = accounts("create-admin")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("access key: ak_") and lines[1].startswith("secret key: sk_")
    assert lines[2].startswith("password:   ")
    assert "shown only now" in one_line(result.stderr)


def test_set_plan_moves_an_account_and_refuses_unknown_ones() -> None:
    ok("create", "acme")

    assert "account acme is now on plan pro" in ok("set-plan", "acme", "pro")
    assert "no plan 'gold'" in refused("set-plan", "acme", "gold")
    assert "no account named 'ghost'" in refused("set-plan", "ghost", "pro")
    assert json.loads(ok("list", "--json"))[0]["plan"] == "pro"


def test_grant_adds_credits_to_the_balance() -> None:
    ok("create", "acme", "--plan", "enterprise")  # no allowance: the balance is what was granted

    granted = ok("grant", "acme", "50", "--days", "30", "--note", "trial")
    ok("grant", "acme", "25")

    assert "granted 50 credits to acme" in granted and "valid until" in granted
    assert json.loads(ok("balance", "acme", "--json")) == {
        "account": "acme",
        "plan": "enterprise",
        "balance": 75,
    }
    assert "acme: 75 credits (plan enterprise)" in ok("balance", "acme")
    assert "credits must be a whole number in 1..1000000000; got 0" in refused("grant", "acme", "0")
    assert "days must be more than 0" in refused("grant", "acme", "5", "--days", "-1")


def test_a_free_accounts_balance_is_its_daily_credits() -> None:
    ok("create", "acme")

    assert json.loads(ok("balance", "acme", "--json"))["balance"] == 66


def test_disable_and_enable_switch_the_accounts_keys(url: str) -> None:
    ok("create", "acme")
    with closing(open_accounts(url)) as store:
        account = store.account_by_name("acme")
        assert account is not None
        pair = store.create_key_pair(account.account_id)

    assert "account acme is disabled" in ok("disable", "acme")
    with closing(open_accounts(url)) as store:
        assert store.secret_for(pair.access_key) is None
    assert "account acme is enabled" in ok("enable", "acme")
    with closing(open_accounts(url)) as store:
        assert store.secret_for(pair.access_key) is not None
    assert "no account named 'ghost'" in refused("disable", "ghost")


def test_plans_lists_every_plan() -> None:
    listed = json.loads(ok("plans", "--json"))

    assert [p["name"] for p in listed] == ["free", "creator", "pro", "enterprise", "unlimited"]
    assert listed[0]["daily_free_credits"] == 66 and listed[0]["allowed_modes"] == ["std"]
    table = ok("plans")
    assert "unlimited" in table and "(unmetered)" in table


def test_usage_exports_a_csv_of_the_period(url: str, tmp_path: Path) -> None:
    ok("create", "acme", "--plan", "enterprise")
    ok("grant", "acme", "100")
    clock = FakeClock(datetime.now(UTC) + timedelta(seconds=1))  # just after the grant
    with (
        closing(open_accounts(url, clock=clock)) as store,
        closing(open_store(url, clock=clock, hook=Billing(store).hook)) as tasks,
    ):
        acme = store.account_by_name("acme")
        assert acme is not None
        bill = {"credits": 10, "seconds": 5.0, "mode": "std", "slots": 1}
        task = tasks.create(
            account_id=acme.account_id, kind="text2video", model="wan", request={"billing": bill}
        )

    out = tmp_path / "reports" / "march.csv"
    today = f"{clock.now():%Y-%m-%d}"
    result = accounts("usage", "--from", today, "--to", today, "-o", str(out))

    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(io.StringIO(out.read_text())))
    assert (row["account_name"], row["task_id"], row["seconds"], row["credits"]) == (
        "acme",
        task.task_id,
        "5.0",
        "10",
    )
    assert row["charged_at"] == clock.now().isoformat().replace("+00:00", "Z")
    tomorrow = f"{clock.now() + timedelta(days=1):%Y-%m-%d}"
    stdout = ok("usage", "--from", tomorrow, "--to", tomorrow, "--account", "acme")
    assert list(csv.DictReader(io.StringIO(stdout))) == []


def test_usage_refuses_bad_dates() -> None:
    assert "--from '10/03/2025' is not a date; write it as YYYY-MM-DD" in refused(
        "usage", "--from", "10/03/2025", "--to", "2025-03-31"
    )
    assert "--to 2025-03-01 is before --from 2025-03-10" in refused(
        "usage", "--from", "2025-03-10", "--to", "2025-03-01"
    )


@pytest.mark.postgres
def test_accounts_work_against_postgres(postgres_url: str) -> None:
    ok("create", "acme", "--plan", "pro", "--database-url", postgres_url)
    ok("grant", "acme", "10", "--database-url", postgres_url)

    shown = json.loads(ok("balance", "acme", "--json", "--database-url", postgres_url))

    assert shown == {"account": "acme", "plan": "pro", "balance": 3010}


def test_the_accounts_command_does_not_import_torch() -> None:
    code = "import sys, kinema.cli.accounts; assert 'torch' not in sys.modules, 'torch was imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
