"""StripeBilling.health: an authenticated read of the Pro price, cached, never raising."""

from __future__ import annotations

from tests.support.stripe import StripeFake

from .conftest import make_billing


async def test_health_is_ok_when_stripe_answers(billing):
    health = await billing.health()
    assert health.status == "ok"


async def test_health_is_down_when_stripe_is_stopped_and_cached_meanwhile(pool):
    own = StripeFake().start()  # this test stops it; the session's fake stays up for the others
    try:
        own.pro_price = await own.create_price()
        async with make_billing(own, pool, health_cache_seconds=3600) as cached, \
                make_billing(own, pool, health_cache_seconds=0) as uncached:
            assert (await cached.health()).status == "ok"
            assert (await uncached.health()).status == "ok"
            own.stop()

            assert (await cached.health()).status == "ok"  # the cached answer, no request made
            down = await uncached.health()
    finally:
        own.stop()
    assert down.status == "down"
    assert "Stripe unreachable" in down.detail


async def test_health_names_the_setting_at_fault(stripe_fake, pool):
    async with make_billing(stripe_fake, pool, prices={"pro": "price_does_not_exist"}) as billing:
        health = await billing.health()
    assert health.status == "down"
    assert "STRIPE_PRICE_ID_PRO" in health.detail


async def test_health_says_when_the_api_key_is_refused(stripe_fake, pool):
    async with make_billing(stripe_fake, pool, secret_key="sk_") as billing:  # the fake refuses it, as Stripe would
        health = await billing.health()
    assert health.status == "down"
    assert "STRIPE_SECRET_KEY" in health.detail
