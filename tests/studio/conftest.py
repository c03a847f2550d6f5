"""Fixtures for the studio tests: one `kinema serve` and one Chromium per module, a fresh page per test."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING

import pytest
from studiokit import (
    KINEMA,
    Server,
    chromium_path,
    free_port,
    keys_from,
    password_from,
    playwright_api,
    shoot,
    wait_ready,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, ViewportSize


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    chromium_path()  # refuse early, before paying for a server start
    folder = tmp_path_factory.mktemp("studio")
    port = free_port()
    log = folder / "serve.log"
    env = {**os.environ, "KINEMA_TORCH_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("KINEMA_ADMIN_PASSWORD", None)  # the tests read the printed one
    args = [str(KINEMA), "serve", "--port", str(port), "--data-dir", str(folder / "data")]
    with log.open("a") as handle:
        process = subprocess.Popen(args, env=env, stdout=handle, stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log)
        yield Server(url, *keys_from(log), password_from(log))
    finally:
        process.terminate()
        process.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = chromium_path()
    with playwright_api().sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Keep each phase's report on the test, so the page fixture knows whether the test failed."""
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    viewport: ViewportSize = {"width": 1280, "height": 860}
    context = browser.new_context(viewport=viewport, locale="en-US", accept_downloads=True)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    call = getattr(request.node, "report_call", None)
    if call is not None and call.failed:
        shoot(opened, f"FAILED-{request.node.name}")  # what the page showed when the test gave up
    context.close()
    assert not errors, f"the page threw: {errors}"
