"""Webhook deliveries to StripeBilling: verified, applied once, in any order, from the whole current state."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from portal_core.interfaces import ServiceUnavailable, WebhookRejected
from portal_core.plans import PAST_DUE_WARNING
from tests.support.db import run_sql
from tests.support.stripe import WEBHOOK_SECRET, event_body, signed_headers

from .conftest import make_billing


async def deliver(billing, event: dict, **signing):
    body = event_body(event)
    return await billing.handle_webhook(body, signed_headers(body, **signing))


async def subscribed(billing, fake, user) -> str:
    """Check out and pay (no webhook delivered yet); returns the new subscription's id."""
    await fake.pay(await billing.start_checkout(user, "pro"))
    return (await fake.event("customer.subscription.created"))["data"]["object"]["id"]


def recorded_events(database_url: str) -> list[tuple[str, str]]:
    return run_sql(database_url, "SELECT event_id, type FROM stripe_events ORDER BY event_id")


def stored_plan(database_url: str, user_id: int) -> tuple[str, str]:
    return run_sql(database_url, "SELECT plan, status FROM subscriptions WHERE user_id = %s", (user_id,))[0]


async def test_a_redelivered_event_is_acknowledged_and_not_applied_again(billing, stripe_fake, user, database_url):
    subscription = await subscribed(billing, stripe_fake, user)
    event = await stripe_fake.event("checkout.session.completed")
    assert (await deliver(billing, event)).outcome == "applied"
    # Stripe's state moves on; only a fresh event may carry that into the portal, not a replay.
    await stripe_fake.change_subscription(subscription, status="past_due")

    again = await deliver(billing, event)

    assert (again.event_id, again.outcome) == (event["id"], "duplicate")
    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status) == ("pro", "active")
    assert recorded_events(database_url) == [(event["id"], "checkout.session.completed")]


async def test_the_same_event_delivered_concurrently_to_two_processes_is_applied_once(
        stripe_fake, pool, user, database_url):
    import aiopg

    other_pool = await aiopg.create_pool(database_url, minsize=1, maxsize=2)
    try:
        async with make_billing(stripe_fake, pool) as first, make_billing(stripe_fake, other_pool) as second:
            await subscribed(first, stripe_fake, user)
            event = await stripe_fake.event("checkout.session.completed")
            results = await asyncio.gather(deliver(first, event), deliver(second, event))
    finally:
        other_pool.close()
        await other_pool.wait_closed()

    assert sorted(r.outcome for r in results) == ["applied", "duplicate"]
    assert len(recorded_events(database_url)) == 1
    assert stored_plan(database_url, user.id) == ("pro", "active")


async def test_out_of_order_delivery_ends_in_the_current_state(billing, stripe_fake, user):
    subscription = await subscribed(billing, stripe_fake, user)
    await stripe_fake.change_subscription(subscription, status="past_due")
    created = await stripe_fake.event("customer.subscription.created")
    updated = await stripe_fake.event("customer.subscription.updated")

    assert (await deliver(billing, updated)).outcome == "applied"
    assert (await deliver(billing, created)).outcome == "applied"  # older news, but re-read from Stripe

    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status, plan.warning) == ("pro", "past_due", PAST_DUE_WARNING)


async def test_cancelling_keeps_pro_until_the_period_ends_then_free(billing, stripe_fake, user):
    subscription = await subscribed(billing, stripe_fake, user)
    await deliver(billing, await stripe_fake.event("checkout.session.completed"))
    portal = await billing.open_portal(user)
    await stripe_fake.request("POST", portal.removeprefix(stripe_fake.base_url), auth=False, allow_redirects=False)

    assert (await deliver(billing, await stripe_fake.event("customer.subscription.updated"))).outcome == "applied"
    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status, plan.cancel_at_period_end) == ("pro", "active", True)
    assert plan.current_period_end is not None

    await stripe_fake.cancel_subscription(subscription)  # the period ended
    assert (await deliver(billing, await stripe_fake.event("customer.subscription.deleted"))).outcome == "applied"
    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status) == ("free", "canceled")


@pytest.mark.parametrize("status", ["unpaid", "incomplete_expired", "canceled"])
async def test_statuses_that_end_the_plan_give_free(billing, stripe_fake, user, status):
    subscription = await subscribed(billing, stripe_fake, user)
    await stripe_fake.change_subscription(subscription, status=status)

    await deliver(billing, await stripe_fake.event("customer.subscription.updated"))

    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status) == ("free", status)


async def test_invoice_events_sync_the_plan(billing, stripe_fake, user):
    subscription = await subscribed(billing, stripe_fake, user)
    assert (await deliver(billing, await stripe_fake.event("invoice.paid"))).outcome == "applied"
    assert (await billing.current_plan(user.id)).name == "pro"

    await stripe_fake.change_subscription(subscription, status="past_due")
    assert (await deliver(billing, await stripe_fake.event("invoice.payment_failed"))).outcome == "applied"
    plan = await billing.current_plan(user.id)
    assert (plan.name, plan.status, plan.warning) == ("pro", "past_due", PAST_DUE_WARNING)


async def test_other_event_types_are_ignored(billing, stripe_fake, user, database_url):
    await subscribed(billing, stripe_fake, user)
    event = await stripe_fake.event("customer.created")

    result = await deliver(billing, event)

    assert (result.event_type, result.outcome) == ("customer.created", "ignored")
    assert recorded_events(database_url) == []
    assert (await billing.current_plan(user.id)).name == "free"


async def test_stripe_down_while_applying_leaves_the_event_for_redelivery(stripe_fake, pool, billing, user, database_url):
    await subscribed(billing, stripe_fake, user)
    event = await stripe_fake.event("checkout.session.completed")

    async with make_billing(stripe_fake, pool, api_base="http://127.0.0.1:9") as cut_off:
        with pytest.raises(ServiceUnavailable):
            await deliver(cut_off, event)
    assert recorded_events(database_url) == []
    assert (await billing.current_plan(user.id)).name == "free"

    assert (await deliver(billing, event)).outcome == "applied"  # Stripe's retry
    assert (await billing.current_plan(user.id)).name == "pro"


def _tampered(body: bytes) -> tuple[bytes, dict]:
    headers = signed_headers(body)
    return body.replace(b'"active"', b'"trialing"', 1), headers


REJECTIONS = {
    "missing signature": lambda body: (body, {"Content-Type": "application/json"}),
    "body changed after signing": _tampered,
    "signed with another secret": lambda body: (body, signed_headers(body, secret="whsec_someone_else")),
    "stale timestamp": lambda body: (body, signed_headers(body, timestamp=int(time.time()) - 301)),
    "garbled header": lambda body: (body, {"Stripe-Signature": "nonsense"}),
    "malformed JSON": lambda body: (body[:-3], signed_headers(body[:-3])),
    "JSON that is no event": lambda body: (b"[1, 2]", signed_headers(b"[1, 2]")),
    "not UTF-8": lambda body: (b"\xff\xfe" + body, signed_headers(b"\xff\xfe" + body)),
}


@pytest.mark.parametrize("case", sorted(REJECTIONS))
async def test_unauthentic_or_malformed_deliveries_are_rejected_and_change_nothing(
        billing, stripe_fake, user, snapshot, case):
    subscription = await subscribed(billing, stripe_fake, user)
    await stripe_fake.change_subscription(subscription, cancel_at_period_end=True)
    event = await stripe_fake.event("customer.subscription.updated")
    body, headers = REJECTIONS[case](event_body(event))
    before = snapshot()

    with pytest.raises(WebhookRejected) as caught:
        await billing.handle_webhook(body, headers)

    assert str(caught.value)
    assert snapshot() == before
    # The genuine delivery still works, so the rejection was about the delivery, not the event.
    assert (await deliver(billing, event)).outcome == "applied"
    assert snapshot() != before


async def test_signature_is_checked_against_the_raw_bytes_not_reserialised_json(billing, stripe_fake, user):
    await subscribed(billing, stripe_fake, user)
    event = await stripe_fake.event("checkout.session.completed")
    body = json.dumps(event, separators=(",", ":")).encode()  # compact, as signed
    headers = signed_headers(body, secret=WEBHOOK_SECRET)

    assert (await billing.handle_webhook(body, headers)).outcome == "applied"
    with pytest.raises(WebhookRejected):  # same JSON, other bytes
        await billing.handle_webhook(event_body(event), headers)
