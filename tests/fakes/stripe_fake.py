"""A loopback Stripe for tests: localstripe, plus the endpoints it lacks, on 127.0.0.1 with state in memory.

Run by the localstripe venv's python (tests/setup.d/stripe.sh installs it), never imported by the
project's venv::

    .venvs/localstripe/bin/python tests/fakes/stripe_fake.py [--port N]

It prints ``listening on http://127.0.0.1:<port>`` once it serves. Every endpoint speaks Stripe's
wire format (form-encoded requests with nested keys, JSON objects with "object" and "id", error
envelopes), so the official ``stripe`` library talks to it unchanged.

localstripe (a real, stateful fake of Stripe's API) serves customers, plans, subscriptions, invoices,
payment methods, events and the balance. This module adds, on the same application:

* ``/v1/prices`` — Prices, stored as localstripe Plans (a Stripe price id works as a plan id);
* ``/v1/checkout/sessions`` — Checkout Sessions, and the hosted page ``/c/pay/<id>`` whose POST
  "pays": it attaches a test card, creates the subscription as Stripe does after payment and redirects
  to the session's success_url, emitting ``invoice.paid`` and ``checkout.session.completed``;
* ``/v1/billing_portal/sessions`` — Billing Portal sessions, with the hosted page ``/p/session/<id>``
  whose POST cancels the subscription at period end (``customer.subscription.updated``);
* ``POST /_test/subscriptions/<id>`` (test-only) — set ``status`` and/or ``cancel_at_period_end`` as
  Stripe's own lifecycle would, emitting ``customer.subscription.updated`` (and
  ``invoice.payment_failed`` when the status becomes past_due);
* ``GET /_test/events`` (test-only) — every event so far, oldest first (optionally ``?type=``);
* ``POST /_test/reset`` (test-only) — forget every object, event and registered webhook endpoint.

localstripe's own command listens on every interface and pickles its store to /tmp after each write;
this launcher binds 127.0.0.1 only and keeps the store in memory.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import socket
import time

from aiohttp import web
from localstripe import server as ls
from localstripe.errors import UserError
from localstripe.resources import (Customer, Event, Invoice, PaymentMethod, Plan, Product, StripeObject,
                                   Subscription, random_id, store, try_convert_to_int)
from localstripe.webhooks import _webhooks, schedule_webhook

# State stays in this process: no pickle written, none read.
store.dump_to_disk = lambda: None

PUBLIC_PREFIXES = ("/c/pay/", "/p/session/", "/_test/")
TEST_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> UserError:
    contents = {k: v for k, v in {"param": param, "code": code}.items() if v}
    return UserError(status, message, contents)


def _unknown(params: dict) -> None:
    if params:
        name = sorted(params)[0]
        raise _error(400, f"Received unknown parameter: {name}", param=name, code="parameter_unknown")


def _price_of(price_id: str) -> Plan:
    plan = store.get("plan:" + str(price_id))
    if plan is None:
        raise _error(404, f"No such price: '{price_id}'", param="price", code="resource_missing")
    return plan


def _price_json(plan: Plan) -> dict:
    return {
        "id": plan.id, "object": "price", "active": plan.active, "created": plan.created, "livemode": False,
        "currency": plan.currency, "unit_amount": plan.amount, "product": plan.product, "type": "recurring",
        "recurring": {"interval": plan.interval, "interval_count": plan.interval_count, "usage_type": plan.usage_type},
        "billing_scheme": plan.billing_scheme, "lookup_key": None, "metadata": dict(plan.metadata or {}),
        "nickname": plan.nickname,
    }


def _emit(event_type: str, obj: StripeObject) -> None:
    """Record an event (GET /v1/events lists it) and deliver it to webhooks registered via /_config/webhooks."""
    schedule_webhook(Event(event_type, obj))


def _bool(value, param: str) -> bool:
    if value in (True, "true"):
        return True
    if value in (False, "false"):
        return False
    raise _error(400, f"Invalid boolean: {value}", param=param, code="parameter_invalid_boolean")


# ---------------------------------------------------------------------------------------------------
# Prices


async def create_price(request: web.Request) -> web.Response:
    data = dict(await ls.get_post_data(request) or {})
    recurring = data.pop("recurring", None) or {}
    product, product_data = data.pop("product", None), data.pop("product_data", None)
    currency, unit_amount = data.pop("currency", None), try_convert_to_int(data.pop("unit_amount", None))
    metadata, nickname = data.pop("metadata", None), data.pop("nickname", None)
    _unknown(data)
    if not recurring.get("interval"):
        raise _error(400, "Only recurring prices are supported here: recurring[interval] is required",
                     param="recurring[interval]", code="parameter_missing")
    if product is None:
        if not product_data or not product_data.get("name"):
            raise _error(400, "Missing required param: product_data[name].", param="product_data[name]",
                         code="parameter_missing")
        product = Product(name=product_data["name"], type="service").id
    plan = Plan(id="price_" + random_id(24), amount=unit_amount, currency=currency, product=product,
                interval=recurring["interval"], interval_count=recurring.get("interval_count", 1),
                metadata=metadata, nickname=nickname)
    return ls.json_response(_price_json(plan))


async def retrieve_price(request: web.Request) -> web.Response:
    return ls.json_response(_price_json(_price_of(request.match_info["id"])))


# ---------------------------------------------------------------------------------------------------
# Checkout


class CheckoutSession(StripeObject):
    """A Checkout Session in subscription mode, paid through its hosted page."""

    object = "checkout.session"
    _id_prefix = "cs_test_"

    def __init__(self, base_url: str, *, mode=None, line_items=None, success_url=None, cancel_url=None,
                 customer=None, customer_email=None, client_reference_id=None, subscription_data=None,
                 metadata=None, **unknown):
        _unknown(unknown)
        if mode != "subscription":
            raise _error(400, "This fake Stripe only supports mode=subscription", param="mode")
        if not success_url:
            raise _error(400, "Missing required param: success_url.", param="success_url", code="parameter_missing")
        if not isinstance(line_items, list) or len(line_items) != 1:
            raise _error(400, "line_items must hold exactly one item here", param="line_items")
        price = line_items[0].get("price")
        _price_of(price)
        quantity = try_convert_to_int(line_items[0].get("quantity", 1))
        if customer is not None:
            Customer._api_retrieve(customer)
        super().__init__()
        self.mode = mode
        self.status = "open"
        self.payment_status = "unpaid"
        self.customer = customer
        self.customer_email = customer_email
        self.client_reference_id = client_reference_id
        self.success_url = success_url
        self.cancel_url = cancel_url
        self.metadata = metadata or {}
        self.subscription = None
        self.url = f"{base_url}/c/pay/{self.id}"
        self._price = price
        self._quantity = quantity
        self._subscription_metadata = (subscription_data or {}).get("metadata") or {}

    def _pay(self) -> Subscription:
        """What Stripe does once the customer pays: a subscription on a card, its first invoice paid."""
        if self.status != "open":
            raise _error(400, f"Checkout session {self.id} is {self.status}, not open")
        if self.customer is None:
            self.customer = Customer(email=self.customer_email).id
        card = PaymentMethod(type="card", card=dict(TEST_CARD))
        PaymentMethod._api_attach(card.id, customer=self.customer)
        Customer._api_update(self.customer, invoice_settings={"default_payment_method": card.id})
        subscription = Subscription(customer=self.customer, metadata=dict(self._subscription_metadata),
                                    items=[{"plan": self._price, "quantity": self._quantity}])
        self.subscription = subscription.id
        self.status = "complete"
        self.payment_status = "paid"
        for invoice in Invoice._api_list_all(None, customer=self.customer, limit=99)._list:
            if invoice.subscription == subscription.id and invoice.status == "paid":
                _emit("invoice.paid", invoice)
        _emit("checkout.session.completed", self)
        return subscription


async def create_checkout_session(request: web.Request) -> web.Response:
    data = dict(await ls.get_post_data(request) or {})
    data.pop("expand", None)
    session = CheckoutSession(request.app["base_url"], **data)
    return ls.json_response(session._export())


async def retrieve_checkout_session(request: web.Request) -> web.Response:
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    expand = ls.unflatten_data(request.query).get("expand")
    return ls.json_response(session._export(expand=expand))


def _page(title: str, heading: str, content: str, button: str) -> web.Response:
    """A hosted page: its POST form is the one action a customer takes there."""
    body = (f"<!doctype html><title>{title}</title><h1>{heading}</h1>{content}"
            f"<form method=post><button type=submit>{button}</button></form>")
    return web.Response(text=body, content_type="text/html")


async def checkout_page(request: web.Request) -> web.Response:
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    plan = _price_of(session._price)
    price = f"<p>{html.escape(plan.currency.upper())} {plan.amount / 100:.2f} / {html.escape(plan.interval)}</p>"
    return _page("Fake Stripe Checkout", "Subscribe", price, "Pay")


async def checkout_pay(request: web.Request) -> web.Response:
    session = CheckoutSession._api_retrieve(request.match_info["id"])
    session._pay()
    raise web.HTTPSeeOther(session.success_url.replace("{CHECKOUT_SESSION_ID}", session.id))


# ---------------------------------------------------------------------------------------------------
# Billing portal


class PortalSession(StripeObject):
    object = "billing_portal.session"
    _id_prefix = "bps_"

    def __init__(self, base_url: str, *, customer=None, return_url=None, **unknown):
        _unknown(unknown)
        if not customer:
            raise _error(400, "Missing required param: customer.", param="customer", code="parameter_missing")
        Customer._api_retrieve(customer)
        super().__init__()
        self.customer = customer
        self.return_url = return_url
        self.url = f"{base_url}/p/session/{self.id}"


async def create_portal_session(request: web.Request) -> web.Response:
    data = dict(await ls.get_post_data(request) or {})
    return ls.json_response(PortalSession(request.app["base_url"], **data)._export())


def _live_subscriptions(customer: str) -> list[Subscription]:
    return [s for s in Subscription._api_list_all(None, customer=customer)._list]


async def portal_page(request: web.Request) -> web.Response:
    session = PortalSession._api_retrieve(request.match_info["id"])
    rows = "".join(f"<li>{html.escape(s.id)}: {html.escape(s.status)}"
                   f"{' (cancels at period end)' if s.cancel_at_period_end else ''}</li>"
                   for s in _live_subscriptions(session.customer))
    content = f"<p>Customer {html.escape(session.customer)}</p><ul>{rows}</ul>"
    return _page("Fake Stripe Billing Portal", "Your subscription", content, "Cancel plan")


async def portal_cancel(request: web.Request) -> web.Response:
    session = PortalSession._api_retrieve(request.match_info["id"])
    for subscription in _live_subscriptions(session.customer):
        _change_subscription(subscription, cancel_at_period_end=True)
    raise web.HTTPSeeOther(session.return_url or request.app["base_url"])


# ---------------------------------------------------------------------------------------------------
# Test-only controls


STATUSES = {"active", "trialing", "past_due", "unpaid", "canceled", "incomplete", "incomplete_expired"}


def _change_subscription(subscription: Subscription, *, status=None, cancel_at_period_end=None) -> None:
    if status is not None:
        subscription.status = status
        if status == "canceled":
            subscription.ended_at = int(time.time())
    if cancel_at_period_end is not None:
        subscription.cancel_at_period_end = cancel_at_period_end
    _emit("customer.subscription.updated", subscription)
    if status == "past_due" and subscription.latest_invoice:
        _emit("invoice.payment_failed", Invoice._api_retrieve(subscription.latest_invoice))


async def test_change_subscription(request: web.Request) -> web.Response:
    subscription = Subscription._api_retrieve(request.match_info["id"])
    data = dict(await ls.get_post_data(request) or {})
    status = data.pop("status", None)
    cancel = data.pop("cancel_at_period_end", None)
    _unknown(data)
    if status is not None and status not in STATUSES:
        raise _error(400, f"Invalid status: {status}", param="status")
    _change_subscription(subscription, status=status,
                         cancel_at_period_end=None if cancel is None else _bool(cancel, "cancel_at_period_end"))
    return ls.json_response(subscription._export())


async def test_reset(request: web.Request) -> web.Response:
    """Forget every object, event and registered webhook endpoint (localstripe's flush keeps the endpoints)."""
    store.clear()
    _webhooks.clear()
    return web.Response()


async def test_events(request: web.Request) -> web.Response:
    wanted = request.query.get("type")
    events = [value._export() for key, value in list(store.items())
              if key.startswith("event:") and (wanted is None or value.type == wanted)]
    return ls.json_response({"object": "list", "data": events, "has_more": False, "url": "/_test/events"})


# ---------------------------------------------------------------------------------------------------
# The application


@web.middleware
async def auth(request: web.Request, handler):
    """Stripe's API wants a secret key; the hosted pages and test controls do not (as on stripe.com)."""
    if request.path.startswith(PUBLIC_PREFIXES):
        return await handler(request)
    return await ls.auth_middleware(request, handler)


def build_app(base_url: str) -> web.Application:
    """localstripe's routes and this module's, without localstripe's persistence middleware."""
    app = web.Application(middlewares=[ls.error_middleware, auth])
    app["base_url"] = base_url
    app.router.add_post("/v1/prices", create_price)
    app.router.add_get("/v1/prices/{id}", retrieve_price)
    app.router.add_post("/v1/checkout/sessions", create_checkout_session)
    app.router.add_get("/v1/checkout/sessions/{id}", retrieve_checkout_session)
    app.router.add_post("/v1/billing_portal/sessions", create_portal_session)
    app.router.add_get("/c/pay/{id}", checkout_page)
    app.router.add_post("/c/pay/{id}", checkout_pay)
    app.router.add_get("/p/session/{id}", portal_page)
    app.router.add_post("/p/session/{id}", portal_cancel)
    app.router.add_post("/_test/subscriptions/{id}", test_change_subscription)
    app.router.add_get("/_test/events", test_events)
    app.router.add_post("/_test/reset", test_reset)
    for route in ls.app.router.routes():
        app.router.add_route(route.method, route.resource.canonical, route.handler)
    return app


async def serve(port: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    runner = web.AppRunner(build_app(base_url), access_log=None)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    print(f"listening on {base_url}", flush=True)
    await asyncio.Event().wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
