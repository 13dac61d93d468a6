"""Debian's Chromium under Playwright: launching it, loopback-only pages, page-error capture, screenshots.

Chromium must be at /usr/bin/chromium (tests/setup.d/browser.sh installs it); Playwright's own browser
download cannot work here, so a missing Chromium FAILS the test with the command to run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.browser.a11y import assert_accessible

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


@contextlib.asynccontextmanager
async def launch_chromium():
    """Headless Debian Chromium under Playwright; fails the test when /usr/bin/chromium is missing."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run tests/setup.d/browser.sh (installs Debian's chromium)", pytrace=False)
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            await browser.close()


class PageProblems:
    """Everything a page complained about: uncaught errors, CSP or other console errors, and any
    request to a host other than 127.0.0.1 (refused, and recorded as a defect)."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page) -> None:
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("console", self._console)

    def _console(self, message) -> None:
        # A failed API call logs "Failed to load resource" by design (401 before sign-in, a 413);
        # anything else (a CSP refusal, a script error) is a defect.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"console: {message.text}")


    async def only_loopback(self, route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            await route.continue_()
        else:
            self.errors.append(f"request to another host: {route.request.url}")
            await route.abort()

    def assert_none(self) -> None:
        assert not self.errors, "the pages reported problems:\n" + "\n".join(self.errors)


@contextlib.asynccontextmanager
async def open_page(browser, *, width: int = 1280, height: int = 900, **options):
    """A fresh context and page that can reach only 127.0.0.1; yields (page, problems).

    ``options`` go to the context: ``color_scheme="dark"``, ``has_touch=True, is_mobile=True``, ``permissions``…
    """
    context = await browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True, **options)
    problems = PageProblems()
    await context.route("**/*", problems.only_loopback)
    page = await context.new_page()
    problems.watch(page)
    try:
        yield page, problems
    finally:
        await context.close()


async def screenshot(page, name: str, *, check: bool = True) -> Path:
    """Keep a full-page picture of this step under test-artifacts/screenshots/ for a human to look at,
    and check the page as it is now with axe (no serious or critical violation). Returns the file."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    if check:
        await assert_accessible(page, name)
    return path
