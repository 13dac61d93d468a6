"""The webhooks plugin's page in a real browser: reached from the header's nav, in the portal's layout, an
endpoint added (its secret shown once), a test sent and its attempt in the delivery log; axe on each state.
The account page links to it ("More for your account")."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_adding_an_endpoint_and_reading_its_delivery_log(chromium, portal):
    me = Person(email="webhooks-page@example.com", name="Grace Hooks")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await journey.open_menu_if_folded(page)
        await page.get_by_role("link", name="Webhooks").click()  # the plugin's nav item, on the core's page
        await page.wait_for_url(f"{portal.url}/account/webhooks")
        await expect(page.get_by_text("You have no webhook endpoints yet.")).to_be_visible()
        await screenshot(page, "webhooks-empty")
        # The account page links to it too, with any other page a plugin adds under /account/.
        await page.goto(f"{portal.url}/account")
        pages = page.get_by_test_id("account-pages")
        await expect(pages).to_be_visible()
        await expect(pages.get_by_test_id("account-page-link")).to_have_text(["Webhooks"])
        await screenshot(page, "account-with-plugin-pages")
        await pages.get_by_role("link", name="Webhooks").click()
        await page.wait_for_url(f"{portal.url}/account/webhooks")
        # Nothing listens on port 9: the delivery fails, and the log says so (DEV_MODE allows loopback URLs).
        await page.get_by_label("Endpoint URL").fill("http://127.0.0.1:9/hooks")
        await page.get_by_label("Event types").fill("artifact.created")
        await page.get_by_role("button", name="Add endpoint").click()
        await expect(page.locator("#webhook-secret")).to_have_text(re.compile(r"^whsec_"))
        await screenshot(page, "webhooks-added")
        await page.get_by_role("button", name="Send a test").click()
        await page.wait_for_url(f"{portal.url}/account/webhooks")
        await expect(page.locator("#webhook-secret")).to_have_count(0)  # shown once
        for _ in range(50):
            if await page.get_by_role("cell", name="webhook.test").count():
                break
            await page.wait_for_timeout(100)
            await page.reload()
        await expect(page.get_by_role("cell", name="webhook.test")).to_be_visible()
        await expect(page.get_by_role("cell", name="no answer")).to_be_visible()
        await screenshot(page, "webhooks-log")
        await page.get_by_role("button", name="Delete").click()
        await expect(page.get_by_text("You have no webhook endpoints yet.")).to_be_visible()
        problems.assert_none()
