"""`kinema accounts …`: accounts, their plans and credits, and usage reports, from the command line.

The database is the server's (Settings: `KINEMA_DATA_DIR`, `KINEMA_DATABASE_URL`; the options win), as
for `kinema keys`. `create-admin` prints a key pair and a password exactly once; `set-password` sets
the password an account signs in to the studio with. Nothing here imports torch.
"""

from __future__ import annotations

import json
import secrets
import sys
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import typer

from kinema.accounts import ADMIN_PLAN, Account, AccountStore, KeyPair, Plan, Role, write_usage_csv
from kinema.accounts.passwords import check_password
from kinema.cli.keys import AsJson, DatabaseUrl, DataDir, account_store, existing
from kinema.cli.main import app, clear_errors, console, fail
from kinema.settings import Settings

accounts_app = typer.Typer(
    help="Create and manage accounts, their plans and credits; export usage.", no_args_is_help=True
)
app.add_typer(accounts_app, name="accounts")

Name = Annotated[str, typer.Argument(help="Account name (letters, digits, _ . - @).")]


@accounts_app.command("create")
def create(
    name: Name,
    role: Annotated[str, typer.Option(help="admin or member.")] = "member",
    plan: Annotated[str | None, typer.Option(help="Plan (default: free; unlimited for admins).")] = None,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create an account (make its keys with `kinema keys create --account NAME`)."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        account = store.create_account(name, role=cast(Role, role), plan=plan)  # the store checks the role
    _show(account, as_json)


PasswordStdin = Annotated[
    bool, typer.Option("--password-stdin", help="Read the password from standard input (one line).")
]


def read_password(from_stdin: bool) -> str:
    """One line from stdin, or typed twice at a prompt that does not echo."""
    if from_stdin:
        line = sys.stdin.readline()
        if not line:
            raise fail("no password on standard input; pipe one line, e.g. `printf '%s\\n' \"$PW\" | …`")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise fail("no terminal to ask for the password; pass --password-stdin and pipe it in")
    first = typer.prompt("New password", hide_input=True)
    if typer.prompt("Repeat it", hide_input=True) != first:
        raise fail("the two passwords differ; run the command again")
    return str(first)


@accounts_app.command("set-password")
def set_password(
    name: Name,
    password_stdin: PasswordStdin = False,
    remove: Annotated[bool, typer.Option("--remove", help="Remove the password (keys only).")] = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Set (or reset) the password the account signs in to the studio with; its sessions end."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        account = existing(store, name)
        store.set_password(account.account_id, None if remove else read_password(password_stdin))
    done = "removed" if remove else "set"
    console.print(f"password of {account.name} {done}; every studio session of the account has ended")


@accounts_app.command("create-admin")
def create_admin(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Create the `admin` account on the unlimited plan; print its key pair and studio password, once.

    The password is `KINEMA_ADMIN_PASSWORD` when set, else drawn at random.
    """
    settings = Settings()
    with clear_errors(), account_store(data_dir, database_url) as store:
        if store.account_by_name("admin") is not None:
            raise fail(
                "an account named 'admin' exists already; make it another key pair with "
                "`kinema keys create --account admin` or reset its password with "
                "`kinema accounts set-password admin`"
            )
        account, pair, password = make_admin(store, settings.admin_password)
    if as_json:
        shown = {
            "account_id": account.account_id,
            "access_key": pair.access_key,
            "secret_key": pair.secret_key,
            "password": password,
        }
        typer.echo(json.dumps(shown))
        return
    typer.echo(f"access key: {pair.access_key}\nsecret key: {pair.secret_key}\npassword:   {password}")
    console.print(
        f"account admin ({account.account_id}): secret key and password are shown only now; keep them safe"
    )


def make_admin(store: AccountStore, password: str | None) -> tuple[Account, KeyPair, str]:
    """The `admin` account with a key pair and a studio password (`password`, else a random one)."""
    chosen = password or secrets.token_urlsafe(12)
    check_password(chosen, name="admin")
    account = store.create_account("admin", role="admin", plan=ADMIN_PLAN)
    store.set_password(account.account_id, chosen)
    return account, store.create_key_pair(account.account_id), chosen


@accounts_app.command("list")
def list_accounts(
    as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List every account with its role, plan and state."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        listed = store.list_accounts()
    if as_json:
        typer.echo(json.dumps([_account_json(account) for account in listed], indent=2))
        return
    typer.echo(f"{'name':<24}  {'account id':<20}  {'role':<6}  {'plan':<12}  state")
    for account in listed:
        state = "disabled" if account.disabled else "enabled"
        typer.echo(
            f"{account.name:<24}  {account.account_id:<20}  {account.role:<6}  {account.plan:<12}  {state}"
        )


@accounts_app.command("set-plan")
def set_plan(
    name: Name,
    plan: Annotated[str, typer.Argument(help="The plan, as `kinema accounts plans` lists them.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Move an account to another plan."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        account = store.set_plan(existing(store, name).account_id, plan)
    typer.echo(f"account {account.name} is now on plan {account.plan}")


@accounts_app.command("grant")
def grant(
    name: Name,
    credits: Annotated[int, typer.Argument(help="Credits to give.")],
    days: Annotated[float | None, typer.Option(help="Days the credits stay valid (default: no end).")] = None,
    note: Annotated[str, typer.Option(help="Why, for the ledger.")] = "",
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Give an account credits, valid from now (for --days days, or without end)."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        account_id = existing(store, name).account_id
        pack = store.grant_credits(account_id, credits, days=days, note=note)
        balance = store.balance(account_id)
    until = f"until {pack.invalid_at:%Y-%m-%d %H:%MZ}" if pack.invalid_at else "without end"
    typer.echo(f"granted {credits} credits to {name} ({pack.pack_id}, valid {until}); balance {balance}")


@accounts_app.command("balance")
def balance(
    name: Name, as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """Show the credits an account can spend now."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        account = existing(store, name)
        credits = store.balance(account.account_id)
    if as_json:
        typer.echo(json.dumps({"account": account.name, "plan": account.plan, "balance": credits}))
        return
    typer.echo(f"{account.name}: {credits} credits (plan {account.plan})")


@accounts_app.command("disable")
def disable(name: Name, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Disable an account: its keys stop working and it cannot create tasks."""
    _set_disabled(name, True, data_dir, database_url)


@accounts_app.command("enable")
def enable(name: Name, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """Enable a disabled account again."""
    _set_disabled(name, False, data_dir, database_url)


@accounts_app.command("plans")
def plans(as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None) -> None:
    """List the plans: credits, parallel tasks, priority, modes and lengths."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        listed = store.list_plans()
    if as_json:
        typer.echo(json.dumps([_plan_json(plan) for plan in listed], indent=2))
        return
    typer.echo(
        f"{'plan':<12}  {'daily':>6}  {'monthly':>8}  {'video':>5}  {'image':>5}  {'prio':>4}  "
        f"{'modes':<8}  {'max s':>6}  {'rpm':>5}  models"
    )
    for p in listed:
        models = "all" if p.allowed_models is None else ",".join(p.allowed_models)
        models += "" if p.metered else " (unmetered)"
        typer.echo(
            f"{p.name:<12}  {p.daily_free_credits:>6}  {p.monthly_credits:>8}  {p.video_concurrency:>5}  "
            f"{p.image_concurrency:>5}  {p.priority:>4}  {'+'.join(p.allowed_modes):<8}  "
            f"{p.max_duration_s:>6g}  {p.requests_per_minute:>5}  {models}"
        )


@accounts_app.command("usage")
def usage(
    start: Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD, UTC) or an ISO time.")],
    end: Annotated[str, typer.Option("--to", help="Last day, included (YYYY-MM-DD, UTC) or an ISO time.")],
    account: Annotated[str | None, typer.Option(help="Only this account.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="CSV file (default: stdout).")] = None,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Export one CSV row per charge in a period: account, task, model, mode, seconds, credits."""
    since, until = _moment(start, "--from", end=False), _moment(end, "--to", end=True)
    if until <= since:
        raise fail(f"--to {end} is before --from {start}; give the first day, then the last")
    with clear_errors(), account_store(data_dir, database_url) as store:
        account_id = existing(store, account).account_id if account else None
        rows = store.usage(since, until, account_id=account_id)
    if output is None:
        write_usage_csv(rows, sys.stdout)
        return
    with clear_errors():
        output.parent.mkdir(parents=True, exist_ok=True)
        with output.open("w", newline="") as out:
            write_usage_csv(rows, out)
    console.print(f"wrote {len(rows)} rows to {output}")


def _set_disabled(name: str, disabled: bool, data_dir: Path | None, database_url: str | None) -> None:
    with clear_errors(), account_store(data_dir, database_url) as store:
        account = store.set_disabled(existing(store, name).account_id, disabled)
    typer.echo(f"account {account.name} is {'disabled' if account.disabled else 'enabled'}")


def _moment(value: str, option: str, *, end: bool) -> datetime:
    """A date (a whole UTC day: its start, or with `end` the start of the next) or an ISO time."""
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(days=1 if end else 0)
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option} {value!r} is not a date; write it as YYYY-MM-DD or 2025-01-31T12:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _show(account: Account, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(_account_json(account)))
        return
    typer.echo(
        f"created account {account.name} ({account.account_id}), {account.role} on plan {account.plan}"
    )


def _account_json(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.account_id,
        "name": account.name,
        "role": account.role,
        "plan": account.plan,
        "disabled": account.disabled,
        "created_at": account.created_at.isoformat(),
    }


def _plan_json(plan: Plan) -> dict[str, Any]:
    shown = asdict(plan)
    shown["allowed_models"] = None if plan.allowed_models is None else list(plan.allowed_models)
    shown["allowed_modes"] = list(plan.allowed_modes)
    return shown
