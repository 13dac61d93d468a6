"""Share links through the API and the public pages: create, download signed out, revoke, expire, delete,
the atomic download limit, plan rules, headers, events and bad input."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re

import aiohttp
import psycopg2
import pytest

from tests.support.db import run_sql
from tests.support.sharing import make_pro, me_id, share, token_of, wait_for_lock_waiters

HIDDEN = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}


def assert_private(resp) -> None:
    for name, value in HIDDEN.items():
        assert resp.headers.get(name) == value, (resp.status, name, resp.headers.get(name))


async def upload(browser, data: bytes, name: str = "report.pdf") -> dict:
    async with await browser.upload(data, name, "application/pdf") as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def test_a_signed_out_visitor_sees_the_file_and_downloads_the_same_bytes(sign_in, client, sql):
    browser = await sign_in("ada@example.com")
    data = os.urandom(200_000)
    artifact = await upload(browser, data)
    created = await share(browser, artifact["id"])
    assert created["has_password"] is False and created["downloads"] == 0 and created["max_downloads"] is None
    token = created["url"].rsplit("/", 1)[1]
    assert created["url"] == f"http://127.0.0.1:8080/s/{token}"
    assert len(token) >= 22  # at least 128 bits in URL-safe base64
    assert sql("SELECT count(*) FROM shares WHERE token_hash = %s", (hashlib.sha256(token.encode()).digest(),)) == [(1,)]
    assert sql("SELECT count(*) FROM shares WHERE position(%s::bytea in token_hash) > 0", (token.encode(),)) == [(0,)]

    async with aiohttp.ClientSession() as guest:  # no cookies: signed out
        async with guest.get(client.make_url(f"/s/{token}")) as resp:
            assert resp.status == 200
            assert_private(resp)
            page = await resp.text()
        assert "report.pdf" in page and hashlib.sha256(data).hexdigest() in page and "Ada" in page
        assert 'id="sign-out"' not in page  # the signed-out header
        async with guest.get(client.make_url(f"/s/{token}/download"), allow_redirects=False) as resp:
            assert resp.status == 200
            assert_private(resp)
            assert await resp.read() == data
            assert resp.headers["Content-Disposition"].startswith('attachment; filename="report.pdf"')

    async with browser.request("GET", "/api/shares") as resp:
        listing = await resp.json()
    assert [(s["id"], s["downloads"], s["state"]) for s in listing["shares"]] == [(created["id"], 1, "active")]
    assert listing["rules"] == {"plan": "free", "max_expires_in": 7 * 86400, "default_expires_in": 7 * 86400,
                                "passwords": False, "file_requests": False}
    events = sql("SELECT type, actor_id, owner_id, subject_id, ip, data->>'downloads' FROM events "
                 "WHERE type LIKE 'share.%%' ORDER BY id")
    owner = await me_id(browser)
    assert events == [("share.created", owner, owner, created["id"], "127.0.0.1", None),
                      ("share.downloaded", None, owner, created["id"], "127.0.0.1", "1")]
    assert sql("SELECT data FROM events WHERE type = 'share.created'") == [(
        {"artifact_id": artifact["id"], "name": "report.pdf", "expires_at": created["expires_at"], "max_downloads": None,
         "has_password": False},)]


async def test_the_default_expiry_is_seven_days_and_a_shorter_one_is_kept(sign_in, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    default = await share(browser, artifact["id"])
    short = await share(browser, artifact["id"], expires_in=3600, max_downloads=2)
    rows = dict(sql("SELECT id::text, round(EXTRACT(EPOCH FROM expires_at - created_at)) FROM shares"))
    assert rows == {default["id"]: 7 * 86400, short["id"]: 3600}
    assert short["max_downloads"] == 2


@pytest.mark.parametrize("change, state, words", [
    ("UPDATE shares SET revoked_at = now()", "revoked", "This link was revoked"),
    ("UPDATE shares SET expires_at = now() - interval '1 minute'", "expired", "This link has expired"),
    ("UPDATE shares SET max_downloads = 1, downloads = 1", "exhausted", "This link has been used up"),
])
async def test_a_link_that_stopped_working_answers_410_saying_why(sign_in, client, sql, change, state, words):
    browser = await sign_in()
    artifact = await upload(browser, b"gone soon")
    token = (await share(browser, artifact["id"]))["url"].rsplit("/", 1)[1]
    sql(change)
    for path in (f"/s/{token}", f"/s/{token}/download"):
        async with aiohttp.ClientSession() as guest, guest.get(client.make_url(path), allow_redirects=False) as resp:
            assert resp.status == 410, path
            assert_private(resp)
            assert words in await resp.text()
    async with browser.request("GET", "/api/shares") as resp:
        assert [s["state"] for s in (await resp.json())["shares"]] == [state]


async def test_revoking_makes_the_link_answer_410_at_once_and_is_recorded(sign_in, client, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"revoke me")
    created = await share(browser, artifact["id"])
    url = client.make_url(f"/s/{created['url'].rsplit('/', 1)[1]}/download")
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 200
    async with browser.request("DELETE", f"/api/shares/{created['id']}") as resp:
        assert resp.status == 204
    async with browser.request("DELETE", f"/api/shares/{created['id']}") as resp:
        assert resp.status == 204  # twice is fine, recorded once
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 410
        assert "This link was revoked" in await resp.text()
    assert sql("SELECT data FROM events WHERE type = 'share.revoked' AND subject_id = %s", (created["id"],)) == [
        ({"artifact_id": artifact["id"], "name": artifact["name"]},)]


async def test_deleting_the_artifact_makes_its_links_answer_410(sign_in, client, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"delete me", "notes.txt")
    tokens = [(await share(browser, artifact["id"]))["url"].rsplit("/", 1)[1] for _ in range(2)]
    async with browser.request("DELETE", f"/api/artifacts/{artifact['id']}") as resp:
        assert resp.status == 204
    for token in tokens:
        for path in (f"/s/{token}", f"/s/{token}/download"):
            async with aiohttp.ClientSession() as guest, guest.get(client.make_url(path)) as resp:
                assert resp.status == 410
                assert "This file was deleted" in await resp.text()
    async with browser.request("GET", "/api/shares") as resp:
        shares = (await resp.json())["shares"]
    assert {(s["state"], s["name"], s["artifact_id"]) for s in shares} == {("deleted", "notes.txt", None)}
    # Revoking a link to a deleted file records the name it had, and no artifact.
    async with browser.request("DELETE", f"/api/shares/{shares[0]['id']}") as resp:
        assert resp.status == 204
    assert sql("SELECT data FROM events WHERE type = 'share.revoked'") == [({"artifact_id": None, "name": "notes.txt"},)]


async def test_a_link_to_a_file_that_cannot_be_served_says_why_in_a_page_and_counts_nothing(sign_in, client, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"held back")
    created = await share(browser, artifact["id"], max_downloads=1)
    sql("UPDATE artifacts SET verification = 'quarantined', verification_detail = 'the bytes differ' WHERE id = %s",
        (artifact["id"],))
    async with aiohttp.ClientSession() as guest, guest.get(client.make_url(
            f"/s/{token_of(created['url'])}/download")) as resp:
        assert resp.status == 409 and resp.content_type == "text/html"
        page = await resp.text()
    assert "The file cannot be downloaded right now" in page and "the bytes differ" in page
    assert sql("SELECT downloads FROM shares") == [(0,)]
    assert sql("SELECT count(*) FROM events WHERE type = 'share.downloaded'") == [(0,)]


async def test_twenty_concurrent_downloads_against_a_limit_of_five_exactly_five_succeed(sign_in, client, sql, database_url):
    browser = await sign_in()
    data = os.urandom(50_000)
    artifact = await upload(browser, data)
    created = await share(browser, artifact["id"], max_downloads=5)
    url = client.make_url(f"/s/{created['url'].rsplit('/', 1)[1]}/download")
    # A gate: hold the link's row so every request reaches the counting UPDATE and queues there together.
    gate = psycopg2.connect(database_url)
    gate_cur = gate.cursor()
    gate_cur.execute("SELECT 1 FROM shares WHERE id = %s FOR UPDATE", (created["id"],))
    async with aiohttp.ClientSession() as guests:
        async def fetch():
            async with guests.get(url) as resp:
                return resp.status, await resp.read()

        tasks = [asyncio.ensure_future(fetch()) for _ in range(20)]
        await wait_for_lock_waiters(database_url, at_least=10)  # the pool's ten connections, all waiting
        gate.commit()
        gate.close()
        results = await asyncio.gather(*tasks)
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] * 5 + [410] * 15
    assert all(body == data for status, body in results if status == 200)
    assert sql("SELECT downloads FROM shares") == [(5,)]
    assert sql("SELECT count(*) FROM events WHERE type = 'share.downloaded'") == [(5,)]


async def test_free_plan_rules_are_refused_naming_the_rule_and_the_upgrade(sign_in, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    cases = [({"expires_in": 8 * 86400}, "the free plan allows an expiry of at most 7 days"),
             ({"password": "hunter22"}, "the free plan does not allow passwords on share links")]
    for body, rule in cases:
        async with browser.request("POST", f"/api/artifacts/{artifact['id']}/shares", json=body) as resp:
            assert resp.status == 403, body
            error = (await resp.json())["error"]
        assert error["code"] == "plan_rule"
        assert error["message"].startswith(rule) and error["message"].endswith("upgrade to Pro on the Billing page")
    async with browser.request("POST", "/api/requests", json={"title": "Tax papers"}) as resp:
        assert resp.status == 403
        error = (await resp.json())["error"]
    assert error == {"code": "plan_rule", "message": "the free plan does not include file requests; "
                                                     "upgrade to Pro on the Billing page"}
    assert sql("SELECT count(*) FROM shares") == [(0,)] and sql("SELECT count(*) FROM file_requests") == [(0,)]
    # Pro lifts them, up to its own rule.
    make_pro(sql, await me_id(browser))
    assert (await share(browser, artifact["id"], expires_in=90 * 86400, password="hunter22"))["has_password"]
    async with browser.request("POST", f"/api/artifacts/{artifact['id']}/shares", json={"expires_in": 91 * 86400}) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["message"].endswith("no plan offers more")


async def test_plan_rules_come_from_settings(make_app, aiohttp_client, sign_in, sql):
    client = await aiohttp_client(make_app(PLAN_FREE_SHARE_MAX_DAYS="2", PLAN_FREE_SHARE_PASSWORDS="true"))
    browser = await sign_in(on=client)
    artifact = await upload(browser, b"x")
    async with browser.request("GET", "/api/shares") as resp:
        rules = (await resp.json())["rules"]
    assert (rules["max_expires_in"], rules["default_expires_in"], rules["passwords"]) == (2 * 86400, 2 * 86400, True)
    assert (await share(browser, artifact["id"], password="pw"))["has_password"]
    async with browser.request("POST", f"/api/artifacts/{artifact['id']}/shares", json={"expires_in": 3 * 86400}) as resp:
        assert (await resp.json())["error"]["message"].startswith("the free plan allows an expiry of at most 2 days")


BAD_SHARES = [
    ("not json", "bad_json"), ("[]", "bad_json"), ('{"expires_in": 10}', "bad_expires_in"),
    ('{"expires_in": "1d"}', "bad_expires_in"), ('{"expires_in": true}', "bad_expires_in"),
    ('{"max_downloads": 0}', "bad_max_downloads"), ('{"max_downloads": 1.5}', "bad_max_downloads"),
    ('{"password": 1234}', "bad_password"), ('{"password": "a\\u0000b"}', "bad_text"),
    ('{"max_download": 3}', "unknown_field"),
]


async def test_bad_share_input_is_400_naming_it_and_creates_nothing(sign_in, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    for body, code in BAD_SHARES:
        async with browser.request("POST", f"/api/artifacts/{artifact['id']}/shares", data=body,
                                   headers={"Content-Type": "application/json"}) as resp:
            assert resp.status == 400, (body, await resp.text())
            assert (await resp.json())["error"]["code"] == code, body
    assert sql("SELECT count(*) FROM shares") == [(0,)]


async def test_nobody_shares_or_revokes_what_is_not_theirs(sign_in, sql):
    alice = await sign_in("alice@example.com")
    bob = await sign_in("bob@example.com")
    artifact = await upload(alice, b"alice's")
    created = await share(alice, artifact["id"])
    for path in (f"/api/artifacts/{artifact['id']}/shares", "/api/artifacts/not-a-uuid/shares"):
        async with bob.request("POST", path, json={}) as resp:
            assert resp.status == 404
    for path in (f"/api/shares/{created['id']}", "/api/shares/nope"):
        async with bob.request("DELETE", path) as resp:
            assert resp.status == 404
    async with bob.request("GET", "/api/shares") as resp:
        assert (await resp.json())["shares"] == []
    assert sql("SELECT count(*), count(revoked_at) FROM shares") == [(1, 0)]


@pytest.mark.parametrize("path", ["/s/{token}", "/s/{token}/download"])
async def test_unknown_and_malformed_tokens_are_404_pages(client, path):
    for token in ("A" * 32, "short", "x" * 200, "a.b~c" * 6 + "zz"):
        resp = await client.get(path.format(token=token), allow_redirects=False)
        assert resp.status == 404, token
        assert_private(resp)
        assert "This link does not exist" in await resp.text()


async def test_a_link_checkers_head_request_counts_nothing(sign_in, client, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    token = (await share(browser, artifact["id"]))["url"].rsplit("/", 1)[1]
    resp = await client.head(f"/s/{token}/download")
    assert resp.status == 405
    resp = await client.head(f"/s/{token}")
    assert resp.status == 200
    assert sql("SELECT downloads FROM shares") == [(0,)]


async def test_deleting_the_owner_takes_their_links_with_them(sign_in, client, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    token = (await share(browser, artifact["id"]))["url"].rsplit("/", 1)[1]
    sql("DELETE FROM users")
    assert sql("SELECT count(*) FROM shares") == [(0,)]
    resp = await client.get(f"/s/{token}")
    assert resp.status == 404


async def test_the_token_never_reaches_the_logs_when_a_link_fails(sign_in, client, sql, tmp_path, caplog):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    token = (await share(browser, artifact["id"]))["url"].rsplit("/", 1)[1]
    # Break the stored object for real: a directory where the file was makes the storage's read fail.
    (key,) = sql("SELECT storage_key FROM artifacts")[0]
    stored = tmp_path / "data" / "artifacts" / key
    stored.unlink()
    stored.mkdir()
    caplog.set_level("DEBUG")
    resp = await client.get(f"/s/{token}/download")
    assert resp.status == 500
    assert_private(resp)
    # The test server writes aiohttp's access log; `portal` never does (serve.py runs with access_log=None).
    lines = [caplog.handler.format(r) for r in caplog.records if r.name != "aiohttp.access"]
    assert any("unhandled error in GET /s/{token}/download" in line for line in lines)
    assert not [line for line in lines if token in line]
    assert not re.search(re.escape(token), resp.headers.get("Location", ""))


async def test_housekeeping_forgets_old_wrong_passwords_and_links_ended_a_month_ago(sign_in, client, sql):
    from portal_core.housekeeping import ended_links, run_jobs

    browser = await sign_in()
    artifact = await upload(browser, b"x")
    ids = [(await share(browser, artifact["id"]))["id"] for _ in range(4)]
    sql("UPDATE shares SET expires_at = now() - interval '31 days' WHERE id = %s", (ids[0],))
    sql("UPDATE shares SET revoked_at = now() - interval '31 days' WHERE id = %s", (ids[1],))
    sql("UPDATE shares SET expires_at = now() - interval '29 days' WHERE id = %s", (ids[2],))
    sql("INSERT INTO share_password_failures (share_id, attempted_at) VALUES (%s, now() - interval '11 minutes'), "
        "(%s, now() - interval '9 minutes')", (ids[3], ids[3]))
    await run_jobs(client.server.app, (ended_links,))
    assert sorted(row[0] for row in sql("SELECT id::text FROM shares")) == sorted(ids[2:])
    assert sql("SELECT count(*) FROM share_password_failures") == [(1,)]


async def test_the_token_stays_out_of_the_warning_when_the_database_goes_away(sign_in, client, sql, caplog,
                                                                            postgres_admin_url, database_url):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    token = (await share(browser, artifact["id"]))["url"].rsplit("/", 1)[1]
    # The database goes away: it takes no new connections and drops the ones the portal holds.
    name = database_url.rsplit("/", 1)[1]
    run_sql(postgres_admin_url, f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    run_sql(postgres_admin_url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,))
    caplog.set_level("DEBUG")
    resp = await client.get(f"/s/{token}")
    assert resp.status == 503
    assert_private(resp)
    lines = [caplog.handler.format(r) for r in caplog.records if r.name != "aiohttp.access"]
    assert any("database unavailable during GET /s/{token}" in line for line in lines), lines
    assert not [line for line in lines if token in line]


async def test_on_r2_a_share_redirects_to_storage_and_a_guests_file_lands_in_the_bucket(
        make_app, aiohttp_client, sign_in, sql, moto_endpoint, s3_bucket, s3):
    from tests.support.moto import object_keys, r2_env
    from tests.support.sharing import browser_form, make_pro

    client = await aiohttp_client(make_app(STORAGE_BACKEND="r2", **r2_env(moto_endpoint, s3_bucket)))
    browser = await sign_in(on=client)
    data = os.urandom(100_000)
    artifact = await upload(browser, data)
    token = (await share(browser, artifact["id"], max_downloads=1))["url"].rsplit("/", 1)[1]
    async with aiohttp.ClientSession() as guest:
        async with guest.get(client.make_url(f"/s/{token}/download"), allow_redirects=False) as resp:
            assert resp.status == 302
            assert_private(resp)  # the browser sends no Referer to storage
            location = resp.headers["Location"]
        assert location.startswith(moto_endpoint)
        async with guest.get(location) as resp:
            assert resp.status == 200 and await resp.read() == data
        async with guest.get(client.make_url(f"/s/{token}/download"), allow_redirects=False) as resp:
            assert resp.status == 410  # the one download was the redirect

        make_pro(sql, await me_id(browser))
        async with browser.request("POST", "/api/requests", json={"title": "Scans"}) as resp:
            request_token = (await resp.json())["url"].rsplit("/", 1)[1]
        body, content_type = browser_form({"scan.pdf": b"%PDF scan"})
        async with guest.post(client.make_url(f"/r/{request_token}"), data=body,
                              headers={"Content-Type": content_type}) as resp:
            assert resp.status == 201, await resp.text()
    keys = dict(sql("SELECT name, storage_key FROM artifacts"))
    assert sorted(await object_keys(s3, s3_bucket)) == sorted(keys.values())
    assert set(keys) == {"report.pdf", "scan.pdf"}


async def test_a_suspended_owners_links_stop_working_until_unfrozen(sign_in, client, sql):
    browser = await sign_in()
    artifact = await upload(browser, b"x")
    token = (await share(browser, artifact["id"]))["url"].rsplit("/", 1)[1]
    sql("UPDATE users SET frozen_at = now()")
    for path in (f"/s/{token}", f"/s/{token}/download"):
        resp = await client.get(path)
        assert resp.status == 403, path
        assert_private(resp)
        assert "has been suspended" in await resp.text()
    sql("UPDATE users SET frozen_at = NULL")
    resp = await client.get(f"/s/{token}/download")
    assert resp.status == 200 and await resp.read() == b"x"
    assert sql("SELECT downloads FROM shares") == [(1,)]
