"""The one layout for server-rendered pages (sign-in errors, error pages, plugins' pages).

``render_page`` draws the same chrome the front end's pages draw in assets/js/layout.js — skip link,
DEV_MODE banner, the admins' site banner, header with brand, nav, the signed-in email and the sign-out button — with the same
markup and classes, so every page looks one way; a browser test compares the two headers. Everything
interpolated is escaped; no inline script or style, so the CSP holds.
"""

from __future__ import annotations

import logging
from html import escape

from aiohttp import web

from .. import keys
from ..display import display_text
from .nav import nav_items as plugin_nav_items
from .nav import same_origin_path
from .sessions import Principal, authenticate

log = logging.getLogger("portal.web")

# The core's nav, in the order layout.js shows it (keep the two in step: the browser tests compare them).
NAV = (("/", "Artifacts", "nav-artifacts"), ("/sharing", "Sharing", "nav-sharing"), ("/account", "Account", "nav-account"),
       ("/billing", "Billing", "nav-billing"))
# Shown to admins only, after the core's nav.
ADMIN_NAV = ("/admin", "Admin", "nav-admin")

ERRORS = {
    404: ("Page not found", "There is nothing at this address. The link may be mistyped, or the page may have moved."),
    405: ("That does not work here", "This address does not accept that kind of request."),
    500: ("Something went wrong", "The portal ran into a problem it did not expect. Nothing you did caused it; "
                                  "try again in a moment."),
    503: ("The portal is unavailable", "A service the portal needs is not answering right now. "
                                       "Try again in a minute."),
}


def _dev_banner() -> str:
    return ('<div id="dev-banner" class="dev-banner" role="note" data-testid="dev-banner">'
            "<strong>Development mode</strong> — no real sign-in, storage or payments.</div>")


def _site_banner(request: web.Request) -> str:
    """The admins' banner (the ``banner`` site switch), on every page while it is set."""
    text = request.app[keys.SITE].current.banner
    if not text:
        return ""
    return (f'<div id="site-banner" class="site-banner" role="status" data-testid="site-banner">'
            f"{escape(text)}</div>")


def _header(request: web.Request, principal: Principal | None, static: str) -> str:
    brand = f'<a href="/" class="brand"><img src="{static}/img/logo.svg" alt="" width="28" height="28">Portal</a>'
    if principal is None:
        return f'<header class="site-header" id="site-header"><div class="header-inner">{brand}</div></header>'
    links = "".join(_link(href, label, ident, request.path) for href, label, ident in nav_items(request, principal))
    csrf = principal.session.csrf_token if principal.session else ""
    user = (f'<div class="header-user"><span id="user-email" class="user-email">{escape(principal.user.email)}</span>'
            f'<form method="post" action="/auth/logout" class="sign-out">'
            f'<input type="hidden" name="csrf_token" id="sign-out-csrf" value="{escape(csrf)}">'
            '<button type="submit" id="sign-out" class="button button-quiet" data-testid="sign-out">Sign out</button>'
            "</form></div>")
    return (f'<header class="site-header" id="site-header"><div class="header-inner">{brand}'
            '<button type="button" id="menu-toggle" class="button menu-toggle" aria-expanded="false" '
            'aria-controls="site-menu">Menu</button>'
            f'<div id="site-menu" class="site-menu"><nav aria-label="Main"><ul>{links}</ul></nav>{user}</div>'
            "</div></header>")


def _link(href: str, label: str, ident: str, here: str) -> str:
    extra = f' id="{escape(ident)}"' if ident else ""
    if href == here:
        extra += ' aria-current="page"'
    return f'<li><a href="{escape(href)}"{extra}>{escape(label)}</a></li>'


def nav_items(request: web.Request, principal: Principal) -> list[tuple[str, str, str]]:
    """(href, label, element id) for the header: the core's nav (and Admin for admins), then the plugins' portal_nav_items
    (filtered by :func:`portal_core.web.nav.nav_items`); a plugin link repeating a core one is left out."""
    items = list(NAV) + ([ADMIN_NAV] if principal.user.is_admin else [])
    seen = {href for href, _label, _ident in items}
    for item in plugin_nav_items(request.app, principal.user):
        if item["href"] not in seen:
            seen.add(item["href"])
            items.append((item["href"], item["label"], ""))
    return items


def render_page(request: web.Request, title: str, body_html: str, *, status: int = 200,
                principal: Principal | None = None, headers: dict[str, str] | None = None) -> web.Response:
    """A complete HTML page around ``body_html`` (which the caller has already escaped).

    Bidi controls anywhere in the title or body (they come only from data: a file name, a share's note)
    are shown as U+FFFD (:func:`portal_core.display.display_text`), so no name displays reversed.

    ``principal`` (from ``authenticate``) puts the nav, the email and the sign-out button in the header,
    as on the front end's signed-in pages; without it the header shows the brand only.
    """
    config = request.app[keys.CONFIG]
    static = request.app[keys.ASSETS].prefix
    dev = config.core.dev_mode
    text = f"""<!doctype html>
<html lang="en" data-dev-mode="{'true' if dev else 'false'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} — Portal</title>
<link rel="icon" href="{static}/img/logo.svg" type="image/svg+xml">
<link rel="stylesheet" href="{static}/css/app.css">
<script type="module" src="{static}/js/server-page.js"></script>
</head>
<body>
<a class="skip-link" href="#main">Skip to content</a>{_dev_banner() if dev else ""}{_site_banner(request)}{_header(request, principal, static)}
<main id="main" class="page page-narrow" tabindex="-1">
<section class="card" aria-labelledby="page-title">
<h1 id="page-title">{escape(title)}</h1>
{body_html}
</section>
</main>
</body>
</html>"""
    return web.Response(text=display_text(text), content_type="text/html", status=status,
                        headers={"Cache-Control": "no-store", **(headers or {})})


async def signed_in(request: web.Request) -> Principal | None:
    """The browser's signed-in principal for the header, or None; never raises (a page must still render).

    Only for GET and HEAD: other methods would need their CSRF token (and body) read just to draw a header.
    """
    if request.method not in ("GET", "HEAD"):
        return None
    try:
        return await authenticate(request, allow_token=False)
    except Exception:  # noqa: BLE001 - signed out, a broken cookie, the database away: draw the signed-out header
        return None


async def error_page(request: web.Request, status: int, *, request_id: str = "", message: str = "",
                     headers: dict[str, str] | None = None) -> web.Response:
    """A styled error page (404, 405, 500, 503, …) in the layout, with the sign-in state and a way back;
    ``message`` (what was refused and why, one sentence) replaces the status's general text.

    The sign-in state is looked up only for 4xx: a 5xx may be the database itself failing.
    """
    title, general = ERRORS.get(status, ("That did not work", f"The portal answered HTTP {status}."))
    message = (message[:1].upper() + message[1:].rstrip(".") + ".") if message else general
    principal = await signed_in(request) if status < 500 else None
    reference = (f'<p class="hint">If it keeps happening, quote request id <code>{escape(request_id)}</code>.</p>'
                 if request_id and status >= 500 else "")
    body = (f'<p data-testid="error-message">{escape(message)}</p>{reference}'
            '<p class="actions"><a class="button button-primary" href="/" data-testid="error-home">'
            "Go to your artifacts</a></p>")
    kept = {k: v for k, v in (headers or {}).items() if k.lower() in ("allow", "retry-after")}
    return render_page(request, title, body, status=status, principal=principal, headers=kept)


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def redirect(location: str) -> web.Response:
    """A 302 that is never cached (sign-in and billing redirects carry one-time state)."""
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
