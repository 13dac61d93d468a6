"""The whole customer journey in a real Chromium against a real DEV_MODE portal process, and the limits."""

from __future__ import annotations

import re
import shutil
import os
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person
from tests.support.db import run_sql

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ADA = Person(email="ada@example.com", name="Ada Lovelace")
README_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"


async def test_dev_mode_journey(chromium, portal):
    """Sign in, upload two files (watching progress), download, delete, create a token, go Pro, sign out."""
    async with open_page(chromium) as (page, problems):
        await journey.full_journey(page, portal.url, sign_in=journey.sign_in_dev, person=ADA)
        problems.assert_none()


async def test_the_readme_screenshot_of_the_dashboard(chromium, portal):
    """The README's picture of the dashboard, made here. PORTAL_UPDATE_README_SCREENSHOT=1 refreshes docs/img/."""
    person = Person(email="readme@example.com", name="Readme")
    files = {"release-2.4.0.tar.gz": os.urandom(3 * 1024 * 1024 // 2), "changelog.md": b"# Changes\n" * 300,
             "design review notes.pdf": os.urandom(420 * 1024)}
    async with open_page(chromium, width=1280, height=860) as (page, problems):
        await journey.sign_in_dev(page, portal.url, person)
        for name, data in files.items():
            await journey.choose_files(page, {name: data})
            await journey.wait_uploaded(page, name)
        await expect(page.get_by_test_id("artifact-row")).to_have_count(3)
        await page.get_by_test_id("clear-finished").click()
        await expect(page.get_by_test_id("upload-item")).to_have_count(0)
        shot = await screenshot(page, "readme-dashboard")
        problems.assert_none()
    if os.environ.get("PORTAL_UPDATE_README_SCREENSHOT") == "1":
        shutil.copy(shot, README_SCREENSHOT)
    assert README_SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", "docs/img/dashboard.png is missing"


async def test_too_large_files_are_refused_before_any_byte_is_sent(chromium, small_files_portal):
    """Over the per-file limit or the storage left: refused in the page, naming the limit, with Upgrade;
    not one request reaches the server."""
    base = small_files_portal.url
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, base, Person(email="big@example.com", name="Big"))
        await expect(page.get_by_test_id("upload-hint")).to_contain_text("1 KiB")
        posts = []
        page.on("request", lambda request: posts.append(request.url) if request.method == "POST" else None)

        await journey.choose_files(page, {"big.bin": b"x" * 4096})
        item = journey.upload_item(page, "big.bin")
        await expect(item).to_have_attribute("data-state", "refused")
        status = item.get_by_test_id("upload-status")
        await expect(status).to_contain_text("limit of 1 KiB per file")
        await expect(status).to_have_attribute("role", "alert")
        await expect(item.get_by_test_id("upload-upgrade")).to_have_attribute("href", "/billing")
        await screenshot(page, "too-large-refused")
        assert posts == [], f"a refused file was sent anyway: {posts}"

        # Errors stay until dismissed (a success would have faded by now).
        await page.wait_for_timeout(journey.FADE_AFTER_MS + 800)
        await expect(item).to_have_count(1)
        await item.get_by_test_id("upload-dismiss").click()
        await expect(item).to_have_count(0)
        problems.assert_none()


async def test_a_413_from_the_server_offers_the_upgrade(chromium, small_files_portal, small_files_db):
    """The page's idea of the storage left can be stale (another tab, another device): the server's 413
    is shown with its message and the same Upgrade link."""
    base = small_files_portal.url
    person = Person(email="stale@example.com", name="Stale")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, base, person)
        run_sql(small_files_db,  # 3.5 KiB of the 4 KiB quota used behind the page's back
                "INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
                "SELECT gen_random_uuid(), id, 'elsewhere.bin', 3584, 'application/octet-stream', repeat('0', 64), "
                "'k/elsewhere' FROM users WHERE email = %s", (person.email,))
        await journey.choose_files(page, {"fits-the-page.bin": b"y" * 1000})
        item = journey.upload_item(page, "fits-the-page.bin")
        await expect(item).to_have_attribute("data-state", "error")
        await expect(item.get_by_test_id("upload-status")).to_contain_text("storage quota of 4 KiB")
        await expect(item.get_by_test_id("upload-upgrade")).to_be_visible()
        await screenshot(page, "server-413")
        problems.assert_none()


async def test_finished_uploads_fade_and_clear_finished_empties_the_list(chromium, portal):
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, Person(email="fade@example.com", name="Fade"))
        await journey.choose_files(page, {"one.txt": b"1"})
        await journey.wait_uploaded(page, "one.txt")
        await expect(journey.upload_item(page, "one.txt")).to_have_count(0, timeout=journey.FADE_AFTER_MS + 5000)

        await journey.choose_files(page, {"two.txt": b"2", "three.txt": b"3"})
        await journey.wait_uploaded(page, "three.txt")
        clear = page.get_by_test_id("clear-finished")
        await expect(clear).to_be_visible()
        await clear.click()
        await expect(page.get_by_test_id("upload-item")).to_have_count(0)
        await expect(clear).to_be_hidden()
        await expect(page.get_by_test_id("artifact-row")).to_have_count(3)
        problems.assert_none()


async def test_signing_in_from_billing_returns_there_and_the_pages_pass_axe(chromium, portal):
    """Every page says it is DEV_MODE, passes axe signed out and signed in; sign-in returns to the page asked for."""
    grace = Person(email="grace@example.com", name="Grace Hopper")
    async with open_page(chromium) as (page, problems):
        await page.goto(portal.url + "/billing")
        await page.wait_for_url(f"{portal.url}/login?next=%2Fbilling")
        await expect(page.get_by_test_id("dev-banner")).to_contain_text("no real sign-in, storage or payments")
        await expect(page.get_by_test_id("sign-in")).to_have_text("Continue to the development sign-in form")
        await screenshot(page, "sign-in")
        await page.get_by_test_id("sign-in").click()
        await page.wait_for_url(re.compile(r"/dev/login\?"))
        await screenshot(page, "dev-sign-in-form")
        await page.goto(portal.url + "/billing")  # back to the start, through the journey's helper
        await journey.sign_in_dev(page, portal.url, grace, "/billing")
        await expect(page.get_by_test_id("billing-plan")).to_have_text("Free")
        for path in ("/", "/account", "/billing"):
            await page.goto(portal.url + path)
            await expect(page.get_by_test_id("dev-banner")).to_be_visible()
            await expect(page.locator("#user-email")).to_have_text(grace.email)
            await expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")
            await screenshot(page, f"signed-in{path.replace('/', '-') or '-root'}")
        problems.assert_none()
