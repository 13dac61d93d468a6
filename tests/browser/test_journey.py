"""The whole customer journey in a real Chromium against a real DEV_MODE portal process."""

from __future__ import annotations

import hashlib
import os

import aiohttp
import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADA = Person(email="ada@example.com", name="Ada Lovelace")


async def api_me(base_url: str, token: str) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"{base_url}/api/me", headers={"Authorization": f"Bearer {token}"}) as resp:
            return resp.status, await resp.json()


async def test_dev_mode_journey(browser, portal):
    """Sign in, upload two files (watching progress), download, delete, create a token, go Pro, sign out."""
    base = portal.url
    report = bytes(os.urandom(700 * 1024))  # big enough to watch the progress bar under throttling
    notes = "Grüße, 東京 — ünïcode notes\n".encode() * 20
    report_name, notes_name = "quarterly report.bin", "Grüße 東京 notes.txt"

    async with open_page(browser) as (page, problems):
        await journey.sign_in_dev(page, base, ADA)
        await expect(page.get_by_test_id("dev-banner")).to_contain_text("Development mode")
        await expect(page.get_by_test_id("plan-badge")).to_have_text("Free")
        await expect(page.get_by_test_id("artifacts-empty")).to_be_visible()
        await screenshot(page, "journey-01-dashboard-empty")

        await journey.throttle_uploads(page)
        await journey.choose_files(page, {report_name: report})
        seen = await journey.wait_for_progress_between(page, report_name)
        assert 0 < seen < 100
        await screenshot(page, "journey-02-upload-in-progress")
        await journey.wait_uploaded(page, report_name)
        await journey.drop_files(page, {notes_name: notes})
        await journey.wait_uploaded(page, notes_name)

        # Newest first, with human sizes and the start of each checksum.
        await expect(page.get_by_test_id("artifact-name")).to_have_text([notes_name, report_name])
        row = journey.artifact_row(page, report_name)
        await expect(row.get_by_test_id("artifact-size")).to_have_text("700 KiB")
        await expect(row.get_by_test_id("artifact-sha")).to_have_text(hashlib.sha256(report).hexdigest()[:12])
        await expect(page.get_by_test_id("usage-text")).to_contain_text("(2 files)")
        await screenshot(page, "journey-03-two-files")

        filename, body = await journey.download(page, notes_name)
        assert body == notes
        assert filename == notes_name

        await journey.delete(page, report_name)
        await expect(page.get_by_test_id("artifact-name")).to_have_text([notes_name])
        await expect(page.get_by_test_id("usage-text")).to_contain_text("(1 file)")
        await page.reload()
        await expect(page.get_by_test_id("artifact-name")).to_have_text([notes_name])

        secret = await journey.create_token(page, base, "ci job")
        await screenshot(page, "journey-04-token-created")
        status, me = await api_me(base, secret)
        assert status == 200, me
        assert me["user"]["email"] == ADA.email

        await journey.upgrade_to_pro_dev(page, base)
        await screenshot(page, "journey-05-pro")
        await page.get_by_role("link", name="Artifacts").click()
        await expect(page.get_by_test_id("plan-badge")).to_have_text("Pro")

        await journey.sign_out(page, base)
        await screenshot(page, "journey-06-signed-out")
        # The old session is gone: a protected page sends the browser back to sign-in.
        await page.goto(base + "/account")
        await page.wait_for_url(f"{base}/login?next=%2Faccount")
        problems.assert_none()


async def test_too_large_upload_shows_the_servers_limit(browser, small_files_portal):
    """A file over the plan's per-file limit is refused with the portal's message naming the limit."""
    base = small_files_portal.url
    async with open_page(browser) as (page, problems):
        await journey.sign_in_dev(page, base, ADA)
        await expect(page.get_by_test_id("upload-hint")).to_contain_text("1 KiB")
        await journey.choose_files(page, {"big.bin": b"x" * 4096})
        item = journey.upload_item(page, "big.bin")
        await expect(item).to_have_attribute("data-state", "error")
        status = item.get_by_test_id("upload-status")
        await expect(status).to_contain_text("per-file limit")
        await expect(status).to_contain_text("1 KiB")
        await screenshot(page, "too-large")
        await page.reload()
        await expect(page.get_by_test_id("artifacts-empty")).to_be_visible()
        problems.assert_none()
