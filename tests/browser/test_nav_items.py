"""A plugin's nav item (portal_nav_items) in a real browser: in the header of the dashboard (drawn by
layout.js from /api/me) and of the plugin's own server-rendered page (drawn by the shared layout).

The plugin is tests/plugins/event_probe, installed through the `portal` entry-point group."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.browser import journey
from tests.browser.chromium import open_page
from tests.browser.journey import Person
from tests.support.portal import run_portal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

PROBE = Path(__file__).resolve().parents[1] / "plugins" / "event_probe"


@pytest.fixture(scope="module")
def probe_portal(portal_db):
    with run_portal(portal_db, {"PYTHONPATH": str(PROBE)}) as process:
        yield process


async def test_a_plugins_nav_item_is_in_the_header_of_core_and_plugin_pages(chromium, probe_portal):
    base = probe_portal.url
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, base, Person(email="nav-items@example.com", name="Nav Items"))
        await journey.open_menu_if_folded(page)
        nav = page.get_by_role("navigation", name="Main")
        await expect(nav.get_by_role("link", name="Artifacts")).to_be_visible()
        probe = nav.get_by_role("link", name="Probe log")
        await expect(probe).to_be_visible()  # the dashboard, drawn in the browser from /api/me's nav
        await expect(probe).to_have_attribute("href", "/probe")

        await probe.click()
        await page.wait_for_url(base + "/probe")
        await expect(page.get_by_role("heading", name="Probe log")).to_be_visible()
        await journey.open_menu_if_folded(page)
        nav = page.get_by_role("navigation", name="Main")
        await expect(nav.get_by_role("link", name="Artifacts")).to_be_visible()  # the shared layout, server-side
        await expect(nav.get_by_role("link", name="Probe log")).to_have_attribute("aria-current", "page")
        problems.assert_none()
