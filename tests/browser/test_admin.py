"""The admin console in a real Chromium: an admin finds a user, overrides their limits, freezes them, reads
the audit trail and pauses uploads — and the customers see each change. Every state is screenshotted and
checked with axe; a customer's own "Recent activity" and scoped, expiring tokens on the account page."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.asyncio(loop_scope="session")]

ROOT = Person(email="root@example.com", name="Rita Root")
EVE = Person(email="eve.suspect@example.com", name="Eve Suspect")
ADA = Person(email="ada.uploader@example.com", name="Ada Uploader")
BANNER = "Uploads are paused for maintenance until 10:00 UTC."


async def sign_in_admin(page, base: str, person: Person, next_path: str = "/") -> None:
    """The DEV_MODE form with its "Sign in as an admin" box ticked."""
    await journey.open_sign_in(page, base, next_path)
    await page.wait_for_url(re.compile(r"/dev/login\?"))
    await page.fill("#dev-email", person.email)
    await page.fill("#dev-name", person.name)
    await page.check("#dev-admin")
    await page.click("#dev-submit")
    await page.wait_for_url(base + next_path)
    await expect(page.locator("#user-email")).to_have_text(person.email)


async def test_the_admin_journey(chromium, portal):
    base = portal.url
    async with open_page(chromium) as (eve_page, eve_problems), open_page(chromium) as (ada_page, ada_problems), \
            open_page(chromium) as (page, problems):
        # Two customers: Eve uploads something; Ada will try to upload while uploads are paused.
        await journey.sign_in_dev(eve_page, base, EVE)
        await journey.choose_files(eve_page, {"evidence.txt": b"x" * 2048})
        await journey.wait_uploaded(eve_page, "evidence.txt")
        await journey.sign_in_dev(ada_page, base, ADA)
        await expect(ada_page.locator("#nav-admin")).to_have_count(0)  # no Admin link for customers

        # The admin's overview: counts and the charts, drawn in the page.
        await sign_in_admin(page, base, ROOT)
        await page.locator("#nav-admin").click()
        await page.wait_for_url(base + "/admin")
        await expect(page.get_by_test_id("stat-users")).to_have_text("3")
        await expect(page.get_by_test_id("stat-storage")).to_have_text("2 KiB")
        await expect(page.get_by_test_id("stat-files")).to_have_text("in 1 file")
        await expect(page.get_by_test_id("uploads-svg").locator("rect.chart-bar")).to_have_count(1)
        await expect(page.get_by_test_id("plans-empty")).to_be_visible()
        await screenshot(page, "admin-01-overview")

        # Find Eve.
        await page.get_by_test_id("admin-nav").get_by_role("link", name="Users").click()
        await page.wait_for_url(base + "/admin/users")
        await expect(page.get_by_test_id("user-row")).to_have_count(3)
        await page.get_by_test_id("user-q").fill("suspect")
        await page.get_by_test_id("user-search-submit").click()
        await expect(page.get_by_test_id("user-row")).to_have_count(1)
        await expect(page).to_have_url(re.compile(r"/admin/users\?q=suspect$"))
        await screenshot(page, "admin-02-users-search")
        await page.get_by_test_id("user-link").click()
        await page.wait_for_url(re.compile(r"/admin/users/\d+$"))
        await expect(page.get_by_test_id("user-title")).to_have_text(EVE.email)
        await expect(page.get_by_test_id("user-usage")).to_have_text("2 KiB in 1 file")
        await expect(page.get_by_test_id("user-limits")).to_contain_text("(the plan's)")

        # Override her limits.
        await page.get_by_test_id("limit-max-file").fill("2GiB")
        await page.get_by_test_id("limit-quota").fill("20GiB")
        await page.get_by_test_id("limits-save").click()
        await expect(page.get_by_test_id("notice-success")).to_contain_text("Saved the limits")
        await expect(page.get_by_test_id("user-limits")).to_have_text("2 GiB per file, 20 GiB in all (own limits)")
        await screenshot(page, "admin-03-limits-overridden")
        await eve_page.reload()
        await expect(eve_page.get_by_test_id("usage-text")).to_contain_text("20 GiB")

        # Freeze her: asked first, then refused everywhere at once.
        await page.get_by_test_id("freeze").click()
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await screenshot(page, "admin-04-confirm-freeze")
        await page.click("#confirm-ok")
        await expect(page.get_by_test_id("badge-frozen")).to_be_visible()
        await expect(page.get_by_test_id("unfreeze")).to_be_visible()
        await screenshot(page, "admin-05-frozen")
        await eve_page.reload()
        await expect(eve_page.get_by_test_id("notice-error")).to_contain_text("This account is suspended")
        await screenshot(eve_page, "admin-06-customer-suspended")

        # The audit trail says who did it, and the CSV has it too.
        await page.get_by_test_id("user-events-link").click()
        await page.wait_for_url(re.compile(r"/admin/events\?owner=\d+$"))
        rows = page.get_by_test_id("event-row")
        await expect(rows.first).to_have_attribute("data-type", "admin.user_frozen")
        await expect(rows.nth(1)).to_have_attribute("data-type", "admin.limits_changed")
        await expect(rows.first).to_contain_text(ROOT.email)
        await expect(rows.first).to_contain_text(f"about {EVE.email}")
        await screenshot(page, "admin-07-audit-trail")
        await page.get_by_test_id("f-type").fill("admin.*")
        await page.get_by_test_id("events-search").click()
        await expect(rows).to_have_count(2)
        async with page.expect_download() as info:
            await page.get_by_test_id("events-csv").click()
        saved = await info.value
        with open(await saved.path(), encoding="utf-8") as fh:
            exported = fh.read()
        assert exported.startswith("id,occurred_at,type,") and exported.count("\n") == 3, exported
        assert "admin.user_frozen" in exported and "admin.limits_changed" in exported

        # Pause uploads with a banner: every page shows it, and Ada's upload is refused with its text.
        await page.get_by_test_id("admin-nav").get_by_role("link", name="Site settings").click()
        await page.wait_for_url(base + "/admin/settings")
        await page.get_by_test_id("s-uploads-paused").check()
        await page.get_by_test_id("s-banner").fill(BANNER)
        await page.get_by_test_id("settings-save").click()
        await expect(page.get_by_test_id("notice-success")).to_contain_text("within 5 seconds")
        await expect(page.get_by_test_id("site-banner")).to_have_text(BANNER)
        await screenshot(page, "admin-08-uploads-paused")
        await ada_page.reload()
        await expect(ada_page.get_by_test_id("site-banner")).to_have_text(BANNER)
        await journey.choose_files(ada_page, {"blocked.txt": b"nope"})
        item = journey.upload_item(ada_page, "blocked.txt")
        await expect(item).to_have_attribute("data-state", "error")
        await expect(item.get_by_test_id("upload-status")).to_contain_text(BANNER)
        await screenshot(ada_page, "admin-09-customer-upload-paused")

        # Back to normal, and Eve unfrozen.
        await page.get_by_test_id("s-uploads-paused").uncheck()
        await page.get_by_test_id("s-banner").fill("")
        await page.get_by_test_id("settings-save").click()
        await expect(page.get_by_test_id("site-banner")).to_have_count(0)
        await page.goto(base + "/admin/users?q=suspect")
        await page.get_by_test_id("user-link").click()
        await page.get_by_test_id("unfreeze").click()
        await expect(page.get_by_test_id("freeze")).to_be_visible()
        await eve_page.reload()
        await expect(eve_page.get_by_test_id("artifact-row")).to_have_count(1)
        for problem_list in (problems, ada_problems, eve_problems):
            problem_list.assert_none()


async def test_erasing_a_user_asks_for_their_email_typed_then_for_confirmation(chromium, portal):
    """The Erase button stays off until the user's email is typed (any case); then a dialog asks once more,
    and the user, their file and their session are gone."""
    base = portal.url
    leaving = Person(email="leaving@example.com", name="Lee Ving")
    async with open_page(chromium) as (customer, customer_problems), open_page(chromium) as (page, problems):
        await journey.sign_in_dev(customer, base, leaving)
        await journey.choose_files(customer, {"goodbye.txt": b"bye" * 100})
        await journey.wait_uploaded(customer, "goodbye.txt")

        await sign_in_admin(page, base, Person(email="eraser@example.com", name="Ada Min"), "/admin/users?q=leaving")
        await expect(page.get_by_test_id("user-row")).to_have_count(1)
        await page.get_by_test_id("user-link").click()
        await page.wait_for_url(re.compile(r"/admin/users/\d+$"))
        erase = page.get_by_test_id("erase")
        await expect(erase).to_be_disabled()
        await page.get_by_label("Type their email to confirm").fill("leaving@example.org")
        await expect(erase).to_be_disabled()
        await page.get_by_label("Type their email to confirm").fill("Leaving@Example.com")
        await expect(erase).to_be_enabled()
        await erase.click()
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await expect(page.locator("#confirm-dialog")).to_contain_text("Erase leaving@example.com?")
        await screenshot(page, "admin-09-confirm-erase")
        await page.click("#confirm-ok")
        await page.wait_for_url(re.compile(r"/admin/users\?erased="))
        await expect(page.get_by_test_id("notice-success")).to_contain_text(
            "Erased leaving@example.com: 1 file, 300 bytes.")
        await page.goto(base + "/admin/users?q=leaving")
        await expect(page.get_by_test_id("user-row")).to_have_count(0)
        await screenshot(page, "admin-10-erased")

        await customer.reload()  # their session went with the account
        await customer.wait_for_url(re.compile(r"/login"))
        customer_problems.assert_none()
        problems.assert_none()


@pytest.mark.parametrize("scheme", ["dark"])
async def test_admin_pages_at_phone_width(chromium, portal, scheme):
    """The console on a phone, in the dark scheme: no sideways scrolling, axe-clean."""
    async with open_page(chromium, width=360, height=740, has_touch=True, is_mobile=True,
                         color_scheme=scheme) as (page, problems):
        await sign_in_admin(page, portal.url, Person(email="phone-admin@example.com", name="Pho Ne"), "/admin")
        for path, shot in (("/admin", "overview"), ("/admin/users", "users"), ("/admin/events", "events"),
                           ("/admin/settings", "settings")):
            await page.goto(portal.url + path)
            await expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")
            await expect(page.get_by_test_id("admin-nav")).to_be_visible()
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at phone width"
            await screenshot(page, f"admin-phone-{shot}-{scheme}")
        problems.assert_none()


async def test_customers_get_404_for_the_console_and_see_their_own_activity(chromium, portal):
    me = Person(email="curious@example.com", name="Curious Customer")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await journey.choose_files(page, {"notes.txt": b"notes"})
        await journey.wait_uploaded(page, "notes.txt")
        response = await page.goto(portal.url + "/admin/users")
        assert response.status == 404
        await expect(page.get_by_test_id("error-message")).to_contain_text("There is nothing at this address")
        await screenshot(page, "admin-404-for-customers")

        # A read-only token that expires in a week, and the account's recent activity.
        await page.goto(portal.url + "/account")
        await page.get_by_label("Token name").fill("backup reader")
        await page.get_by_test_id("scope-write").uncheck()
        await page.get_by_test_id("token-expiry").select_option(label="In 7 days")
        await expect(page.get_by_test_id("scope-admin")).to_be_hidden()  # customers cannot ask for it
        await page.get_by_test_id("token-create").click()
        await expect(page.get_by_test_id("new-token")).to_be_visible()
        row = page.get_by_test_id("token-row").filter(has_text="backup reader")
        await expect(row.get_by_test_id("token-scopes")).to_have_text("read")
        await expect(row.get_by_test_id("token-expires")).not_to_have_text("Never")
        await page.get_by_test_id("new-token-done").click()
        await page.reload()
        activity = page.get_by_test_id("activity-row")
        await expect(activity.first).to_contain_text("Created the API token “backup reader”")
        await expect(page.get_by_test_id("activity-what")).to_contain_text(["Uploaded “notes.txt” (5 bytes)"])
        await expect(activity.filter(has_text="Signed in").get_by_test_id("activity-from")).to_contain_text("127.0.0.1")
        await screenshot(page, "account-recent-activity")
        problems.assert_none()
