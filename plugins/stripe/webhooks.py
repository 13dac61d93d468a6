"""Webhook deliveries: verify the Stripe-Signature over the raw body, parse the event, say what it concerns.

Verification uses the official library's ``WebhookSignature`` (HMAC-SHA256 of "{t}.{raw body}" with the
endpoint's signing secret, timestamp within the tolerance). Nothing here touches the database.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import stripe

from portal_core.interfaces import WebhookRejected

CHECKOUT_COMPLETED = "checkout.session.completed"
# Every event whose arrival may change what a customer is subscribed to. Each one is applied the same
# way: re-read the customer's subscriptions from the API and store their whole current state, so the
# order the events arrive in does not matter.
HANDLED = frozenset({
    CHECKOUT_COMPLETED,
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "invoice.paid",
    "invoice.payment_failed",
})
USER_METADATA_KEY = "portal_user_id"


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value, whatever the case of its name in ``headers`` (a plain dict or a CIMultiDict)."""
    value = headers.get(name)
    if value is not None:
        return value
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted), None)


def verify_event(body: bytes, headers: Mapping[str, str], *, secret: str, tolerance: int) -> dict[str, Any]:
    """The event in ``body`` once its signature checks out; :class:`WebhookRejected` saying why otherwise."""
    signature = header(headers, "Stripe-Signature")
    if not signature:
        raise WebhookRejected("missing Stripe-Signature header")
    try:
        text = bytes(body).decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRejected("webhook body is not UTF-8") from None
    try:
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected(f"invalid Stripe-Signature: {exc.user_message or exc}") from None
    try:
        event = json.loads(text)
    except ValueError as exc:
        raise WebhookRejected(f"webhook body is not valid JSON: {exc}") from None
    data = event.get("data") if isinstance(event, dict) else None
    if (not isinstance(event, dict) or event.get("object") != "event" or not _nonempty(event.get("id"))
            or not _nonempty(event.get("type")) or not isinstance(data, dict)
            or not isinstance(data.get("object"), dict)):
        raise WebhookRejected("webhook body is not a Stripe event (needs object=event, id, type and data.object)")
    return event


def _nonempty(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def concerns_billing(event: Mapping[str, Any]) -> bool:
    """Whether the event can change a subscription (other events are acknowledged and ignored)."""
    if event["type"] not in HANDLED:
        return False
    if event["type"] == CHECKOUT_COMPLETED:
        return event["data"]["object"].get("mode") == "subscription"
    return True


def object_id(value: Any) -> str | None:
    """The id of a reference that may be a bare id or an expanded object."""
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if _nonempty(value) else None


def user_hints(obj: Mapping[str, Any]) -> list[str]:
    """Portal user ids an event's object names: the checkout's client_reference_id, or our metadata."""
    hints = [obj.get("client_reference_id"), (obj.get("metadata") or {}).get(USER_METADATA_KEY)]
    details = ((obj.get("parent") or {}).get("subscription_details") or obj.get("subscription_details") or {})
    hints.append((details.get("metadata") or {}).get(USER_METADATA_KEY))
    return [str(h) for h in hints if h not in (None, "")]
