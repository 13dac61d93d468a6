"""API tokens carry scopes and may expire: 403 outside the scopes, 401 once expired, on every route —
including the listing, which checks the credential inside its own one-round-trip query."""

from __future__ import annotations

import pytest

from tests.support.app import browser_multipart


async def make_token(browser, **body) -> tuple[int, dict]:
    async with browser.request("POST", "/api/tokens", json={"name": "t", **body}) as resp:
        return resp.status, await resp.json()


def bearer(secret: str) -> dict:
    return {"Authorization": f"Bearer {secret}"}


async def upload(client, secret: str, data: bytes = b"x"):
    body, header = browser_multipart(data, "a.txt", "text/plain")
    return await client.post("/api/artifacts", data=body, headers={**bearer(secret), "Content-Type": header})


async def test_default_scopes_are_both_artifact_scopes_and_no_expiry(sign_in, client):
    browser = await sign_in()
    status, token = await make_token(browser)
    assert status == 201
    assert token["scopes"] == ["artifacts:read", "artifacts:write"] and token["expires_at"] is None
    listed = (await (await browser.request("GET", "/api/tokens")).json())["tokens"][0]
    assert listed["scopes"] == token["scopes"] and listed["expires_at"] is None
    assert (await upload(client, token["token"])).status == 201
    assert (await client.get("/api/artifacts", headers=bearer(token["token"]))).status == 200


async def test_a_read_only_token_reads_but_cannot_write(sign_in, client, sql):
    browser = await sign_in()
    async with await browser.upload(b"keep", "keep.txt") as resp:
        artifact = (await resp.json())["id"]
    _status, token = await make_token(browser, scopes=["artifacts:read"])
    read = bearer(token["token"])
    assert (await client.get("/api/artifacts", headers=read)).status == 200
    assert (await client.get(f"/api/artifacts/{artifact}", headers=read)).status == 200
    assert (await client.get(f"/api/artifacts/{artifact}/download", headers=read)).status == 200
    for resp in (await upload(client, token["token"]), await client.delete(f"/api/artifacts/{artifact}", headers=read)):
        assert resp.status == 403
        error = (await resp.json())["error"]
        assert error["code"] == "insufficient_scope" and "artifacts:write" in error["message"]
    assert sql("SELECT name FROM artifacts") == [("keep.txt",)]


async def test_a_write_only_token_uploads_but_cannot_list(sign_in, client):
    browser = await sign_in()
    _status, token = await make_token(browser, scopes=["artifacts:write"])
    assert (await upload(client, token["token"])).status == 201
    resp = await client.get("/api/artifacts", headers=bearer(token["token"]))  # the one-round-trip listing
    assert resp.status == 403 and "artifacts:read" in (await resp.json())["error"]["message"]
    # Any live token may still ask who it belongs to.
    assert (await client.get("/api/me", headers=bearer(token["token"]))).status == 200


async def test_only_an_admin_can_create_an_admin_token(sign_in, sql):
    customer = await sign_in("customer@example.com")
    status, body = await make_token(customer, scopes=["admin"])
    assert status == 403 and body["error"]["code"] == "admin_scope"
    admin = await sign_in("root@example.com", admin=True)
    status, body = await make_token(admin, scopes=["admin", "artifacts:read"])
    assert status == 201 and body["scopes"] == ["artifacts:read", "admin"]
    assert sql("SELECT u.email FROM api_tokens t JOIN users u ON u.id = t.user_id") == [("root@example.com",)]


@pytest.mark.parametrize("body, field", [
    ({"scopes": []}, "scopes"), ({"scopes": "artifacts:read"}, "scopes"), ({"scopes": ["artifacts:delete"]}, "scopes"),
    ({"scopes": [1]}, "scopes"), ({"expires_in": 0}, "expires_in"), ({"expires_in": "3600"}, "expires_in"),
    ({"expires_in": 10**12}, "expires_in"), ({"expires_in": True}, "expires_in"),
])
async def test_bad_scopes_or_expiry_are_400_naming_them_and_create_nothing(sign_in, sql, body, field):
    browser = await sign_in()
    status, answer = await make_token(browser, **body)
    assert status == 400 and field in answer["error"]["message"]
    assert sql("SELECT count(*) FROM api_tokens") == [(0,)]


async def test_an_expired_token_is_401_everywhere_until_then_it_works(sign_in, client, sql):
    browser = await sign_in()
    status, token = await make_token(browser, expires_in=3600)
    assert status == 201 and token["expires_at"] is not None
    headers = bearer(token["token"])
    assert (await client.get("/api/artifacts", headers=headers)).status == 200
    sql("UPDATE api_tokens SET expires_at = now() - interval '1 second'")
    for resp in (await client.get("/api/artifacts", headers=headers), await client.get("/api/me", headers=headers),
                 await upload(client, token["token"])):
        assert resp.status == 401
        error = (await resp.json())["error"]
        assert error["code"] == "token_expired" and "expired" in error["message"]
    listed = (await (await browser.request("GET", "/api/tokens")).json())["tokens"][0]
    assert listed["expires_at"] is not None
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]


async def test_housekeeping_deletes_tokens_a_month_after_they_expired_and_keeps_the_rest(sign_in, client, sql):
    from portal_core.housekeeping import expired_tokens, run_jobs

    browser = await sign_in()
    for name, expires_in in (("long gone", 3600), ("just expired", 3600), ("live", 3600), ("forever", None)):
        assert (await make_token(browser, name=name, **({"expires_in": expires_in} if expires_in else {})))[0] == 201
    sql("UPDATE api_tokens SET expires_at = now() - interval '31 days' WHERE name = 'long gone'")
    sql("UPDATE api_tokens SET expires_at = now() - interval '29 days' WHERE name = 'just expired'")
    await run_jobs(client.server.app, (expired_tokens,))
    listed = (await (await browser.request("GET", "/api/tokens")).json())["tokens"]
    assert sorted(t["name"] for t in listed) == ["forever", "just expired", "live"]


async def test_token_use_is_recorded_at_most_once_a_minute_for_the_owner(sign_in, client, sql):
    browser = await sign_in()
    _status, token = await make_token(browser, name="ci job")
    for _ in range(3):
        assert (await client.get("/api/artifacts", headers=bearer(token["token"]))).status == 200
        assert (await client.get("/api/me", headers=bearer(token["token"]))).status == 200
    rows = sql("SELECT actor_id = owner_id, subject_id, data->>'name' FROM events WHERE type = 'token.used'")
    assert rows == [(True, token["id"], "ci job")]
    sql("UPDATE api_tokens SET last_used_at = now() - interval '2 minutes'")
    assert (await client.get("/api/me", headers=bearer(token["token"]))).status == 200
    assert sql("SELECT count(*) FROM events WHERE type = 'token.used'") == [(2,)]
    activity = await (await browser.request("GET", "/api/me/events")).json()
    assert [e["type"] for e in activity["events"]][:2] == ["token.used", "token.used"]


async def test_tokens_made_before_scopes_keep_what_they_could_do(client, database_url):
    from tests.support.db import create_token, create_user

    user = create_user(database_url)
    secret = create_token(database_url, user)  # the columns' defaults, as an upgraded database has them
    assert (await upload(client, secret)).status == 201
    assert (await client.get("/api/artifacts", headers=bearer(secret))).status == 200
