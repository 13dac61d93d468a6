"""/account/webhooks: a customer's endpoints and each one's delivery log, in the portal's layout.

Plain HTML forms (no script), each carrying the session's CSRF token: add an endpoint (its secret is shown
on the answer page, once), send a test message, delete. Reached from the header's "Webhooks" link.
"""

from __future__ import annotations

import datetime as dt
from html import escape

from aiohttp import web

from portal_core.web.errors import ApiError
from portal_core.web import inputs
from portal_core.web.html import hidden, redirect, render_page
from portal_core.web.sessions import Principal, authenticate

from . import endpoints
from .messages import ALL_TYPES

PATH = "/account/webhooks"
TITLE = "Webhooks"
SHOWN_ATTEMPTS = 20


def _when(text: str) -> str:
    moment = dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)
    return f'<time datetime="{escape(text)}">{moment:%Y-%m-%d %H:%M:%S}</time>'


def _status(attempt: dict) -> str:
    if attempt["status"] is None:
        return f'<span title="{escape(attempt["error"])}">no answer</span>'
    return str(attempt["status"])


def _log_table(log: list[dict], url: str) -> str:
    if not log:
        return '<p class="empty">No deliveries yet.</p>'
    rows = "".join(
        f"<tr><td>{_when(a['attempted_at'])}</td><td>{escape(a['event_type'])}</td><td>{a['attempt']}</td>"
        f"<td>{_status(a)}</td><td>{a['duration_ms']} ms</td></tr>"
        for a in log)
    # The table may scroll sideways on a narrow page: focusable, so the keyboard can scroll it too.
    return (f'<div class="table-wrap" tabindex="0" role="region" aria-label="Delivery log of {escape(url)}">'
            '<table class="table"><thead><tr><th scope="col">Time (UTC)</th><th scope="col">Event</th>'
            '<th scope="col">Attempt</th><th scope="col">Status</th><th scope="col">Duration</th></tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _csrf(principal: Principal) -> str:
    return hidden("csrf_token", principal.session.csrf_token if principal.session else "")


async def _endpoint_section(request: web.Request, principal: Principal, endpoint: dict) -> str:
    log = await endpoints.attempts(request.app, principal.user, endpoint["id"], limit=SHOWN_ATTEMPTS)
    base = f"{PATH}/{escape(endpoint['id'])}"
    return f"""<section aria-label="{escape(endpoint['url'])}">
<h2><code>{escape(endpoint['url'])}</code></h2>
<dl class="facts"><dt>Events</dt><dd>{escape(", ".join(endpoint['events']))}</dd>
<dt>Added</dt><dd>{_when(endpoint['created_at'])} UTC</dd></dl>
{_log_table(log, endpoint['url'])}
<div class="actions">
<form method="post" action="{base}/test">{_csrf(principal)}<button type="submit" class="button button-small">Send a test</button></form>
<form method="post" action="{base}/delete">{_csrf(principal)}<button type="submit" class="button button-small button-danger">Delete</button></form>
</div>
</section>
<hr>"""


def _add_form(principal: Principal, url: str = "", events: str = "") -> str:
    return f"""<form method="post" action="{PATH}" class="stack" id="add-webhook">
{_csrf(principal)}
<label for="webhook-url">Endpoint URL</label>
<input id="webhook-url" name="url" type="text" inputmode="url" required placeholder="https://example.com/hooks" value="{escape(url)}">
<label for="webhook-events">Event types</label>
<input id="webhook-events" name="events" type="text" required value="{escape(events or ALL_TYPES)}"
 aria-describedby="webhook-events-hint">
<span class="hint" id="webhook-events-hint">Comma-separated, such as artifact.created, artifact.deleted, plan.changed; * sends every type.</span>
<div class="actions"><button type="submit" class="button button-primary">Add endpoint</button></div>
</form>"""


async def _page(request: web.Request, principal: Principal, *, notice: str = "", status: int = 200,
                url: str = "", events: str = "") -> web.Response:
    mine = await endpoints.list_for(request.app, principal.user)
    sections = "".join([await _endpoint_section(request, principal, e) for e in mine]) or \
        '<p class="empty">You have no webhook endpoints yet.</p>'
    body = (f"{notice}<p>The portal POSTs your account's events to these URLs, signed as "
            '<a href="https://www.standardwebhooks.com">Standard Webhooks</a>, and retries failed deliveries '
            f"for about a day.</p>{sections}<h2>Add an endpoint</h2>{_add_form(principal, url, events)}")
    return render_page(request, TITLE, body, status=status, principal=principal)


async def show(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    return await _page(request, principal)


async def add(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    form = await inputs.form(request)
    url, events = str(form.get("url", "")).strip(), str(form.get("events", ""))
    types = [part.strip() for part in events.split(",") if part.strip()]
    try:
        if not url:
            raise ApiError(400, "bad_url", "enter the URL your endpoint answers at")
        created = await endpoints.create(request.app, principal.user, url, endpoints.event_types(types))
    except ApiError as exc:
        notice = f'<p class="notice notice-error" role="alert">{escape(exc.message)}</p>'
        return await _page(request, principal, notice=notice, status=exc.status, url=url, events=events)
    notice = (f'<div class="notice notice-success" role="status"><p>Added <code>{escape(created["url"])}</code>. '
              f'Its signing secret is <code id="webhook-secret">{escape(created["secret"])}</code> — copy it now: '
              "it is not shown again.</p></div>")
    return await _page(request, principal, notice=notice, status=201)


async def send_test(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    await endpoints.send_test(request.app, principal.user, request.match_info["id"])
    return redirect(PATH)


async def remove(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    await endpoints.delete(request.app, principal.user, request.match_info["id"])
    return redirect(PATH)


def routes() -> list[web.AbstractRouteDef]:
    return [web.get(PATH, show), web.post(PATH, add), web.post(PATH + "/{id}/test", send_test),
            web.post(PATH + "/{id}/delete", remove)]
