"""The pytest plugin of the test kit (entry point ``pytest11: portal``): the ``portal_*`` fixtures.

Every fixture name starts with ``portal_`` (or is ``captured_events``), so it cannot clash with a
project's own fixtures. Async fixtures are declared with pytest-asyncio, so they work in its strict and
auto modes alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from .client import close_signed_in
from .events import CapturedEvents
from .portal import (
    NoTestDatabase, Templates, create_database, database_server, drop_database, make_portal_app,
)

MARKER = "portal"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", f"{MARKER}(env=None, plugins=None): settings and extra plugin objects "
                                       "for this test's portal_db / portal_app (portal_core.testing)")


@pytest.fixture(scope="session")
def portal_db_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The admin URL of the PostgreSQL server test databases are made on: ``PORTAL_TEST_DATABASE_URL``,
    or a throwaway server started for the session the way DEV_MODE starts one. Fails, saying what to do,
    when neither can be had."""
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(database_server(tmp_path_factory.mktemp("portal-postgres")))
        except NoTestDatabase as exc:
            pytest.fail(str(exc), pytrace=False)
        yield url


@pytest.fixture(scope="session")
def portal_db_templates(portal_db_server: str) -> Iterator[Templates]:
    """The session's provisioned template databases (``portal_db`` copies one instead of applying the
    schema for every test); dropped when the session ends."""
    templates = Templates(portal_db_server)
    try:
        yield templates
    finally:
        templates.drop()


@pytest.fixture
def portal_env() -> dict[str, str]:
    """Settings for this test's portal beyond DEV_MODE (override the fixture, or use the ``portal`` marker)."""
    return {}


@pytest.fixture
def portal_plugins() -> list[object]:
    """Plugin objects to register besides the installed ones (override the fixture, or use the marker)."""
    return []


@pytest.fixture
def portal_given(request: pytest.FixtureRequest, portal_env, portal_plugins) -> tuple[dict[str, str], list[object]]:
    """(env, plugins) for this test: the fixtures', then the ``portal`` marker's (closest wins), then the
    ``captured_events`` plugin when the test asked for it."""
    env, plugins = dict(portal_env), list(portal_plugins)
    for marker in reversed(list(request.node.iter_markers(MARKER))):
        env.update(marker.kwargs.get("env") or {})
        plugins += list(marker.kwargs.get("plugins") or ())
    if "captured_events" in request.fixturenames:
        plugins.append(request.getfixturevalue("captured_events"))
    return env, plugins


@pytest_asyncio.fixture
async def portal_db(portal_db_templates: Templates, portal_given) -> AsyncIterator[str]:
    """The URL of a fresh database with the portal's schema (and every plugin's SQL) applied, dropped after
    the test. It is a copy of a database provisioned once per session for the same schema."""
    env, plugins = portal_given
    url = await portal_db_templates.database(env, plugins)
    try:
        yield url
    finally:
        drop_database(url)


@pytest.fixture
def portal_empty_db(portal_db_server: str) -> Iterator[str]:
    """The URL of a brand-new database with nothing in it (for provisioning tests), dropped afterwards."""
    url = create_database(portal_db_server)
    try:
        yield url
    finally:
        drop_database(url)


@pytest_asyncio.fixture
async def portal_pool(portal_db: str) -> AsyncIterator[object]:
    """An aiopg pool on ``portal_db``, for building a service (billing, say) directly."""
    from portal_core.db import create_pool

    pool = await create_pool(portal_db, connect_timeout=5, maxsize=4)
    try:
        yield pool
    finally:
        pool.close()
        await pool.wait_closed()


@pytest.fixture
def portal_data_dir(tmp_path):
    """The test portal's PORTAL_DATA_DIR (DEV_MODE's files are under ``artifacts/`` in it)."""
    return tmp_path / "data"


@pytest.fixture
def portal_app(portal_db: str, portal_given, portal_data_dir):
    """The portal's application from ``create_app``: DEV_MODE on ``portal_db``, with the installed plugins,
    ``portal_env`` and ``portal_plugins``. Not started; ``portal_client`` starts it."""
    env, plugins = portal_given
    return make_portal_app(portal_db, portal_data_dir, env, plugins)


@pytest_asyncio.fixture
async def portal_client(portal_app, aiohttp_client):
    """An aiohttp test client of ``portal_app``, started in-process (startup hooks ran, events flow).
    Sign customers in with ``await signed_in(portal_client, "ada@example.com")``."""
    client = await aiohttp_client(portal_app)
    try:
        yield client
    finally:
        await close_signed_in(client)


@pytest.fixture
def captured_events() -> CapturedEvents:
    """Every event the test's portal delivers to plugins (``portal_event``), in arrival order; asking for
    this fixture registers the capturing plugin in ``portal_app``. ``await captured_events.wait_for(type)``."""
    return CapturedEvents()
