"""Sessions, CSRF, API tokens, security headers and same-origin redirects."""

from __future__ import annotations

import datetime as dt
import re

import aiohttp
import pytest

from portal_core import hookimpl
from portal_core.backends import Backend
from portal_core.interfaces import LoginFailed, ServiceUnavailable
from tests.support.db import create_token, create_user


async def test_me_is_401_when_signed_out(client):
    resp = await client.get("/api/me")
    assert resp.status == 401
    assert (await resp.json())["error"]["code"] == "unauthenticated"


async def test_sign_in_gets_a_new_session_id_and_sign_out_deletes_it(client, sql):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        base = str(client.make_url("")).rstrip("/")
        async with session.get(base + "/auth/login?next=/account", allow_redirects=False) as resp:
            pre_login = resp.cookies["portal_session"].value
            state = resp.headers["Location"].split("state=")[1]
        async with session.post(base + "/auth/callback", data={"state": state, "email": "ada@example.com"},
                                allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/account"
            signed_in = resp.cookies["portal_session"]
        assert signed_in.value != pre_login
        assert len(signed_in.value) == len(pre_login) == 43  # 256 random bits each, URL-safe base64
        assert signed_in["httponly"] and signed_in["samesite"] == "Lax"
        assert sql("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL") == [(1,)]
        assert sql("SELECT count(*) FROM sessions") == [(1,)]  # the pre-login session is gone
        me = await (await session.get(base + "/api/me")).json()
        assert len(me["csrf_token"]) == 43  # 256 random bits, URL-safe base64
        async with session.post(base + "/auth/logout", data={"csrf_token": me["csrf_token"]},
                                allow_redirects=False) as resp:
            assert resp.status == 302
        assert sql("SELECT count(*) FROM sessions") == [(0,)]
        assert (await session.get(base + "/api/me")).status == 401


async def test_sessions_are_server_side_and_work_across_processes(make_app, aiohttp_client, sql):
    first = await aiohttp_client(make_app())
    second = await aiohttp_client(make_app())
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        from tests.support.portal import dev_sign_in

        await dev_sign_in(session, str(first.make_url("")).rstrip("/"), email="ada@example.com")
        cookie = session.cookie_jar.filter_cookies(first.make_url("/"))["portal_session"].value
    resp = await second.get("/api/me", headers={"Cookie": f"portal_session={cookie}"})
    assert resp.status == 200
    assert (await resp.json())["user"]["email"] == "ada@example.com"
    # Only the hash of the cookie is stored.
    assert sql("SELECT count(*) FROM sessions WHERE id_hash = convert_to(%s, 'UTF8')", (cookie,)) == [(0,)]


@pytest.mark.parametrize("column, age", [("last_seen_at", "13 hours"), ("created_at", "15 days")])
async def test_idle_and_absolute_expiry(sign_in, sql, column, age):
    browser = await sign_in()
    assert (await browser.request("GET", "/api/me")).status == 200
    sql(f"UPDATE sessions SET {column} = now() - interval '{age}'")
    assert (await browser.request("GET", "/api/me")).status == 401


async def test_expiry_follows_the_configured_timeouts(make_app, aiohttp_client, sign_in, sql):
    client = await aiohttp_client(make_app(SESSION_IDLE_SECONDS="120"))
    browser = await sign_in(on=client)
    sql("UPDATE sessions SET last_seen_at = now() - interval '100 seconds'")
    assert (await browser.request("GET", "/api/me")).status == 200
    sql("UPDATE sessions SET last_seen_at = now() - interval '130 seconds'")
    assert (await browser.request("GET", "/api/me")).status == 401


@pytest.mark.parametrize("headers", [{}, {"X-CSRF-Token": "wrong"}])
async def test_state_changes_without_the_csrf_token_are_403_and_change_nothing(sign_in, sql, headers):
    browser = await sign_in()
    async with await browser.upload(b"keep me", "keep.txt") as resp:
        artifact = (await resp.json())["id"]
    attempts = [("POST", "/api/tokens", {"json": {"name": "x"}}), ("DELETE", f"/api/artifacts/{artifact}", {}),
                ("POST", "/api/billing/checkout", {"json": {"plan": "pro"}})]
    for method, path, kwargs in attempts:
        async with browser.request(method, path, csrf=False, headers=headers, **kwargs) as resp:
            assert resp.status == 403, (method, path)
            assert (await resp.json())["error"]["code"] == "csrf"
    async with await browser.upload(b"sneaky", "sneaky.txt", csrf=False, headers=headers) as resp:
        assert resp.status == 403
    assert sql("SELECT name FROM artifacts") == [("keep.txt",)]
    assert sql("SELECT count(*) FROM api_tokens") == [(0,)]


async def test_token_lifecycle(sign_in, sql, client):
    browser = await sign_in()
    async with browser.request("POST", "/api/tokens", json={"name": "ci job"}) as resp:
        assert resp.status == 201
        created = await resp.json()
    secret = created["token"]
    assert secret.startswith("pt_") and created["name"] == "ci job"
    listing = await (await browser.request("GET", "/api/tokens")).json()
    assert [t["name"] for t in listing["tokens"]] == ["ci job"]
    assert secret not in str(listing) and "token" not in listing["tokens"][0]
    assert secret.encode() not in b"".join(bytes(r[0]) for r in sql("SELECT token_hash FROM api_tokens"))

    bearer = {"Authorization": f"Bearer {secret}"}
    me = await client.get("/api/me", headers=bearer)
    assert me.status == 200 and (await me.json())["csrf_token"] is None
    assert (await client.get("/api/artifacts", headers=bearer)).status == 200
    assert sql("SELECT last_used_at IS NOT NULL FROM api_tokens") == [(True,)]
    # The owner's list says when it was last used (not when it was made).
    sql("UPDATE api_tokens SET created_at = '2026-01-01T00:00:00Z', last_used_at = '2026-02-03T04:05:06Z'")
    (listed,) = (await (await browser.request("GET", "/api/tokens")).json())["tokens"]
    assert (listed["created_at"], listed["last_used_at"]) == ("2026-01-01T00:00:00+00:00", "2026-02-03T04:05:06+00:00")
    # A token cannot manage tokens: a leaked one must not mint more.
    assert (await client.post("/api/tokens", json={"name": "more"}, headers=bearer)).status == 401
    assert (await client.get("/api/tokens", headers=bearer)).status == 401

    async with browser.request("DELETE", f"/api/tokens/{created['id']}") as resp:
        assert resp.status == 204
    assert (await client.get("/api/me", headers=bearer)).status == 401


async def test_tokens_belong_to_their_owner(sign_in, database_url):
    alice = await sign_in("alice@example.com")
    bob = await sign_in("bob@example.com")
    created = await (await alice.request("POST", "/api/tokens", json={"name": "alice's"})).json()
    async with bob.request("DELETE", f"/api/tokens/{created['id']}") as resp:
        assert resp.status == 404
    assert (await (await bob.request("GET", "/api/tokens")).json())["tokens"] == []
    assert len((await (await alice.request("GET", "/api/tokens")).json())["tokens"]) == 1


@pytest.mark.parametrize("body, status", [({"name": ""}, 400), ({"name": "x" * 101}, 400), ({}, 400), ([], 400)])
async def test_bad_token_requests_are_400(sign_in, sql, body, status):
    browser = await sign_in()
    async with browser.request("POST", "/api/tokens", json=body) as resp:
        assert resp.status == status
        assert "name" in (await resp.json())["error"]["message"]
    assert sql("SELECT count(*) FROM api_tokens") == [(0,)]


@pytest.mark.parametrize("header", ["Bearer pt_not-a-real-token", "Basic abc", "Bearer"])
async def test_bad_bearer_tokens_are_401(client, header):
    resp = await client.get("/api/artifacts", headers={"Authorization": header})
    assert resp.status == 401


@pytest.mark.parametrize("path", ["/", "/login", "/api/me", "/health", "/no-such-page", "/auth/login"])
async def test_security_headers_on_every_response(client, path):
    resp = await client.get(path, allow_redirects=False)
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Referrer-Policy"]


@pytest.mark.parametrize("next_value, expected", [
    ("/account", "/account"), ("/billing?x=1", "/billing?x=1"), ("https://evil.example/", "/"),
    ("//evil.example/x", "/"), ("/\\evil.example", "/"), ("javascript:alert(1)", "/"), ("", "/")])
async def test_next_redirect_stays_on_this_site(client, next_value, expected):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        base = str(client.make_url("")).rstrip("/")
        async with session.get(base + "/auth/login", params={"next": next_value}, allow_redirects=False) as resp:
            state = resp.headers["Location"].split("state=")[1]
        async with session.post(base + "/auth/callback", data={"state": state, "email": "a@example.com"},
                                allow_redirects=False) as resp:
            assert resp.headers["Location"] == expected


async def test_callback_with_a_wrong_state_creates_no_session(client, sql):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        base = str(client.make_url("")).rstrip("/")
        async with session.get(base + "/auth/login", allow_redirects=False) as resp:
            state = resp.headers["Location"].split("state=")[1]
        async with session.post(base + "/auth/callback", data={"state": "forged", "email": "a@example.com"},
                                allow_redirects=False) as resp:
            assert resp.status == 400
            page = await resp.text()
        assert "Try again" in page and 'href="/auth/login"' in page
        assert sql("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL") == [(0,)]
        # The attempt is used up, so the right state, sent afterwards by the same browser, fails too.
        async with session.post(base + "/auth/callback", data={"state": state, "email": "a@example.com"},
                                allow_redirects=False) as resp:
            assert resp.status == 400
            assert "no sign-in in progress" in await resp.text()
        assert sql("SELECT count(*) FROM sessions WHERE user_id IS NOT NULL") == [(0,)]
        assert sql("SELECT count(*) FROM users") == [(0,)]


async def test_expired_login_attempt_is_refused(client, sql):
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        base = str(client.make_url("")).rstrip("/")
        async with session.get(base + "/auth/login", allow_redirects=False) as resp:
            state = resp.headers["Location"].split("state=")[1]
        sql("UPDATE sessions SET data = jsonb_set(data, '{login,started}', to_jsonb(extract(epoch from now()) - 3600))")
        async with session.post(base + "/auth/callback", data={"state": state, "email": "a@example.com"},
                                allow_redirects=False) as resp:
            assert resp.status == 400
            assert "expired" in await resp.text()
    assert sql("SELECT count(*) FROM users") == [(0,)]


async def test_pages_redirect_to_sign_in_and_token_users_see_their_identity(client, database_url):
    resp = await client.get("/billing/success?session_id=x", allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login?next=/billing/success")
    token = create_token(database_url, create_user(database_url, email="grace@example.com", name="Grace"))
    me = await (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).json()
    assert me["user"]["email"] == "grace@example.com"


async def test_cookies_are_secure_when_the_public_url_is_https(make_app, aiohttp_client):
    client = await aiohttp_client(make_app(APP_BASE_URL="https://portal.example.com"))
    resp = await client.get("/auth/login", allow_redirects=False)
    cookie = resp.cookies["portal_session"]
    assert cookie["secure"] and cookie["httponly"] and cookie["samesite"] == "Lax"
    plain = await (await aiohttp_client(make_app())).get("/auth/login", allow_redirects=False)
    assert not plain.cookies["portal_session"]["secure"]


async def test_expired_sessions_are_deleted_at_start(make_app, aiohttp_client, sign_in, sql):
    browser = await sign_in()
    sql("INSERT INTO sessions (id_hash, csrf_token, last_seen_at) VALUES ('\\x01', 'x', now() - interval '13 hours')")
    sql("INSERT INTO sessions (id_hash, csrf_token, created_at) VALUES ('\\x02', 'x', now() - interval '15 days')")
    assert sql("SELECT count(*) FROM sessions") == [(3,)]
    await aiohttp_client(make_app())  # another process starting
    assert sql("SELECT count(*) FROM sessions") == [(1,)]
    assert (await browser.request("GET", "/api/me")).status == 200  # the live one is untouched


async def test_admin_routes_are_404_for_a_customer_and_need_the_admin_scope_on_a_token(sign_in, client):
    customer = await sign_in("customer@example.com")
    assert (await customer.request("GET", "/api/admin/users")).status == 404
    admin = await sign_in("root@example.com", admin=True)
    assert (await admin.request("GET", "/api/admin/users")).status == 200
    tokens = {}
    for scopes in (["admin"], ["artifacts:read", "artifacts:write"]):
        async with admin.request("POST", "/api/tokens", json={"name": scopes[0], "scopes": scopes}) as resp:
            tokens[scopes[0]] = (await resp.json())["token"]
    assert (await client.get("/api/admin/users", headers={"Authorization": f"Bearer {tokens['admin']}"})).status == 200
    resp = await client.get("/api/admin/users", headers={"Authorization": f"Bearer {tokens['artifacts:read']}"})
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "insufficient_scope"


async def test_a_token_counts_only_under_the_bearer_scheme_and_an_expired_one_says_when(sign_in, client, sql):
    browser = await sign_in()
    async with browser.request("POST", "/api/tokens", json={"name": "ci"}) as resp:
        secret = (await resp.json())["token"]
    assert (await client.get("/api/me", headers={"Authorization": f"bearer  {secret} "})).status == 200
    for header in (f"Basic {secret}", f"Token {secret}", secret):
        assert (await client.get("/api/me", headers={"Authorization": header})).status == 401, header
    sql("UPDATE api_tokens SET expires_at = '2026-01-02 03:04:05+00'")
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {secret}"})
    message = (await resp.json())["error"]["message"]
    assert resp.status == 401 and re.search(r"expired at (\S+);", message), message
    when = dt.datetime.fromisoformat(re.search(r"expired at (\S+);", message)[1])
    assert when == dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)  # whatever the server's time zone


def test_a_route_asking_for_an_unknown_scope_is_a_programming_error():
    from portal_core.web.sessions import BY_METHOD, required_scope

    with pytest.raises(ValueError, match="artifacts:reed"):
        required_scope("GET", "artifacts:reed")
    assert [required_scope(m, BY_METHOD) for m in ("GET", "HEAD", "OPTIONS", "POST", "DELETE")] == \
        ["artifacts:read"] * 3 + ["artifacts:write"] * 2
    assert required_scope("POST", None) is None and required_scope("GET", "admin") == "admin"


async def dev_sign_in(session: aiohttp.ClientSession, base: str, email: str) -> aiohttp.ClientResponse:
    """The development sign-in, as a browser goes through it; the callback's response (not followed)."""
    async with session.get(base + "/auth/login", allow_redirects=False) as resp:
        state = resp.headers["Location"].split("state=")[1]
    async with session.post(base + "/auth/callback", data={"state": state, "email": email},
                            allow_redirects=False) as resp:
        await resp.read()
        return resp


async def test_while_signups_are_paused_only_people_with_an_account_sign_in(client, sql):
    from portal_core import keys

    base = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as ada:
        assert (await dev_sign_in(ada, base, "ada@example.com")).status == 302  # she has an account now
    sql("INSERT INTO site_settings (name, value) VALUES ('signups_paused', 'true'), ('banner', '\"Back on Monday.\"')")
    app = client.server.app
    await app[keys.SITE].refresh(app[keys.POOL])
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as bob:
        refused = await dev_sign_in(bob, base, "bob@example.com")
        assert refused.status == 403
        assert ("The portal is not accepting new accounts right now. Please try again later. Back on Monday."
                in await refused.text())
        assert (await bob.get(base + "/api/me")).status == 401
    assert sql("SELECT email FROM users") == [("ada@example.com",)]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as ada:
        assert (await dev_sign_in(ada, base, "ada@example.com")).status == 302
        assert (await ada.get(base + "/api/me")).status == 200
    # Her account was made at her first sign-in, once; she signed in twice.
    assert sql("SELECT type FROM events WHERE type IN ('user.created', 'user.signed_in') ORDER BY id") == [
        ("user.created",), ("user.signed_in",), ("user.signed_in",)]


async def test_a_suspended_account_cannot_sign_in_and_its_sign_out_just_forgets_the_cookie(client, sql):
    base = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as ada:
        assert (await dev_sign_in(ada, base, "ada@example.com")).status == 302
        csrf = (await (await ada.get(base + "/api/me")).json())["csrf_token"]
        (user_id,) = sql("SELECT id FROM users")[0]
        sql("UPDATE users SET frozen_at = now()")
        async with ada.post(base + "/auth/logout", data={"csrf_token": csrf}, allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/login"
            assert resp.cookies["portal_session"].value == ""  # the browser forgets it
        refused = await dev_sign_in(ada, base, "ada@example.com")
        assert refused.status == 403 and "This account is suspended." in await refused.text()
    assert sql("SELECT data->>'reason' FROM events WHERE type = 'user.sign_in_failed'") == [
        (f"account suspended (user {user_id})",)]


async def test_sign_out_is_for_browsers_a_token_cannot_end_a_session(client, sql, database_url):
    user_id = create_user(database_url)
    token = create_token(database_url, user_id)
    resp = await client.post("/auth/logout", headers={"Authorization": f"Bearer {token}"}, allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/login?next=")  # as if signed out
    assert sql("SELECT count(*) FROM events WHERE type = 'user.signed_out'") == [(0,)]
    assert (await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})).status == 200


class ProviderLogoutDown:
    """An auth backend ("flaky") that signs in like the development one but fails at ``step`` ("logout",
    "begin" or "complete") with ``error``."""

    __name__ = "flaky_auth"

    def __init__(self, error: Exception, step: str = "logout") -> None:
        self.error = error
        self.step = step

    @hookimpl
    def portal_auth_backend(self):
        import contextlib

        from plugins.dev_stubs.auth import DevAuth

        error, step = self.error, self.step

        class Flaky(DevAuth):
            name = "flaky"

            async def begin_login(self, **kwargs):
                if step == "begin":
                    raise error
                return await super().begin_login(**kwargs)

            async def complete_login(self, **kwargs):
                if step == "complete":
                    raise error
                return await super().complete_login(**kwargs)

            async def logout_url(self, *, session_data, post_logout_redirect_url):
                raise error

        @contextlib.asynccontextmanager
        async def open_flaky(ctx):
            yield Flaky()

        return Backend(name="flaky", open=open_flaky, development_only=True)


@pytest.mark.parametrize("error", [ServiceUnavailable("the provider is down"),
                                   LoginFailed("no sign-out here", reason="provider refused")])
async def test_a_provider_that_cannot_sign_out_still_ends_the_local_session(make_app, aiohttp_client, sql, error,
                                                                            caplog):
    client = await aiohttp_client(make_app([ProviderLogoutDown(error)], AUTH_BACKEND="flaky"))
    base = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        assert (await dev_sign_in(session, base, "ada@example.com")).status == 302
        me = await (await session.get(base + "/api/me")).json()
        async with session.post(base + "/auth/logout", data={"csrf_token": me["csrf_token"]},
                                allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/login"
        assert (await session.get(base + "/api/me")).status == 401
    assert sql("SELECT count(*) FROM sessions") == [(0,)]
    assert "provider logout unavailable, signed out locally" in caplog.text


@pytest.mark.parametrize("step, error, words, reason", [
    ("begin", ServiceUnavailable("the provider is down"), "the provider is down", "the provider is down"),
    ("begin", LoginFailed("Sign-in is closed today.", reason="closed"), "Sign-in is closed today.", "closed"),
    ("complete", ServiceUnavailable("the provider is down"), "The sign-in service is not answering right now.",
     "the provider is down"),
    # The audit trail keeps the first 300 characters of a reason.
    ("complete", LoginFailed("Your provider said no.", reason="denied: " + "x" * 400), "Your provider said no.",
     ("denied: " + "x" * 400)[:300])])
async def test_a_provider_failing_during_sign_in_gets_a_page_saying_so_and_no_session(make_app, aiohttp_client, sql,
                                                                                    step, error, words, reason):
    client = await aiohttp_client(make_app([ProviderLogoutDown(error, step)], AUTH_BACKEND="flaky"))
    base = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        if step == "begin":
            resp = await session.get(base + "/auth/login", allow_redirects=False)
        else:
            resp = await dev_sign_in(session, base, "ada@example.com")
        assert resp.status == 400 and words in await resp.text()
        assert (await session.get(base + "/api/me")).status == 401
    assert sql("SELECT count(*) FROM users") == [(0,)]
    assert sql("SELECT data->>'reason' FROM events WHERE type = 'user.sign_in_failed'") == [(reason,)]


async def test_the_sign_in_page_carries_the_next_page_the_server_accepts(client):
    resp = await client.get("/login?next=/account%3Ftab%3Dtokens")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert 'href="/auth/login?next=%2Faccount%3Ftab%3Dtokens"' in await resp.text()


async def test_the_csrf_header_counts_for_a_form_too_and_wins_over_its_field(client, sql):
    base = str(client.make_url("")).rstrip("/")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        assert (await dev_sign_in(session, base, "ada@example.com")).status == 302
        csrf = (await (await session.get(base + "/api/me")).json())["csrf_token"]
        # A wrong header is not rescued by a right field.
        async with session.post(base + "/auth/logout", data={"csrf_token": csrf}, headers={"X-CSRF-Token": "wrong"},
                                allow_redirects=False) as resp:
            assert resp.status == 403
        # The right header with a form that has no field signs out.
        async with session.post(base + "/auth/logout", data={"other": "1"}, headers={"X-CSRF-Token": csrf},
                                allow_redirects=False) as resp:
            assert resp.status == 302
    assert sql("SELECT count(*) FROM sessions") == [(0,)]


async def test_a_suspended_accounts_token_is_refused_saying_so(client, sql, database_url):
    token = create_token(database_url, create_user(database_url))
    sql("UPDATE users SET frozen_at = now()")
    resp = await client.get("/api/me", headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 401 and (await resp.json())["error"]["code"] == "suspended"


async def test_an_api_token_at_the_sign_in_link_starts_a_sign_in(client, database_url):
    """/auth/login skips ahead only for a browser already signed in; a token is not a browser's session."""
    token = create_token(database_url, create_user(database_url))
    resp = await client.get("/auth/login?next=/account", headers={"Authorization": f"Bearer {token}"},
                            allow_redirects=False)
    assert resp.status == 302 and resp.headers["Location"].startswith("/dev/login?state=")
