"""The development pages: sign-in form, fake checkout, fake billing portal. Labelled as such."""

from __future__ import annotations

from html import escape

from aiohttp import web

from portal_core import keys
from portal_core.interfaces import Price
from portal_core.web.html import hidden, redirect, render_page
from portal_core.web.inputs import form
from portal_core.web.sessions import authenticate

NOTICE = '<p class="notice notice-info">Development only: nothing here is real.</p>'


def plan_name(plan: str) -> str:
    """"pro" -> "Pro", as the billing page writes plan names."""
    return plan[:1].upper() + plan[1:]


# Currencies without a minor unit (Stripe's list): their amounts are whole units already.
ZERO_DECIMAL = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf ugx vnd vuv xaf xof xpf".split())


def price_text(price: Price) -> str:
    """Price(900, "usd", "month") -> "9.00 USD a month"."""
    amount = (f"{price.amount}" if price.currency in ZERO_DECIMAL else f"{price.amount / 100:.2f}") + \
        f" {price.currency.upper()}"
    if price.interval_count == 1:
        return f"{amount} a {price.interval}"
    return f"{amount} every {price.interval_count} {price.interval}s"


async def login_form(request: web.Request) -> web.Response:
    state = request.query.get("state", "")
    body = f"""{NOTICE}
<form method="post" action="/auth/callback" class="stack" id="dev-login">
  {hidden("state", state)}
  <label for="dev-email">Email</label>
  <input id="dev-email" name="email" type="email" required autocomplete="email" placeholder="ada@example.com">
  <label for="dev-name">Name</label>
  <input id="dev-name" name="name" type="text" autocomplete="name" placeholder="Ada Lovelace">
  <label class="check"><input id="dev-admin" name="admin" type="checkbox"> Sign in as an admin</label>
  <div class="actions"><button type="submit" id="dev-submit" class="button button-primary">Sign in (development)</button></div>
</form>"""
    return render_page(request, "Development sign-in", body)


async def checkout_page(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    plan = request.query.get("plan", "")
    billing = request.app[keys.BILLING]
    if plan not in billing.plans():
        return unknown_plan(request, principal, plan, status=404)
    price = (await billing.prices()).get(plan)
    cost = f" for <strong>{escape(price_text(price))}</strong>" if price else ""
    body = f"""{NOTICE}
<p>Subscribe <strong>{escape(principal.user.email)}</strong> to the <strong>{escape(plan_name(plan))}</strong>
plan{cost}. No card is needed and no money moves.</p>
<form method="post" action="/dev/billing/checkout">
  {hidden("csrf_token", principal.session.csrf_token)}{hidden("plan", plan)}
  <div class="actions">
    <button type="submit" id="dev-pay" class="button button-primary">Pay (development)</button>
    <a class="button" href="/billing" id="dev-checkout-cancel">Cancel</a>
  </div>
</form>"""
    return render_page(request, "Checkout (development)", body, principal=principal)


def unknown_plan(request: web.Request, principal, plan: str, *, status: int) -> web.Response:
    body = (f'<p class="notice notice-error" role="alert">There is no plan named “{escape(plan)}”.</p>'
            '<p class="actions"><a class="button button-primary" href="/billing">Back to billing</a></p>')
    return render_page(request, "Unknown plan", body, status=status, principal=principal)


async def pay(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    plan = (await form(request)).get("plan", "")
    billing = request.app[keys.BILLING]
    if plan not in billing.plans():
        return unknown_plan(request, principal, str(plan), status=400)
    await billing.subscribe(principal.user.id, plan)
    return redirect("/billing/success?session_id=dev")


async def portal_page(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    state = await request.app[keys.BILLING].current_plan(principal.user.id)
    if state.name == "free":
        action = '<p>You are on the Free plan.</p>'
    else:
        action = f"""<p>You are on the <strong>{escape(plan_name(state.name))}</strong> plan.</p>
<form method="post" action="/dev/billing/portal/cancel">
  {hidden("csrf_token", principal.session.csrf_token)}
  <div class="actions"><button type="submit" id="dev-cancel" class="button button-danger">Cancel plan (development)</button></div>
</form>"""
    body = f'{NOTICE}{action}<p class="actions"><a class="button" href="/billing">Back to billing</a></p>'
    return render_page(request, "Manage billing (development)", body, principal=principal)


async def cancel(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    await request.app[keys.BILLING].cancel(principal.user.id)
    return redirect("/billing")


def routes_for(auth: bool, billing: bool) -> list[web.AbstractRouteDef]:
    table = []
    if auth:
        table.append(web.get("/dev/login", login_form))
    if billing:
        table += [web.get("/dev/billing/checkout", checkout_page), web.post("/dev/billing/checkout", pay),
                  web.get("/dev/billing/portal", portal_page), web.post("/dev/billing/portal/cancel", cancel)]
    return table
