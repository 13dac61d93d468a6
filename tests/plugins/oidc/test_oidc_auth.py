"""OidcAuth against a real OpenID Connect provider (panva/oidc-provider on 127.0.0.1).

Each sign-in walks the provider's real login and consent pages over HTTP and stops at the redirect
back to the portal, then hands that redirect's parameters to OidcAuth as the core would.
"""

from __future__ import annotations

import asyncio
import base64
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from portal_core.interfaces import AuthProvider, LoginFailed
from portal_core.testing.conformance.shape import assert_implements
from tests.support.oidc import (
    CALLBACK_URL, POST_LOGOUT_URL, client_session, confirm_logout, free_port, jwt_segment, running_provider, sign_in)



async def sign_in_with(auth, browser, *, login="alice", consent=True):
    """Begin a login, walk the provider's pages; the (saved state, callback params) the core would hold."""
    start = await auth.begin_login(callback_url=CALLBACK_URL)
    back = await sign_in(browser, start.redirect_url, stop_at=CALLBACK_URL, login=login, consent=consent)
    return dict(start.state), dict(back.query)


async def login(auth, browser, **options):
    state, params = await sign_in_with(auth, browser, **options)
    return await auth.complete_login(params=params, state=state, callback_url=CALLBACK_URL)


async def test_full_code_flow_returns_the_identity(auth, browser, oidc_provider):
    start = await auth.begin_login(callback_url=CALLBACK_URL)
    query = parse_qs(urlsplit(start.redirect_url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [CALLBACK_URL]
    assert "code_verifier" not in query and start.state["code_verifier"] not in start.redirect_url
    json.dumps(start.state)  # the core keeps it in the session as JSON

    back = await sign_in(browser, start.redirect_url, stop_at=CALLBACK_URL, login="alice")
    identity = await auth.complete_login(params=dict(back.query), state=start.state, callback_url=CALLBACK_URL)

    assert identity.issuer == oidc_provider.issuer
    assert identity.subject == "alice"
    assert identity.email == "alice@example.com"
    assert identity.email_verified is True
    assert identity.name == "Test alice"
    assert identity.groups == ("customers",)
    assert identity.is_admin is False
    assert json.loads(json.dumps(dict(identity.session_data)))["id_token"].count(".") == 2
    assert_implements(auth, AuthProvider)


async def test_admin_group_members_are_admins(oidc_provider, make_auth, browser):
    identity = await login(make_auth(oidc_provider.issuer, admin_group="portal-admins"), browser, login="admin")
    assert "portal-admins" in identity.groups
    assert identity.is_admin is True


async def test_no_admin_group_configured_makes_nobody_admin(oidc_provider, make_auth, browser):
    identity = await login(make_auth(oidc_provider.issuer, admin_group=""), browser, login="admin")
    assert "portal-admins" in identity.groups
    assert identity.is_admin is False


async def test_logout_url_signs_out_at_the_provider(auth, browser):
    identity = await login(auth, browser)
    url = await auth.logout_url(session_data=identity.session_data, post_logout_redirect_url=POST_LOGOUT_URL)

    query = parse_qs(urlsplit(url).query)
    assert query["id_token_hint"] == [identity.session_data["id_token"]]
    assert query["client_id"] == [auth.client_id]
    assert query["post_logout_redirect_uri"] == [POST_LOGOUT_URL]
    # The provider accepts it: its confirmation page sends the browser back to the portal.
    assert str(await confirm_logout(browser, url)).startswith(POST_LOGOUT_URL)


async def test_logout_url_is_none_without_an_end_session_endpoint(aiohttp_server, make_auth):
    from aiohttp import web

    async def discovery(request):
        base = f"http://127.0.0.1:{request.url.port}"
        return web.json_response({"issuer": base, "authorization_endpoint": base + "/auth",
                                  "token_endpoint": base + "/token", "jwks_uri": base + "/jwks"})

    app = web.Application()
    app.router.add_get("/.well-known/openid-configuration", discovery)
    server = await aiohttp_server(app, host="127.0.0.1")
    auth = make_auth(f"http://127.0.0.1:{server.port}")
    assert await auth.logout_url(session_data={"id_token": "x.y.z"}, post_logout_redirect_url=POST_LOGOUT_URL) is None


async def test_a_wrong_state_is_refused(auth, browser):
    state, params = await sign_in_with(auth, browser)
    with pytest.raises(LoginFailed, match="try again") as failure:
        await auth.complete_login(params=dict(params, state="forged"), state=state, callback_url=CALLBACK_URL)
    assert "state mismatch" in failure.value.reason


async def test_a_callback_from_another_issuer_is_refused(auth, browser):
    state, params = await sign_in_with(auth, browser)
    assert params["iss"] == auth.metadata.configured_issuer  # RFC 9207 response parameter
    with pytest.raises(LoginFailed) as failure:
        await auth.complete_login(params=dict(params, iss="https://evil.example"), state=state, callback_url=CALLBACK_URL)
    assert "iss" in failure.value.reason


async def test_a_replayed_code_is_refused(auth, browser):
    state, params = await sign_in_with(auth, browser)
    await auth.complete_login(params=params, state=state, callback_url=CALLBACK_URL)
    with pytest.raises(LoginFailed) as failure:
        await auth.complete_login(params=params, state=state, callback_url=CALLBACK_URL)
    assert "invalid_grant" in failure.value.reason


async def test_a_wrong_nonce_is_refused(auth, browser):
    state, params = await sign_in_with(auth, browser)
    with pytest.raises(LoginFailed) as failure:
        await auth.complete_login(params=params, state=dict(state, nonce="another-nonce"), callback_url=CALLBACK_URL)
    assert "nonce" in failure.value.reason


def _reencode(part: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


async def test_a_tampered_id_token_is_refused(auth, browser):
    state, params = await sign_in_with(auth, browser)
    identity = await auth.complete_login(params=params, state=state, callback_url=CALLBACK_URL)
    token = identity.session_data["id_token"]
    assert (await auth.verify_id_token(token, nonce=state["nonce"]))["sub"] == "alice"

    header, payload, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    promoted = _reencode(dict(jwt_segment(token, 1), sub="admin", groups=["portal-admins"]))
    for forged in (f"{header}.{payload}.{flipped}", f"{header}.{promoted}.{signature}"):
        with pytest.raises(LoginFailed) as failure:
            await auth.verify_id_token(forged, nonce=state["nonce"])
        assert "signature" in failure.value.reason


async def test_an_unsigned_id_token_is_refused(auth, browser):
    state, params = await sign_in_with(auth, browser)
    token = (await auth.complete_login(params=params, state=state, callback_url=CALLBACK_URL)).session_data["id_token"]
    header = _reencode({"alg": "none", "kid": jwt_segment(token, 0)["kid"]})
    with pytest.raises(LoginFailed) as failure:
        await auth.verify_id_token(f"{header}.{token.split('.')[1]}.", nonce=state["nonce"])
    assert "signature" in failure.value.reason


async def test_an_id_token_for_another_client_is_refused(auth, oidc_provider, make_auth, browser):
    state, params = await sign_in_with(auth, browser)
    token = (await auth.complete_login(params=params, state=state, callback_url=CALLBACK_URL)).session_data["id_token"]
    other = make_auth(oidc_provider.issuer, client_id="another-client")
    with pytest.raises(LoginFailed) as failure:
        await other.verify_id_token(token, nonce=state["nonce"])
    assert "aud" in failure.value.reason


async def test_an_expired_id_token_is_refused_beyond_the_clock_skew(make_auth, browser):
    with running_provider(id_token_ttl=1) as provider:
        lenient = make_auth(provider.issuer, clock_skew=60)
        state, params = await sign_in_with(lenient, browser)
        token = (await lenient.complete_login(params=params, state=state, callback_url=CALLBACK_URL)).session_data["id_token"]
        claims = jwt_segment(token, 1)
        assert claims["exp"] - claims["iat"] == 1
        await asyncio.sleep(2.2)  # let the one-second token expire

        strict = make_auth(provider.issuer, clock_skew=0)
        with pytest.raises(LoginFailed) as failure:
            await strict.verify_id_token(token, nonce=state["nonce"])
        assert "expired" in failure.value.reason
        # Within POCKET_ID_CLOCK_SKEW the same token is still accepted.
        assert (await lenient.verify_id_token(token, nonce=state["nonce"]))["sub"] == "alice"


async def test_denied_consent_is_refused(auth, browser):
    state, params = await sign_in_with(auth, browser, consent=False)
    assert params["error"] == "access_denied"
    with pytest.raises(LoginFailed, match="cancelled") as failure:
        await auth.complete_login(params=params, state=state, callback_url=CALLBACK_URL)
    assert "access_denied" in failure.value.reason


async def test_health_is_degraded_while_the_provider_is_down_then_recovers(make_auth, browser):
    port = free_port()
    issuer = f"http://127.0.0.1:{port}"
    auth = make_auth(issuer)
    health = await auth.health()
    assert health.status == "degraded"
    assert health.detail.startswith("identity provider unreachable: ")
    with pytest.raises(LoginFailed, match="not answering"):
        await auth.begin_login(callback_url=CALLBACK_URL)

    with running_provider(port=port) as provider:
        assert provider.issuer == issuer
        assert (await auth.health()).status == "ok"
        identity = await login(auth, browser)
        assert identity.subject == "alice"


async def sign_in_across_a_key_rotation(make_auth, *, jwks_min_refetch: float):
    """Sign in once, restart the provider on the same port (a new signing key), then sign in again.

    Returns the first and second providers and the second sign-in's Identity or LoginFailed.
    """
    port = free_port()
    with running_provider(port=port) as first:
        auth = make_auth(first.issuer, jwks_min_refetch=jwks_min_refetch)
        async with client_session() as browser:
            await login(auth, browser)
    with running_provider(port=port) as second:
        async with client_session() as browser:
            try:
                return first, second, await login(auth, browser)
            except LoginFailed as failure:
                return first, second, failure


async def test_rotated_signing_keys_are_fetched_again(make_auth):
    first, second, identity = await sign_in_across_a_key_rotation(make_auth, jwks_min_refetch=0)
    assert second.kid != first.kid
    assert jwt_segment(identity.session_data["id_token"], 0)["kid"] == second.kid


async def test_unknown_key_ids_do_not_refetch_keys_within_the_rate_limit(make_auth):
    _first, _second, failure = await sign_in_across_a_key_rotation(make_auth, jwks_min_refetch=3600)
    assert isinstance(failure, LoginFailed)
    assert "does not list" in failure.reason
