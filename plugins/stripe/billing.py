"""StripeBilling: Pro subscriptions through Stripe Checkout, the Billing Portal and webhooks.

Plan state lives in the core's ``subscriptions`` table. Whatever tells us something changed — a
webhook, or the browser coming back from Checkout — we re-read the customer's subscriptions from the
API and store their whole current state under a per-customer lock, so events arriving late, twice or
out of order cannot leave a stale plan behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Mapping
from typing import Any, TypeVar

import aiohttp
import stripe

from portal_core.interfaces import Health, PlanState, Price, ServiceUnavailable, UnknownPlan, User, WebhookResult
from portal_core.plans import FREE, read_plan, write_subscription

from . import sync
from .webhooks import USER_METADATA_KEY, concerns_billing, object_id, user_hints, verify_event

log = logging.getLogger("portal.stripe")

T = TypeVar("T")
BASE_ADDRESSES = ("api", "files", "connect", "meter_events")
# Retries (with the library's idempotency keys on POSTs) ride out a dropped connection or a 5xx.
MAX_NETWORK_RETRIES = 2
# Network failures the library may let through untranslated (a timeout while reading a body).
_NETWORK_ERRORS = (stripe.StripeError, aiohttp.ClientError, asyncio.TimeoutError, OSError)


class StripeBilling:
    """The real :class:`~portal_core.interfaces.Billing`, over the official library's async client.

    Use it as an async context manager (the backend's ``open`` does): leaving closes the HTTP session.
    """

    name = "stripe"

    def __init__(self, *, secret_key: str, webhook_secret: str, prices: Mapping[str, str], pool: Any,
                 app_base_url: str, api_base: str | None = None, webhook_tolerance: int = 300,
                 health_cache_seconds: float = 60, timeout: float = 10) -> None:
        if "pro" not in prices:
            raise ValueError("a price for the pro plan is required (STRIPE_PRICE_ID_PRO)")
        if FREE in prices:
            raise ValueError("'free' is not a paid plan: remove STRIPE_PRICE_ID_FREE")
        self._prices = dict(prices)
        self._plan_for_price = {price: plan for plan, price in prices.items()}
        self._webhook_secret = webhook_secret
        self._webhook_tolerance = webhook_tolerance
        self._pool = pool
        self._base_url = app_base_url.rstrip("/")
        self._timeout = timeout
        self._health_cache_seconds = health_cache_seconds
        self._health: tuple[float, Health] | None = None
        self._health_lock = asyncio.Lock()
        # A Stripe Price's amount, currency and interval can never change (a new price gets a new id),
        # so once read they are kept for the life of the process.
        self._price_cache: dict[str, Price] | None = None
        self._price_lock = asyncio.Lock()
        self._http = stripe.AIOHTTPClient(timeout=aiohttp.ClientTimeout(total=timeout))
        self._client = stripe.StripeClient(
            secret_key, http_client=self._http, max_network_retries=MAX_NETWORK_RETRIES,
            base_addresses={name: api_base for name in BASE_ADDRESSES} if api_base else None)

    @classmethod
    def from_config(cls, settings: Any, *, pool: Any, app_base_url: str) -> StripeBilling:
        """Build from a validated :class:`~portal_plugins.stripe.settings.StripeSettings`."""
        return cls(secret_key=settings.secret_key, webhook_secret=settings.webhook_secret,
                   prices=settings.plan_prices(), pool=pool, app_base_url=app_base_url,
                   api_base=settings.api_base, webhook_tolerance=settings.webhook_tolerance,
                   health_cache_seconds=settings.health_cache_seconds, timeout=settings.timeout)

    async def __aenter__(self) -> StripeBilling:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP session to Stripe."""
        await self._http.close_async()

    # -----------------------------------------------------------------------------------------------
    # Billing

    def plans(self) -> tuple[str, ...]:
        return tuple(sorted(self._prices))

    async def prices(self) -> Mapping[str, Price]:
        """Every plan's Price object from Stripe, read once and then kept (a failed read is not kept)."""
        async with self._price_lock:
            if self._price_cache is None:
                found = {}
                for plan, price_id in sorted(self._prices.items()):
                    price = await self._call(self._client.v1.prices.retrieve_async(price_id),
                                             f"reading the {plan} plan's price {price_id}")
                    found[plan] = _flat_recurring(plan, price.to_dict())
                self._price_cache = found
            return dict(self._price_cache)

    async def start_checkout(self, user: User, plan: str) -> str:
        """A Checkout Session URL for ``plan``; a subscriber (whatever plan) gets the Billing Portal instead."""
        price = self._prices.get(plan)
        if price is None:
            raise UnknownPlan(f"unknown plan {plan!r}; plans on offer: {', '.join(self.plans())}")
        if (await read_plan(self._pool, user.id)).name != FREE:
            return await self.open_portal(user)
        customer = await self._customer(user)
        session = await self._call(self._client.v1.checkout.sessions.create_async(params={
            "mode": "subscription",
            "customer": customer,
            "client_reference_id": str(user.id),
            "line_items": [{"price": price, "quantity": 1}],
            "subscription_data": {"metadata": {USER_METADATA_KEY: str(user.id)}},
            "success_url": f"{self._base_url}/billing/success?session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{self._base_url}/billing",
        }), "creating a Checkout Session")
        return session.url

    async def complete_checkout(self, user: User, params: Mapping[str, str]) -> None:
        """Sync the plan of the customer behind ``params["session_id"]``, if that session is this user's."""
        session_id = params.get("session_id", "")
        if not session_id.startswith("cs_"):
            log.warning("billing success for user %s without a Checkout Session id; nothing to sync", user.id)
            return
        session = (await self._call(self._client.v1.checkout.sessions.retrieve_async(session_id),
                                    "reading the Checkout Session")).to_dict()
        customer = object_id(session.get("customer"))
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            ours = session.get("client_reference_id") == str(user.id) or (
                customer is not None and customer == await sync.stored_customer(cur, user.id))
            if not ours or customer is None:
                log.warning("Checkout Session %s does not belong to user %s; not synced", session_id, user.id)
                return
            async with cur.begin():
                await self._sync_customer(cur, customer, [str(user.id)])

    async def open_portal(self, user: User) -> str:
        customer = await self._customer(user)
        session = await self._call(self._client.v1.billing_portal.sessions.create_async(params={
            "customer": customer, "return_url": f"{self._base_url}/billing"}), "opening the Billing Portal")
        return session.url

    async def handle_webhook(self, body: bytes, headers: Mapping[str, str]) -> WebhookResult:
        """Verify, then apply once: the event id is recorded in the transaction that writes the plan."""
        event = verify_event(body, headers, secret=self._webhook_secret, tolerance=self._webhook_tolerance)
        event_id, event_type = event["id"], event["type"]
        obj = event["data"]["object"]
        customer = object_id(obj.get("customer"))
        if not concerns_billing(event) or customer is None:
            return WebhookResult(event_id, event_type, "ignored")
        async with self._pool.acquire() as conn, conn.cursor() as cur, cur.begin():
            if not await sync.record_event(cur, event_id, event_type):
                return WebhookResult(event_id, event_type, "duplicate")
            applied = await self._sync_customer(cur, customer, user_hints(obj))
        log.info("stripe event %s (%s) for %s: %s", event_id, event_type, customer, "applied" if applied else "ignored")
        return WebhookResult(event_id, event_type, "applied" if applied else "ignored")

    async def current_plan(self, user_id: int) -> PlanState:
        return await read_plan(self._pool, user_id)

    async def health(self) -> Health:
        """An authenticated read of the Pro price, cached for STRIPE_HEALTH_CACHE_SECONDS. Never raises."""
        async with self._health_lock:
            if self._health is not None and time.monotonic() - self._health[0] < self._health_cache_seconds:
                return self._health[1]
            health = await self._check()
            self._health = (time.monotonic(), health)
            return health

    # -----------------------------------------------------------------------------------------------
    # Internals

    async def _check(self) -> Health:
        price = self._prices["pro"]
        try:
            # No retries: /health must answer quickly and say what is wrong now.
            await asyncio.wait_for(self._client.v1.prices.retrieve_async(
                price, options={"max_network_retries": 0}), self._timeout)
        except stripe.AuthenticationError:
            return Health.down("Stripe refused the API key (check STRIPE_SECRET_KEY)")
        except stripe.InvalidRequestError as exc:
            return Health.down(f"Stripe cannot find the Pro price {price} (check STRIPE_PRICE_ID_PRO): "
                               f"{exc.user_message or exc}")
        except _NETWORK_ERRORS as exc:
            return Health.down(f"Stripe unreachable: {_message(exc)}")
        except Exception as exc:  # noqa: BLE001 - health must never raise
            log.exception("Stripe health check failed unexpectedly")
            return Health.down(f"Stripe health check failed: {type(exc).__name__}")
        return Health.ok("Stripe API reachable, Pro price found")

    async def _call(self, request: Awaitable[T], doing: str) -> T:
        """Await a Stripe request; any failure becomes :class:`ServiceUnavailable` naming what failed."""
        try:
            return await request
        except _NETWORK_ERRORS as exc:
            log.warning("Stripe failed while %s: %s", doing, _message(exc))
            raise ServiceUnavailable(f"Stripe failed while {doing}: {_message(exc)}") from exc

    async def _customer(self, user: User) -> str:
        """The user's Stripe customer, created (once) when they have none yet."""
        async with self._pool.acquire() as conn, conn.cursor() as cur:
            stored = await sync.stored_customer(cur, user.id)
            if stored:
                return stored
            created = await self._call(self._client.v1.customers.create_async(params={
                "email": user.email, "name": user.name, "metadata": {USER_METADATA_KEY: str(user.id)}}),
                "creating the customer")
            kept = await sync.keep_customer(cur, user.id, created.id)
        if kept != created.id:  # a concurrent request stored one first: use it, drop ours
            with contextlib.suppress(*_NETWORK_ERRORS):
                await self._client.v1.customers.delete_async(created.id)
        return kept

    async def _sync_customer(self, cur, customer: str, hints: list[str]) -> bool:
        """Store the customer's whole current subscription state, in the caller's transaction.

        Returns False when the customer is no portal user's (nothing written).
        """
        await sync.lock_customer(cur, customer)
        listing = await self._call(self._client.v1.subscriptions.list_async(params={
            "customer": customer, "status": "all", "limit": 100}), "reading the customer's subscriptions")
        subscriptions = [s.to_dict() for s in listing.data]
        user_id = await sync.user_for_customer(cur, customer) or await sync.first_existing_user(
            cur, [*hints, *sync.metadata_users(subscriptions)])
        if user_id is None:
            log.warning("Stripe customer %s belongs to no portal user; nothing applied", customer)
            return False
        state = sync.choose(subscriptions, self._plan_for_price)
        if state is None:
            await sync.keep_customer(cur, user_id, customer)
            return True
        if state.plan == FREE and state.price_id and state.status != "canceled":
            log.warning("subscription %s uses price %s, which no STRIPE_PRICE_ID_* offers; counted as free",
                        state.subscription_id, state.price_id)
        await write_subscription(
            cur, user_id=user_id, provider=sync.PROVIDER, plan=state.plan, status=state.status,
            customer_id=customer, subscription_id=state.subscription_id,
            current_period_end=state.current_period_end, cancel_at_period_end=state.cancel_at_period_end)
        return True


def _flat_recurring(plan: str, price: Mapping[str, Any]) -> Price:
    """A Stripe Price as the portal shows it; ServiceUnavailable for one it cannot show (tiered, one-off)."""
    recurring = price.get("recurring") or {}
    if price.get("unit_amount") is None or not recurring.get("interval"):
        raise ServiceUnavailable(f"the {plan} plan's price {price.get('id')} is not a flat recurring amount; "
                                 f"give STRIPE_PRICE_ID_{plan.upper()} a recurring price with a fixed amount")
    return Price(int(price["unit_amount"]), str(price["currency"]).lower(), str(recurring["interval"]),
                 int(recurring.get("interval_count") or 1))


def _message(exc: BaseException) -> str:
    if isinstance(exc, stripe.StripeError):
        return exc.user_message or type(exc).__name__
    return str(exc) or type(exc).__name__
