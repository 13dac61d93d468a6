"""Server-rendered pages: one layout (header, sign-in state, banner), styled error pages, the favicon.

How they look is checked in a real browser (tests/browser); here, what the HTML says and what the API
keeps answering instead (JSON, never a page).
"""

from __future__ import annotations

import re

from aiohttp import web

from portal_core import hookimpl
from portal_core.web.html import render_page


class Pages:
    """A plugin with a page in the layout and a page that fails."""

    @hookimpl
    def portal_routes(self, config):
        async def plugin_page(request):
            return render_page(request, "Plugin <page>", "<p>Hello from a plugin.</p>")

        async def broken(request):
            raise RuntimeError("boom")

        return [web.get("/plugin-page", plugin_page), web.get("/broken", broken), web.get("/api/broken", broken)]


async def test_an_unknown_page_is_a_styled_404_with_a_way_back(client):
    async with client.get("/no/such/page") as resp:
        assert resp.status == 404
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert "<title>Page not found — Portal</title>" in page
    assert 'id="site-header"' in page and 'href="/css/' not in page and "/css/app.css" in page
    assert 'data-testid="error-home"' in page and 'href="/"' in page
    assert 'data-testid="dev-banner"' in page  # DEV_MODE says so on every page
    assert "sign-out" not in page  # signed out: brand only


async def test_a_signed_in_404_shows_the_nav_and_the_sign_out_button(sign_in):
    browser = await sign_in("grace@example.com")
    async with browser.request("GET", "/nowhere") as resp:
        assert resp.status == 404
        page = await resp.text()
    assert 'id="nav-billing"' in page and "grace@example.com" in page
    csrf = re.search(r'id="sign-out-csrf" value="([^"]+)"', page).group(1)
    assert csrf == browser.csrf  # the sign-out form works from an error page too


async def test_the_api_keeps_json_errors(client):
    async with client.get("/api/nothing-here") as resp:
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
    async with client.get("/health/nothing-here") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    # A page whose address merely starts like an API path is a page (one test of "is this the API?",
    # portal_core.openapi.is_api_path, for errors and for the OpenAPI parity alike).
    for page in ("/healthy-living", "/metrics-explained"):
        async with client.get(page) as resp:
            assert resp.status == 404 and resp.content_type == "text/html", page
    async with client.put("/api/artifacts") as resp:
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_a_wrong_method_on_a_page_is_a_styled_405_keeping_allow(client):
    async with client.post("/account") as resp:
        assert resp.status == 405
        assert "GET" in resp.headers["Allow"]
        assert "<title>That does not work here — Portal</title>" in await resp.text()


async def test_a_failing_page_is_a_styled_500_with_the_request_id(make_app, aiohttp_client):
    client = await aiohttp_client(make_app(extra_plugins=[Pages()]))
    async with client.get("/broken") as resp:
        assert resp.status == 500
        page = await resp.text()
        request_id = resp.headers["X-Request-Id"]
    assert "Something went wrong — Portal" in page and request_id in page and "boom" not in page
    async with client.get("/api/broken") as resp:
        assert resp.status == 500 and (await resp.json())["error"]["code"] == "internal"


async def test_plugin_pages_get_the_layout_with_their_title_escaped(make_app, aiohttp_client):
    client = await aiohttp_client(make_app(extra_plugins=[Pages()]))
    page = await (await client.get("/plugin-page")).text()
    assert "<title>Plugin &lt;page&gt; — Portal</title>" in page
    assert 'id="site-header"' in page and "Hello from a plugin." in page


async def test_favicon_is_an_icon(client):
    async with client.get("/favicon.ico") as resp:
        assert resp.status == 200
        assert resp.content_type == "image/x-icon"
        assert (await resp.read())[:4] == b"\0\0\1\0"  # the ICO header


def test_nav_links_from_plugins_must_be_paths_on_this_site():
    from portal_core.web.html import same_origin_path

    assert same_origin_path("/admin") and same_origin_path("/reports?year=2025")
    for href in ("//evil.example", "https://evil.example/", "javascript:alert(1)", "/\\evil", "/a\nb", "", None, 7):
        assert not same_origin_path(href), href


async def test_a_form_refused_while_read_only_or_without_its_csrf_token_is_a_page_saying_why(sign_in):
    admin = await sign_in("root@example.com", admin=True)
    ada = await sign_in("ada@example.com")
    # A form posted without its CSRF token (a stale tab, say): a page, not JSON.
    async with ada.request("POST", "/dev/billing/checkout", csrf=False, data={"plan": "pro"}) as resp:
        assert resp.status == 403 and resp.content_type == "text/html"
        page = await resp.text()
    assert 'id="site-header"' in page and "CSRF token" in page and 'data-testid="error-home"' in page
    async with admin.request("PUT", "/api/admin/settings", json={"read_only": True, "banner": "Back at ten"}) as resp:
        assert resp.status == 200
    async with ada.request("POST", "/dev/billing/checkout", csrf=False, data={"plan": "pro", "csrf_token": ada.csrf}) as resp:
        assert resp.status == 503 and resp.content_type == "text/html"
        page = await resp.text()
    assert 'id="site-header"' in page and 'data-testid="read-only">The portal is read-only for maintenance' in page
    assert "Back at ten" in page and 'data-testid="error-home"' in page
    async with ada.request("POST", "/api/tokens", json={"name": "x"}) as resp:  # the API keeps its JSON
        assert resp.status == 503 and (await resp.json())["error"]["code"] == "read_only"
