"""Every built-in Billing through portal_core.testing's BillingConformance: DevBilling, and StripeBilling on
the loopback Stripe fake.

Each subclass knows how a customer pays with its backend (the dev "Pay" button; Stripe's hosted checkout
page on the fake, then the browser's return to /billing/success); the cases use only the Billing interface
and what a customer would see.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from portal_core.interfaces import Price, User
from portal_core.testing import BillingConformance
from tests.support.stripe import SECRET_KEY, WEBHOOK_SECRET


class TestDevBilling(BillingConformance):
    # Not the default price, so the case sees the configured one arrive.
    expected_prices = {"pro": Price(1250, "eur", "month")}

    @pytest.fixture
    def billing(self, portal_pool):
        from portal_plugins.dev_stubs.billing import DevBilling

        return DevBilling(portal_pool, prices=self.expected_prices)

    async def pay(self, billing, user: User) -> None:
        url = await billing.start_checkout(user, "pro")
        assert url.startswith("/dev/billing/checkout")
        await billing.subscribe(user.id, "pro")  # what the fake checkout's Pay button does
        await billing.complete_checkout(user, {"session_id": "dev"})

    def is_checkout(self, url: str) -> bool:
        return url.startswith("/dev/billing/checkout")


class TestStripeBilling(BillingConformance):
    expected_prices = {"pro": Price(900, "usd", "month")}  # what the stripe_fake fixture creates

    @pytest.fixture
    async def billing(self, portal_pool, stripe_fake):
        from portal_plugins.stripe.billing import StripeBilling

        self.fake = stripe_fake
        async with StripeBilling(secret_key=SECRET_KEY, webhook_secret=WEBHOOK_SECRET,
                                 prices={"pro": stripe_fake.pro_price}, pool=portal_pool,
                                 app_base_url="http://127.0.0.1:8080", api_base=stripe_fake.base_url) as billing:
            yield billing

    async def pay(self, billing, user: User) -> None:
        success = await self.fake.pay(await billing.start_checkout(user, "pro"))
        params = {key: values[0] for key, values in parse_qs(urlsplit(success).query).items()}
        await billing.complete_checkout(user, params)

    def is_checkout(self, url: str) -> bool:
        return "/c/pay/cs_" in url
