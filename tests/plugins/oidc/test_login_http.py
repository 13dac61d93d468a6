"""Signing in to a real portal process (AUTH_BACKEND=oidc) through a real OpenID Connect provider.

The browser is an aiohttp session with a cookie jar: /auth/login → the provider's login and consent
pages → /auth/callback on the portal → /api/me. Refused sign-ins must leave no signed-in session.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.oidc import CLIENT_ID, CLIENT_SECRET, client_session, confirm_logout, jwt_segment, running_provider, sign_in
from tests.support.portal import free_port, run_portal


@pytest.fixture(scope="module")
def portal_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def provider(portal_port):
    base = f"http://127.0.0.1:{portal_port}"
    with running_provider(redirect_uris=[base + "/auth/callback"], post_logout_uris=[base + "/"]) as provider:
        yield provider


def oidc_env(issuer: str) -> dict[str, str]:
    return {"AUTH_BACKEND": "oidc", "POCKET_ID_ISSUER": issuer, "POCKET_ID_CLIENT_ID": CLIENT_ID,
            "POCKET_ID_CLIENT_SECRET": CLIENT_SECRET, "POCKET_ID_ADMIN_GROUP": "portal-admins"}


@pytest.fixture
def portal(database_url, provider, portal_port):
    with run_portal(database_url, oidc_env(provider.issuer), port=portal_port) as portal:
        yield portal


@pytest.fixture
async def browser():
    async with client_session() as session:
        yield session


async def to_provider(browser, portal, next_path="/"):
    """GET /auth/login; the provider's authorization URL the portal redirects to."""
    async with browser.get(portal.url + "/auth/login", params={"next": next_path}, allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        return response.headers["Location"]


async def back_to_portal(browser, portal, **options):
    """Sign in at the provider; the callback URL it sends the browser to (not yet followed)."""
    return await sign_in(browser, await to_provider(browser, portal), stop_at=portal.url + "/auth/callback", **options)


async def follow(browser, url):
    async with browser.get(str(url), allow_redirects=False) as response:
        return response.status, response.headers.get("Location"), await response.text()


async def me(browser, portal):
    async with browser.get(portal.url + "/api/me") as response:
        return response.status, (await response.json() if response.status == 200 else None)


def signed_in_sessions(sql) -> int:
    return sql("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL")[0][0]


async def test_signing_in_creates_the_user_and_returns_to_next(portal, provider, browser, sql):
    authorize = await to_provider(browser, portal, next_path="/artifacts?page=2")
    assert authorize.startswith(provider.issuer + "/auth?")
    callback = await sign_in(browser, authorize, stop_at=portal.url + "/auth/callback", login="alice")

    status, location, _ = await follow(browser, callback)
    assert (status, location) == (302, "/artifacts?page=2")
    status, body = await me(browser, portal)
    assert status == 200
    assert body["user"]["email"] == "alice@example.com"
    assert body["user"]["name"] == "Test alice"
    assert body["user"]["is_admin"] is False
    assert sql("SELECT issuer, subject, email FROM users") == [(provider.issuer, "alice", "alice@example.com")]
    assert signed_in_sessions(sql) == 1


async def test_a_member_of_the_admin_group_is_an_admin(portal, browser, sql):
    status, _location, _ = await follow(browser, await back_to_portal(browser, portal, login="admin"))
    assert status == 302
    assert (await me(browser, portal))[1]["user"]["is_admin"] is True
    assert sql("SELECT subject, is_admin FROM users") == [("admin", True)]


async def test_signing_out_ends_the_provider_session_too(portal, provider, browser, sql):
    await follow(browser, await back_to_portal(browser, portal))
    csrf = (await me(browser, portal))[1]["csrf_token"]

    async with browser.post(portal.url + "/auth/logout", headers={"X-CSRF-Token": csrf},
                            allow_redirects=False) as response:
        assert response.status == 302, await response.text()
        location = response.headers["Location"]
    assert location.startswith(provider.issuer + "/session/end?")
    query = parse_qs(urlsplit(location).query)
    assert query["client_id"] == [CLIENT_ID]
    assert query["post_logout_redirect_uri"] == [portal.url + "/"]
    hint = jwt_segment(query["id_token_hint"][0], 1)
    assert (hint["sub"], hint["aud"]) == ("alice", CLIENT_ID)

    assert (await me(browser, portal))[0] == 401
    assert signed_in_sessions(sql) == 0
    # The provider accepts the hint and sends the browser back to the portal.
    assert str(await confirm_logout(browser, location)) == portal.url + "/"


@pytest.mark.parametrize("forged", ["forged", "é€ non-ASCII"])
async def test_a_wrong_state_is_refused_without_a_session(portal, browser, sql, forged):
    callback = await back_to_portal(browser, portal)
    status, _location, page = await follow(browser, callback.update_query(state=forged))
    assert status == 400
    assert "Try again" in page
    assert (await me(browser, portal))[0] == 401
    assert signed_in_sessions(sql) == 0
    # The failed callback used the attempt up: the genuine callback (its state, nonce and verifier, an
    # unused code) cannot finish it afterwards, whoever sends it.
    status, _location, page = await follow(browser, callback)
    assert status == 400 and "no sign-in in progress" in page
    assert (await me(browser, portal))[0] == 401
    assert signed_in_sessions(sql) == 0
    assert sql("SELECT count(*) FROM users") == [(0,)]


async def test_a_replayed_code_is_refused_without_a_session(portal, browser, sql):
    callback = await back_to_portal(browser, portal)
    assert (await follow(browser, callback))[0] == 302

    # Someone else replays the (already used) code with a sign-in of their own.
    async with client_session() as attacker:
        authorize = await to_provider(attacker, portal)
        their_state = parse_qs(urlsplit(authorize).query)["state"][0]
        status, _location, page = await follow(attacker, callback.update_query(state=their_state))
        assert status == 400
        assert "Try again" in page
        assert (await me(attacker, portal))[0] == 401
    assert signed_in_sessions(sql) == 1  # only the genuine sign-in


async def test_denied_consent_is_refused_without_a_session(portal, browser, sql):
    callback = await back_to_portal(browser, portal, consent=False)
    assert callback.query["error"] == "access_denied"
    status, _location, page = await follow(browser, callback)
    assert status == 400
    assert "cancelled" in page
    assert signed_in_sessions(sql) == 0


async def test_the_portal_starts_while_the_provider_is_down_and_recovers(database_url, browser, sql):
    portal_port, provider_port = free_port(), free_port()
    base = f"http://127.0.0.1:{portal_port}"
    ops_token = "ops-token-for-this-test-0123456789"
    env = {**oidc_env(f"http://127.0.0.1:{provider_port}"), "OPS_TOKEN": ops_token}
    with run_portal(database_url, env, port=portal_port) as portal:
        # The provider's error text is for operators only: it shows with their bearer token.
        async with browser.get(portal.url + "/health", headers={"Authorization": f"Bearer {ops_token}"}) as response:
            health = await response.json()
        assert health["checks"]["auth"]["status"] == "degraded"
        assert "identity provider unreachable" in health["checks"]["auth"]["detail"]
        status, _location, page = await follow(browser, portal.url + "/auth/login")
        assert status == 400 and "not answering" in page

        with running_provider(port=provider_port, redirect_uris=[base + "/auth/callback"],
                              post_logout_uris=[base + "/"]):
            status, location, _ = await follow(browser, await back_to_portal(browser, portal))
            assert (status, location) == (302, "/")
            assert (await me(browser, portal))[0] == 200
