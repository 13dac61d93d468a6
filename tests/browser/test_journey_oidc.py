"""The journey again with AUTH_BACKEND=oidc: a real Chromium signs in through a real OpenID provider's
login form (oidc-provider on 127.0.0.1), uploads, and signs out through the provider's end-session page."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import Page, expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person
from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, running_provider
from tests.support.portal import free_port, run_portal

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

# The test provider makes <login>@example.com the email of whoever signs in as <login>.
ADA = Person(email="ada@example.com", name="ada")


@pytest.fixture
def oidc_portal(database_url):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with running_provider(redirect_uris=[base + "/auth/callback"], post_logout_uris=[base + "/"]) as provider:
        env = {"AUTH_BACKEND": "oidc", "POCKET_ID_ISSUER": provider.issuer, "POCKET_ID_CLIENT_ID": CLIENT_ID,
               "POCKET_ID_CLIENT_SECRET": CLIENT_SECRET}
        with run_portal(database_url, env, port=port) as portal:
            yield portal, provider


def sign_in_at(provider_port: int):
    async def sign_in(page: Page, base_url: str, person: Person, next_path: str = "/") -> None:
        """The sign-in button → the provider's login form → its consent page → back on ``next_path``."""
        await journey.open_sign_in(page, base_url, next_path)
        await page.wait_for_url(re.compile(rf"^http://127\.0\.0\.1:{provider_port}/"))
        await screenshot(page, "oidc-01-provider-login", check=False)  # the provider's page, not ours
        await page.fill('input[name="login"]', person.email.split("@")[0])
        await page.fill('input[name="password"]', "any password")
        await page.locator('button[type="submit"]').first.click()
        if not page.url.startswith(base_url):
            await page.wait_for_load_state()
            if not page.url.startswith(base_url):  # the consent page
                await page.locator('button[type="submit"]').first.click()
        await page.wait_for_url(base_url + next_path)
        await expect(page.locator("#user-email")).to_have_text(person.email)
    return sign_in


async def test_oidc_journey_sign_in_upload_sign_out(chromium, oidc_portal):
    portal, provider = oidc_portal
    async with open_page(chromium) as (page, problems):
        await sign_in_at(provider.port)(page, portal.url, ADA, "/")
        await expect(page.get_by_test_id("plan-badge")).to_have_text("Free")
        await journey.choose_files(page, {"signed-in-via-oidc.txt": b"hello from a real provider"})
        await journey.wait_uploaded(page, "signed-in-via-oidc.txt")
        await expect(journey.artifact_row(page, "signed-in-via-oidc.txt")).to_have_count(1)
        await screenshot(page, "oidc-02-uploaded")

        # Sign out: the portal forgets the session and sends the browser to the provider's end-session
        # page (allowed by the CSP's form-action), which asks for confirmation and returns to the portal.
        await page.get_by_test_id("sign-out").click()
        await page.wait_for_url(re.compile(rf"^http://127\.0\.0\.1:{provider.port}/"))
        await screenshot(page, "oidc-03-provider-logout", check=False)  # the provider's page
        await page.locator('button[type="submit"], button[autofocus]').first.click()
        # Back on the portal's / signed out, whose script sends the browser on to the sign-in page.
        await page.wait_for_url(re.compile(rf"^{re.escape(portal.url)}/login"))
        await expect(page.get_by_test_id("sign-in")).to_be_visible()
        await expect(page.get_by_test_id("signed-out")).to_contain_text("You have signed out.")
        status = await page.evaluate("fetch('/api/me').then(r => r.status)")
        assert status == 401
        # oidc-provider's built-in login pages link a Google font; that request was aborted like every
        # non-loopback one. Anything else the pages reported is a defect.
        problems.errors[:] = [e for e in problems.errors if "https://fonts.googleapis.com/" not in e]
        problems.assert_none()
