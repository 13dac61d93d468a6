"""In a real browser: a file name with bidi controls never displays reversed, and the sign-in page's
Continue link never leaves the site, whatever ``next`` it was given."""

from __future__ import annotations

import pytest
from playwright.async_api import expect

from portal_core.display import BIDI_CONTROLS, display_text
from tests.browser import journey
from tests.browser.chromium import open_page
from tests.browser.journey import Person

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

NAME = "invoice-\u202egpj.exe"  # shown raw, it reads "invoice-exe.jpg"
SHOWN = display_text(NAME)

# Every piece of text the page shows, titles and labels included.
SHOWN_TEXT = """() => [document.body.innerText,
  ...[...document.querySelectorAll('[title], [aria-label]')].map((el) => `${el.title} ${el.getAttribute('aria-label')}`)
].join('\\n')"""


async def test_a_bidi_name_is_shown_neutralised_in_the_upload_list_the_table_and_the_details(chromium, portal):
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, Person("bidi@example.com", "Bidi"))
        await journey.choose_files(page, {NAME: b"MZ not really an exe"})
        await journey.wait_uploaded(page, SHOWN)
        row = journey.artifact_row(page, SHOWN)
        await expect(row).to_have_count(1)
        await page.reload()
        await expect(journey.artifact_row(page, SHOWN)).to_have_count(1)
        await journey.artifact_row(page, SHOWN).get_by_test_id("artifact-name").click()
        await expect(page.locator("#details-name")).to_have_text(SHOWN)
        shown = await page.evaluate(SHOWN_TEXT)
        assert SHOWN in shown and not BIDI_CONTROLS & set(shown), [hex(ord(c)) for c in BIDI_CONTROLS & set(shown)]
        # The name itself is kept exactly: the API still answers it, byte for byte.
        names = await page.evaluate("fetch('/api/artifacts').then((r) => r.json()).then((b) => b.artifacts.map((a) => a.name))")
        assert names == [NAME]
        # A search for text nothing matches is echoed back neutralised too.
        await page.reload()
        await expect(journey.artifact_row(page, SHOWN)).to_have_count(1)
        await page.get_by_test_id("file-search").fill("zz\u202ecod.exe")
        await expect(page.get_by_test_id("artifacts-no-match")).to_contain_text("zz\ufffdcod.exe")
        problems.assert_none()


@pytest.mark.parametrize("hostile", ["/\t/evil.example", "/%09/evil.example", "\\\\evil.example", "https:evil.example",
                                     "/\\evil.example", "/\n/evil.example"])
async def test_the_continue_link_stays_on_the_site(chromium, portal, hostile):
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, Person("continue@example.com", "Continue"))
        await page.goto(portal.url + "/login?next=" + hostile.replace("\t", "%09").replace("\n", "%0A")
                        .replace("\\", "%5C").replace(":", "%3A"))
        link = page.locator("#continue-link")
        await expect(page.get_by_test_id("signed-in-already")).to_be_visible()
        assert await link.evaluate("(a) => a.href") == portal.url + "/"
        # The sign-in button carries the same judged next (/auth/login sends a signed-in browser on to it).
        assert await page.get_by_test_id("sign-in").evaluate("(a) => a.href") == portal.url + "/auth/login?next=%2F"
        await link.click()
        await page.wait_for_url(portal.url + "/")
        problems.assert_none()
