"""`kinema keys create|list|revoke`: an account's key pairs and static API keys, from the command line.

The database is the server's (Settings: `KINEMA_DATA_DIR`, `KINEMA_DATABASE_URL`; the options win).
`create` makes the account on first use and prints a secret exactly once. Nothing here imports torch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.exc import DBAPIError

from kinema.accounts import Account, AccountStore, KeyInfo, open_accounts
from kinema.cli.main import app, clear_errors, console, fail
from kinema.db import normalise_url
from kinema.settings import Settings

keys_app = typer.Typer(help="Create, list and revoke an account's API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")

AccountName = Annotated[str, typer.Option("--account", help="Account name (letters, digits, _ . - @).")]
DataDir = Annotated[Path | None, typer.Option(help="Database, media and secrets [KINEMA_DATA_DIR].")]
DatabaseUrl = Annotated[
    str | None, typer.Option(help="sqlite:///path or postgresql://… [KINEMA_DATABASE_URL].")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


@contextmanager
def account_store(data_dir: Path | None, database_url: str | None) -> Iterator[AccountStore]:
    """The accounts in the server's database, found as `kinema serve` finds it; closed after use."""
    changes = {"data_dir": data_dir, "database_url": database_url}
    settings = Settings().model_copy(update={k: v for k, v in changes.items() if v is not None})
    url = settings.resolved_database_url()
    if settings.database_url is None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        store = open_accounts(url)
    except DBAPIError as error:
        shown = normalise_url(url).render_as_string(hide_password=True)
        reason = str(error.orig).strip().splitlines()[0] if error.orig else type(error).__name__
        raise fail(f"cannot open the database {shown} ({reason}); check --database-url") from None
    try:
        yield store
    finally:
        store.close()


def existing(store: AccountStore, name: str) -> Account:
    account = store.account_by_name(name)
    if account is None:
        raise fail(f"no account named {name!r}; create one with `kinema keys create --account {name}`")
    return account


@keys_app.command("create")
def create(
    account: AccountName,
    static: Annotated[bool, typer.Option("--static", help="A static API key instead of a pair.")] = False,
    as_json: AsJson = False,
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a key pair (or with --static an API key) for an account, creating the account if needed."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        owner = store.ensure_account(account)
        if static:
            key = store.create_api_key(owner.account_id)
            shown = {"api_key": key.api_key}
        else:
            pair = store.create_key_pair(owner.account_id)
            shown = {"access_key": pair.access_key, "secret_key": pair.secret_key}
    if as_json:
        typer.echo(json.dumps(shown))
        return
    for name, value in shown.items():
        typer.echo(f"{name.replace('_', ' ')}: {value}")
    secret = "API key" if static else "secret key"
    console.print(f"account {owner.name} ({owner.account_id}): the {secret} is shown only now; keep it safe")


@keys_app.command("list")
def list_keys(
    account: AccountName, as_json: AsJson = False, data_dir: DataDir = None, database_url: DatabaseUrl = None
) -> None:
    """List an account's keys (never their secrets), revoked ones included."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        listed = store.list_keys(existing(store, account).account_id)
    if as_json:
        typer.echo(json.dumps([_key_json(info) for info in listed], indent=2))
        return
    typer.echo(f"{'key id':<20}  {'kind':<6}  {'key':<8}  {'created':<17}  revoked")
    for info in listed:
        created = f"{info.created_at:%Y-%m-%d %H:%MZ}"
        revoked = f"{info.revoked_at:%Y-%m-%d %H:%MZ}" if info.revoked_at else "-"
        typer.echo(f"{info.key_id:<20}  {info.kind:<6}  {info.prefix + '…':<8}  {created:<17}  {revoked}")


@keys_app.command("revoke")
def revoke(
    account: AccountName,
    key_id: Annotated[str, typer.Argument(help="The key's id, as `kinema keys list` shows it.")],
    data_dir: DataDir = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Revoke one of an account's keys: it stops authenticating at once."""
    with clear_errors(), account_store(data_dir, database_url) as store:
        info = store.revoke_key(existing(store, account).account_id, key_id)
    typer.echo(f"revoked {info.key_id} ({info.kind}) of account {account}")


def _key_json(info: KeyInfo) -> dict[str, str | None]:
    return {
        "key_id": info.key_id,
        "kind": info.kind,
        "access_key": info.access_key,
        "prefix": info.prefix,
        "created_at": info.created_at.isoformat(),
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
    }
