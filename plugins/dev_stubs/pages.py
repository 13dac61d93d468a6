"""The development pages: sign-in form, fake checkout, fake billing portal. Labelled as such."""

from __future__ import annotations

from html import escape

from aiohttp import web

from portal_core import keys
from portal_core.web.html import hidden, redirect, render_page
from portal_core.web.sessions import authenticate

NOTICE = '<p class="notice">Development only: nothing here is real.</p>'


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
  <button type="submit" id="dev-submit">Sign in (development)</button>
</form>"""
    return render_page(request, "Development sign-in", body)


async def checkout_page(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    plan = request.query.get("plan", "")
    billing = request.app[keys.BILLING]
    if plan not in billing.plans():
        return render_page(request, "Unknown plan", f'<p class="error">There is no plan named {escape(plan)!s}.</p>'
                           '<p><a href="/billing">Back to billing</a></p>', status=404)
    body = f"""{NOTICE}
<p>Subscribe <strong>{escape(principal.user.email)}</strong> to the <strong>{escape(plan)}</strong> plan.
No card is needed and no money moves.</p>
<form method="post" action="/dev/billing/checkout">
  {hidden("csrf_token", principal.session.csrf_token)}{hidden("plan", plan)}
  <button type="submit" id="dev-pay">Pay (development)</button> <a href="/billing">Cancel</a>
</form>"""
    return render_page(request, "Checkout (development)", body)


async def pay(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    plan = (await request.post()).get("plan", "")
    billing = request.app[keys.BILLING]
    if plan not in billing.plans():
        return render_page(request, "Unknown plan", "<p>There is no such plan.</p>", status=400)
    await billing.subscribe(principal.user.id, plan)
    return redirect("/billing/success?session_id=dev")


async def portal_page(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    state = await request.app[keys.BILLING].current_plan(principal.user.id)
    if state.name == "free":
        action = '<p>You are on the free plan.</p>'
    else:
        action = f"""<p>You are on the <strong>{escape(state.name)}</strong> plan.</p>
<form method="post" action="/dev/billing/portal/cancel">
  {hidden("csrf_token", principal.session.csrf_token)}
  <button type="submit" id="dev-cancel">Cancel plan (development)</button>
</form>"""
    return render_page(request, "Manage billing (development)", f'{NOTICE}{action}<p><a href="/billing">Back to billing</a></p>')


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
