"""The same billing cases against every Billing implementation: DevBilling and StripeBilling (on the fake).

Each harness knows how a customer pays with its backend (the dev "Pay" button; Stripe's hosted checkout
page on the loopback fake, then the browser's return to /billing/success); the cases only use the
Billing interface and what a customer would see.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import aiopg
import pytest

from portal_core.interfaces import Billing, Price, UnknownPlan, User, WebhookRejected
from tests.support.db import create_user
from tests.support.stripe import SECRET_KEY, WEBHOOK_SECRET


class DevHarness:
    # Not the default price, so a test sees the configured one arrive.
    pro_price = Price(1250, "eur", "month")

    def __init__(self, billing) -> None:
        self.billing = billing

    async def pay(self, user: User) -> None:
        url = await self.billing.start_checkout(user, "pro")
        assert url.startswith("/dev/billing/checkout")
        await self.billing.subscribe(user.id, "pro")  # what the fake checkout's Pay button does
        await self.billing.complete_checkout(user, {"session_id": "dev"})

    def is_checkout(self, url: str) -> bool:
        return url.startswith("/dev/billing/checkout")


class StripeHarness:
    pro_price = Price(900, "usd", "month")  # what the stripe_fake fixture creates

    def __init__(self, billing, fake) -> None:
        self.billing = billing
        self.fake = fake

    async def pay(self, user: User) -> None:
        success = await self.fake.pay(await self.billing.start_checkout(user, "pro"))
        params = {key: values[0] for key, values in parse_qs(urlsplit(success).query).items()}
        await self.billing.complete_checkout(user, params)

    def is_checkout(self, url: str) -> bool:
        return "/c/pay/cs_" in url


@pytest.fixture
async def pool(database_url):
    pool = await aiopg.create_pool(database_url, minsize=1, maxsize=4)
    yield pool
    pool.close()
    await pool.wait_closed()


@pytest.fixture(params=["dev", "stripe"])
async def harness(request, pool, stripe_fake):
    if request.param == "dev":
        from portal_plugins.dev_stubs.billing import DevBilling

        yield DevHarness(DevBilling(pool, prices={"pro": DevHarness.pro_price}))
        return
    from portal_plugins.stripe.billing import StripeBilling

    fake = stripe_fake
    async with StripeBilling(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET, prices={"pro": fake.pro_price},
                             pool=pool, app_base_url="http://127.0.0.1:8080", api_base=fake.base_url) as billing:
        yield StripeHarness(billing, fake)


@pytest.fixture
def user(database_url) -> User:
    return User(create_user(database_url, email="ada@example.com"), "ada@example.com", "Ada", False)


async def test_implements_the_interface_and_offers_pro(harness):
    assert isinstance(harness.billing, Billing)
    assert "pro" in harness.billing.plans() and "free" not in harness.billing.plans()


async def test_a_new_customer_is_on_the_free_plan(harness, user):
    plan = await harness.billing.current_plan(user.id)
    assert (plan.name, plan.warning) == ("free", "")


async def test_an_unknown_plan_is_refused(harness, user):
    with pytest.raises(UnknownPlan):
        await harness.billing.start_checkout(user, "platinum")


async def test_checkout_starts_a_checkout_for_a_free_customer(harness, user):
    assert harness.is_checkout(await harness.billing.start_checkout(user, "pro"))


async def test_paying_makes_the_customer_pro_and_a_second_checkout_goes_to_the_portal(harness, user):
    await harness.pay(user)
    plan = await harness.billing.current_plan(user.id)
    assert (plan.name, plan.status) == ("pro", "active")
    again = await harness.billing.start_checkout(user, "pro")
    assert not harness.is_checkout(again)
    assert await harness.billing.open_portal(user)


async def test_one_customers_plan_is_not_anothers(harness, user, database_url):
    other = User(create_user(database_url, email="bob@example.com"), "bob@example.com", "Bob", False)
    await harness.pay(user)
    assert (await harness.billing.current_plan(other.id)).name == "free"


@pytest.mark.parametrize("body, headers", [(b"{}", {}), (b"not json", {"Stripe-Signature": "t=1,v1=00"})])
async def test_an_unauthenticated_webhook_is_rejected(harness, user, body, headers):
    with pytest.raises(WebhookRejected):
        await harness.billing.handle_webhook(body, headers)
    assert (await harness.billing.current_plan(user.id)).name == "free"


async def test_health_is_ok(harness):
    assert (await harness.billing.health()).status == "ok"


async def test_every_paid_plan_has_its_configured_price(harness):
    prices = await harness.billing.prices()
    assert set(prices) == set(harness.billing.plans())
    assert prices["pro"] == harness.pro_price
    for price in prices.values():
        assert isinstance(price.amount, int) and price.amount >= 0
        assert len(price.currency) == 3 and price.currency == price.currency.lower()
        assert price.interval in ("day", "week", "month", "year") and price.interval_count >= 1


async def test_prices_are_the_same_when_asked_again(harness):
    assert await harness.billing.prices() == await harness.billing.prices()
