"""The rules that turn what Stripe sends into a customer's plan, case by case: which subscription counts,
what a delivery concerns and whose it is. (The deliveries themselves, against the loopback Stripe and a real
database, are in test_webhooks.py; these pin the decisions at their edges.)"""

from __future__ import annotations

import datetime as dt

import pytest
from multidict import CIMultiDict

from portal_core.interfaces import WebhookRejected

from portal_plugins.stripe.sync import (choose, describe, first_existing_user, keep_customer, metadata_users,
                                         user_for_customer)
from portal_plugins.stripe.webhooks import concerns_billing, header, object_id, user_hints, verify_event
from tests.support.stripe import WEBHOOK_SECRET, event_body, signed_headers

PRICES = {"price_pro": "pro", "price_team": "team"}


def sub(sub_id: str, status: str, price: str = "price_pro", created: int = 0, **extra) -> dict:
    return {"id": sub_id, "status": status, "created": created, "items": {"data": [{"price": {"id": price}}]}, **extra}


def test_a_subscription_whose_plan_applies_wins_over_a_newer_one_that_does_not():
    chosen = choose([sub("old", "active", created=1), sub("new", "canceled", created=2)], PRICES)
    assert (chosen.subscription_id, chosen.plan, chosen.status) == ("old", "pro", "active")
    # ... and over a newer one at a price the portal does not offer (that one counts as free).
    assert choose([sub("paid", "active", created=1), sub("odd", "active", "price_gone", created=2)], PRICES) \
        .subscription_id == "paid"


def test_an_active_subscription_wins_over_a_newer_past_due_one_and_among_equals_the_newest():
    assert choose([sub("paying", "active", created=1), sub("late", "past_due", created=2)], PRICES).subscription_id \
        == "paying"
    assert choose([sub("late", "past_due", created=2), sub("paying", "trialing", created=1)], PRICES).subscription_id \
        == "paying"
    assert choose([sub("a", "active", created=1), sub("b", "active", "price_team", created=3),
                   sub("c", "active", created=2)], PRICES).subscription_id == "b"
    # With none applying, the newest tells the story; with none at all there is nothing to tell.
    assert choose([sub("x", "canceled", created=5), sub("y", "unpaid", created=7)], PRICES).status == "unpaid"
    assert choose([], PRICES) is None


def test_the_price_and_period_are_read_from_the_items_or_the_subscription():
    end = 1_900_000_000
    state = describe({"id": "s", "status": "active", "cancel_at_period_end": True,
                      "items": {"data": [{"price": {"id": "price_team"}, "current_period_end": end}]}}, PRICES)
    assert (state.plan, state.price_id, state.cancel_at_period_end) == ("team", "price_team", True)
    assert state.current_period_end == dt.datetime.fromtimestamp(end, tz=dt.timezone.utc)
    older_api = describe({"id": "s", "status": "past_due", "plan": {"id": "price_pro"}, "current_period_end": end,
                          "items": {"data": []}}, PRICES)
    assert (older_api.plan, older_api.price_id, older_api.current_period_end.year) == ("pro", "price_pro", 2030)
    bare = describe({"id": "s", "items": {"data": [{"plan": "price_pro"}]}}, PRICES)
    assert (bare.plan, bare.status, bare.current_period_end, bare.cancel_at_period_end) == ("pro", "none", None, False)
    assert describe({"id": "s", "status": "active"}, PRICES).plan == "free"
    # A price without an id is no price: the next source (the item's plan) names it.
    assert describe({"id": "s", "items": {"data": [{"price": {"id": ""}, "plan": "price_pro"}]}}, PRICES).plan == "pro"


def test_only_events_that_can_change_a_subscription_concern_billing():
    def event(kind: str, **obj) -> dict:
        return {"type": kind, "data": {"object": obj}}

    assert concerns_billing(event("checkout.session.completed", mode="subscription"))
    assert not concerns_billing(event("checkout.session.completed", mode="payment"))
    assert concerns_billing(event("invoice.payment_failed"))
    assert not concerns_billing(event("customer.created"))


def test_whose_an_event_is_comes_from_the_checkout_reference_or_our_metadata():
    assert user_hints({"client_reference_id": "7", "metadata": {"portal_user_id": "8"}}) == ["7", "8"]
    assert user_hints({"parent": {"subscription_details": {"metadata": {"portal_user_id": 9}}}}) == ["9"]
    assert user_hints({"subscription_details": {"metadata": {"portal_user_id": "10"}}, "client_reference_id": ""}) \
        == ["10"]
    assert metadata_users([{"metadata": {"portal_user_id": 3}}, {"metadata": {}}, {}]) == ["3"]
    assert object_id({"id": "cus_1"}) == "cus_1" and object_id("cus_2") == "cus_2"
    assert object_id({"id": ""}) is None and object_id(None) is None


def test_the_signature_header_is_found_whatever_the_case_of_its_name():
    assert header({"stripe-signature": "t=1"}, "Stripe-Signature") == "t=1"
    assert header({"Stripe-Signature": "t=2"}, "Stripe-Signature") == "t=2"
    assert header(CIMultiDict({"STRIPE-SIGNATURE": "t=3"}), "Stripe-Signature") == "t=3"
    assert header({"Other": "x"}, "Stripe-Signature") is None


GOOD_EVENT = {"object": "event", "id": "evt_1", "type": "invoice.paid", "data": {"object": {"customer": "cus_1"}}}


@pytest.mark.parametrize("defect", [
    {"object": "list"}, {"id": ""}, {"id": None}, {"type": ""}, {"type": 7}, {"data": []},
    {"data": {"object": "cus_1"}}, {"data": {}},
])
def test_a_signed_body_that_is_no_stripe_event_is_rejected_for_any_one_defect(defect):
    assert verify_event(event_body(GOOD_EVENT), signed_headers(event_body(GOOD_EVENT)), secret=WEBHOOK_SECRET,
                        tolerance=300) == GOOD_EVENT
    body = event_body({**GOOD_EVENT, **defect})
    with pytest.raises(WebhookRejected, match="not a Stripe event"):
        verify_event(body, signed_headers(body), secret=WEBHOOK_SECRET, tolerance=300)


async def test_whose_customer_it_is_comes_from_the_first_hint_that_is_a_portal_user(pool, user):
    async with pool.acquire() as conn, conn.cursor() as cur:
        assert await first_existing_user(cur, ["", "abc", "-1", "1e3", "999999999", str(user.id)]) == user.id
        assert await first_existing_user(cur, ["abc", "999999999"]) is None


async def test_a_customer_kept_for_a_user_leads_back_to_that_user_and_an_earlier_one_wins(pool, user):
    async with pool.acquire() as conn, conn.cursor() as cur:
        assert await user_for_customer(cur, "cus_kept") is None
        assert await keep_customer(cur, user.id, "cus_kept") == "cus_kept"
        assert await user_for_customer(cur, "cus_kept") == user.id
        assert await keep_customer(cur, user.id, "cus_later") == "cus_kept"
        assert await user_for_customer(cur, "cus_later") is None
