"""Erasing a user: no object left in storage (moto for R2, the disk for the dev storage), no row left that
names them, and the audit trail keeping them only as a number."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.db import create_token
from tests.support.moto import object_keys, r2_env, s3_client


def user_id(sql, email: str) -> int:
    return sql("SELECT id FROM users WHERE email = %s", (email,))[0][0]


# So the person erased can have a file request too (a paying customer cannot be erased).
FREE_FILE_REQUESTS = {"PLAN_FREE_FILE_REQUESTS": "true"}


@pytest.fixture(params=["dev", "r2"])
async def storage_portal(request, make_app, aiohttp_client, tmp_path):
    """(client, a function listing every stored object's key) for the dev disk and for R2 on moto."""
    if request.param == "dev":
        client = await aiohttp_client(make_app(**FREE_FILE_REQUESTS))
        root = tmp_path / "data" / "artifacts"

        async def stored() -> list[str]:
            return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
        yield client, stored
        return
    endpoint = request.getfixturevalue("moto_endpoint")  # the session's moto server, started only for r2
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    async with s3_client(endpoint) as s3:
        await s3.create_bucket(Bucket=bucket)
        client = await aiohttp_client(make_app(STORAGE_BACKEND="r2", **r2_env(endpoint, bucket), **FREE_FILE_REQUESTS))

        async def stored() -> list[str]:
            return sorted(await object_keys(s3, bucket))
        yield client, stored


async def test_erasure_leaves_no_object_and_no_personal_data(storage_portal, sign_in, sql, database_url):
    client, stored = storage_portal
    admin = await sign_in("root@example.com", admin=True, on=client)
    keep = await sign_in("keep@example.com", on=client)
    gone = await sign_in("gone@example.com", name="Gone Person", on=client)
    # A webhook endpoint first, so their uploads queue deliveries whose bodies name the files.
    async with gone.request("POST", "/api/webhooks", json={"url": "http://127.0.0.1:9/hooks", "events": ["*"]}) as resp:
        assert resp.status == 201, await resp.text()
    for name in ("diary.txt", "photo.jpg", "taxes.pdf"):
        async with await gone.upload(name.encode() * 1000, name) as resp:
            assert resp.status == 201
            shared = (await resp.json())["id"]
    async with gone.request("POST", f"/api/artifacts/{shared}/shares", json={"expires_in": 3600}) as resp:
        assert resp.status == 201, await resp.text()
    async with gone.request("POST", "/api/requests", json={"title": "Gone Person's tax papers", "expires_in": 3600}) as resp:
        assert resp.status == 201, await resp.text()
    async with await keep.upload(b"mine", "keep.txt") as resp:
        kept_key = sql("SELECT storage_key FROM artifacts WHERE id = %s", ((await resp.json())["id"],))[0][0]
    victim = user_id(sql, "gone@example.com")
    create_token(database_url, victim, "laptop")
    for _ in range(200):  # the outbox hands the uploads to the webhooks plugin just after they commit
        if sql("SELECT count(*) FROM webhook_deliveries WHERE body LIKE '%%diary.txt%%'") != [(0,)]:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the upload's webhook delivery was never queued")
    assert len(await stored()) == 4

    async with admin.request("DELETE", f"/api/admin/users/{victim}", json={"email": "GONE@example.com"}) as resp:
        assert resp.status == 200, await resp.text()
        assert (await resp.json())["erased"] == {"id": victim, "artifacts": 3, "bytes": 3 * 1000 * 9}

    assert await stored() == [kept_key]  # the other customer's file is untouched
    for table, column in (("users", "id"), ("sessions", "user_id"), ("api_tokens", "user_id"),
                          ("artifacts", "owner_id"), ("subscriptions", "user_id"), ("shares", "owner_id"),
                          ("file_requests", "owner_id"), ("webhook_endpoints", "user_id")):
        assert sql(f"SELECT count(*) FROM {table} WHERE {column} = %s", (victim,)) == [(0,)], table
    # Nothing queued or logged for their webhooks either (the bodies named their files).
    assert sql("SELECT count(*) FROM webhook_deliveries") == [(0,)]
    assert sql("SELECT count(*) FROM webhook_attempts") == [(0,)]
    # Their events stay, as facts about a number: no names, addresses or browsers. (The admin's own
    # address on the admin's actions is the admin's, and stays.)
    events = sql("SELECT type, actor_id, ip, user_agent, data FROM events WHERE owner_id = %s ORDER BY id", (victim,))
    assert [e[0] for e in events].count("artifact.created") == 3
    for kind, actor, ip, agent, data in events:
        if actor == victim:
            assert ip is None and agent is None, (kind, ip, agent)
        if kind != "admin.user_deleted":
            assert data.get("erased") is True and "name" not in data, (kind, data)
    text = "".join(str(sql(f"SELECT * FROM {table}")) for table in (
        "events", "users", "shares", "file_requests", "webhook_endpoints", "webhook_deliveries"))
    for personal in ("gone@example.com", "Gone Person", "diary.txt", "taxes.pdf", "laptop"):
        assert personal not in text
    root = user_id(sql, "root@example.com")
    assert sql("SELECT actor_id, subject_id, data FROM events WHERE type = 'admin.user_deleted'") == [
        (root, str(victim), {"artifacts": 3, "bytes": 27000})]
    # The other users keep everything, personal data included.
    assert sql("SELECT count(*) FROM events WHERE owner_id = %s AND data ? 'erased'",
               (user_id(sql, "keep@example.com"),)) == [(0,)]


async def test_erasure_needs_the_email_typed_and_refuses_self_and_paying_customers(client, sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    customer = await sign_in("paying@example.com")
    async with await customer.upload(b"data", "data.txt") as resp:
        assert resp.status == 201
    victim = user_id(sql, "paying@example.com")
    for body in ({"email": "someone@example.com"}, {}, {"email": 5}):
        async with admin.request("DELETE", f"/api/admin/users/{victim}", json=body) as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "confirm_mismatch"
    root = user_id(sql, "root@example.com")
    async with admin.request("DELETE", f"/api/admin/users/{root}", json={"email": "root@example.com"}) as resp:
        assert resp.status == 409
    sql("INSERT INTO subscriptions (user_id, plan, status, provider) VALUES (%s, 'pro', 'active', 'dev')", (victim,))
    async with admin.request("DELETE", f"/api/admin/users/{victim}", json={"email": "paying@example.com"}) as resp:
        assert resp.status == 409 and "cancel" in (await resp.json())["error"]["message"]
    assert sql("SELECT count(*) FROM artifacts") == [(1,)]
    assert sql("SELECT count(*) FROM users WHERE frozen_at IS NOT NULL") == [(0,)]
    async with admin.request("DELETE", "/api/admin/users/424242", json={"email": "x@example.com"}) as resp:
        assert resp.status == 404


@pytest.mark.slow
async def test_a_storage_outage_stops_the_erasure_safely_and_erasing_again_finishes(
        make_app, aiohttp_client, sign_in, sql, moto_endpoint, s3, s3_bucket):
    """Two processes on one database: one reaches the bucket, the other's storage is unreachable."""
    from tests.support.moto import free_port

    healthy = await aiohttp_client(make_app(STORAGE_BACKEND="r2", **r2_env(moto_endpoint, s3_bucket)))
    cut_off = await aiohttp_client(make_app(STORAGE_BACKEND="r2", **r2_env(f"http://127.0.0.1:{free_port()}", s3_bucket)))
    customer = await sign_in("gone@example.com", on=healthy)
    for name in ("a.txt", "b.txt"):
        async with await customer.upload(b"data", name) as resp:
            assert resp.status == 201
    victim = user_id(sql, "gone@example.com")
    admin = await sign_in("root@example.com", admin=True, on=cut_off)
    async with admin.request("DELETE", f"/api/admin/users/{victim}", json={"email": "gone@example.com"}) as resp:
        assert resp.status == 503
        assert "stays frozen" in (await resp.json())["error"]["message"]
    # Nothing lost track of: the account is frozen, and every row still has its object.
    assert sql("SELECT frozen_at IS NOT NULL FROM users WHERE id = %s", (victim,)) == [(True,)]
    keys = sorted(k for (k,) in sql("SELECT storage_key FROM artifacts WHERE owner_id = %s", (victim,)))
    assert keys == sorted(await object_keys(s3, s3_bucket)) and len(keys) == 2
    assert (await customer.request("GET", "/api/me")).status == 401

    admin_there = await sign_in("root@example.com", admin=True, on=healthy)
    async with admin_there.request("DELETE", f"/api/admin/users/{victim}", json={"email": "gone@example.com"}) as resp:
        assert resp.status == 200 and (await resp.json())["erased"]["artifacts"] == 2
    assert await object_keys(s3, s3_bucket) == []
    assert sql("SELECT count(*) FROM users WHERE id = %s", (victim,)) == [(0,)]
