"""Share links and file requests in a real Chromium: the Share dialog, a signed-out browser downloading
through the link, passwords and the lockout, revoking, the Sharing page, a guest sending files from a
phone, the free plan's rules — each state checked with axe."""

from __future__ import annotations

import hashlib
import os
import re

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person
from tests.support.db import run_sql

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


def person(tag: str) -> Person:
    return Person(email=f"{tag}@example.com", name=f"Sam {tag.title()}")


def make_pro(database_url: str, email: str) -> None:
    run_sql(database_url, "INSERT INTO subscriptions (user_id, plan, status, provider) "
                          "SELECT id, 'pro', 'active', 'dev' FROM users WHERE email = %s", (email,))


async def upload(page, name: str, data: bytes) -> None:
    await journey.choose_files(page, {name: data})
    await journey.wait_uploaded(page, name)


async def create_link(page, name: str, *, limit: str = "", password: str = "", expiry: str | None = None,
                      shot: str | None = None) -> str:
    """Share → fill the dialog → Create link; returns the link shown (and leaves the dialog open)."""
    await journey.artifact_row(page, name).get_by_test_id("share").click()
    dialog = page.get_by_test_id("share-dialog")
    await expect(dialog).to_be_visible()
    await expect(page.get_by_test_id("share-file")).to_have_text(name)
    await expect(page.locator("#share-expiry")).to_be_focused()
    if expiry:
        await page.get_by_label("Link works for").select_option(label=expiry)
    if limit:
        await page.get_by_label("Download limit (optional)").fill(limit)
    if password:
        await page.get_by_label("Password (optional)").fill(password)
    if shot:
        await screenshot(page, shot)
    await page.get_by_test_id("share-create").click()
    await expect(page.get_by_test_id("share-result")).to_be_visible()
    url = await page.get_by_test_id("share-url").input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/s/[A-Za-z0-9_-]{32}", url), url
    return url


async def guest_download(page, url: str) -> tuple[str, bytes]:
    async with page.expect_download() as info:
        await page.get_by_test_id("share-download").click()
    saved = await info.value
    assert await saved.failure() is None
    with open(await saved.path(), "rb") as fh:
        return saved.suggested_filename, fh.read()


async def test_the_owner_shares_a_file_and_a_signed_out_browser_downloads_the_same_bytes(chromium, portal):
    me = person("sharer")
    data = os.urandom(300 * 1024)
    name = "site plans v2.pdf"
    async with open_page(chromium, permissions=["clipboard-read", "clipboard-write"]) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await upload(page, name, data)
        url = await create_link(page, name, limit="3", shot="sharing-01-share-dialog")
        await expect(page.get_by_test_id("share-result")).to_contain_text("for 3 downloads")
        await page.get_by_test_id("share-copy").click()
        assert await page.evaluate("navigator.clipboard.readText()") == url
        await screenshot(page, "sharing-02-link-created")
        await page.get_by_test_id("share-done").click()
        await expect(page.get_by_test_id("share-dialog")).to_be_hidden()
        await expect(journey.artifact_row(page, name).get_by_test_id("share")).to_be_focused()

        async with open_page(chromium) as (guest, guest_problems):  # another browser, signed out
            response = await guest.goto(url)
            assert response.status == 200
            assert response.headers["x-robots-tag"] == "noindex, nofollow"
            assert response.headers["referrer-policy"] == "no-referrer"
            await expect(guest.get_by_test_id("share-name")).to_have_text(name)
            await expect(guest.get_by_test_id("share-sha")).to_have_text(hashlib.sha256(data).hexdigest())
            await expect(guest.get_by_test_id("share-sharer")).to_have_text(me.name)
            await expect(guest.get_by_test_id("share-left")).to_have_text("3 of 3")
            await expect(guest.locator("#sign-out")).to_have_count(0)
            await screenshot(guest, "sharing-03-guest-page")
            filename, body = await guest_download(guest, url)
            assert (filename, body) == (name, data)
            guest_problems.assert_none()

        await page.locator("#nav-sharing").click()
        await page.wait_for_url(portal.url + "/sharing")
        row = page.get_by_test_id("share-row")
        await expect(row).to_have_count(1)
        await expect(row.get_by_test_id("share-downloads")).to_have_text("1 of 3")
        await expect(row.get_by_test_id("share-state")).to_have_text("Active")
        await screenshot(page, "sharing-04-shared-links")
        await row.get_by_test_id("share-revoke").click()
        await expect(page.locator("#confirm-dialog")).to_contain_text(name)
        await page.click("#confirm-ok")
        await expect(row.get_by_test_id("share-state")).to_have_text("Revoked")
        await expect(row.get_by_test_id("share-revoke")).to_have_count(0)

        async with open_page(chromium) as (guest, guest_problems):
            response = await guest.goto(url)
            assert response.status == 410
            await expect(guest.get_by_test_id("link-gone")).to_contain_text("turned this link off")
            await screenshot(guest, "sharing-05-revoked-410")
        problems.assert_none()


async def test_a_password_link_by_keyboard_and_the_lockout(chromium, portal, portal_db):
    me = person("password-owner")
    data = b"the secret recipe\n" * 100
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        make_pro(portal_db, me.email)
        await page.reload()
        await upload(page, "recipe.txt", data)
        url = await create_link(page, "recipe.txt", password="open sesame", expiry="30 days")
        await expect(page.get_by_test_id("share-result")).to_contain_text("with the password")
        problems.assert_none()

    async with open_page(chromium) as (guest, problems):
        await guest.goto(url)
        field = guest.get_by_label("Password")
        await expect(field).to_be_focused()  # autofocus: type straight away
        await expect(guest.locator("main")).not_to_contain_text("recipe.txt")
        await screenshot(guest, "sharing-06-password-form")
        await guest.keyboard.type("open says me")
        async with guest.expect_navigation():
            await guest.keyboard.press("Enter")
        await expect(guest.get_by_test_id("password-error")).to_contain_text("not right")
        await screenshot(guest, "sharing-07-wrong-password")
        await guest.get_by_label("Password").fill("open sesame")
        async with guest.expect_navigation():
            await guest.get_by_label("Password").press("Enter")
        await expect(guest.get_by_test_id("share-name")).to_have_text("recipe.txt")
        await guest.get_by_test_id("share-download").focus()
        async with guest.expect_download() as info:
            await guest.keyboard.press("Enter")
        with open(await (await info.value).path(), "rb") as fh:
            assert fh.read() == data
        problems.assert_none()

    async with open_page(chromium) as (guest, problems):  # someone else, guessing
        await guest.goto(url)
        for attempt in range(9):  # one wrong try was made above: ten in all
            await guest.get_by_label("Password").fill(f"guess {attempt}")
            async with guest.expect_navigation():
                await guest.get_by_test_id("share-unlock").click()
            await expect(guest.get_by_test_id("password-error")).to_be_visible()
        await guest.get_by_label("Password").fill("open sesame")
        async with guest.expect_navigation() as navigation:
            await guest.get_by_test_id("share-unlock").click()
        assert (await navigation.value).status == 429
        await expect(guest.get_by_test_id("link-locked")).to_contain_text("Try again in 10 minutes")
        await screenshot(guest, "sharing-08-locked")
        response = await guest.goto(url)
        assert response.status == 429
        problems.assert_none()


async def test_the_free_plans_rules_show_and_a_refusal_names_its_rule(chromium, portal, portal_db):
    me = person("free-rules")
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await upload(page, "a.txt", b"a")
        await journey.artifact_row(page, "a.txt").get_by_test_id("share").click()
        await expect(page.get_by_label("Link works for").locator("option")).to_have_text(["1 hour", "1 day", "7 days"])
        await expect(page.get_by_label("Password (optional)")).to_be_disabled()
        await expect(page.get_by_test_id("share-password-hint")).to_contain_text("not part of the Free plan")
        await expect(page.get_by_test_id("share-upgrade")).to_have_attribute("href", "/billing")
        await screenshot(page, "sharing-09-free-dialog")
        await page.keyboard.press("Escape")

        await page.locator("#nav-sharing").click()
        await expect(page.get_by_test_id("requests-upgrade")).to_contain_text("File requests are not part of the Free plan")
        await expect(page.get_by_test_id("request-form")).to_be_hidden()
        await screenshot(page, "sharing-10-free-sharing-page")

        # Pro when the page loaded, free by the time the link is made: the portal refuses, naming the rule.
        make_pro(portal_db, me.email)
        await page.goto(portal.url + "/")
        await journey.artifact_row(page, "a.txt").get_by_test_id("share").click()
        await page.get_by_label("Link works for").select_option(label="90 days")
        await page.get_by_label("Password (optional)").fill("pw")
        run_sql(portal_db, "DELETE FROM subscriptions WHERE user_id = (SELECT id FROM users WHERE email = %s)",
                (me.email,))
        await page.get_by_test_id("share-create").click()
        error = page.get_by_test_id("share-error")
        await expect(error).to_contain_text("The free plan allows an expiry of at most 7 days")
        await expect(error.get_by_role("link", name="Upgrade your plan")).to_have_attribute("href", "/billing")
        await screenshot(page, "sharing-11-refused-by-plan")
        problems.assert_none()


async def test_a_guest_sends_files_from_a_phone_and_the_owner_sees_them(chromium, portal, portal_db):
    me, scheme = person("requester"), "light"
    async with open_page(chromium, color_scheme=scheme) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me, "/sharing")
        make_pro(portal_db, me.email)
        await page.reload()
        await page.get_by_label("What are you asking for?").fill("Photos from the wedding")
        await page.get_by_label("Most files (optional)").fill("3")
        await page.get_by_test_id("request-create").click()
        await expect(page.get_by_test_id("new-request")).to_be_visible()
        url = await page.get_by_test_id("new-request-url").input_value()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/r/[A-Za-z0-9_-]{32}", url), url
        await screenshot(page, f"sharing-12-request-created-{scheme}")

        async with open_page(chromium, width=360, height=740, has_touch=True, is_mobile=True,
                             color_scheme=scheme) as (phone, phone_problems):
            response = await phone.goto(url)
            assert response.status == 200
            await expect(phone.locator("h1")).to_have_text("Photos from the wedding")
            await expect(phone.locator("main")).to_contain_text(f"{me.name} asks you to send files")
            overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"the request page scrolls sideways by {overflow}px on a phone"
            await screenshot(phone, f"sharing-13-request-page-phone-{scheme}")
            photos = {"IMG_0001.jpg": os.urandom(40_000), "IMG_0002.jpg": os.urandom(30_000)}
            await phone.set_input_files("#request-files", [
                {"name": n, "mimeType": "image/jpeg", "buffer": d} for n, d in photos.items()])
            await journey.throttle_uploads(phone, 64 * 1024)  # slow enough to watch the progress
            async with phone.expect_response(lambda r: r.request.method == "POST") as answer:
                await phone.get_by_test_id("request-send").tap()
                await expect(phone.get_by_test_id("request-progress-text")).to_have_text(re.compile(r"^\d+% · "))
                await screenshot(phone, f"sharing-13b-request-sending-phone-{scheme}")
            assert (await answer.value).status == 201
            await expect(phone.get_by_test_id("received-file")).to_have_count(2)
            await expect(phone.get_by_test_id("request-files-left")).to_have_text("up to 1 more")
            await screenshot(phone, f"sharing-14-request-sent-phone-{scheme}")
            phone_problems.assert_none()

        async with open_page(chromium, java_script_enabled=False) as (plain, plain_problems):
            # Without script the page is a plain form: the browser posts it and shows the answer.
            await plain.goto(url)
            await plain.set_input_files("#request-files", [{"name": "notes.txt", "mimeType": "text/plain",
                                                            "buffer": b"from a browser without script"}])
            async with plain.expect_navigation() as navigation:
                await plain.get_by_test_id("request-send").click()
            assert (await navigation.value).status == 201
            await expect(plain.get_by_test_id("received-file")).to_have_text(re.compile("notes.txt"))
            await expect(plain.get_by_test_id("request-closed")).to_contain_text("takes no more")  # 3 of 3
            plain_problems.assert_none()

        await page.get_by_test_id("new-request-done").click()
        await page.reload()
        row = page.get_by_test_id("request-row")
        await expect(row.get_by_test_id("request-received")).to_contain_text("3 files")
        await expect(row.get_by_test_id("request-state")).to_have_text("Full")
        await row.locator("summary").click()
        await expect(row.get_by_test_id("request-file")).to_have_count(3)
        await screenshot(page, f"sharing-15-requests-list-{scheme}")
        events = run_sql(portal_db, "SELECT e.data->>'name' FROM events e JOIN users u ON u.id = e.owner_id "
                                    "WHERE e.type = 'request.file_received' AND u.email = %s ORDER BY 1", (me.email,))
        assert [name for (name,) in events] == sorted([*photos, "notes.txt"])
        await page.locator("#nav-artifacts").click()
        for name in [*photos, "notes.txt"]:
            await expect(journey.artifact_row(page, name)).to_have_count(1)
            marked = journey.artifact_row(page, name).get_by_test_id("artifact-from-request")
            await expect(marked).to_have_text("sent through a file request")  # marked with the request
        await expect(page.get_by_test_id("artifact-from-request")).to_have_count(3)

        async with open_page(chromium, color_scheme=scheme) as (guest, guest_problems):
            response = await guest.goto(url)
            assert response.status == 410
            await expect(guest.get_by_test_id("request-closed")).to_contain_text("received as much as it accepts")
            await screenshot(guest, f"sharing-16-request-full-{scheme}")

        # Another request, closed by its owner before anyone used it.
        await page.locator("#nav-sharing").click()
        await page.get_by_label("What are you asking for?").fill("Never mind")
        await page.get_by_test_id("request-create").click()
        await page.get_by_test_id("new-request-done").click()
        closing = page.get_by_test_id("request-row").filter(has_text="Never mind")
        await closing.get_by_test_id("request-close").click()
        await expect(page.locator("#confirm-dialog")).to_contain_text("Never mind")
        await page.click("#confirm-ok")
        await expect(closing.get_by_test_id("request-state")).to_have_text("Closed")
        await expect(closing.get_by_test_id("request-close")).to_have_count(0)
        problems.assert_none()


async def test_the_share_page_on_a_phone_by_keyboard_in_dark_mode(chromium, portal):
    me = person("phone-share")
    long_name = "a-very-long-file-name-without-any-spaces-" * 3 + ".zip"
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await upload(page, long_name, b"z" * 5000)
        url = await create_link(page, long_name)
    async with open_page(chromium, width=360, height=740, has_touch=True, is_mobile=True,
                         color_scheme="dark") as (phone, problems):
        await phone.goto(url)
        overflow = await phone.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"the share page scrolls sideways by {overflow}px on a phone"
        for _ in range(6):
            await phone.keyboard.press("Tab")
            if await phone.evaluate("document.activeElement.dataset.testid") == "share-download":
                break
        else:
            raise AssertionError("Tab never reached the Download button")
        async with phone.expect_download() as info:
            await phone.keyboard.press("Enter")
        assert (await info.value).suggested_filename == long_name
        await screenshot(phone, "sharing-17-share-page-phone")
        problems.assert_none()
