"""Stripe billing through real portal processes (BILLING_BACKEND=stripe) on the fake Stripe.

The browser is an aiohttp session signed in through the dev login form; Stripe is the fake (localstripe
plus Checkout and the Billing Portal). Webhooks arrive at POST /webhooks/stripe, signed as Stripe signs.
"""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from tests.support.db import run_sql
from tests.support.portal import dev_sign_in, run_portal
from tests.support.stripe import WEBHOOK_SECRET, event_body, signed_headers, stripe_env

WAIT_SECONDS = 30


def billing_env(fake) -> dict[str, str]:
    return {"BILLING_BACKEND": "stripe", **stripe_env(fake)}


@pytest.fixture
def portal(database_url, stripe_fake):
    with run_portal(database_url, billing_env(stripe_fake)) as portal:
        yield portal


@pytest.fixture
async def browser(portal):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        session.csrf = await dev_sign_in(session, portal.url)
        yield session


async def me(browser, portal) -> dict:
    async with browser.get(portal.url + "/api/me") as response:
        assert response.status == 200, await response.text()
        return await response.json()


async def checkout(browser, portal) -> str:
    async with browser.post(portal.url + "/api/billing/checkout", json={"plan": "pro"},
                            headers={"X-CSRF-Token": browser.csrf}) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["url"]


async def post_webhook(portal_url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    async with aiohttp.ClientSession() as session:
        async with session.post(portal_url + "/webhooks/stripe", data=body, headers=headers) as response:
            return response.status, await response.json()


async def test_checkout_pay_and_return_gives_pro(portal, browser, stripe_fake):
    assert (await me(browser, portal))["plan"]["name"] == "free"

    success_url = await stripe_fake.pay(await checkout(browser, portal))
    assert success_url.startswith(portal.url + "/billing/success?session_id=cs_test_")
    async with browser.get(success_url, allow_redirects=False) as response:
        assert (response.status, response.headers["Location"]) == (302, "/billing?checkout=success")

    plan = (await me(browser, portal))["plan"]
    assert (plan["name"], plan["status"], plan["warning"]) == ("pro", "active", "")

    # Subscribed now: asking to check out again opens the billing portal instead.
    assert (await checkout(browser, portal)).startswith(stripe_fake.base_url + "/p/session/")


async def test_webhooks_are_verified_applied_and_acknowledged(portal, browser, stripe_fake, database_url):
    await stripe_fake.pay(await checkout(browser, portal))  # the browser never comes back: only webhooks tell
    event = await stripe_fake.event("checkout.session.completed")
    body = event_body(event)

    status, answer = await post_webhook(portal.url, body, signed_headers(body, secret="whsec_wrong"))
    assert status == 400 and "signature" in answer["error"]["message"]
    assert (await me(browser, portal))["plan"]["name"] == "free"

    assert await post_webhook(portal.url, body, signed_headers(body)) == (
        200, {"received": True, "id": event["id"], "outcome": "applied"})
    assert (await me(browser, portal))["plan"]["name"] == "pro"
    assert await post_webhook(portal.url, body, signed_headers(body)) == (
        200, {"received": True, "id": event["id"], "outcome": "duplicate"})
    assert run_sql(database_url, "SELECT count(*) FROM stripe_events") == [(1,)]


async def test_stripes_own_signed_deliveries_make_the_customer_pro(portal, browser, stripe_fake):
    """localstripe sends its events itself (signed with its own code) once a webhook endpoint is registered."""
    await stripe_fake.api("POST", "/_config/webhooks/portal",
                          {"url": portal.url + "/webhooks/stripe", "secret": WEBHOOK_SECRET})
    await stripe_fake.pay(await checkout(browser, portal))

    deadline = time.monotonic() + WAIT_SECONDS
    while (plan := (await me(browser, portal))["plan"])["name"] != "pro" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert (plan["name"], plan["status"]) == ("pro", "active"), portal.log()[-2000:]


async def test_one_event_delivered_to_two_portals_at_once_is_applied_once(database_url, stripe_fake, portal, browser):
    await stripe_fake.pay(await checkout(browser, portal))
    event = await stripe_fake.event("checkout.session.completed")
    body = event_body(event)

    with run_portal(database_url, billing_env(stripe_fake)) as second:
        answers = await asyncio.gather(post_webhook(portal.url, body, signed_headers(body)),
                                       post_webhook(second.url, body, signed_headers(body)))

    assert sorted((status, answer["outcome"]) for status, answer in answers) == [(200, "applied"), (200, "duplicate")]
    assert run_sql(database_url, "SELECT event_id FROM stripe_events") == [(event["id"],)]
    assert (await me(browser, portal))["plan"]["name"] == "pro"


async def test_cancel_in_the_billing_portal_then_period_end(portal, browser, stripe_fake):
    success_url = await stripe_fake.pay(await checkout(browser, portal))
    async with browser.get(success_url, allow_redirects=False):
        pass
    async with browser.post(portal.url + "/api/billing/portal", headers={"X-CSRF-Token": browser.csrf}) as response:
        assert response.status == 200, await response.text()
        portal_url = (await response.json())["url"]
    status, _page, headers = await stripe_fake.request("POST", portal_url.removeprefix(stripe_fake.base_url),
                                                       auth=False, allow_redirects=False)
    assert (status, headers["Location"]) == (303, portal.url + "/billing")

    updated = event_body(await stripe_fake.event("customer.subscription.updated"))
    assert (await post_webhook(portal.url, updated, signed_headers(updated)))[0] == 200
    plan = (await me(browser, portal))["plan"]
    assert (plan["name"], plan["cancel_at_period_end"]) == ("pro", True)

    subscription = (await stripe_fake.events("customer.subscription.created"))[-1]["data"]["object"]["id"]
    await stripe_fake.cancel_subscription(subscription)
    deleted = event_body(await stripe_fake.event("customer.subscription.deleted"))
    assert (await post_webhook(portal.url, deleted, signed_headers(deleted)))[0] == 200
    plan = (await me(browser, portal))["plan"]
    assert (plan["name"], plan["status"]) == ("free", "canceled")
