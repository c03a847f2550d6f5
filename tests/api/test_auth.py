import base64
import json
import time

import jwt
import pytest

from kinema.api.auth import Caller, authenticate
from kinema.api.errors import ApiError

SECRET = "secret-one-0123456789abcdef0123456789"
KEYS = {"AK1": ("acct-1", SECRET)}
API_KEYS = {"static-key-123": "acct-2"}


def auth(header: str | None) -> Caller:
    return authenticate(header, secret_for=KEYS.get, account_for_api_key=API_KEYS.get)


def token(**claims: object) -> str:
    now = int(time.time())
    body = {"iss": "AK1", "exp": now + 1800, "nbf": now - 5, **claims}
    return jwt.encode(body, SECRET, algorithm="HS256", headers={"typ": "JWT"})


def code_of(header: str | None) -> int:
    with pytest.raises(ApiError) as caught:
        auth(header)
    return caught.value.code


def test_a_kling_style_token_names_its_account() -> None:
    assert auth(f"Bearer {token()}") == Caller(account_id="acct-1", access_key="AK1")


def test_a_static_api_key_is_accepted_in_the_same_slot() -> None:
    assert auth("Bearer static-key-123") == Caller(account_id="acct-2", access_key=None)


def test_clock_skew_within_leeway_is_tolerated() -> None:
    assert auth(f"Bearer {token(nbf=int(time.time()) + 5)}").account_id == "acct-1"


@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, 1001),
        ("", 1001),
        ("   ", 1001),
        ("Basic abc", 1002),
        ("Bearer", 1002),
        ("Bearer not-a-key", 1002),
    ],
)
def test_missing_or_malformed_headers(header: str | None, code: int) -> None:
    assert code_of(header) == code


def test_time_claims_map_to_their_codes() -> None:
    now = int(time.time())
    assert code_of(f"Bearer {token(nbf=now + 600)}") == 1003
    assert code_of(f"Bearer {token(exp=now - 600)}") == 1004


def test_bad_signature_unknown_key_and_missing_exp_are_1002() -> None:
    now = int(time.time())
    forged = jwt.encode(
        {"iss": "AK1", "exp": now + 60}, "wrong-secret-wrong-secret-wrong-secret", algorithm="HS256"
    )
    assert code_of(f"Bearer {forged}") == 1002
    assert code_of(f"Bearer {token(iss='AK-unknown')}") == 1002
    no_exp = jwt.encode({"iss": "AK1"}, SECRET, algorithm="HS256")
    assert code_of(f"Bearer {no_exp}") == 1002


def b64(part: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


def test_alg_none_and_other_algorithms_are_refused() -> None:
    claims = {"iss": "AK1", "exp": int(time.time()) + 60}
    unsigned = f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."
    assert code_of(f"Bearer {unsigned}") == 1002
    hs512 = jwt.encode(claims, SECRET * 8, algorithm="HS512")
    assert code_of(f"Bearer {hs512}") == 1002


def test_a_reused_token_is_checked_once_then_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    reused = token(jti="reuse-1")
    assert auth(f"Bearer {reused}").account_id == "acct-1"

    def no_decode(*_args: object, **_kwargs: object) -> object:
        raise AssertionError("a remembered token must not be decoded again")

    monkeypatch.setattr(jwt, "decode", no_decode)
    monkeypatch.setattr(jwt, "get_unverified_header", no_decode)
    assert auth(f"Bearer {reused}") == Caller(account_id="acct-1", access_key="AK1")


def test_a_remembered_token_still_expires_and_waits_for_nbf(monkeypatch: pytest.MonkeyPatch) -> None:
    now = time.time()
    reused = token(jti="reuse-2", exp=int(now) + 60, nbf=int(now) - 5)
    assert auth(f"Bearer {reused}").account_id == "acct-1"
    monkeypatch.setattr(time, "time", lambda: now + 60 + 9)  # inside the leeway: still good
    assert auth(f"Bearer {reused}").account_id == "acct-1"
    monkeypatch.setattr(time, "time", lambda: now + 60 + 11)
    assert code_of(f"Bearer {reused}") == 1004
    early = token(jti="reuse-3", nbf=int(now) + 5)  # within the leeway now ...
    monkeypatch.setattr(time, "time", lambda: now)
    assert auth(f"Bearer {early}").account_id == "acct-1"
    monkeypatch.setattr(time, "time", lambda: now - 20)  # ... not for a clock far behind
    assert code_of(f"Bearer {early}") == 1003


def test_a_remembered_token_dies_with_its_key() -> None:
    keys = dict(KEYS)
    reused = token(jti="reuse-4")

    def check() -> Caller:
        return authenticate(f"Bearer {reused}", secret_for=keys.get, account_for_api_key=API_KEYS.get)

    assert check().account_id == "acct-1"
    del keys["AK1"]  # revoked
    with pytest.raises(ApiError) as caught:
        check()
    assert caught.value.code == 1002
    keys["AK1"] = ("acct-1", "a-rotated-secret-0123456789abcdef")  # same access key, new secret
    with pytest.raises(ApiError) as caught:
        check()
    assert caught.value.code == 1002
