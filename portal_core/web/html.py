"""Small server-rendered pages (sign-in errors, plugin pages) that share the front end's stylesheet.

Everything interpolated is escaped; no inline script or style, so the CSP holds.
"""

from __future__ import annotations

from html import escape

from aiohttp import web

from .. import keys


def render_page(request: web.Request, title: str, body_html: str, *, status: int = 200) -> web.Response:
    """A complete HTML page around ``body_html`` (which the caller has already escaped)."""
    config = request.app[keys.CONFIG]
    static = request.app[keys.ASSETS].prefix
    banner = ('<div class="dev-banner" role="status">Development mode — no real sign-in, storage or payments'
              "</div>") if config.core.dev_mode else ""
    text = f"""<!doctype html>
<html lang="en" data-dev-mode="{'true' if config.core.dev_mode else 'false'}">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} · Portal</title><link rel="stylesheet" href="{static}/css/app.css"></head>
<body>{banner}<main class="container narrow"><h1>{escape(title)}</h1>
{body_html}
</main></body></html>"""
    return web.Response(text=text, content_type="text/html", status=status, headers={"Cache-Control": "no-store"})


def hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def redirect(location: str) -> web.Response:
    """A 302 that is never cached (sign-in and billing redirects carry one-time state)."""
    return web.Response(status=302, headers={"Location": location, "Cache-Control": "no-store"})
