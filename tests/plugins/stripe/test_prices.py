"""StripeBilling.prices: every plan's Price object read from Stripe once, then kept."""

from __future__ import annotations

import pytest

from portal_core.interfaces import Price, ServiceUnavailable

from .conftest import make_billing


async def test_each_plans_price_comes_from_its_stripe_price(stripe_fake, pool):
    team = await stripe_fake.api("POST", "/v1/prices", {
        "currency": "eur", "unit_amount": "24000", "recurring[interval]": "year", "product_data[name]": "Team"})
    async with make_billing(stripe_fake, pool, prices={"pro": stripe_fake.pro_price, "team": team["id"]}) as billing:
        prices = await billing.prices()
    assert prices == {"pro": Price(900, "usd", "month"), "team": Price(24000, "eur", "year")}


async def test_prices_are_read_once_and_kept(stripe_fake, pool):
    async with make_billing(stripe_fake, pool) as billing:
        first = await billing.prices()
        await stripe_fake.reset()  # the price is gone from the fake: only a kept answer can still name it
        assert await billing.prices() == first == {"pro": Price(900, "usd", "month")}


async def test_a_price_stripe_does_not_know_is_unavailable_naming_it(stripe_fake, pool):
    async with make_billing(stripe_fake, pool, prices={"pro": "price_does_not_exist"}) as billing:
        with pytest.raises(ServiceUnavailable, match="price_does_not_exist"):
            await billing.prices()


async def test_the_billing_page_gets_the_plans_without_prices_when_stripe_cannot_say(
        stripe_fake, make_app, aiohttp_client):
    import aiohttp

    from tests.support.portal import dev_sign_in
    from tests.support.stripe import stripe_env

    app = make_app(BILLING_BACKEND="stripe", **stripe_env(stripe_fake, STRIPE_PRICE_ID_PRO="price_gone"))
    client = await aiohttp_client(app)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        base = str(client.make_url("")).rstrip("/")
        await dev_sign_in(session, base)
        async with session.get(base + "/api/billing/plans") as resp:
            assert resp.status == 200
            body = await resp.json()
    assert [plan["name"] for plan in body["plans"]] == ["free", "pro"]
    assert all(plan["price"] is None for plan in body["plans"])
    assert "price_gone" in body["prices_error"]
