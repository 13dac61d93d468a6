"""Fixtures for the real-browser tests: Debian's Chromium driven by Playwright, against `portal` processes."""

from __future__ import annotations

import pytest

from tests.browser.chromium import launch_chromium
from tests.support.portal import run_portal


@pytest.fixture
async def chromium():
    """A headless Chromium for one test (FAILS, with the command to run, when it is not installed)."""
    async with launch_chromium() as browser:
        yield browser


@pytest.fixture
def portal(database_url):
    """A DEV_MODE portal on a free port with its own fresh database."""
    with run_portal(database_url) as process:
        yield process


@pytest.fixture
def small_files_portal(database_url):
    """A DEV_MODE portal whose free plan takes files of at most 1 KiB."""
    with run_portal(database_url, {"PLAN_FREE_MAX_FILE": "1KiB"}) as process:
        yield process
