"""The web studio in a real headless Chromium against a real `kinema serve` with the built-in model.

Sign in with the admin's password, make a video and watch its progress bar move, play it, extend it, find
both in the library and download one; upload a first frame for an image-to-video; draw two images and
reuse the settings of one; switch to Chinese (signed in with the key pair); use it at phone width from the
keyboard; see a member's balance, ledger, usage and keys, make a key and see its secret once; sign other
browsers out, change the password, sign out. Every screen is saved under tests/studio/artifacts/.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from studiokit import Server, frame_png, playwright_api, shoot, sign_in, sign_in_with_keys

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

expect = (
    playwright_api().expect
)  # skips this module without Playwright (fails under KINEMA_REQUIRE_BROWSER=1)

pytestmark = pytest.mark.slow
PROMPT = "a red circle moving right on a navy background"
GENERATION_MS = 180_000  # a 5-second clip takes about 15 s on two CPU cores; leave room for a busy machine

WATCH_PROGRESS = """(label) => {
  // Record each value the bar shows; done when it moved twice, or when it went away (the task ended).
  const bar = [...document.querySelectorAll('[role=progressbar]')].find(b => b.ariaLabel === label);
  const seen = (window.__seen = window.__seen || []);
  const value = bar && bar.getAttribute('aria-valuenow');
  if (value != null && seen[seen.length - 1] !== Number(value)) seen.push(Number(value));
  if (bar) window.__shown = true;
  return seen.filter(v => v > 0 && v < 100).length >= 2 || (window.__shown && !bar);
}"""
PLAYING = """() => {
  const video = document.querySelector('[role=dialog] video');
  return video !== null && video.readyState >= 2 && video.currentTime > 0.2;
}"""


def nav(page: Page, name: str) -> None:
    page.get_by_role("banner").get_by_role("link", name=name).click()


def test_create_watch_play_extend_find_and_download(page: Page, server: Server) -> None:
    page.goto(server.url + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    shoot(page, "01-sign-in")
    sign_in(page, server)
    expect(page.get_by_role("radio", name=re.compile("builtin"))).to_be_checked()
    page.get_by_label("Prompt", exact=True).fill(PROMPT)
    shoot(page, "02-create-text-to-video")
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("status")).to_contain_text("Queued: Text to video")

    # The queue: the progress bar moves (a value strictly between 0 and 100, then the task ends), never
    # going back. A 5-second clip takes ~4 s on an idle machine and workers report every 2 s, so one
    # intermediate value is what can be promised.
    nav(page, "Queue")
    page.wait_for_function(WATCH_PROGRESS, arg=f"Progress of {PROMPT}", polling=100, timeout=GENERATION_MS)
    shoot(page, "03-queue-progress")
    seen = page.evaluate("window.__seen")
    assert len([v for v in seen if 0 < v < 100]) >= 1 and seen == sorted(seen), seen
    card = page.get_by_role("article", name=PROMPT, exact=True)
    expect(card.get_by_role("link", name="Open")).to_be_visible(timeout=GENERATION_MS)

    # The finished video plays in the detail view, with its parameters and seed.
    card.get_by_role("link", name="Open").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name=PROMPT)).to_be_visible()
    page.wait_for_function(PLAYING, timeout=30_000)
    expect(dialog.locator("dl")).to_contain_text(re.compile(r"Seed\s*\d+"))
    shoot(page, "04-detail-player")

    # Extend it by 5 s and wait for the extension in the queue.
    dialog.get_by_role("button", name="Extend +5 s").click()
    expect(page.get_by_role("status")).to_contain_text("Extension queued")
    page.keyboard.press("Escape")
    nav(page, "Queue")
    extension = page.get_by_role("article", name=PROMPT, exact=True).filter(has_text="Extend")
    expect(extension.get_by_role("link", name="Open")).to_be_visible(timeout=GENERATION_MS)

    # Both are in the library; the kind filter finds the extension alone.
    nav(page, "Library")
    results = page.locator("article.result")
    expect(results).to_have_count(2)
    results.first.get_by_role("link").first.hover()  # the poster plays while hovered
    expect(results.first.locator("video")).to_have_count(1)
    shoot(page, "05-library")
    page.get_by_label("Kind").select_option("extend")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Extend")
    # Model and date filter on the server too: today's built-in extensions are still that one.
    page.get_by_label("Model").select_option("builtin")
    page.get_by_label("Date").select_option("today")
    expect(results).to_have_count(1)
    expect(results.first).to_contain_text("Extend")

    # Download the 10-second extension: an MP4 file.
    results.first.get_by_role("link", name=f"Open {PROMPT}").click()
    expect(dialog.locator("dl")).to_contain_text("Seconds added")
    page.wait_for_function(PLAYING, timeout=30_000)
    shoot(page, "06-detail-extension")
    with page.expect_download() as download:
        dialog.get_by_role("link", name="Download").click()
    assert download.value.suggested_filename.endswith(".mp4")
    data = Path(download.value.path()).read_bytes()
    assert data[4:8] == b"ftyp" and len(data) > 1000


def test_an_api_refusal_lands_next_to_its_field(page: Page, server: Server) -> None:
    done = server.api("GET", "/api/v1/tasks", params={"status": "succeed", "kind": "text2video"})["tasks"]
    if not done:
        pytest.skip("needs the video made by the test above")
    video_id = done[0]["outputs"][0]["id"]
    sign_in(page, server)
    page.get_by_role("tab", name="Extend").click()
    page.locator(f"input[name=video_id][value='{video_id}']").check()
    server.api("DELETE", f"/api/v1/tasks/{done[0]['id']}")  # gone, from another client
    page.get_by_role("button", name="Generate").click()
    error = page.locator("#f-video_id-error")
    expect(error).to_contain_text(f"video_id '{video_id}' does not exist")
    shoot(page, "07-refusal-next-to-field")


def test_image_to_video_from_an_uploaded_first_frame(page: Page, server: Server, tmp_path: Path) -> None:
    prompt = "the red circle drifts to the right"
    sign_in(page, server)
    page.get_by_role("tab", name="Image to video").click()
    page.locator("#f-image").set_input_files(frame_png(tmp_path / "first.png"))
    expect(page.get_by_role("img", name="First frame")).to_be_visible()
    expect(page.get_by_text("640 × 360 px")).to_be_visible()
    page.get_by_label("Prompt", exact=True).fill(prompt)
    shoot(page, "08-create-image-to-video")
    page.get_by_role("button", name="Generate").click()
    card = page.get_by_role("article", name=prompt, exact=True)  # live, under the form
    expect(card.get_by_role("progressbar")).to_be_visible()
    expect(card.get_by_role("link", name="Open")).to_be_visible(timeout=GENERATION_MS)
    card.get_by_role("link", name="Open").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("heading", name="Inputs")).to_be_visible()
    page.wait_for_function(PLAYING, timeout=30_000)
    shoot(page, "09-detail-image-to-video")
    dialog.get_by_role("button", name="Delete").click()
    dialog.get_by_role("button", name="Delete for good").click()
    expect(dialog).to_be_hidden()
    expect(page.get_by_role("article", name=prompt, exact=True)).to_have_count(0)


def test_switch_to_simplified_chinese_signed_in_with_the_key_pair(page: Page, server: Server) -> None:
    sign_in_with_keys(page, server)
    page.get_by_label("Language").first.select_option("zh-CN")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    expect(page.get_by_role("tab", name="文生视频")).to_be_visible()
    expect(page.get_by_role("button", name="生成", exact=True)).to_be_visible()
    shoot(page, "10-zh-create")
    # A refusal leads with a Chinese headline and keeps the server's own sentence under it.
    refusal = {"code": 1102, "message": "this task costs 40 credits but you have 10 left", "request_id": "r"}
    page.route(
        "**/api/v1/tasks",
        lambda route: (
            route.fulfill(status=429, json=refusal) if route.request.method == "POST" else route.fallback()
        ),
    )
    page.get_by_label("提示词", exact=True).fill(PROMPT)
    page.get_by_role("button", name="生成", exact=True).click()
    expect(page.locator(".form-error .message-headline")).to_have_text("点数不足")
    expect(page.locator(".form-error [lang=en]")).to_have_text(refusal["message"])
    page.locator(".form-error").scroll_into_view_if_needed()
    shoot(page, "10-zh-refusal")
    page.unroute("**/api/v1/tasks")
    nav(page, "队列")
    expect(page.get_by_role("heading", name="队列", exact=True)).to_be_visible()
    shoot(page, "11-zh-queue")
    nav(page, "作品库")
    expect(page.get_by_role("heading", name="作品库")).to_be_visible()
    shoot(page, "12-zh-library")
    nav(page, "账户")
    expect(page.get_by_role("region", name="套餐与余额")).to_contain_text("队列优先级")
    expect(page.get_by_text("已使用 Access Key")).to_be_visible()
    shoot(page, "13-zh-account")
    with page.expect_download() as download:  # signed in by key: fetched with the header, saved as a blob
        page.get_by_role("button", name="下载 CSV").click()
    assert download.value.suggested_filename == "kinema-usage.csv"
    assert "credits" in Path(download.value.path()).read_text().splitlines()[0]
    page.reload()  # the language is remembered, the keys last as long as the tab
    expect(page.get_by_role("button", name="退出登录", exact=True)).to_be_visible()


def test_phone_width_keyboard_validation_and_sign_out(page: Page, server: Server) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page, server)
    navigation = page.get_by_role("navigation", name="Main").bounding_box()
    assert navigation is not None and navigation["y"] > 700  # a tab bar at the bottom
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing overflows sideways
    shoot(page, "14-phone-create")
    page.get_by_role("tab", name="Text to video").focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tab", name="Image to video")).to_be_focused()
    expect(page.get_by_role("tab", name="Image to video")).to_have_attribute("aria-selected", "true")
    page.keyboard.press("ArrowLeft")
    expect(page.get_by_role("tab", name="Text to video")).to_have_attribute("aria-selected", "true")
    page.get_by_role("button", name="Generate").click()
    prompt = page.get_by_label("Prompt", exact=True)
    expect(prompt).to_be_focused()
    expect(prompt).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#f-prompt-error")).to_have_text("prompt: describe what you want to see.")
    shoot(page, "15-phone-validation")
    nav(page, "Account")
    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0


def test_image_draws_sit_side_by_side_and_reuse_fills_the_form(page: Page, server: Server) -> None:
    prompt = "a yellow star on a gray background"
    sign_in(page, server)
    page.get_by_role("tab", name="Image", exact=True).click()
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Draws", exact=True).select_option("2")
    page.get_by_role("button", name="Roll a random seed").click()
    expect(page.get_by_label("Seed", exact=True)).to_have_value(re.compile(r"^\d+$"))
    page.get_by_role("button", name="Generate").click()
    expect(page.get_by_role("status")).to_contain_text(f"Done: {prompt}", timeout=GENERATION_MS)
    nav(page, "Library")
    result = page.locator("article.result", has_text=prompt)
    expect(result.get_by_role("link")).to_have_count(2)
    shoot(page, "16-library-draws")
    result.get_by_role("link", name="Draw 2").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_role("navigation", name="Draws").get_by_role("link")).to_have_count(2)
    seed = dialog.locator("dt", has_text="Seed").locator("xpath=following-sibling::dd[1]").inner_text()
    dialog.get_by_role("button", name="Reuse settings").click()
    expect(page.get_by_role("tab", name="Image", exact=True)).to_have_attribute("aria-selected", "true")
    expect(page.get_by_label("Prompt", exact=True)).to_have_value(prompt)
    expect(page.get_by_label("Seed", exact=True)).to_have_value(seed)
    expect(page.get_by_label("Draws", exact=True)).to_have_value("2")


def test_cancel_and_retry_from_the_queue(page: Page, server: Server) -> None:
    prompt = "a green triangle spinning slowly"
    sign_in(page, server)
    page.get_by_label("Prompt", exact=True).fill(prompt)
    page.get_by_label("Duration").select_option("60")
    page.get_by_role("button", name="Generate").click()
    nav(page, "Queue")
    card = page.get_by_role("article", name=prompt, exact=True)
    card.get_by_role("button", name="Cancel").click()
    expect(card.get_by_role("button", name="Retry")).to_be_visible(timeout=60_000)
    expect(card).to_contain_text("Cancelled")
    card.get_by_role("button", name="Retry").click()
    expect(card.get_by_role("progressbar")).to_be_visible()
    card.get_by_role("button", name="Cancel").click()
    expect(card.get_by_role("button", name="Retry")).to_be_visible(timeout=60_000)


def member(server: Server, name: str, password: str, **fields: object) -> str:
    """A new member account with a studio password, made through the admin API; its id."""
    body = {"name": name, "password": password, **fields}
    return str(server.api("POST", "/api/v1/admin/accounts", json=body)["account_id"])


def test_password_sign_in_lasts_a_reload_and_the_account_shows_balance_ledger_usage_and_keys(
    page: Page, server: Server
) -> None:
    ada = member(server, "ada", "analytical engine", plan="creator")
    server.api("POST", f"/api/v1/admin/accounts/{ada}/credits", json={"credits": 500, "note": "welcome pack"})
    balance = server.api("GET", f"/api/v1/admin/accounts/{ada}")["balance"]

    page.goto(server.url + "/")
    page.get_by_label("Name", exact=True).fill("ada")
    page.get_by_label("Password", exact=True).fill("difference engine")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_have_text(
        "The name or the password is wrong; check both (names are case-sensitive)."
    )
    sign_in(page, server, "ada", "analytical engine")
    page.reload()  # the cookie session is asked for on start
    expect(page.get_by_label("Prompt", exact=True)).to_be_visible()
    assert page.evaluate("document.cookie") == ""  # HttpOnly: no script can read the session

    nav(page, "Account")
    expect(page.get_by_text("Signed in as ada")).to_be_visible()
    summary = page.get_by_role("region", name="Plan and balance")
    expect(summary).to_contain_text(f"{balance:,} credits")
    expect(summary).to_contain_text(re.compile(r"Plan\s*creator"))
    expect(summary).to_contain_text(re.compile(r"Video slots in use\s*0 of 3"))
    ledger = page.get_by_role("region", name="Credit history")
    expect(ledger.get_by_role("row").filter(has_text="welcome pack")).to_contain_text(
        re.compile(r"Grant.*\+500")
    )
    expect(page.get_by_role("region", name="Usage, last 30 days")).to_be_visible()
    shoot(page, "17-account")

    # The usage report downloads as CSV through a plain link: the cookie is the credential.
    with page.expect_download() as download:
        page.get_by_role("link", name="Download CSV").click()
    assert download.value.suggested_filename == "kinema-usage.csv"
    assert "credits" in Path(download.value.path()).read_text().splitlines()[0]

    # A new key pair: its secret is shown once, then never again.
    keys = page.get_by_role("region", name="API keys")
    keys.get_by_role("button", name="Create key pair").click()
    made = page.get_by_role("region", name="New key pair")
    expect(made.get_by_role("heading")).to_be_focused()
    expect(made).to_contain_text("shown only once")
    access, secret = (
        made.get_by_label("Access key", exact=True).input_value(),
        made.get_by_label("Secret key", exact=True).input_value(),
    )
    assert access.startswith("ak_") and secret.startswith("sk_")
    shoot(page, "18-account-new-key")
    made.get_by_role("button", name="Done, I saved it").click()
    expect(made).to_have_count(0)
    row = keys.get_by_role("listitem").filter(has_text=access)
    expect(row).to_contain_text("key pair")
    assert secret not in page.content()
    row.get_by_role("button", name=f"Revoke {access}").click()
    row.get_by_role("button", name="Revoke for good").click()
    expect(row).to_contain_text("revoked")

    page.set_viewport_size({"width": 360, "height": 780})
    page.reload()
    expect(summary).to_contain_text(f"{balance:,} credits")
    page.evaluate("window.scrollTo(0, 0)")
    assert page.evaluate("document.documentElement.scrollWidth") <= 360  # nothing overflows sideways
    shoot(page, "19-phone-account")


def test_sign_out_other_browsers_change_the_password_and_sign_out(
    page: Page, browser: Browser, server: Server
) -> None:
    member(server, "grace", "compiler one")
    elsewhere_context = browser.new_context(locale="en-US")
    elsewhere = elsewhere_context.new_page()
    sign_in(elsewhere, server, "grace", "compiler one")
    sign_in(page, server, "grace", "compiler one")
    nav(page, "Account")
    browsers = page.get_by_role("region", name="Signed-in browsers")
    expect(browsers.get_by_role("listitem")).to_have_count(2)
    expect(browsers.get_by_role("listitem").filter(has_text="this browser")).to_have_count(1)
    browsers.get_by_role("button", name="Sign out everywhere else").click()
    expect(browsers.get_by_role("listitem")).to_have_count(1)
    elsewhere.reload()
    expect(elsewhere.get_by_role("alert")).to_contain_text("Your session has ended")
    expect(elsewhere.get_by_role("heading", name="Sign in")).to_be_visible()
    elsewhere_context.close()

    # Checked here first, then by the server: each refusal lands next to its field.
    form = page.get_by_role("region", name="Change password")
    current, new, repeat = (
        form.get_by_label("Current password"),
        form.get_by_label("New password", exact=True),
        form.get_by_label("Repeat the new password"),
    )
    current.fill("compiler one")
    new.fill("a-0 and flow-matic")
    repeat.fill("a-0 and flow-matics")
    form.get_by_role("button", name="Change password").click()
    expect(repeat).to_be_focused()
    expect(page.locator("#pw-repeat-error")).to_have_text(
        "The two new passwords differ; type the same one twice."
    )
    current.fill("compiler two")
    repeat.fill("a-0 and flow-matic")
    form.get_by_role("button", name="Change password").click()
    expect(page.locator("#pw-current-error")).to_have_text("current_password: is not the account's password")
    expect(current).to_have_attribute("aria-invalid", "true")
    current.fill("compiler one")
    form.get_by_role("button", name="Change password").click()
    expect(form.get_by_role("status")).to_contain_text("Password changed")
    expect(current).to_have_value("")

    page.get_by_role("button", name="Sign out", exact=True).click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.reload()  # the cookie is gone too
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    sign_in(page, server, "grace", "a-0 and flow-matic")
