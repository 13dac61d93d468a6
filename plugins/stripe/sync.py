"""From a customer's Stripe subscriptions to the row in ``subscriptions``, and the SQL around it.

The pure half (:func:`choose`) decides which of a customer's subscriptions is the one that counts and
what it means; the SQL half finds customers and users and records webhook events. Writing the plan
itself goes through :func:`portal_core.plans.write_subscription`, always with the whole state.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from portal_core.plans import FREE, PLAN_APPLIES

from .webhooks import USER_METADATA_KEY

PROVIDER = "stripe"
# Advisory-lock namespace (first key) for "one Stripe customer's state is being synced": the later of two
# syncs of one customer reads Stripe after the earlier one has written, so the newest state lands last.
CUSTOMER_LOCK = 0x53545250  # "STRP"


@attrs.frozen
class SubscriptionState:
    """What one Stripe subscription means for the portal."""

    subscription_id: str
    plan: str
    status: str
    current_period_end: dt.datetime | None
    cancel_at_period_end: bool
    price_id: str | None


def _price_id(subscription: Mapping[str, Any]) -> str | None:
    items = ((subscription.get("items") or {}).get("data")) or []
    item = items[0] if items else {}
    for source in (item.get("price"), item.get("plan"), subscription.get("plan")):
        if isinstance(source, Mapping) and source.get("id"):
            return source["id"]
        if isinstance(source, str) and source:
            return source
    return None


def _period_end(subscription: Mapping[str, Any]) -> dt.datetime | None:
    # API versions since 2025-03-31 keep the period on the items; older ones on the subscription.
    items = ((subscription.get("items") or {}).get("data")) or []
    stamp = (items[0].get("current_period_end") if items else None) or subscription.get("current_period_end")
    return dt.datetime.fromtimestamp(int(stamp), tz=dt.timezone.utc) if stamp else None


def describe(subscription: Mapping[str, Any], plan_for_price: Mapping[str, str]) -> SubscriptionState:
    """The portal's view of one subscription object (a price we do not offer counts as free)."""
    price = _price_id(subscription)
    return SubscriptionState(
        subscription_id=subscription["id"],
        plan=plan_for_price.get(price or "", FREE),
        status=str(subscription.get("status") or "none"),
        current_period_end=_period_end(subscription),
        cancel_at_period_end=bool(subscription.get("cancel_at_period_end")),
        price_id=price,
    )


def choose(subscriptions: Iterable[Mapping[str, Any]], plan_for_price: Mapping[str, str]) -> SubscriptionState | None:
    """The subscription that decides the customer's plan, or None when there is none at all.

    One whose plan applies (active or trialing first, then past_due) wins over any other; among equals
    the newest. With none applying, the newest tells the story (canceled, unpaid, …).
    """
    ranked = []
    for subscription in subscriptions:
        state = describe(subscription, plan_for_price)
        applies = state.status in PLAN_APPLIES and state.plan != FREE
        rank = (applies, applies and state.status != "past_due", int(subscription.get("created") or 0))
        ranked.append((rank, state))
    if not ranked:
        return None
    return max(ranked, key=lambda pair: pair[0])[1]


def metadata_users(subscriptions: Iterable[Mapping[str, Any]]) -> list[str]:
    """Portal user ids stored on subscriptions by our checkouts (subscription_data.metadata)."""
    return [str(s["metadata"][USER_METADATA_KEY]) for s in subscriptions
            if (s.get("metadata") or {}).get(USER_METADATA_KEY)]


# ---------------------------------------------------------------------------------------------------
# SQL


async def stored_customer(cur, user_id: int) -> str | None:
    """The Stripe customer id kept for ``user_id``, if any."""
    await cur.execute("SELECT customer_id FROM subscriptions WHERE user_id = %s AND provider = %s",
                      (user_id, PROVIDER))
    return await _scalar(cur)


async def keep_customer(cur, user_id: int, customer_id: str) -> str:
    """Store ``customer_id`` for a user who has none; returns the one stored (an earlier one wins a race)."""
    await cur.execute(
        """
        INSERT INTO subscriptions (user_id, provider, customer_id) VALUES (%s, %s, %s)
        ON CONFLICT (user_id) DO UPDATE SET provider = EXCLUDED.provider, customer_id = EXCLUDED.customer_id,
                                            updated_at = now()
            WHERE subscriptions.customer_id IS NULL OR subscriptions.provider <> EXCLUDED.provider
        RETURNING customer_id
        """, (user_id, PROVIDER, customer_id))
    kept = await _scalar(cur)
    return kept if kept is not None else await stored_customer(cur, user_id)


async def user_for_customer(cur, customer_id: str) -> int | None:
    await cur.execute("SELECT user_id FROM subscriptions WHERE provider = %s AND customer_id = %s",
                      (PROVIDER, customer_id))
    return await _scalar(cur)


async def first_existing_user(cur, candidates: Iterable[str]) -> int | None:
    """The first candidate id (strings from Stripe) that is a user of this portal."""
    for candidate in candidates:
        if not candidate.isdigit():
            continue
        await cur.execute("SELECT id FROM users WHERE id = %s", (int(candidate),))
        user_id = await _scalar(cur)
        if user_id is not None:
            return user_id
    return None


async def _scalar(cur) -> Any:
    """The one column of the one row the last statement returned, or None when it returned none."""
    row = await cur.fetchone()
    if row is None:
        return None
    (value,) = row
    return value


async def lock_customer(cur, customer_id: str) -> None:
    """Serialise syncs of one customer until the caller's transaction ends."""
    await cur.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (CUSTOMER_LOCK, customer_id))


async def record_event(cur, event_id: str, event_type: str) -> bool:
    """Record a webhook event in the caller's transaction; False when it was already recorded.

    A concurrent delivery of the same event waits here on the primary key until the first commits,
    then finds it recorded.
    """
    await cur.execute(
        "INSERT INTO stripe_events (event_id, type) VALUES (%s, %s) ON CONFLICT (event_id) DO NOTHING RETURNING 1",
        (event_id, event_type))
    return await cur.fetchone() is not None
