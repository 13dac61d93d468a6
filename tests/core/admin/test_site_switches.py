"""Site switches live in the database and every process obeys them: each one is set through one process
and takes effect on another (a real `portal` process), and the settings API refuses bad input."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import pytest

from portal_core.site import REFRESH_SECONDS
from tests.support.app import browser_multipart
from tests.support.portal import dev_sign_in, run_portal

# A change reaches another process at its next reload, REFRESH_SECONDS apart; this only bounds a broken one.
PROPAGATION_DEADLINE = REFRESH_SECONDS * 5


async def until_other_sees(http, url: str, expected: dict) -> None:
    deadline = time.monotonic() + PROPAGATION_DEADLINE
    while True:
        async with http.get(url + "/api/meta") as resp:
            site = (await resp.json())["site"]
        if all(site[k] == v for k, v in expected.items()):
            return
        assert time.monotonic() < deadline, f"the other process still has {site}, expected {expected}"
        await asyncio.sleep(0.1)


async def put_settings(admin, body) -> dict:
    async with admin.request("PUT", "/api/admin/settings", json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def try_sign_in(base: str, email: str) -> int:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + "/auth/login", allow_redirects=False) as resp:
            state = resp.headers["Location"].split("state=")[1]
        async with http.post(base + "/auth/callback", data={"state": state, "email": email},
                             allow_redirects=False) as resp:
            return resp.status


@pytest.mark.slow
async def test_each_switch_set_on_one_process_takes_effect_on_another(client, sign_in, sql, database_url):
    admin = await sign_in("root@example.com", admin=True)
    with run_portal(database_url) as other:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            csrf = await dev_sign_in(http, other.url, email="ada@example.com")
            body, header = browser_multipart(b"hello", "hello.txt", "text/plain")

            async def upload():
                async with http.post(other.url + "/api/artifacts", data=body,
                                     headers={"Content-Type": header, "X-CSRF-Token": csrf}) as resp:
                    return resp.status, await resp.json()

            status, artifact = await upload()
            assert status == 201

            # uploads_paused, signups_paused and the banner together.
            banner = "Maintenance until 10:00 UTC <b>not markup</b>"
            await put_settings(admin, {"uploads_paused": True, "signups_paused": True, "banner": banner})
            await until_other_sees(http, other.url, {"uploads_paused": True, "banner": banner})
            status, error = await upload()
            assert status == 503 and error["error"] == {"code": "uploads_paused", "message": banner}
            assert await try_sign_in(other.url, "newcomer@example.com") == 403  # no account yet: refused
            assert await try_sign_in(other.url, "ada@example.com") == 302  # an existing account: welcome
            async with http.get(other.url + "/no/such/page") as resp:  # a server-rendered page
                page = await resp.text()
            assert 'data-testid="site-banner"' in page and "&lt;b&gt;not markup&lt;/b&gt;" in page
            me = await (await http.get(other.url + "/api/me")).json()
            assert me["site"]["banner"] == banner

            # read_only: reads work, every write is refused, except turning it off.
            await put_settings(admin, {"uploads_paused": False, "read_only": True})
            await until_other_sees(http, other.url, {"read_only": True, "uploads_paused": False})
            async with http.get(other.url + "/api/artifacts") as resp:
                assert resp.status == 200
            async with http.delete(other.url + f"/api/artifacts/{artifact['id']}", headers={"X-CSRF-Token": csrf}) as resp:
                assert resp.status == 503 and (await resp.json())["error"]["code"] == "read_only"
            status, error = await upload()
            assert status == 503 and error["error"]["code"] == "read_only" and banner in error["error"]["message"]

            # Everything off again, from the other process this time (settings stay writable while read-only).
            other_admin = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))
            async with other_admin:
                admin_csrf = await dev_sign_in(other_admin, other.url, email="root@example.com", admin=True)
                async with other_admin.put(other.url + "/api/admin/settings", headers={"X-CSRF-Token": admin_csrf},
                                           json={"read_only": False, "signups_paused": False, "banner": ""}) as resp:
                    assert resp.status == 200
            assert (await upload())[0] == 201
            assert await try_sign_in(other.url, "newcomer@example.com") == 302
            # ... and the first process follows.
            deadline = time.monotonic() + PROPAGATION_DEADLINE
            while (await (await client.get("/api/meta")).json())["site"]["read_only"]:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
    assert sql("SELECT count(*) FROM artifacts") == [(2,)]
    changes = sql("SELECT data FROM events WHERE type = 'admin.settings_changed' ORDER BY id")
    assert changes[0][0]["uploads_paused"] == {"old": False, "new": True}
    assert changes[1][0] == {"uploads_paused": {"old": True, "new": False}, "read_only": {"old": False, "new": True}}
    assert len(changes) == 3


@pytest.mark.parametrize("body, code", [
    ({"uploads_paused": "yes"}, "bad_uploads_paused"), ({"read_only": 1}, "bad_read_only"),
    ({"banner": 5}, "bad_banner"), ({"banner": "x" * 301}, "bad_banner"), ({"banner": "two\nlines"}, "bad_banner"),
    ({"maintenance": True}, "unknown_setting"), ([], "bad_json"),
])
async def test_bad_settings_are_400_and_change_nothing(sign_in, sql, body, code):
    admin = await sign_in("root@example.com", admin=True)
    async with admin.request("PUT", "/api/admin/settings", json=body) as resp:
        assert resp.status == 400 and (await resp.json())["error"]["code"] == code
    assert sql("SELECT count(*) FROM site_settings") == [(0,)]
    assert sql("SELECT count(*) FROM events WHERE type = 'admin.settings_changed'") == [(0,)]


async def test_saving_the_same_settings_again_records_nothing(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    assert await put_settings(admin, {"banner": "  hello  "}) == {
        "uploads_paused": False, "signups_paused": False, "read_only": False, "banner": "hello"}
    await put_settings(admin, {"banner": "hello", "read_only": False})
    assert sql("SELECT count(*) FROM events WHERE type = 'admin.settings_changed'") == [(1,)]
    async with admin.request("GET", "/api/admin/settings") as resp:
        assert (await resp.json())["banner"] == "hello"


async def test_unknown_stored_switches_are_ignored(make_app, aiohttp_client, sql):
    """A newer build may have written a switch this one does not know, or another shape: it is skipped."""
    sql("INSERT INTO site_settings (name, value) VALUES ('holiday_mode', 'true'), ('read_only', '\"yes\"'), "
        "('banner', '\"Hi\"')")
    client = await aiohttp_client(make_app())
    assert (await (await client.get("/api/meta")).json())["site"] == {
        "banner": "Hi", "uploads_paused": False, "read_only": False}
