"""Who reaches the admin console: admins only. Every route under /admin and /api/admin is found by walking
the router (not listed by hand), so a route added later is covered too."""

from __future__ import annotations

import re

import pytest

from tests.support.db import create_token, run_sql

ADMIN_PREFIXES = ("/admin", "/api/admin")


def admin_routes(app) -> list[tuple[str, str]]:
    """(method, a concrete path) for every admin route of ``app``."""
    found = []
    for route in app.router.routes():
        resource = route.resource
        if route.method == "HEAD" or resource is None:
            continue
        path = resource.canonical
        if path == "/admin" or path.startswith(tuple(p + "/" for p in ADMIN_PREFIXES)):
            found.append((route.method, re.sub(r"\{[^}]+\}", "1", path)))
    return sorted(found)


def test_the_walk_finds_the_console():
    """The walk itself: it must see the pages and every API route, or the tests below prove nothing."""
    from portal_core.web.admin import routes

    paths = {(r.method, r.path) for r in routes()}
    assert ("GET", "/admin") in paths and ("PUT", "/api/admin/settings") in paths
    assert ("DELETE", "/api/admin/users/{id}") in paths


async def test_a_signed_in_non_admin_gets_404_everywhere(client, sign_in, sql, database_url):
    app = client.server.app
    routes = admin_routes(app)
    assert len(routes) >= 14, routes
    browser = await sign_in("mallory@example.com")
    user_id = sql("SELECT id FROM users WHERE email = 'mallory@example.com'")[0][0]
    token = create_token(database_url, user_id)
    # A user made admin by nobody, and an admin-scoped token they could never have made: still 404.
    sneaky = create_token(database_url, user_id, "sneaky", scopes=["artifacts:read", "artifacts:write", "admin"])
    for method, path in routes:
        body = {"json": {}} if method in ("PUT", "PATCH", "DELETE", "POST") else {}
        async with browser.request(method, path, **body) as resp:
            assert resp.status == 404, (method, path, "session", resp.status)
            if path.startswith("/api/"):
                assert (await resp.json())["error"]["code"] == "not_found"
            else:
                assert "Page not found" in await resp.text()
        for secret in (token, sneaky):
            resp = await client.request(method, path, headers={"Authorization": f"Bearer {secret}"},
                                        allow_redirects=False, **body)
            # Pages take no token (a token is no browser): they send it to sign in, like anyone signed out.
            assert resp.status == (404 if path.startswith("/api/") else 302), (method, path, resp.status)
    # Their requests changed nothing and the answers look exactly like an address that does not exist.
    assert sql("SELECT count(*) FROM events WHERE type LIKE 'admin.%%'") == [(0,)]
    missing = await client.get("/api/admin/no-such-thing")
    assert (await missing.json()) == (await (await browser.request("GET", "/api/admin/users")).json())


async def test_signed_out_visitors_are_sent_to_sign_in_or_get_401(client):
    for method, path in admin_routes(client.server.app):
        resp = await client.request(method, path, allow_redirects=False)
        if path.startswith("/api/"):
            assert resp.status == 401, (method, path)
        else:
            assert resp.status == 302 and resp.headers["Location"].startswith("/login?next="), (method, path)


async def test_an_admin_gets_every_page_and_a_token_needs_the_admin_scope(client, sign_in, sql, database_url):
    admin = await sign_in("root@example.com", admin=True)
    for path in ("/admin", "/admin/users", "/admin/users/1", "/admin/events", "/admin/settings"):
        async with admin.request("GET", path) as resp:
            assert resp.status == 200, path
            assert "text/html" in resp.headers["Content-Type"]
    admin_id = sql("SELECT id FROM users WHERE email = 'root@example.com'")[0][0]
    plain = create_token(database_url, admin_id)
    scoped = create_token(database_url, admin_id, "ops", scopes=["admin"])
    resp = await client.get("/api/admin/users", headers={"Authorization": f"Bearer {plain}"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "insufficient_scope"
    assert "admin" in (await resp.json())["error"]["message"]
    resp = await client.get("/api/admin/users", headers={"Authorization": f"Bearer {scoped}"})
    assert resp.status == 200 and [u["email"] for u in (await resp.json())["users"]] == ["root@example.com"]
    # The admin-only token is no artifact token, and no page opens with a token.
    assert (await client.get("/api/artifacts", headers={"Authorization": f"Bearer {scoped}"})).status == 403
    resp = await client.get("/admin", headers={"Authorization": f"Bearer {scoped}"}, allow_redirects=False)
    assert resp.status == 302
    # Demoted, the same token finds nothing there any more.
    run_sql(database_url, "UPDATE users SET is_admin = false WHERE id = %s", (admin_id,))
    assert (await client.get("/api/admin/users", headers={"Authorization": f"Bearer {scoped}"})).status == 404


@pytest.mark.parametrize("admin", [False, True])
async def test_the_admin_nav_link_is_for_admins_only(sign_in, admin):
    browser = await sign_in(f"nav-{admin}@example.com", admin=admin)
    me = await (await browser.request("GET", "/api/me")).json()
    assert me["user"]["is_admin"] is admin
    page = await (await browser.request("GET", "/no/such/page")).text()  # a server-rendered page
    assert ('id="nav-admin"' in page) is admin
