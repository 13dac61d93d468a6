"""The customer journey as reusable steps, so another auth backend can run it with its own sign-in.

Each step drives the real pages the way a person would (buttons, links, the dialog) and waits for
what a person would see. ``sign_in`` is swappable: ``sign_in_dev`` fills the DEV_MODE form; an OIDC
test passes a function with the same signature that fills the identity provider's form.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Awaitable, Callable

import aiohttp
import attrs
from playwright.async_api import Page, expect

from tests.browser.chromium import screenshot

# assets/js/uploader.js: a finished row fades after this long.
FADE_AFTER_MS = 4000

# Uploads are throttled to this rate so the progress bar can be seen moving (not to measure anything).
UPLOAD_BYTES_PER_SECOND = 512 * 1024


@attrs.frozen
class Person:
    email: str
    name: str


# sign_in(page, base_url, person, next_path): from signed out to signed in on next_path.
SignIn = Callable[[Page, str, Person, str], Awaitable[None]]


async def open_sign_in(page: Page, base_url: str, next_path: str = "/") -> None:
    """Visit a page that needs sign-in, get sent to /login, and press its sign-in button."""
    await page.goto(base_url + next_path)
    await page.wait_for_url(re.compile(r"/login\?next="))
    await page.get_by_test_id("sign-in").click()


async def sign_in_dev(page: Page, base_url: str, person: Person, next_path: str = "/") -> None:
    """Sign in through the DEV_MODE form (email and name, nothing else) and land back on ``next_path``."""
    await open_sign_in(page, base_url, next_path)
    await page.wait_for_url(re.compile(r"/dev/login\?"))
    await page.fill("#dev-email", person.email)
    await page.fill("#dev-name", person.name)
    await page.click("#dev-submit")
    await page.wait_for_url(base_url + next_path)
    await expect(page.locator("#user-email")).to_have_text(person.email)


async def throttle_uploads(page: Page, bytes_per_second: int = UPLOAD_BYTES_PER_SECOND) -> None:
    """Slow this page's uploads down (Chromium network emulation) so progress is observable."""
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("Network.enable")
    await cdp.send("Network.emulateNetworkConditions", {
        "offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": bytes_per_second})


def upload_item(page: Page, name: str):
    """The upload list entry for the file called ``name``."""
    return page.get_by_test_id("upload-item").filter(has=page.locator(".upload-name", has_text=re.compile(f"^{re.escape(name)}$")))


async def choose_files(page: Page, files: dict[str, bytes]) -> None:
    """Pick files with the file chooser (the "Choose files" button)."""
    await page.set_input_files("#file-input", [
        {"name": name, "mimeType": "application/octet-stream", "buffer": data} for name, data in files.items()])


async def drop_files(page: Page, files: dict[str, bytes]) -> None:
    """Drop files on the drop zone, as dragging them from the desktop does."""
    payload = [[name, list(data)] for name, data in files.items()]
    transfer = await page.evaluate_handle("""(files) => {
        const transfer = new DataTransfer();
        for (const [name, bytes] of files) transfer.items.add(new File([new Uint8Array(bytes)], name));
        return transfer;
    }""", payload)
    await page.dispatch_event("#drop-zone", "dragover", {"dataTransfer": transfer})
    await page.dispatch_event("#drop-zone", "drop", {"dataTransfer": transfer})


async def wait_for_progress_between(page: Page, name: str) -> int:
    """Wait until the file's progress bar shows a value strictly between 0 and 100; returns it."""
    progress = upload_item(page, name).get_by_test_id("upload-progress")
    handle = await progress.element_handle()
    await page.wait_for_function("(bar) => bar.value > 0 && bar.value < 100", arg=handle)
    return int(await progress.evaluate("(bar) => bar.value"))


async def wait_uploaded(page: Page, name: str) -> None:
    item = upload_item(page, name)
    await expect(item).to_have_attribute("data-state", "done", timeout=60_000)
    await expect(item.get_by_test_id("upload-progress")).to_have_attribute("value", "100")


def artifact_row(page: Page, name: str):
    """The table row of the artifact called ``name``."""
    return page.get_by_test_id("artifact-row").filter(
        has=page.get_by_test_id("artifact-name").filter(has_text=re.compile(f"^{re.escape(name)}$")))


async def download(page: Page, name: str) -> tuple[str, bytes]:
    """Click the row's download link; returns the browser's file name and the bytes it saved."""
    async with page.expect_download() as info:
        await artifact_row(page, name).get_by_test_id("download").click()
    saved = await info.value
    failure = await saved.failure()
    assert failure is None, f"download of {name!r} failed: {failure}"
    path = await saved.path()
    with open(path, "rb") as fh:
        return saved.suggested_filename, fh.read()


async def delete(page: Page, name: str, *, shot: str | None = None) -> None:
    """Delete through the row's button and confirm in the dialog; waits until the row is gone.

    ``shot`` names a screenshot (and axe check) taken while the dialog is open.
    """
    await artifact_row(page, name).get_by_test_id("delete").click()
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await expect(dialog).to_contain_text(name)
    if shot:
        await screenshot(page, shot)
    await page.click("#confirm-ok")
    await expect(artifact_row(page, name)).to_have_count(0)


async def create_token(page: Page, base_url: str, name: str) -> str:
    """Create an API token on /account; returns the secret shown once."""
    await page.locator("#nav-account").click()
    await page.wait_for_url(base_url + "/account")
    await page.get_by_label("Token name").fill(name)
    await page.get_by_test_id("token-create").click()
    await expect(page.get_by_test_id("new-token")).to_be_visible()
    secret = await page.get_by_test_id("new-token-value").input_value()
    await expect(page.get_by_test_id("token-row").filter(has_text=name)).to_have_count(1)
    return secret


async def upgrade_to_pro_dev(page: Page, base_url: str) -> None:
    """Billing → "Upgrade to Pro" → the DEV_MODE checkout's Pay button → back on billing as Pro."""
    await page.locator("#nav-billing").click()
    await page.wait_for_url(base_url + "/billing")
    await expect(page.get_by_test_id("billing-plan")).to_have_text("Free")
    await expect(page.get_by_test_id("plan-pro")).to_contain_text("$9.00")
    await screenshot(page, "billing-free-plans")
    await page.get_by_test_id("upgrade-pro").click()
    await page.wait_for_url(re.compile(r"/dev/billing/checkout\?plan=pro"))
    await expect(page.locator("main")).to_contain_text("Pro plan for 9.00 USD a month")
    await screenshot(page, "dev-checkout")
    await page.click("#dev-pay")
    await page.wait_for_url(re.compile(r"/billing(\?|$)"))
    await expect(page.get_by_test_id("billing-plan")).to_have_text("Pro")
    await expect(page.get_by_test_id("notice-success")).to_contain_text("Pro plan")


async def open_menu_if_folded(page: Page) -> None:
    """At phone width the nav and Sign out sit behind the header's Menu button: open it when it shows."""
    toggle = page.locator("#menu-toggle")
    if await toggle.is_visible() and await toggle.get_attribute("aria-expanded") != "true":
        await toggle.click()


async def sign_out(page: Page, base_url: str) -> None:
    """Press Sign out in the header; the portal forgets the session and the sign-in page says so."""
    await open_menu_if_folded(page)
    await page.get_by_test_id("sign-out").click()
    await page.wait_for_url(re.compile(r"/login(\?|$)"))
    await expect(page.get_by_test_id("sign-in")).to_be_visible()
    await expect(page.get_by_test_id("signed-out")).to_have_text(re.compile("You have signed out"))


async def api_me(base_url: str, token: str) -> tuple[int, dict]:
    """GET /api/me with an API token, as a script would; returns (status, JSON)."""
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()


async def full_journey(page: Page, base: str, *, sign_in: SignIn, person: Person,
                       upgrade: Callable[[Page, str], Awaitable[None]] = upgrade_to_pro_dev,
                       shots: str = "journey") -> None:
    """The whole journey from signed out to signed out again; screenshots are named ``<shots>-NN-…``.

    Sign in, upload two files (one picked, one dropped, watching the progress bar), see them listed,
    download one and compare bytes, delete one, create an API token and use it from Python, upgrade
    to Pro and see the badge change, sign out.
    """
    report = bytes(os.urandom(700 * 1024))  # big enough to watch the progress bar under throttling
    notes = "Grüße, 東京 — ünïcode notes\n".encode() * 20
    report_name, notes_name = "quarterly report.bin", "Grüße 東京 notes.txt"

    await sign_in(page, base, person, "/")
    await expect(page.get_by_test_id("plan-badge")).to_have_text("Free")
    await expect(page.get_by_test_id("artifacts-empty")).to_be_visible()
    await screenshot(page, f"{shots}-01-dashboard-empty")

    await throttle_uploads(page)
    await choose_files(page, {report_name: report})
    seen = await wait_for_progress_between(page, report_name)
    assert 0 < seen < 100
    await screenshot(page, f"{shots}-02-upload-in-progress")
    await wait_uploaded(page, report_name)
    await drop_files(page, {notes_name: notes})
    await wait_uploaded(page, notes_name)

    # Newest first, with human sizes and the start of each checksum.
    await expect(page.get_by_test_id("artifact-name")).to_have_text([notes_name, report_name])
    row = artifact_row(page, report_name)
    await expect(row.get_by_test_id("artifact-size")).to_have_text("700 KiB")
    await expect(row.get_by_test_id("artifact-sha")).to_have_text(hashlib.sha256(report).hexdigest()[:12])
    await expect(page.get_by_test_id("usage-text")).to_contain_text("(2 files)")
    await screenshot(page, f"{shots}-03-two-files")

    filename, body = await download(page, notes_name)
    assert body == notes
    assert filename == notes_name

    await delete(page, report_name, shot=f"{shots}-03b-confirm-delete")
    await expect(page.get_by_test_id("artifact-name")).to_have_text([notes_name])
    await expect(page.get_by_test_id("usage-text")).to_contain_text("(1 file)")
    await page.reload()
    await expect(page.get_by_test_id("artifact-name")).to_have_text([notes_name])

    secret = await create_token(page, base, "ci job")
    await expect(page.get_by_test_id("profile-email")).to_have_text(person.email)
    await expect(page.get_by_test_id("profile-name")).to_have_text(person.name)
    await screenshot(page, f"{shots}-04-token-created")
    status, me = await api_me(base, secret)
    assert status == 200, me
    assert me["user"]["email"] == person.email

    await upgrade(page, base)
    await expect(page.get_by_test_id("billing-renewal")).to_contain_text("renews on")
    await expect(page.get_by_test_id("plan-pro")).to_have_attribute("data-current", "true")
    await screenshot(page, f"{shots}-05-pro")
    await page.locator("#nav-artifacts").click()
    await expect(page.get_by_test_id("plan-badge")).to_have_text("Pro")

    await sign_out(page, base)
    await screenshot(page, f"{shots}-06-signed-out")
    # The old session is gone: a protected page sends the browser back to sign-in.
    await page.goto(base + "/account")
    await page.wait_for_url(f"{base}/login?next=%2Faccount")
