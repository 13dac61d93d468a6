"""Checkout, the return from Checkout, and the Billing Portal — StripeBilling against the fake Stripe."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from portal_core.interfaces import PlanState, ServiceUnavailable, UnknownPlan, User
from tests.support.db import create_user, run_sql
from tests.support.stripe import event_body, signed_headers

from .conftest import APP_BASE_URL, make_billing


def session_id(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[1]


def returned(success_url: str) -> dict[str, str]:
    """The query parameters the core hands complete_checkout when the browser comes back."""
    return {key: values[0] for key, values in parse_qs(urlsplit(success_url).query).items()}


async def subscribe(billing, fake, user) -> str:
    """Check out and pay; returns the success URL the browser is sent back to."""
    return await fake.pay(await billing.start_checkout(user, "pro"))


async def test_checkout_opens_a_subscription_checkout_for_our_customer(billing, stripe_fake, user, database_url):
    url = await billing.start_checkout(user, "pro")

    assert url.startswith(stripe_fake.base_url + "/c/pay/cs_test_")
    session = await stripe_fake.checkout_session(session_id(url))
    assert session["mode"] == "subscription"
    assert session["client_reference_id"] == str(user.id)
    assert session["success_url"] == f"{APP_BASE_URL}/billing/success?session_id={{CHECKOUT_SESSION_ID}}"
    assert session["cancel_url"] == f"{APP_BASE_URL}/billing"
    customer = run_sql(database_url, "SELECT customer_id, provider, plan FROM subscriptions WHERE user_id = %s",
                       (user.id,))
    assert customer == [(session["customer"], "stripe", "free")]
    customer_object = await stripe_fake.api("GET", f"/v1/customers/{session['customer']}")
    assert customer_object["email"] == "ada@example.com"
    assert await billing.current_plan(user.id) == PlanState("free")


async def test_one_customer_per_user_across_checkouts(billing, stripe_fake, user):
    first = await stripe_fake.checkout_session(session_id(await billing.start_checkout(user, "pro")))
    second = await stripe_fake.checkout_session(session_id(await billing.start_checkout(user, "pro")))
    assert first["customer"] == second["customer"]
    customers = await stripe_fake.api("GET", "/v1/customers")
    assert [c["id"] for c in customers["data"]] == [first["customer"]]


async def test_an_unknown_plan_is_refused(billing, user):
    with pytest.raises(UnknownPlan, match="'gold'"):
        await billing.start_checkout(user, "gold")
    assert billing.plans() == ("pro",)


async def test_returning_from_checkout_syncs_the_plan_without_any_webhook(billing, stripe_fake, user, database_url):
    success = await subscribe(billing, stripe_fake, user)
    assert success.startswith(f"{APP_BASE_URL}/billing/success?session_id=cs_test_")

    await billing.complete_checkout(user, returned(success))

    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status, plan.cancel_at_period_end, plan.warning) == ("pro", "active", False, "")
    assert plan.current_period_end is not None
    assert run_sql(database_url, "SELECT count(*) FROM stripe_events") == [(0,)]


async def test_someone_elses_checkout_session_is_not_synced(billing, stripe_fake, user, database_url):
    success = await subscribe(billing, stripe_fake, user)
    mallory = User(id=create_user(database_url, email="mallory@example.com"), email="mallory@example.com",
                   name="Mallory", is_admin=False)

    await billing.complete_checkout(mallory, returned(success))

    assert (await billing.current_plan(mallory.id)).name == "free"
    assert (await billing.current_plan(user.id)).name == "free"  # nothing synced at all


async def test_checkout_then_payment_then_webhook_gives_pro(billing, stripe_fake, user):
    await subscribe(billing, stripe_fake, user)
    event = await stripe_fake.event("checkout.session.completed")

    body = event_body(event)
    result = await billing.handle_webhook(body, signed_headers(body))

    assert (result.event_id, result.event_type, result.outcome) == (event["id"], event["type"], "applied")
    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status) == ("pro", "active")


async def test_a_subscriber_asking_for_checkout_gets_the_billing_portal(billing, stripe_fake, user):
    success = await subscribe(billing, stripe_fake, user)
    await billing.complete_checkout(user, returned(success))

    url = await billing.start_checkout(user, "pro")

    assert url.startswith(stripe_fake.base_url + "/p/session/bps_")
    subscriptions = await stripe_fake.api("GET", "/v1/subscriptions?status=all")
    assert len(subscriptions["data"]) == 1  # no second subscription was started


async def test_the_portal_is_for_the_users_customer_and_returns_to_billing(billing, stripe_fake, user, database_url):
    url = await billing.open_portal(user)

    customer = run_sql(database_url, "SELECT customer_id FROM subscriptions WHERE user_id = %s", (user.id,))[0][0]
    status, page, _headers = await stripe_fake.request("GET", url.removeprefix(stripe_fake.base_url), auth=False)
    assert status == 200 and f"Customer {customer}" in page
    status, _body, headers = await stripe_fake.request("POST", url.removeprefix(stripe_fake.base_url), auth=False,
                                                       allow_redirects=False)
    assert (status, headers["Location"]) == (303, f"{APP_BASE_URL}/billing")


async def test_stripe_unreachable_means_service_unavailable_and_nothing_written(stripe_fake, pool, user, database_url):
    async with make_billing(stripe_fake, pool, api_base="http://127.0.0.1:9") as billing:
        with pytest.raises(ServiceUnavailable, match="Stripe"):
            await billing.start_checkout(user, "pro")
    assert run_sql(database_url, "SELECT count(*) FROM subscriptions") == [(0,)]
