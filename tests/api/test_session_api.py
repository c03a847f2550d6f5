"""Studio sign-in over HTTP: the session cookie, its CSRF rule, throttled guesses, password changes,
listing and ending sessions, and the admin's password reset."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from apikit import Api, make_api
from fastapi.testclient import TestClient

from kinema.accounts import MemoryAccountStore

SESSION = "/api/v1/session"
TASKS = "/api/v1/tasks"
GOOD = "correct horse battery"


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    accounts = MemoryAccountStore()
    for name, role in (("admin", "admin"), ("alice", "member"), ("bob", "member")):
        account = accounts.ensure_account(name, role=role)  # type: ignore[arg-type]
        accounts.set_password(account.account_id, GOOD)
    yield from make_api(tmp_path, accounts)


def accounts_of(api: Api) -> MemoryAccountStore:
    found = api.ctx.accounts
    assert isinstance(found, MemoryAccountStore)
    return found


def sign_in(client: TestClient, name: str = "alice", password: str = GOOD, **extra: Any) -> dict[str, Any]:
    response = client.post(SESSION, json={"name": name, "password": password, **extra})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def new_client(api: Api, base_url: str = "http://testserver") -> TestClient:
    return TestClient(api.client.app, base_url=base_url)


def test_sign_in_sets_a_strict_http_only_cookie_and_returns_the_csrf_token(api: Api) -> None:
    response = api.client.post(SESSION, json={"name": "alice", "password": GOOD})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("kinema_session=kss_")
    lowered = cookie.lower()
    assert "httponly" in lowered and "samesite=strict" in lowered and "path=/" in lowered
    assert "max-age=604800" in lowered  # seven days by default
    assert "secure" not in lowered  # plain http: a Secure cookie would never come back
    data = response.json()["data"]
    assert data["account"]["name"] == "alice" and data["account"]["role"] == "member"
    assert len(data["csrf_token"]) == 64 and data["expires_at"] > data["created_at"]
    assert "kss_" not in response.text.replace(cookie, "")  # the token is in the cookie only
    again = api.client.get(SESSION).json()["data"]
    assert again["session_id"] == data["session_id"] and again["csrf_token"] == data["csrf_token"]


def test_over_https_the_cookie_is_secure_and_remember_false_is_a_browser_session_cookie(api: Api) -> None:
    client = new_client(api, "https://testserver")
    response = client.post(SESSION, json={"name": "alice", "password": GOOD, "remember": False})
    lowered = response.headers["set-cookie"].lower()
    assert "secure" in lowered and "max-age" not in lowered and "expires" not in lowered


def test_the_cookie_authenticates_reads_and_changes_need_the_csrf_header(api: Api) -> None:
    csrf = sign_in(api.client)["csrf_token"]
    assert api.client.get(TASKS).status_code == 200
    body = {"kind": "text2video", "model": "fake", "prompt": "a red circle"}
    refused = api.client.post(TASKS, json=body)
    assert refused.status_code == 403 and refused.json()["code"] == 1103
    assert "X-CSRF-Token" in refused.json()["message"]
    wrong = api.client.post(TASKS, json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    other = new_client(api)
    other_csrf = sign_in(other, "bob")["csrf_token"]
    assert api.client.post(TASKS, json=body, headers={"X-CSRF-Token": other_csrf}).status_code == 403
    created = api.client.post(TASKS, json=body, headers={"X-CSRF-Token": csrf})
    assert created.status_code == 200, created.text
    task_id = created.json()["data"]["id"]
    assert api.client.get(f"{TASKS}/{task_id}").json()["data"]["id"] == task_id
    # Bob's session sees nothing of Alice's.
    assert other.get(f"{TASKS}/{task_id}").status_code == 404
    assert other.get(TASKS).json()["data"]["tasks"] == []


def test_an_authorization_header_wins_over_the_cookie(api: Api) -> None:
    sign_in(api.client, "alice")
    bob = accounts_of(api).account_by_name("bob")
    assert bob is not None
    pair = accounts_of(api).create_key_pair(bob.account_id)
    now = int(time.time())
    token = jwt.encode({"iss": pair.access_key, "exp": now + 60}, pair.secret_key, algorithm="HS256")
    body = {"kind": "text2video", "model": "fake", "prompt": "x"}
    # No CSRF header needed: a header-authenticated request is not something a browser sends by itself.
    created = api.client.post(TASKS, json=body, headers={"Authorization": f"Bearer {token}"})
    assert created.status_code == 200, created.text
    task_id = created.json()["data"]["id"]
    as_bob = api.client.get(f"{TASKS}/{task_id}", headers={"Authorization": f"Bearer {token}"})
    assert as_bob.status_code == 200  # the task is Bob's …
    assert api.client.get(f"{TASKS}/{task_id}").status_code == 404  # … so Alice's cookie cannot see it
    assert api.client.get("/api/v1/account").json()["data"]["name"] == "alice"
    bad = api.client.get("/api/v1/account", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401  # a bad header is not rescued by the cookie


def test_sign_out_ends_the_session_and_clears_the_cookie(api: Api) -> None:
    csrf = sign_in(api.client)["csrf_token"]
    token = api.client.cookies["kinema_session"]
    assert api.client.delete(SESSION).status_code == 403  # sign-out is CSRF-checked too
    response = api.client.delete(SESSION, headers={"X-CSRF-Token": csrf})
    assert response.status_code == 200 and response.json()["data"]["signed_out"] is True
    assert (
        'kinema_session=""' in response.headers["set-cookie"]
        or "max-age=0" in response.headers["set-cookie"].lower()
    )
    stale = new_client(api)
    stale.cookies.set("kinema_session", token)
    refused = stale.get(TASKS)
    assert refused.status_code == 401 and refused.json()["code"] == 1004
    assert "sign in again" in refused.json()["message"]
    gone = refused.headers["set-cookie"].lower()  # the browser is told to drop the dead cookie
    assert gone.startswith("kinema_session=") and ("max-age=0" in gone or "expires=" in gone)
    assert new_client(api).delete(SESSION).json()["data"]["signed_out"] is False


def test_without_a_session_the_session_endpoint_says_so(api: Api) -> None:
    response = api.client.get(SESSION)
    assert response.status_code == 401 and response.json()["code"] == 1001


@pytest.mark.parametrize(
    "body, code, status",
    [
        ({"name": "alice", "password": "wrong one"}, 1002, 401),
        ({"name": "nobody", "password": GOOD}, 1002, 401),
        ({"name": "alice"}, 1201, 400),
        ({"name": "", "password": GOOD}, 1201, 400),
        ({"name": "alice", "password": "x" * 300}, 1201, 400),
        ({"name": "alice", "password": GOOD, "extra": 1}, 1201, 400),
    ],
)
def test_bad_sign_ins(api: Api, body: dict[str, Any], code: int, status: int) -> None:
    response = api.client.post(SESSION, json=body)
    assert (response.status_code, response.json()["code"]) == (status, code), response.text
    assert "set-cookie" not in response.headers


def test_disabled_account_cannot_sign_in(api: Api) -> None:
    accounts = accounts_of(api)
    sign_in(api.client)
    alice = accounts.account_by_name("alice")
    assert alice is not None
    accounts.set_disabled(alice.account_id, True)
    assert api.client.get(TASKS).status_code == 401
    response = new_client(api).post(SESSION, json={"name": "alice", "password": GOOD})
    assert response.status_code == 403 and "disabled" in response.json()["message"]


def test_guessing_is_throttled_per_name_and_address(api: Api) -> None:
    for _ in range(10):
        assert api.client.post(SESSION, json={"name": "alice", "password": "guess1234"}).status_code == 401
    throttled = api.client.post(SESSION, json={"name": "alice", "password": GOOD})
    assert throttled.status_code == 429 and throttled.json()["code"] == 1302
    assert "try again in" in throttled.json()["message"]
    # Another name from the same address is not locked out by Alice's guesses.
    assert api.client.post(SESSION, json={"name": "bob", "password": GOOD}).status_code == 200


def test_changing_the_password_keeps_this_session_and_ends_the_others(api: Api) -> None:
    csrf = sign_in(api.client)["csrf_token"]
    elsewhere = new_client(api)
    sign_in(elsewhere)
    headers = {"X-CSRF-Token": csrf}
    url = "/api/v1/account/password"
    missing = api.client.put(url, json={"new_password": "a new phrase here"}, headers=headers)
    assert missing.status_code == 400 and "current_password" in missing.json()["message"]
    wrong = api.client.put(
        url, json={"current_password": "nope", "new_password": "a new phrase"}, headers=headers
    )
    assert wrong.status_code == 400
    weak = api.client.put(url, json={"current_password": GOOD, "new_password": "short"}, headers=headers)
    assert weak.status_code == 400 and "at least 8" in weak.json()["message"]
    done = api.client.put(
        url, json={"current_password": GOOD, "new_password": "a new phrase here"}, headers=headers
    )
    assert done.status_code == 200, done.text
    assert api.client.get(TASKS).status_code == 200
    assert elsewhere.get(TASKS).status_code == 401
    sign_in(new_client(api), password="a new phrase here")
    assert api.client.get("/api/v1/account").json()["data"]["has_password"] is True


def test_list_and_end_sessions(api: Api) -> None:
    csrf = sign_in(api.client)["csrf_token"]
    phone = TestClient(api.client.app, headers={"User-Agent": "KinemaPhone/1"})
    sign_in(phone)
    listed = api.client.get("/api/v1/account/sessions").json()["data"]["sessions"]
    assert len(listed) == 2 and sum(s["current"] for s in listed) == 1
    theirs = next(s for s in listed if not s["current"])
    assert theirs["user_agent"] == "KinemaPhone/1"
    headers = {"X-CSRF-Token": csrf}
    ended = api.client.delete(f"/api/v1/account/sessions/{theirs['session_id']}", headers=headers)
    assert ended.json()["data"]["ended"] == 1
    assert phone.get(TASKS).status_code == 401
    again = api.client.delete(f"/api/v1/account/sessions/{theirs['session_id']}", headers=headers)
    assert again.status_code == 404
    # Bob cannot end Alice's session.
    bob = new_client(api)
    bob_csrf = sign_in(bob, "bob")["csrf_token"]
    mine = next(s for s in listed if s["current"])["session_id"]
    assert (
        bob.delete(f"/api/v1/account/sessions/{mine}", headers={"X-CSRF-Token": bob_csrf}).status_code == 404
    )
    assert api.client.get(TASKS).status_code == 200


def test_admin_resets_a_password_and_creates_accounts_with_one(api: Api) -> None:
    csrf = sign_in(api.client, "admin")["csrf_token"]
    alice_client = new_client(api)
    sign_in(alice_client)
    headers = {"X-CSRF-Token": csrf}
    reset = api.client.put(
        "/api/v1/admin/accounts/alice/password", json={"password": "reset by admin"}, headers=headers
    )
    assert reset.status_code == 200, reset.text
    assert alice_client.get(TASKS).status_code == 401  # a reset signs every browser out
    sign_in(new_client(api), password="reset by admin")
    created = api.client.post(
        "/api/v1/admin/accounts", json={"name": "carol", "password": "carol's phrase"}, headers=headers
    )
    assert created.status_code == 200 and created.json()["data"]["has_password"] is True
    sign_in(new_client(api), "carol", "carol's phrase")
    weak = api.client.post(
        "/api/v1/admin/accounts", json={"name": "dave", "password": "dave"}, headers=headers
    )
    assert weak.status_code == 400 and accounts_of(api).account_by_name("dave") is None
    # A member cannot reset anyone's password.
    member_csrf = sign_in(alice_client, password="reset by admin")["csrf_token"]
    refused = alice_client.put(
        "/api/v1/admin/accounts/bob/password",
        json={"password": "taken over!"},
        headers={"X-CSRF-Token": member_csrf},
    )
    assert refused.status_code == 403


def test_a_fresh_app_without_accounts_refuses_sign_in_cleanly(tmp_path: Path) -> None:
    for plain in make_api(tmp_path):
        response = plain.client.post(SESSION, json={"name": "alice", "password": GOOD})
        assert response.status_code == 404 and response.json()["code"] == 1202


def test_a_non_ascii_csrf_header_is_refused_not_a_500(api: Api) -> None:
    sign_in(api.client)
    for method in ("DELETE", "POST"):
        path = SESSION if method == "DELETE" else TASKS
        response = api.client.request(method, path, json={}, headers={"X-CSRF-Token": "é".encode()})
        assert response.status_code == 403 and response.json()["code"] == 1103, (method, response.text)
