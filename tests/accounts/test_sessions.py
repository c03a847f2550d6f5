"""Passwords and studio sessions, the same contract on every account store (memory, SQLite, Postgres)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from kinema.accounts import AccountDisabled, AccountNotFound, AccountStore, SqlAccountStore
from kinema.accounts import passwords as pw
from kinema.accounts.schema import AccountRow, WebSessionRow
from kinema.accounts.sessions import WrongPassword, token_hash
from kinema.errors import InvalidRequest
from kinema.jobs import FakeClock

GOOD = "correct horse battery"


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Hash at 2**12 here: the rules are the same and the suite stays fast (the real cost is tested below)."""
    monkeypatch.setattr(pw, "COST", pw.Cost(log_n=12))
    yield


def test_real_cost_is_owasp_scrypt() -> None:
    encoded = pw.hash_password(GOOD, cost=pw.Cost())
    assert encoded.startswith("scrypt$ln=17,r=8,p=1$")
    assert pw.verify_password(GOOD, encoded)
    assert not pw.verify_password(GOOD + "!", encoded)
    assert GOOD not in encoded


def test_sign_in_opens_a_session_that_the_token_finds(accounts: AccountStore) -> None:
    alice = accounts.create_account("alice")
    assert not accounts.has_password(alice.account_id)
    accounts.set_password(alice.account_id, GOOD)
    assert accounts.has_password(alice.account_id)
    opened = accounts.sign_in("alice", GOOD, hours=2, user_agent="Firefox\x00/1")
    assert opened.token.startswith("kss_") and opened.account == accounts.get_account(alice.account_id)
    found = accounts.session(opened.token)
    assert found is not None and found.account_id == alice.account_id
    assert found.session_id == opened.session.session_id and found.user_agent == "Firefox/1"
    assert (found.expires_at - found.created_at).total_seconds() == 7200
    assert accounts.session(opened.token + "x") is None
    assert accounts.session("not-a-token") is None


@pytest.mark.parametrize(
    "name, password",
    [("alice", "wrong password"), ("nobody", GOOD), ("bob", GOOD), ("Alice", GOOD)],
    ids=["wrong-password", "unknown-name", "no-password", "name-case"],
)
def test_wrong_name_or_password_says_the_same_thing(accounts: AccountStore, name: str, password: str) -> None:
    accounts.set_password(accounts.create_account("alice").account_id, GOOD)
    accounts.create_account("bob")
    with pytest.raises(WrongPassword, match="the name or the password is wrong"):
        accounts.sign_in(name, password)


def test_disabled_account_cannot_sign_in_and_its_sessions_stop(accounts: AccountStore) -> None:
    alice = accounts.create_account("alice")
    accounts.set_password(alice.account_id, GOOD)
    opened = accounts.sign_in("alice", GOOD)
    accounts.set_disabled(alice.account_id, True)
    assert accounts.session(opened.token) is None
    with pytest.raises(AccountDisabled):
        accounts.sign_in("alice", GOOD)
    with pytest.raises(WrongPassword):  # a wrong password does not reveal that the account is disabled
        accounts.sign_in("alice", "wrong password")
    accounts.set_disabled(alice.account_id, False)
    assert accounts.session(opened.token) is not None


def test_sessions_expire(accounts: AccountStore, clock: FakeClock) -> None:
    alice = accounts.create_account("alice")
    accounts.set_password(alice.account_id, GOOD)
    opened = accounts.sign_in("alice", GOOD, hours=1)
    clock.advance(3599)
    assert accounts.session(opened.token) is not None
    clock.advance(1)
    assert accounts.session(opened.token) is None
    assert accounts.list_sessions(alice.account_id) == []


def test_sign_out_one_or_all(accounts: AccountStore) -> None:
    alice, bob = accounts.create_account("alice"), accounts.create_account("bob")
    accounts.set_password(alice.account_id, GOOD)
    accounts.set_password(bob.account_id, GOOD)
    a1, a2, b1 = (
        accounts.sign_in("alice", GOOD),
        accounts.sign_in("alice", GOOD),
        accounts.sign_in("bob", GOOD),
    )
    listed = accounts.list_sessions(alice.account_id)
    assert {x.session_id for x in listed} == {a1.session.session_id, a2.session.session_id}
    # Bob cannot end Alice's session by naming it.
    assert accounts.sign_out(bob.account_id, a1.session.session_id) == 0
    assert accounts.session(a1.token) is not None
    assert accounts.sign_out(alice.account_id, a1.session.session_id) == 1
    assert accounts.sign_out(alice.account_id, a1.session.session_id) == 0  # again is harmless
    assert accounts.session(a1.token) is None and accounts.session(a2.token) is not None
    assert accounts.sign_out(alice.account_id) == 1
    assert accounts.session(a2.token) is None
    assert accounts.session(b1.token) is not None


def test_changing_the_password_ends_the_other_sessions(accounts: AccountStore) -> None:
    alice = accounts.create_account("alice")
    accounts.set_password(alice.account_id, GOOD)
    here, elsewhere = accounts.sign_in("alice", GOOD), accounts.sign_in("alice", GOOD)
    accounts.set_password(alice.account_id, "a brand new phrase", keep_session=here.session.session_id)
    assert accounts.session(here.token) is not None
    assert accounts.session(elsewhere.token) is None
    with pytest.raises(WrongPassword):
        accounts.sign_in("alice", GOOD)
    assert accounts.verify_password(alice.account_id, "a brand new phrase")
    accounts.set_password(alice.account_id, None)  # keys only from now on
    assert not accounts.has_password(alice.account_id)
    assert accounts.session(here.token) is None
    with pytest.raises(WrongPassword):
        accounts.sign_in("alice", "a brand new phrase")


@pytest.mark.parametrize(
    "password, problem",
    [
        ("short", "at least 8"),
        ("x" * 257, "at most 256"),
        ("          ", "only spaces"),
        ("Alice-Anne", "account's name"),
        ("nul\x00inside", "NUL"),
        ("exactly8", None),
        ("长城长城长城长城", None),
    ],
)
def test_password_policy(accounts: AccountStore, password: str, problem: str | None) -> None:
    alice = accounts.create_account("alice-anne")
    if problem is None:
        accounts.set_password(alice.account_id, password)
        assert accounts.sign_in("alice-anne", password).token
        return
    with pytest.raises(InvalidRequest, match=problem):
        accounts.set_password(alice.account_id, password)
    assert not accounts.has_password(alice.account_id)


def test_unknown_account(accounts: AccountStore) -> None:
    with pytest.raises(AccountNotFound):
        accounts.set_password("acc_missing", GOOD)
    assert not accounts.has_password("acc_missing")


def test_an_old_cost_is_upgraded_at_the_next_sign_in(
    accounts: AccountStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    alice = accounts.create_account("alice")
    monkeypatch.setattr(pw, "COST", pw.Cost(log_n=10))
    accounts.set_password(alice.account_id, GOOD)
    monkeypatch.setattr(pw, "COST", pw.Cost(log_n=11))
    earlier = accounts.sign_in("alice", GOOD)  # made the hash ln=11 …
    opened = accounts.sign_in("alice", GOOD)
    assert accounts.session(opened.token) is not None  # … and the upgrade ended no session
    assert accounts.session(earlier.token) is not None
    if isinstance(accounts, SqlAccountStore):
        with accounts.engine.connect() as connection:
            stored = connection.execute(select(AccountRow.password_hash)).scalar_one()
        assert stored.startswith("scrypt$ln=11,")
    accounts.sign_in("alice", GOOD)


def test_sql_keeps_only_hashes(accounts: AccountStore) -> None:
    if not isinstance(accounts, SqlAccountStore):
        pytest.skip("only the SQL store has rows to read")
    alice = accounts.create_account("alice")
    accounts.set_password(alice.account_id, GOOD)
    opened = accounts.sign_in("alice", GOOD)
    with accounts.engine.connect() as connection:
        stored = connection.execute(select(AccountRow.password_hash)).scalar_one()
        hashes = connection.execute(select(WebSessionRow.token_hash)).scalars().all()
    assert stored.startswith("scrypt$") and GOOD not in stored
    assert hashes == [token_hash(opened.token)] and opened.token not in hashes


def test_ended_sessions_are_forgotten_a_day_later(accounts: AccountStore, clock: FakeClock) -> None:
    alice = accounts.create_account("alice")
    accounts.set_password(alice.account_id, GOOD)
    short, signed_out, live = (accounts.sign_in("alice", GOOD, hours=h) for h in (1, 48, 48))
    accounts.sign_out(alice.account_id, signed_out.session.session_id)
    assert accounts.sweep_sessions() == 0
    clock.advance(24 * 3600 + 1)  # a day after the sign-out, not yet a day after the expiry
    assert accounts.sweep_sessions() == 1
    clock.advance(3600)
    assert accounts.sweep_sessions() == 1
    assert accounts.session(live.token) is not None
    assert [s.session_id for s in accounts.list_sessions(alice.account_id)] == [live.session.session_id]
    assert accounts.session(short.token) is None
