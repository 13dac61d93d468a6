"""Page behaviour beyond the happy journey: canceling, hostile names, phone width, keyboard, warnings."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person
from tests.support.db import run_sql

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]



def person(tag: str) -> Person:
    """Each test signs in as its own person: the module's tests share one portal."""
    return Person(email=f"{tag}@example.com", name=f"Grace {tag.title()}")


async def test_canceled_upload_keeps_nothing(chromium, portal):
    """Cancel mid-upload: the item says so, and the file is neither listed nor counted."""
    me = person("canceled-upload-keeps-no")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await journey.throttle_uploads(page, 128 * 1024)
        await journey.choose_files(page, {"huge.iso": b"\0" * (4 * 1024 * 1024)})
        await journey.wait_for_progress_between(page, "huge.iso")
        item = journey.upload_item(page, "huge.iso")
        await item.get_by_test_id("upload-cancel").click()
        await expect(item).to_have_attribute("data-state", "canceled")
        await expect(item.get_by_test_id("upload-status")).to_have_text("Canceled")
        await page.reload()
        await expect(page.get_by_test_id("artifacts-empty")).to_be_visible()
        await expect(page.get_by_test_id("usage-text")).to_contain_text("0 bytes of")
        problems.assert_none()


async def test_hostile_file_names_are_shown_as_text(chromium, portal):
    """Markup in a file name is displayed literally, never run."""
    me = person("hostile-file-names-are-s")
    name = '<img src=x onerror="window.pwned=1">"; <script>window.pwned=2</script>.txt'
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await journey.drop_files(page, {name: b"payload"})
        await journey.wait_uploaded(page, name)
        await expect(journey.artifact_row(page, name)).to_have_count(1)
        await expect(page.locator("#artifacts-body img, #artifacts-body script, #upload-list img")).to_have_count(0)
        assert await page.evaluate("window.pwned") is None
        problems.assert_none()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_phone_width_has_no_sideways_scrolling(chromium, portal, scheme):
    """At 360 px wide (a touch phone), with a long name in the table, every page fits the screen, the header
    is compact (at most 64 px) with the nav behind Menu, and the drop zone just says "Choose files"."""
    me = person(f"phone-{scheme}")
    long_name = "a-very-long-file-name-without-any-spaces-" * 4 + ".tar.gz"
    async with open_page(chromium, width=360, height=740, has_touch=True, is_mobile=True,
                         color_scheme=scheme) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await journey.choose_files(page, {long_name: b"x" * 2048})
        await journey.wait_uploaded(page, long_name)
        await expect(journey.artifact_row(page, long_name)).to_be_visible()
        for path, shot in (("/", "phone-dashboard"), ("/account", "phone-account"), ("/billing", "phone-billing")):
            await page.goto(portal.url + path)
            await expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")
            overflow = await page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{path} scrolls sideways by {overflow}px at phone width"
            header = await page.locator("#site-header").bounding_box()
            assert header["height"] <= 64, f"the header on {path} is {header['height']}px tall at phone width"
            await expect(page.locator("#nav-billing")).to_be_hidden()
            await screenshot(page, f"{shot}-{scheme}")
            await page.locator("#menu-toggle").click()
            await expect(page.locator("#menu-toggle")).to_have_attribute("aria-expanded", "true")
            await expect(page.locator("#nav-billing")).to_be_in_viewport()
            await expect(page.get_by_test_id("sign-out")).to_be_in_viewport()
            await screenshot(page, f"{shot}-{scheme}-menu")
        await page.goto(portal.url + "/")
        await expect(page.get_by_test_id("drop-zone-text")).to_be_hidden()  # nothing to drag from on a phone
        await expect(page.locator("label[for=file-input]")).to_have_text("Choose files")
        problems.assert_none()


async def test_backing_out_and_deleting_at_once_deletes_the_file(chromium, portal):
    """Escape then Delete again straight away: the first question's late close event must not answer the second."""
    me = person("backing-out-and-deleting")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await journey.choose_files(page, {"quick.txt": b"quick"})
        await journey.wait_uploaded(page, "quick.txt")
        await journey.artifact_row(page, "quick.txt").get_by_test_id("delete").focus()
        for _ in range(3):  # open, back out, reopen: as fast as keys go, no waiting in between
            await page.keyboard.press("Enter")
            await page.keyboard.press("Escape")
        await page.keyboard.press("Enter")
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await page.click("#confirm-ok")
        await expect(page.get_by_test_id("artifacts-empty")).to_be_visible()
        problems.assert_none()


async def test_delete_by_keyboard_with_escape_to_back_out(chromium, portal):
    """Tab reaches the file chooser with a visible focus ring; Delete can be confirmed or backed out of by keyboard."""
    me = person("delete-by-keyboard-with")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        for _ in range(30):
            await page.keyboard.press("Tab")
            if await page.evaluate("document.activeElement.id") == "file-input":
                break
        else:
            raise AssertionError("Tab never reached the file chooser")
        outline = await page.locator("label[for=file-input]").evaluate("(label) => getComputedStyle(label).outlineStyle")
        assert outline != "none", "the focused file chooser shows no focus ring"

        await journey.choose_files(page, {"keep.txt": b"keep"})
        await journey.wait_uploaded(page, "keep.txt")
        delete_button = journey.artifact_row(page, "keep.txt").get_by_test_id("delete")
        await delete_button.focus()
        await page.keyboard.press("Enter")
        await expect(page.locator("#confirm-dialog")).to_be_visible()
        await expect(page.locator("#confirm-cancel")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(page.locator("#confirm-dialog")).to_be_hidden()
        await expect(delete_button).to_be_focused()
        await expect(journey.artifact_row(page, "keep.txt")).to_have_count(1)

        await page.keyboard.press("Enter")
        await page.keyboard.press("Tab")
        await expect(page.locator("#confirm-ok")).to_be_focused()
        await page.keyboard.press("Enter")
        await expect(page.get_by_test_id("artifacts-empty")).to_be_visible()
        problems.assert_none()


async def test_revoked_token_stops_working(chromium, portal):
    """Revoke asks first, then the token is refused at once."""
    me = person("revoked-token-stops-work")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        secret = await journey.create_token(page, portal.url, "laptop")
        await page.get_by_role("button", name="I have copied it").click()
        await expect(page.get_by_test_id("new-token")).to_be_hidden()
        await page.get_by_role("button", name="Revoke token laptop").click()
        await page.click("#confirm-ok")
        await expect(page.get_by_test_id("tokens-empty")).to_be_visible()
        status, _ = await journey.api_me(portal.url, secret)
        assert status == 401
        problems.assert_none()


async def test_past_due_warning_on_billing_and_dashboard(chromium, portal, portal_db):
    """A failed renewal keeps Pro but warns, with the way to fix it, on billing and the dashboard."""
    me = person("past-due-warning-on-bill")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        run_sql(portal_db,
                "INSERT INTO subscriptions (user_id, provider, plan, status, current_period_end) "
                "SELECT id, 'dev', 'pro', 'past_due', now() + interval '3 days' FROM users WHERE email = %s",
                (me.email,))
        await page.reload()
        await expect(page.get_by_test_id("plan-badge")).to_have_text("Pro")
        await expect(page.get_by_test_id("plan-warning")).to_contain_text("payment failed")
        await page.locator("#nav-billing").click()
        await expect(page.get_by_test_id("billing-status")).to_have_text("Payment overdue")
        await expect(page.get_by_test_id("billing-warning")).to_contain_text("Update your payment method")
        await expect(page.get_by_test_id("manage-billing")).to_be_visible()
        await expect(page.get_by_test_id("upgrade-pro")).to_have_count(0)
        await expect(page.get_by_test_id("plan-pro")).to_have_attribute("data-current", "true")
        await screenshot(page, "billing-past-due")
        await page.get_by_test_id("fix-payment").click()
        await page.wait_for_url(f"{portal.url}/dev/billing/portal")
        problems.assert_none()


async def test_long_lists_page_with_load_more(chromium, portal, portal_db):
    """More than a page of files: the first 50 show, "Load more" brings the rest, oldest last."""
    me = person("long-lists-page-with-loa")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        run_sql(portal_db,
                "INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key, created_at) "
                "SELECT gen_random_uuid(), u.id, 'file ' || lpad(n::text, 2, '0'), n, 'text/plain', "
                "       repeat('0', 64), 'k/' || n, now() - n * interval '1 minute' "
                "FROM users u, generate_series(1, 55) n WHERE u.email = %s", (me.email,))
        await page.reload()
        await expect(page.get_by_test_id("artifact-row")).to_have_count(50)
        await page.get_by_test_id("load-more").click()
        await expect(page.get_by_test_id("artifact-row")).to_have_count(55)
        await expect(page.get_by_test_id("artifact-name").last).to_have_text("file 55")
        await expect(page.get_by_test_id("load-more")).to_be_hidden()
        problems.assert_none()


async def test_a_plan_canceled_at_period_end_says_when_it_ends(chromium, portal, portal_db):
    """After canceling in the billing portal, Pro stays until the period ends, and the page says it will not renew."""
    me = person("canceled-at-period-end")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me, "/billing")
        run_sql(portal_db,
                "INSERT INTO subscriptions (user_id, provider, plan, status, current_period_end, cancel_at_period_end) "
                "SELECT id, 'dev', 'pro', 'active', now() + interval '10 days', true FROM users WHERE email = %s",
                (me.email,))
        await page.reload()
        await expect(page.get_by_test_id("billing-plan")).to_have_text("Pro")
        await expect(page.get_by_test_id("billing-renewal")).to_contain_text("will not renew")
        await expect(page.locator("#billing-period-label")).to_have_text("Ends")
        await expect(page.get_by_test_id("fix-payment")).to_be_hidden()
        await screenshot(page, "billing-canceled-at-period-end")
        problems.assert_none()
