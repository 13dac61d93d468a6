"""BillingConformance: what the portal relies on from every :class:`~portal_core.interfaces.Billing`.

Subclass it, provide a ``billing`` fixture (a Billing writing to the test database: build it on the
``portal_pool`` fixture), say how a customer pays with your backend, and run pytest::

    from portal_core.testing import BillingConformance

    class TestAcmeBilling(BillingConformance):
        expected_prices = {"pro": Price(900, "usd", "month")}

        @pytest.fixture
        async def billing(self, portal_pool):
            async with AcmeBilling(pool=portal_pool, api=...) as billing:
                yield billing

        async def pay(self, billing, user):
            ...  # what the customer does on the checkout page start_checkout(user, "pro") leads to

        def is_checkout(self, url):
            return url.startswith("https://pay.acme.example/")
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from portal_core.interfaces import Billing, Price, UnknownPlan, User, WebhookRejected
from portal_core.testing.conformance.shape import assert_implements
from portal_core.testing.portal import create_user


@pytest.mark.asyncio
class BillingConformance:
    """The billing cases. Provide ``billing``; implement :meth:`pay` and :meth:`is_checkout`."""

    #: plan name -> the Price the backend was configured with; ``prices()`` must give exactly these.
    expected_prices: Mapping[str, Price] = {}

    async def pay(self, billing: Billing, user: User) -> None:
        """Make ``user`` pay for "pro" the way a customer does with this backend, through to the return to
        the portal (``complete_checkout``)."""
        raise NotImplementedError("BillingConformance needs pay(billing, user): how a customer pays for 'pro'")

    def is_checkout(self, url: str) -> bool:
        """Whether ``url`` is this backend's checkout page (rather than its billing portal)."""
        raise NotImplementedError("BillingConformance needs is_checkout(url)")

    @pytest.fixture
    def customer(self, portal_db) -> User:
        """A customer on the free plan."""
        return create_user(portal_db, "ada@example.com")

    # -- the cases -----------------------------------------------------------------------------------

    async def test_implements_the_interface_and_offers_pro(self, billing) -> None:
        assert_implements(billing, Billing)
        assert "pro" in billing.plans() and "free" not in billing.plans()

    async def test_a_new_customer_is_on_the_free_plan(self, billing, customer) -> None:
        plan = await billing.current_plan(customer.id)
        assert (plan.name, plan.warning) == ("free", "")

    async def test_an_unknown_plan_is_refused(self, billing, customer) -> None:
        with pytest.raises(UnknownPlan):
            await billing.start_checkout(customer, "platinum")

    async def test_checkout_starts_a_checkout_for_a_free_customer(self, billing, customer) -> None:
        assert self.is_checkout(await billing.start_checkout(customer, "pro"))

    async def test_paying_makes_the_customer_pro_and_a_second_checkout_goes_to_the_portal(self, billing, customer):
        await self.pay(billing, customer)
        plan = await billing.current_plan(customer.id)
        assert (plan.name, plan.status) == ("pro", "active")
        again = await billing.start_checkout(customer, "pro")
        assert not self.is_checkout(again)
        assert await billing.open_portal(customer)

    async def test_one_customers_plan_is_not_anothers(self, billing, customer, portal_db) -> None:
        other = create_user(portal_db, "bob@example.com")
        await self.pay(billing, customer)
        assert (await billing.current_plan(other.id)).name == "free"

    @pytest.mark.parametrize("body, headers", [(b"{}", {}), (b"not json", {"Stripe-Signature": "t=1,v1=00"})],
                             ids=["unsigned", "garbage"])
    async def test_an_unauthenticated_webhook_is_rejected(self, billing, customer, body, headers) -> None:
        with pytest.raises(WebhookRejected):
            await billing.handle_webhook(body, headers)
        assert (await billing.current_plan(customer.id)).name == "free"

    async def test_health_is_ok(self, billing) -> None:
        assert (await billing.health()).status == "ok"

    async def test_every_paid_plan_has_its_configured_price(self, billing) -> None:
        prices = await billing.prices()
        assert set(prices) == set(billing.plans())
        for plan, price in self.expected_prices.items():
            assert prices[plan] == price
        for price in prices.values():
            assert isinstance(price.amount, int) and price.amount >= 0
            assert len(price.currency) == 3 and price.currency == price.currency.lower()
            assert price.interval in ("day", "week", "month", "year") and price.interval_count >= 1

    async def test_prices_are_the_same_when_asked_again(self, billing) -> None:
        assert await billing.prices() == await billing.prices()
