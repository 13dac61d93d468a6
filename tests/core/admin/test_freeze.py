"""Freezing an account: every session and token refused at once on every process (401 "this account is
suspended"), sign-in refused with a friendly page, nothing deleted; unfreezing gives it all back."""

from __future__ import annotations

import aiohttp
import pytest

from tests.support.db import create_token
from tests.support.portal import run_portal


def user_id(sql, email: str) -> int:
    return sql("SELECT id FROM users WHERE email = %s", (email,))[0][0]


async def patch(admin, user: int, body) -> aiohttp.ClientResponse:
    async with admin.request("PATCH", f"/api/admin/users/{user}", json=body) as resp:
        await resp.read()
        return resp


async def test_freezing_takes_effect_at_once_on_another_process_and_unfreezing_restores(
        client, sign_in, sql, database_url):
    admin = await sign_in("root@example.com", admin=True)
    customer = await sign_in("eve@example.com")
    async with await customer.upload(b"evidence", "kept.txt") as resp:
        assert resp.status == 201
    eve = user_id(sql, "eve@example.com")
    token = create_token(database_url, eve, "script")
    cookie = customer.session.cookie_jar.filter_cookies(client.make_url("/"))["portal_session"].value

    # A second, separate portal process on the same database.
    with run_portal(database_url) as other:
        async with aiohttp.ClientSession() as http:
            async def on_other(path: str, **headers) -> aiohttp.ClientResponse:
                async with http.get(other.url + path, headers=headers, allow_redirects=False) as resp:
                    await resp.read()
                    return resp

            session_headers = {"Cookie": f"portal_session={cookie}"}
            token_headers = {"Authorization": f"Bearer {token}"}
            assert (await on_other("/api/me", **session_headers)).status == 200
            assert (await on_other("/api/artifacts", **token_headers)).status == 200

            resp = await patch(admin, eve, {"frozen": True})
            assert resp.status == 200
            # No waiting: the very next request, on the other process, is refused.
            for path, headers in (("/api/me", session_headers), ("/api/artifacts", session_headers),
                                  ("/api/artifacts", token_headers), ("/api/me", token_headers)):
                async with http.get(other.url + path, headers=headers) as answer:
                    assert answer.status == 401, (path, headers)
                    error = (await answer.json())["error"]
                    assert error["code"] == "suspended" and "this account is suspended" in error["message"]

            assert (await patch(admin, eve, {"frozen": False})).status == 200
            assert (await on_other("/api/me", **session_headers)).status == 200
            assert (await on_other("/api/artifacts", **token_headers)).status == 200
    # Nothing was deleted meanwhile, and both changes are in the audit trail with the admin as actor.
    assert sql("SELECT count(*) FROM artifacts") == [(1,)]
    assert sql("SELECT count(*) FROM api_tokens") == [(1,)]
    assert sql("SELECT count(*) FROM sessions WHERE user_id = %s", (eve,)) == [(1,)]
    root = user_id(sql, "root@example.com")
    assert sql("SELECT type, actor_id, owner_id, subject_id FROM events WHERE type LIKE 'admin.%%' ORDER BY id") == [
        ("admin.user_frozen", root, eve, str(eve)), ("admin.user_unfrozen", root, eve, str(eve))]


async def test_a_frozen_user_cannot_sign_in_and_sees_why(client, sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    await sign_in("eve@example.com")
    eve = user_id(sql, "eve@example.com")
    assert (await patch(admin, eve, {"frozen": True})).status == 200
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        base = str(client.make_url("")).rstrip("/")
        async with http.get(base + "/auth/login", allow_redirects=False) as resp:
            state = resp.headers["Location"].split("state=")[1]
        async with http.post(base + "/auth/callback", data={"state": state, "email": "eve@example.com"},
                             allow_redirects=False) as resp:
            page = await resp.text()
            assert resp.status == 403
            assert "This account is suspended" in page and 'data-testid="sign-in-error"' in page
        assert (await http.get(base + "/api/me")).status == 401
    assert sql("SELECT count(*) FROM sessions WHERE user_id = %s", (eve,)) == [(1,)]  # only the earlier one
    assert sql("SELECT data->>'reason' FROM events WHERE type = 'user.sign_in_failed'") == [
        (f"account suspended (user {eve})",)]


async def test_the_suspended_browser_is_told_and_can_sign_out(client, sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    customer = await sign_in("eve@example.com")
    assert (await patch(admin, user_id(sql, "eve@example.com"), {"frozen": True})).status == 200
    async with customer.request("POST", "/auth/logout") as resp:
        assert resp.status == 302 and resp.headers["Location"] == "/login"
        assert resp.cookies["portal_session"].value == ""


@pytest.mark.parametrize("body, code", [
    ({}, "bad_patch"), ({"frozen": "yes"}, "bad_frozen"), ({"frozen": 1}, "bad_frozen"), ({"nope": True}, "bad_patch"),
    ({"frozen": True, "limits": {"quota": -1}}, "bad_limits"), ({"limits": {"quota": "lots"}}, "bad_limits"),
    ({"limits": {"speed": 1}}, "bad_limits"), ({"limits": []}, "bad_limits"), ([], "bad_json"),
])
async def test_bad_patches_are_400_and_change_nothing(sign_in, sql, body, code):
    admin = await sign_in("root@example.com", admin=True)
    await sign_in("eve@example.com")
    async with admin.request("PATCH", f"/api/admin/users/{user_id(sql, 'eve@example.com')}", json=body) as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == code
    assert sql("SELECT count(*) FROM users WHERE frozen_at IS NOT NULL OR limit_quota IS NOT NULL") == [(0,)]
    assert sql("SELECT count(*) FROM events WHERE type LIKE 'admin.%%'") == [(0,)]


async def test_an_admin_cannot_freeze_themselves_and_unknown_users_are_404(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    resp = await patch(admin, user_id(sql, "root@example.com"), {"frozen": True})
    assert resp.status == 409
    for path in ("/api/admin/users/999999", "/api/admin/users/abc"):
        async with admin.request("PATCH", path, json={"frozen": True}) as answer:
            assert answer.status == 404
    assert sql("SELECT count(*) FROM users WHERE frozen_at IS NOT NULL") == [(0,)]
