"""`kinema keys`: create, list and revoke keys in the server's database, without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from dbfixtures import postgres_server, postgres_url
from kinema.accounts import open_accounts
from kinema.cli.main import app

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


def keys(*args: str) -> Result:
    return runner.invoke(app, ["keys", *args])


def ok(*args: str) -> str:
    result = keys(*args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_create_json_prints_exactly_a_pair_that_authenticates(tmp_path: Path) -> None:
    shown = json.loads(ok("create", "--account", "acme", "--data-dir", str(tmp_path / "data"), "--json"))

    assert set(shown) == {"access_key", "secret_key"}
    with closing(open_accounts(f"sqlite:///{tmp_path / 'data' / 'kinema.db'}")) as store:
        account = store.account_by_name("acme")
        assert account is not None and account.role == "member"
        assert store.secret_for(shown["access_key"]) == (account.account_id, shown["secret_key"])


def test_create_static_json_prints_exactly_an_api_key(tmp_path: Path) -> None:
    shown = json.loads(ok("create", "--account", "acme", "--static", "--json"))

    assert list(shown) == ["api_key"] and shown["api_key"].startswith("kn_")
    with closing(open_accounts(f"sqlite:///{tmp_path / 'kinema-data' / 'kinema.db'}")) as store:
        assert store.account_for_api_key(shown["api_key"]) is not None


def test_create_without_json_shows_the_keys_and_warns_once(tmp_path: Path) -> None:
    result = keys("create", "--account", "acme")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("access key: ak_") and lines[1].startswith("secret key: sk_")
    assert "shown only now" in one_line(result.stderr)


def test_a_second_create_reuses_the_account_and_list_shows_both_keys() -> None:
    first = json.loads(ok("create", "--account", "acme", "--json"))
    json.loads(ok("create", "--account", "acme", "--static", "--json"))

    listed = json.loads(ok("list", "--account", "acme", "--json"))

    assert [key["kind"] for key in listed] == ["pair", "static"]  # oldest first
    pair = next(key for key in listed if key["kind"] == "pair")
    assert pair["access_key"] == first["access_key"] and pair["revoked_at"] is None
    assert first["secret_key"] not in ok("list", "--account", "acme", "--json")
    table = ok("list", "--account", "acme")
    assert pair["key_id"] in table and first["secret_key"] not in table


def test_revoke_marks_the_key_and_it_stops_authenticating(tmp_path: Path) -> None:
    pair = json.loads(ok("create", "--account", "acme", "--json"))
    (key,) = json.loads(ok("list", "--account", "acme", "--json"))

    assert f"revoked {key['key_id']}" in ok("revoke", "--account", "acme", key["key_id"])

    (listed,) = json.loads(ok("list", "--account", "acme", "--json"))
    assert listed["revoked_at"] is not None
    with closing(open_accounts(f"sqlite:///{tmp_path / 'kinema-data' / 'kinema.db'}")) as store:
        assert store.secret_for(pair["access_key"]) is None


def test_another_accounts_key_cannot_be_revoked() -> None:
    ok("create", "--account", "rival")
    (theirs,) = json.loads(ok("list", "--account", "rival", "--json"))
    ok("create", "--account", "acme")

    result = keys("revoke", "--account", "acme", theirs["key_id"])

    assert result.exit_code == 2 and f"no key '{theirs['key_id']}' in account" in one_line(result.output)
    (still,) = json.loads(ok("list", "--account", "rival", "--json"))
    assert still["revoked_at"] is None


@pytest.mark.parametrize("command", [["list"], ["revoke", "key_0000000000000000"]])
def test_an_unknown_account_is_one_clear_error(command: list[str]) -> None:
    result = keys(*command, "--account", "ghost")

    assert result.exit_code == 2
    assert "no account named 'ghost'; create one with `kinema keys create --account ghost`" in one_line(
        result.output
    )


def test_an_invalid_account_name_is_one_clear_error() -> None:
    result = keys("create", "--account", "two words")

    assert result.exit_code == 2
    assert "account name 'two words' is not valid; use 1 to 64 letters" in one_line(result.output)


def test_the_environment_and_the_options_choose_the_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KINEMA_DATA_DIR", str(tmp_path / "from-env"))
    ok("create", "--account", "env")
    assert (tmp_path / "from-env" / "kinema.db").is_file()

    url = f"sqlite:///{tmp_path / 'chosen.db'}"
    ok("create", "--account", "chosen", "--data-dir", str(tmp_path / "ignored"), "--database-url", url)
    assert (tmp_path / "chosen.db").is_file() and not (tmp_path / "ignored").exists()
    with closing(open_accounts(url)) as store:
        assert [account.name for account in store.list_accounts()] == ["chosen"]


def test_an_unreachable_database_is_one_clear_error() -> None:
    result = keys("create", "--account", "acme", "--database-url", "postgresql://kinema:pw@127.0.0.1:1/db")

    assert result.exit_code == 2
    message = one_line(result.output)
    assert "cannot open the database postgresql+psycopg://kinema:***@127.0.0.1:1/db" in message
    assert "pw@" not in message


@pytest.mark.postgres
def test_keys_work_against_postgres(postgres_url: str) -> None:
    pair = json.loads(ok("create", "--account", "acme", "--database-url", postgres_url, "--json"))

    with closing(open_accounts(postgres_url)) as store:
        account = store.account_by_name("acme")
        assert account is not None
        assert store.secret_for(pair["access_key"]) == (account.account_id, pair["secret_key"])


def test_the_keys_command_does_not_import_torch() -> None:
    code = "import sys, kinema.cli.main, kinema.cli.keys; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
