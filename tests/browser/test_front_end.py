"""The dashboard's files table, one layout for every page, error pages, dark mode and the focus ring."""

from __future__ import annotations

import hashlib
import re

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

# For every focusable element: the focus ring's colour against the first opaque background behind it.
FOCUS_CONTRAST = """() => {
  const rgb = (text) => (text.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    // The ring is drawn outside the element (outline-offset), so what it sits on is the parent's background.
    for (let node = el.parentElement; node; node = node.parentElement) {
      const style = getComputedStyle(node);
      const color = rgb(style.backgroundColor);
      if (style.backgroundImage !== 'none') return [255, 224, 138]; // the DEV banner's lighter stripe
      if (color.length === 3 || (color.length === 4 && color[3] > 0.5)) return color.slice(0, 3);
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor).slice(0, 3);
  };
  const found = [];
  const focusables = document.querySelectorAll('a[href], button, input, [tabindex="0"]');
  for (const el of focusables) {
    if (!el.checkVisibility() && !(el.type === 'file')) continue;
    el.focus({ focusVisible: true });
    if (document.activeElement !== el) continue;
    const shown = el.type === 'file' ? document.querySelector(`label[for="${el.id}"]`) : el;
    const style = getComputedStyle(shown);
    if (style.outlineStyle === 'none') { found.push(`${shown.outerHTML.slice(0, 80)}: no focus ring`); continue; }
    const a = lum(rgb(style.outlineColor));
    const b = lum(background(shown));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    if (ratio < 3) found.push(`${shown.outerHTML.slice(0, 80)}: ${ratio.toFixed(2)}:1`);
  }
  document.activeElement.blur();
  return { checked: focusables.length, found };
}"""


def person(tag: str) -> Person:
    return Person(email=f"{tag}@example.com", name=tag.title())


async def test_long_names_are_cut_and_whole_on_focus_and_in_the_details(chromium, portal):
    me = person("longnames")
    name = "quarterly-financial-statement-draft-for-the-board-with-every-appendix-and-annex-v17-FINAL.xlsx"
    data = b"numbers" * 100
    async with open_page(chromium, permissions=["clipboard-read", "clipboard-write"]) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        await journey.choose_files(page, {name: data})
        await journey.wait_uploaded(page, name)
        button = journey.artifact_row(page, name).get_by_test_id("artifact-name")
        await expect(button).to_have_attribute("title", name)  # the whole name on hover
        box = await button.bounding_box()
        assert box["height"] < 30, f"the long name takes {box['height']}px: it should be one line, cut short"
        assert await button.evaluate("(b) => b.scrollWidth > b.clientWidth"), "the name is not cut with an ellipsis"
        await button.focus()
        await page.keyboard.press("Shift+Tab")
        await page.keyboard.press("Tab")  # keyboard focus: the whole name wraps into view
        assert await button.evaluate("(b) => b.scrollWidth <= b.clientWidth")

        await button.click()
        dialog = page.get_by_test_id("details-dialog")
        await expect(dialog).to_be_visible()
        await expect(page.get_by_test_id("details-name")).to_have_text(name)
        digest = hashlib.sha256(data).hexdigest()
        await expect(page.get_by_test_id("details-sha")).to_have_text(digest)
        await page.get_by_test_id("details-copy").click()
        assert await page.evaluate("navigator.clipboard.readText()") == digest
        await screenshot(page, "details-dialog")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(button).to_be_focused()

        await page.evaluate("navigator.clipboard.writeText('')")
        await journey.artifact_row(page, name).get_by_test_id("copy-sha").click()
        await page.wait_for_function("async (want) => (await navigator.clipboard.readText()) === want", arg=digest)
        problems.assert_none()


async def test_search_sort_and_delete_several(chromium, portal):
    me = person("tablework")
    files = {"alpha.log": b"a" * 300, "Beta.txt": b"b" * 100, "gamma.log": b"c" * 200, "delta.bin": b"d"}
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal.url, me)
        for name, data in files.items():
            await journey.choose_files(page, {name: data})
            await journey.wait_uploaded(page, name)
        names = page.get_by_test_id("artifact-name")
        await expect(names).to_have_text(["delta.bin", "gamma.log", "Beta.txt", "alpha.log"])

        await page.get_by_test_id("sort-name").click()
        await expect(names).to_have_text(["alpha.log", "Beta.txt", "delta.bin", "gamma.log"])
        await expect(page.locator("th[data-sort=name]")).to_have_attribute("aria-sort", "ascending")
        await page.get_by_test_id("sort-size").click()
        await expect(names).to_have_text(["alpha.log", "gamma.log", "Beta.txt", "delta.bin"])
        await page.get_by_test_id("sort-size").click()
        await expect(names).to_have_text(["delta.bin", "Beta.txt", "gamma.log", "alpha.log"])

        # The search is the server's: the listing is asked with ?q=.
        async with page.expect_request(re.compile(r"/api/artifacts\?.*q=LOG")):
            await page.get_by_test_id("file-search").fill("LOG")
        await expect(names).to_have_text(["gamma.log", "alpha.log"])
        await page.get_by_test_id("file-search").fill("nothing-like-it")
        await expect(page.get_by_test_id("artifacts-no-match")).to_contain_text("nothing-like-it")
        await screenshot(page, "search-no-match")
        await page.get_by_test_id("file-search").fill("log")
        await expect(names).to_have_text(["gamma.log", "alpha.log"])

        await page.get_by_test_id("select-all").check()
        await expect(page.get_by_test_id("delete-selected")).to_have_text("Delete selected (2)")
        await page.get_by_test_id("delete-selected").click()
        await expect(page.locator("#confirm-dialog")).to_contain_text("Delete 2 files?")
        await screenshot(page, "delete-several-confirm")
        await page.click("#confirm-ok")
        await expect(page.get_by_test_id("notice-success")).to_contain_text("Deleted 2 files.")
        await page.get_by_test_id("file-search").fill("")
        await expect(names).to_have_text(["delta.bin", "Beta.txt"])  # still sorted by size, smallest first
        await expect(page.get_by_test_id("usage-text")).to_contain_text("(2 files)")
        problems.assert_none()


async def test_server_pages_and_error_pages_share_the_front_ends_header(chromium, portal):
    """The dev checkout and a 404 draw the same header as the JavaScript pages; errors are styled pages with
    a way back; the API keeps JSON; /favicon.ico is an icon."""
    me = person("layout")
    header = "(h) => h.outerHTML.replace(/ aria-current=\"page\"/g, '')"
    async with open_page(chromium) as (page, problems):
        response = await page.goto(portal.url + "/no/such/page")
        assert response.status == 404
        await expect(page.locator("h1")).to_have_text("Page not found")
        await expect(page.get_by_test_id("error-home")).to_be_visible()
        await screenshot(page, "error-404-signed-out")
        response = await page.goto(portal.url + "/auth/callback?state=stale")  # no sign-in in progress
        assert response.status == 400
        await expect(page.get_by_test_id("sign-in-error")).to_contain_text("no sign-in in progress")
        await screenshot(page, "sign-in-failed")

        await journey.sign_in_dev(page, portal.url, me, "/account")
        account_header = await page.locator("#site-header").evaluate(header)
        response = await page.goto(portal.url + "/no/such/page")
        assert response.status == 404
        assert await page.locator("#site-header").evaluate(header) == account_header
        assert await page.title() == "Page not found — Portal"
        await screenshot(page, "error-404-signed-in")
        await page.get_by_test_id("error-home").click()
        await page.wait_for_url(portal.url + "/")

        await page.goto(portal.url + "/dev/billing/checkout?plan=pro")
        assert await page.locator("#site-header").evaluate(header) == account_header
        pay, cancel = await page.locator("#dev-pay").bounding_box(), await page.locator("#dev-checkout-cancel").bounding_box()
        assert cancel["x"] - (pay["x"] + pay["width"]) >= 8, "Pay and Cancel touch"
        await page.goto(portal.url + "/dev/billing/checkout?plan=platinum")
        await expect(page.locator("h1")).to_have_text("Unknown plan")
        await screenshot(page, "unknown-plan")

        api = await page.evaluate("fetch('/api/nope').then(async r => [r.status, await r.json()])")
        assert api[0] == 404 and api[1]["error"]["code"] == "not_found"
        icon = await page.request.get(portal.url + "/favicon.ico")
        assert (icon.status, icon.headers["content-type"]) == (200, "image/x-icon")
        problems.assert_none()


@pytest.mark.parametrize("scheme", ["light", "dark"])
async def test_every_page_in_both_colour_schemes_passes_axe_and_the_focus_ring_stands_out(chromium, portal, scheme):
    """Dark mode follows prefers-color-scheme; in both schemes axe finds nothing serious and the focus ring has
    at least 3:1 against the background of every focusable element."""
    me = person(f"scheme-{scheme}")
    async with open_page(chromium, color_scheme=scheme) as (page, problems):
        await page.goto(portal.url + "/login")
        await screenshot(page, f"{scheme}-login")
        await journey.sign_in_dev(page, portal.url, me)
        background = await page.evaluate("getComputedStyle(document.documentElement).backgroundColor")
        assert (background == "rgb(17, 20, 24)") == (scheme == "dark"), background
        await journey.choose_files(page, {"report.pdf": b"%PDF" * 100})
        await journey.wait_uploaded(page, "report.pdf")
        for path in ("/", "/sharing", "/account", "/billing", "/no/such/page", "/dev/billing/portal"):
            await page.goto(portal.url + path)
            await expect(page.locator("main")).not_to_have_attribute("aria-busy", "true")
            await screenshot(page, f"{scheme}{path.replace('/', '-')}")
            result = await page.evaluate(FOCUS_CONTRAST)
            assert result["checked"] > 3
            assert not result["found"], f"focus ring under 3:1 on {path} ({scheme}):\n" + "\n".join(result["found"])
        await page.goto(portal.url + "/")
        await journey.artifact_row(page, "report.pdf").get_by_test_id("delete").click()
        await screenshot(page, f"{scheme}-confirm-dialog")
        problems.assert_none()
