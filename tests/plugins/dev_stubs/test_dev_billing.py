"""The dev billing stub through the core's billing API: upgrade at once, manage, cancel."""

from __future__ import annotations

import re

import pytest


async def test_upgrade_to_pro_through_the_fake_checkout_and_cancel_in_the_fake_portal(sign_in, sql):
    browser = await sign_in()
    async with browser.request("POST", "/api/billing/checkout", json={"plan": "pro"}) as resp:
        assert resp.status == 200
        url = (await resp.json())["url"]
    assert url == "/dev/billing/checkout?plan=pro"
    async with browser.request("GET", url) as resp:
        page = await resp.text()
    assert "Development only" in page and 'id="dev-pay"' in page
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    async with browser.request("POST", "/dev/billing/checkout", csrf=False,
                               data={"csrf_token": csrf, "plan": "pro"}) as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/billing/success?session_id=dev"
    async with browser.request("GET", "/billing/success?session_id=dev") as resp:
        assert resp.headers["Location"] == "/billing?checkout=success"
    me = await (await browser.request("GET", "/api/me")).json()
    assert me["plan"]["name"] == "pro" and me["plan"]["status"] == "active"
    assert me["plan"]["limits"] == {"max_file": 5 * 1024**3, "quota": 100 * 1024**3}
    assert sql("SELECT provider, plan, status FROM subscriptions") == [("dev", "pro", "active")]

    # Subscribed: a second checkout goes to the billing portal instead.
    async with browser.request("POST", "/api/billing/checkout", json={"plan": "pro"}) as resp:
        assert (await resp.json())["url"] == "/dev/billing/portal"
    async with browser.request("POST", "/api/billing/portal") as resp:
        portal = (await resp.json())["url"]
    page = await (await browser.request("GET", portal)).text()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    async with browser.request("POST", "/dev/billing/portal/cancel", csrf=False, data={"csrf_token": csrf}) as resp:
        assert resp.status == 302
    me = await (await browser.request("GET", "/api/me")).json()
    assert me["plan"]["name"] == "free" and me["plan"]["limits"]["quota"] == 1024**3


async def test_the_fake_checkout_needs_the_csrf_token(sign_in, sql):
    browser = await sign_in()
    async with browser.request("POST", "/dev/billing/checkout", csrf=False, data={"plan": "pro"}) as resp:
        assert resp.status == 403
    assert sql("SELECT count(*) FROM subscriptions") == [(0,)]


async def test_unknown_plans_are_400(sign_in):
    browser = await sign_in()
    async with browser.request("POST", "/api/billing/checkout", json={"plan": "platinum"}) as resp:
        assert resp.status == 400
        assert "pro" in (await resp.json())["error"]["message"]


async def test_the_dev_backend_takes_no_webhooks_and_other_names_are_404(client):
    assert (await client.post("/webhooks/dev", data=b"{}")).status == 400
    assert (await client.post("/webhooks/stripe", data=b"{}")).status == 404


async def test_the_plans_on_offer_come_with_limits_and_the_configured_price(make_app, aiohttp_client, sign_in):
    app = make_app(DEV_PRICE_PRO="1500 GBP/year", PLAN_PRO_MAX_FILE="2GiB")
    browser = await sign_in(on=await aiohttp_client(app))
    async with browser.request("GET", "/api/billing/plans") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body == {"prices_error": None, "plans": [
        {"name": "free", "price": None, "limits": {"max_file": 100 * 1024**2, "quota": 1024**3}},
        {"name": "pro", "price": {"amount": 1500, "currency": "gbp", "interval": "year", "interval_count": 1},
         "limits": {"max_file": 2 * 1024**3, "quota": 100 * 1024**3}},
    ]}


async def test_the_plans_need_a_signed_in_customer(client):
    async with client.get("/api/billing/plans") as resp:
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthenticated"


def test_a_malformed_dev_price_is_named_with_the_expected_form(make_app):
    from portal_core.config import ConfigError

    with pytest.raises(ConfigError, match=r"DEV_PRICE_PRO: .*900 usd/month"):
        make_app(DEV_PRICE_PRO="nine dollars")
