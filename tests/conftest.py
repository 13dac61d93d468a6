"""Fixtures shared by every test: a real PostgreSQL, one fresh database per test.

The databases come from the portal's own test kit (portal_core.testing, loaded as a pytest plugin): the
server is PORTAL_TEST_DATABASE_URL (scripts/test sets it; here it defaults to the local cluster on
127.0.0.1:5432 as user postgres). A test that needs a database FAILS when none can be reached — it is
never skipped, so a missing database cannot pass for a green run. The fixtures below are this project's
names for the kit's (``database_url`` is ``portal_db``, ...).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from portal_core.testing.portal import NoTestDatabase, check_server, create_database, drop_database, with_dbname

# Fixture modules shared across directories, so a session-scoped server (moto) starts once per run.
pytest_plugins = ["pytester", "tests.support.moto", "tests.support.stripe", "tests.support.app", "tests.support.venvs"]

os.environ.setdefault("PORTAL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ADMIN_URL = os.environ["PORTAL_TEST_DATABASE_URL"]


def _with_dbname(url: str, dbname: str) -> str:
    return with_dbname(url, dbname)


def _checked_server() -> str:
    try:
        return check_server(ADMIN_URL)
    except NoTestDatabase as exc:
        pytest.fail(f"{exc}. Run the README's test command (scripts/test), which starts or installs one.",
                    pytrace=False)


def _create_database() -> str:
    """A new empty database on the test server; returns its name."""
    return urlsplit(create_database(_checked_server())).path.lstrip("/")


def _drop_database(name: str) -> None:
    drop_database(with_dbname(ADMIN_URL, name))


@pytest.fixture(scope="session")
def postgres_admin_url(portal_db_server) -> str:
    """The maintenance DSN of the test server (fails the test when unreachable)."""
    return portal_db_server


@pytest.fixture
def empty_database_url(portal_empty_db):
    """A brand-new database with nothing in it, dropped after the test."""
    return portal_empty_db


@pytest.fixture
def database_url(portal_db):
    """A fresh database with the core schema (and the built-in plugins' SQL) applied."""
    return portal_db


@pytest.fixture
def sql(database_url):
    """Run one statement against the test database synchronously; returns all rows (or None)."""
    from tests.support.db import run_sql

    return lambda query, params=(): run_sql(database_url, query, params)
