"""Fixtures shared by every test: a real PostgreSQL, one fresh database per test.

The server comes from PORTAL_TEST_DATABASE_URL (scripts/test sets it; default: the local cluster on
127.0.0.1:5432 as user postgres). A test that needs a database FAILS when none can be reached — it is
never skipped, so a missing database cannot pass for a green run.
"""

from __future__ import annotations

import os
import uuid
from urllib.parse import urlsplit, urlunsplit

import psycopg2
import pytest

# Fixture modules shared across directories, so a session-scoped server (moto) starts once per run.
pytest_plugins = ["tests.support.moto", "tests.support.stripe", "tests.support.app"]

ADMIN_URL = os.environ.get("PORTAL_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def _with_dbname(url: str, dbname: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + dbname))


def _admin_connection():
    try:
        conn = psycopg2.connect(ADMIN_URL, connect_timeout=5)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is required for this test and is unreachable at {ADMIN_URL}: {exc}. "
                    "Run the README's test command (scripts/test), which starts or installs one.", pytrace=False)
    conn.autocommit = True
    return conn


@pytest.fixture(scope="session")
def postgres_admin_url() -> str:
    """The maintenance DSN of the test server (fails the test when unreachable)."""
    _admin_connection().close()
    return ADMIN_URL


def _create_database() -> str:
    name = "portal_t_" + uuid.uuid4().hex[:16]
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    conn.close()
    return name


def _drop_database(name: str) -> None:
    conn = _admin_connection()
    with conn.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    conn.close()


@pytest.fixture
def empty_database_url(postgres_admin_url):
    """A brand-new database with nothing in it, dropped after the test."""
    name = _create_database()
    yield _with_dbname(postgres_admin_url, name)
    _drop_database(name)


@pytest.fixture
async def database_url(empty_database_url):
    """A fresh database with the core schema (and the built-in plugins' SQL) applied."""
    from tests.support.db import provision

    await provision(empty_database_url)
    return empty_database_url


@pytest.fixture
def sql(database_url):
    """Run one statement against the test database synchronously; returns all rows (or None)."""
    from tests.support.db import run_sql

    return lambda query, params=(): run_sql(database_url, query, params)
