"""The whole customer journey in a real Chromium against a real DEV_MODE portal process."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ADA = Person(email="ada@example.com", name="Ada Lovelace")


async def test_dev_mode_journey(chromium, portal):
    """Sign in, upload two files (watching progress), download, delete, create a token, go Pro, sign out."""
    async with open_page(chromium) as (page, problems):
        await journey.full_journey(page, portal.url, sign_in=journey.sign_in_dev, person=ADA)
        problems.assert_none()


async def test_too_large_upload_shows_the_servers_limit(chromium, small_files_portal):
    """A file over the plan's per-file limit is refused with the portal's message naming the limit."""
    base = small_files_portal.url
    async with open_page(chromium) as (page, problems):
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
