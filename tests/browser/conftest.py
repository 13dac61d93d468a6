"""Fixtures for the real-browser tests: Debian's Chromium driven by Playwright, against `portal` processes.

One Chromium serves the whole session and one portal each module (each test signs in as its own person),
so the tests pay for a browser and a portal start once, not per test. Every test module runs on the
session's event loop (``pytestmark = pytest.mark.asyncio(loop_scope="session")``) to share the browser.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from portal_core.testing.portal import create_database, drop_database, provision
from tests.browser.chromium import launch_chromium
from tests.support.portal import run_portal


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def chromium():
    """One headless Chromium for the session (FAILS, with the command to run, when it is not installed)."""
    async with launch_chromium() as browser:
        yield browser


def _provisioned(postgres_admin_url: str) -> str:
    url = create_database(postgres_admin_url)
    asyncio.run(provision(url))
    return url


@pytest.fixture(scope="module")
def portal_db(postgres_admin_url):
    """A provisioned database for one module's portal, dropped after the module: the test kit's
    ``portal_db`` (portal_core.testing), made once per module here because one portal serves the module."""
    url = _provisioned(postgres_admin_url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def portal(portal_db):
    """A DEV_MODE portal on a free port for one module, on ``portal_db``."""
    with run_portal(portal_db) as process:
        yield process


@pytest.fixture(scope="module")
def small_files_db(postgres_admin_url):
    url = _provisioned(postgres_admin_url)
    yield url
    drop_database(url)


@pytest.fixture(scope="module")
def small_files_portal(small_files_db):
    """A DEV_MODE portal whose free plan takes files of at most 1 KiB and stores at most 4 KiB."""
    with run_portal(small_files_db, {"PLAN_FREE_MAX_FILE": "1KiB", "PLAN_FREE_QUOTA": "4KiB"}) as process:
        yield process
