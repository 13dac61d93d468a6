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
    sql("UPDATE api_tokens SET expires_at = now() - interval '30 days 1 hour' WHERE name = 'long gone'")
    sql("UPDATE api_tokens SET expires_at = now() - interval '29 days 23 hours' WHERE name = 'just expired'")
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


# The limits of a token request, each at its edge: the longest name, the shortest and longest expiry are taken,
# one past them is refused (the edges are the promises; a moved boundary must fail here).
@pytest.mark.parametrize("body, taken", [
    ({"name": "n" * 100}, True), ({"name": "n" * 101}, False),
    ({"expires_in": 60}, True), ({"expires_in": 59}, False),
    ({"expires_in": 10 * 365 * 86400}, True), ({"expires_in": 10 * 365 * 86400 + 1}, False),
])
async def test_a_token_request_at_each_limit_is_taken_and_one_past_it_is_not(sign_in, sql, body, taken):
    browser = await sign_in()
    status, answer = await make_token(browser, **body)
    assert status == (201 if taken else 400), answer
    assert sql("SELECT count(*) FROM api_tokens") == [(1 if taken else 0,)]
    if taken and "expires_in" in body:
        assert sql("SELECT round(extract(epoch FROM expires_at - created_at)) FROM api_tokens") == [(body["expires_in"],)]


async def test_a_token_secret_carries_256_random_bits_and_only_its_hash_is_kept(sign_in, sql):
    browser = await sign_in()
    secrets = [(await make_token(browser))[1]["token"] for _ in range(2)]
    # "pt_" and 32 random bytes in URL-safe base64 (43 characters, no padding).
    assert [len(s) for s in secrets] == [3 + 43, 3 + 43] and secrets[0] != secrets[1]
    assert sql("SELECT length(token_hash) FROM api_tokens") == [(32,), (32,)]


async def test_a_token_cannot_revoke_tokens_and_a_malformed_id_is_404(sign_in, client, sql):
    browser = await sign_in()
    _status, token = await make_token(browser, name="ci", scopes=["artifacts:read", "artifacts:write"])
    resp = await client.delete(f"/api/tokens/{token['id']}", headers=bearer(token["token"]))
    assert resp.status == 401
    assert sql("SELECT name FROM api_tokens") == [("ci",)]
    async with browser.request("DELETE", "/api/tokens/not-a-uuid") as resp:
        assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    assert sql("SELECT name FROM api_tokens") == [("ci",)]


async def test_creating_and_revoking_a_token_shows_in_the_owners_activity_naming_it(sign_in, sql):
    browser = await sign_in()
    _status, token = await make_token(browser, name="deploy", scopes=["artifacts:read"], expires_in=3600)
    async with browser.request("DELETE", f"/api/tokens/{token['id']}") as resp:
        assert resp.status == 204
    async with browser.request("DELETE", f"/api/tokens/{token['id']}") as resp:  # already gone: nothing recorded
        assert resp.status == 404
    rows = sql("SELECT type, actor_id = owner_id, subject_id, data->>'name', data->'scopes', data->'expires_in' "
               "FROM events WHERE type LIKE 'token.%%' ORDER BY id")
    assert rows == [("token.created", True, token["id"], "deploy", ["artifacts:read"], 3600),
                    ("token.revoked", True, token["id"], "deploy", None, None)]


async def test_the_api_description_of_tokens_says_what_the_routes_answer(sign_in, client):
    browser = await sign_in()
    status, token = await make_token(browser, scopes=["admin"])  # a customer: refused
    assert status == 403
    status, token = await make_token(browser)
    async with browser.request("DELETE", f"/api/tokens/{token['id']}") as resp:
        revoked = resp.status
    spec = await (await client.get("/api/openapi.json")).json()
    create, revoke = spec["paths"]["/api/tokens"]["post"], spec["paths"]["/api/tokens/{id}"]["delete"]
    assert str(status) in create["responses"] and str(revoked) in revoke["responses"]
    assert "admin" in create["responses"]["403"]["description"]  # not only the CSRF and scope refusal every route has
    assert "tokens" in spec["paths"]["/api/tokens"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]
    limits = create["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert (limits["name"]["maxLength"], limits["expires_in"]["minimum"], limits["expires_in"]["maximum"]) == \
        (100, 60, 10 * 365 * 86400)
