"""Helpers for the studio tests: a real `kinema serve`, a headless Chromium, signing in, screenshots.

Without Chromium or Playwright the studio tests skip, or fail with an install hint when
KINEMA_REQUIRE_BROWSER=1 (CI sets it). Screenshots go to tests/studio/artifacts/ (gitignored).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import jwt
import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Page

KINEMA = Path(sys.executable).with_name("kinema")
ARTIFACTS = Path(__file__).parent / "artifacts"
CHROMIUM_HINT = "install Debian's Chromium: `apt-get install -y chromium` (the tests drive /usr/bin/chromium)"
PLAYWRIGHT_HINT = "install Playwright for Python with `pip install -e '.[dev]'` (no browser download needed)"


def missing(hint: str) -> None:
    """Skip, or fail where a browser is required (KINEMA_REQUIRE_BROWSER=1, as in CI)."""
    if os.environ.get("KINEMA_REQUIRE_BROWSER") == "1":
        pytest.fail(f"the studio tests need a browser: {hint}", pytrace=False)
    pytest.skip(hint, allow_module_level=True)


def chromium_path() -> str:
    """The browser to drive: KINEMA_CHROMIUM if set, else Debian's chromium on the PATH."""
    found = os.environ.get("KINEMA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(found).is_file():
        missing(CHROMIUM_HINT)
    return found


def playwright_api() -> ModuleType:
    """playwright.sync_api, or a skip (a failure where a browser is required) with the install hint."""
    try:
        import playwright.sync_api as api
    except ImportError:
        missing(PLAYWRIGHT_HINT)
        raise
    return api


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    access_key: str
    secret_key: str
    password: str  # the admin's studio password

    def headers(self) -> dict[str, str]:
        now = int(time.time())
        claims = {"iss": self.access_key, "exp": now + 600, "nbf": now - 5}
        return {"Authorization": "Bearer " + jwt.encode(claims, self.secret_key, algorithm="HS256")}

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, self.url + path, headers=self.headers(), timeout=30, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()["data"]


def wait_ready(url: str, process: subprocess.Popen[str], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        try:
            if httpx.get(url + "/readyz", timeout=2).json().get("workers", 0) >= 1:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"the server did not become ready:\n{log.read_text()}")


def keys_from(log: Path) -> tuple[str, str]:
    text = log.read_text()
    return text.split("access key", 1)[1].split()[0], text.split("secret key", 1)[1].split()[0]


def password_from(log: Path) -> str:
    """The admin's studio password that the first start printed (the console may wrap the line)."""
    found = re.search(r"as admin with\s+password\s+(\S+)", log.read_text())
    assert found, f"no admin password in the server log:\n{log.read_text()}"
    return found.group(1)


def shoot(page: Page, name: str) -> None:
    """Save a screenshot of what the user sees now as tests/studio/artifacts/<name>.png."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def sign_in(page: Page, server: Server, name: str = "admin", password: str | None = None) -> None:
    """Open the studio and sign in with a name and password (the admin's, which `kinema serve` printed)."""
    expect = playwright_api().expect
    page.goto(server.url + "/")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Password", exact=True).fill(server.password if password is None else password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()


def sign_in_with_keys(page: Page, server: Server) -> None:
    """Open the studio and sign in with the admin key pair that `kinema serve` printed."""
    expect = playwright_api().expect
    page.goto(server.url + "/")
    page.get_by_role("button", name="Use an access key / API key instead").click()
    page.get_by_label("Access key", exact=True).fill(server.access_key)
    page.get_by_label("Secret key", exact=True).fill(server.secret_key)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()


def frame_png(path: Path, size: tuple[int, int] = (640, 360)) -> Path:
    """A first frame in the built-in model's world: a red circle on navy, as a PNG file."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, (20, 30, 90))
    ImageDraw.Draw(image).ellipse((120, 120, 240, 240), fill=(220, 40, 40))
    image.save(path)
    return path
