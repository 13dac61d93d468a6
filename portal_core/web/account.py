"""Who am I, what may I store, and billing: /api/me, /api/meta, checkout, portal, success, webhooks."""

from __future__ import annotations

import logging

from aiohttp import web

from .. import __version__, keys
from ..interfaces import ServiceUnavailable, UnknownPlan, WebhookRejected
from ..openapi import operation
from ..plans import FREE
from .errors import ApiError, bad_request, not_found, unavailable
from .html import redirect
from .inputs import json_object
from .links import rules_json
from .sessions import authenticate
from .nav import nav_items
from .upload import limits_for, usage
from ..pending_uploads import reserved_bytes

log = logging.getLogger("portal.billing")


SITE = {"type": "object", "description": "the site switches a page shows: the banner (empty for none), and "
                                         "whether uploads are paused or the portal is read-only",
        "properties": {"banner": {"type": "string"}, "uploads_paused": {"type": "boolean"},
                       "read_only": {"type": "boolean"}}}


def site_json(app: web.Application) -> dict:
    settings = app[keys.SITE].current
    return {"banner": settings.banner, "uploads_paused": settings.uploads_paused, "read_only": settings.read_only}


@operation("Who you are: user, plan, limits, usage, CSRF token, navigation and the site's banner", tags=["account"],
           response={"type": "object", "properties": {
               "user": {"type": "object"}, "plan": {"type": "object"}, "usage": {"type": "object"}, "site": SITE,
               "csrf_token": {"type": ["string", "null"]}, "sharing": {"type": "object"},
               "nav": {"type": "array", "items": {"type": "object", "properties": {
                   "label": {"type": "string"}, "href": {"type": "string"}}}}}})
async def me(request: web.Request) -> web.Response:
    principal = await authenticate(request, scope=None)  # any live credential may ask who it is
    app = request.app
    state = await app[keys.BILLING].current_plan(principal.user.id)
    _plan, limits = await limits_for(app, principal.user)
    used, count = await usage(app[keys.POOL], principal.user.id)
    reserved = await reserved_bytes(app[keys.POOL], principal.user.id)
    user = principal.user
    return web.json_response({
        "user": {"id": user.id, "email": user.email, "name": user.name, "is_admin": user.is_admin,
                 "created_at": await member_since(app[keys.POOL], user.id)},
        "plan": {"name": state.name, "status": state.status, "warning": state.warning,
                 "current_period_end": state.current_period_end.isoformat() if state.current_period_end else None,
                 "cancel_at_period_end": state.cancel_at_period_end,
                 "limits": {"max_file": limits.max_file, "quota": limits.quota}},
        # reserved: the declared sizes of direct uploads still under way, held from the quota until they end.
        "usage": {"bytes": used, "count": count, "reserved": reserved},
        "csrf_token": principal.session.csrf_token if principal.session else None,
        "nav": nav_items(app, user),
        "site": site_json(app),
        "sharing": rules_json(state.name, app[keys.CONFIG].core.sharing(state.name)),
    })


async def member_since(pool, user_id: int) -> str | None:
    """When the user first signed in (ISO 8601), for the account page's profile."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT created_at FROM users WHERE id = %s", (user_id,))
        row = await cur.fetchone()
    return row[0].isoformat() if row else None


@operation("Public facts about this portal: version, DEV_MODE, sign-in backend, paid plans, the site's banner, "
           "direct uploads", tags=["meta"], auth="none", response={"type": "object", "properties": {"site": SITE}})
async def meta(request: web.Request) -> web.Response:
    config = request.app[keys.CONFIG]
    direct = request.app[keys.DIRECT_UPLOADS]
    return web.json_response({
        "dev_mode": config.core.dev_mode, "version": __version__,
        "auth_backend": config.selections["auth"].backend.name,
        "billing_plans": list(request.app[keys.BILLING].plans()),
        # Whether /api/s3 works with this storage, and from which size the browser should use it.
        "direct_uploads": {"available": direct is not None, "threshold": config.core.direct_upload_threshold,
                           "min_part_size": direct.part_limits.min_size if direct is not None else None},
        "site": site_json(request.app),
    })


@operation("Every plan with its limits and price, for the plan comparison", tags=["billing"],
           response={"type": "object", "properties": {"plans": {"type": "array"}, "prices_error": {"type": ["string", "null"]}}})
async def billing_plans(request: web.Request) -> web.Response:
    """GET /api/billing/plans: every plan (free first) with its limits and price, for the plan comparison.

    When billing cannot give prices right now the plans still come, with ``price`` null and
    ``prices_error`` saying why, so the page can compare limits and offer the upgrade anyway.
    """
    await authenticate(request, scope=None)
    billing = request.app[keys.BILLING]
    core = request.app[keys.CONFIG].core
    try:
        prices, error = await billing.prices(), None
    except ServiceUnavailable as exc:
        log.warning("plan prices unavailable: %s", exc)
        prices, error = {}, f"prices are unavailable right now: {exc}"
    plans = []
    for name in (FREE, *billing.plans()):
        limits = core.limits(name)
        price = prices.get(name)
        plans.append({
            "name": name,
            "price": None if price is None else {"amount": price.amount, "currency": price.currency,
                                                 "interval": price.interval, "interval_count": price.interval_count},
            "limits": {"max_file": limits.max_file, "quota": limits.quota},
        })
    return web.json_response({"plans": plans, "prices_error": error})


@operation("Start checkout for a paid plan: the URL to send the browser to", tags=["billing"],
           body={"type": "object", "required": ["plan"], "properties": {"plan": {"type": "string"}}},
           response={"type": "object", "properties": {"url": {"type": "string"}}})
async def checkout(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await json_object(request, '{"plan": "pro"}')
    plan = body.get("plan")
    billing = request.app[keys.BILLING]
    if not isinstance(plan, str) or plan not in billing.plans():
        raise bad_request(f"'plan' must be one of: {', '.join(billing.plans())}", code="unknown_plan")
    try:
        url = await billing.start_checkout(principal.user, plan)
    except UnknownPlan as exc:
        raise bad_request(str(exc), code="unknown_plan") from None
    except ServiceUnavailable as exc:
        raise unavailable(f"billing is unavailable: {exc}") from None
    return web.json_response({"url": url})


@operation("The URL of the billing portal, to manage or cancel the subscription", tags=["billing"],
           response={"type": "object", "properties": {"url": {"type": "string"}}})
async def billing_portal(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    try:
        url = await request.app[keys.BILLING].open_portal(principal.user)
    except ServiceUnavailable as exc:
        raise unavailable(f"billing is unavailable: {exc}") from None
    return web.json_response({"url": url})


async def checkout_success(request: web.Request) -> web.Response:
    """Where checkout returns the browser: sync the plan now, then show the billing page."""
    principal = await authenticate(request)
    try:
        await request.app[keys.BILLING].complete_checkout(principal.user, dict(request.query))
    except ServiceUnavailable as exc:
        log.warning("checkout sync failed, the webhook will catch up: %s", exc)
        return redirect("/billing?checkout=pending")
    return redirect("/billing?checkout=success")


@operation("Billing provider webhooks (raw body, verified by the selected billing backend)", tags=["billing"],
           auth="none", body={"type": "object"}, responses={400: "Not authentic or malformed"},
           response={"type": "object"})
async def webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{backend}: the raw body goes to the selected billing backend, unparsed."""
    billing = request.app[keys.BILLING]
    if request.match_info["backend"] != billing.name:
        raise not_found("webhook endpoint")
    body = await request.read()
    metrics = request.app[keys.METRICS]
    try:
        result = await billing.handle_webhook(body, request.headers)
    except WebhookRejected as exc:
        metrics.webhook("unknown", "rejected")
        log.warning("webhook rejected: %s", exc)
        raise ApiError(400, "webhook_rejected", str(exc)) from None
    except ServiceUnavailable as exc:
        metrics.webhook("unknown", "failed")
        # 5xx makes the sender retry later, which is what we want while the API or database is away.
        raise unavailable(f"webhook not processed, retry later: {exc}") from None
    metrics.webhook(result.event_type, result.outcome)
    return web.json_response({"received": True, "id": result.event_id, "outcome": result.outcome})
