"""Fixtures for the stripe plugin's tests: the fake Stripe, a database with a user, an open StripeBilling."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiopg
import pytest

from portal_core.interfaces import User
from tests.support.db import create_user, run_sql
from tests.support.stripe import SECRET_KEY, WEBHOOK_SECRET

APP_BASE_URL = "https://portal.example.com"


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[aiopg.Pool]:
    pool = await aiopg.create_pool(database_url, minsize=1, maxsize=4)
    yield pool
    pool.close()
    await pool.wait_closed()


@pytest.fixture
def user(database_url: str) -> User:
    """A signed-up customer (a row in users)."""
    return User(id=create_user(database_url, email="ada@example.com", name="Ada"), email="ada@example.com",
                name="Ada", is_admin=False)


def make_billing(fake, pool, **overrides):
    from portal_plugins.stripe.billing import StripeBilling

    values = dict(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, prices={"pro": fake.pro_price},
                  pool=pool, app_base_url=APP_BASE_URL, api_base=fake.base_url)
    return StripeBilling(**{**values, **overrides})


@pytest.fixture
async def billing(stripe_fake, pool):
    """A StripeBilling on the fake Stripe and the test database, as production builds it."""
    async with make_billing(stripe_fake, pool) as billing:
        yield billing


@pytest.fixture
def snapshot(database_url: str):
    """Every row of the tables a webhook may write, to show that a rejected one changed nothing."""
    def take():
        return {table: run_sql(database_url, f"SELECT * FROM {table} ORDER BY 1")
                for table in ("subscriptions", "stripe_events", "users")}
    return take
