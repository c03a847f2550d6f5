"""The `api` fixture: see apikit.make_api. Passwords are hashed at a low scrypt cost here, so that the
fuzzer's hundreds of sign-ins stay fast; the rules do not depend on the cost (tests/accounts checks it)."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from apikit import Api, make_api

from kinema.accounts import passwords


@pytest.fixture(autouse=True)
def cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "COST", passwords.Cost(log_n=10))


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    yield from make_api(tmp_path)
