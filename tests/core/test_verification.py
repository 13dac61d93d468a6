"""The SHA-256 verification of direct uploads: durable across restarts, done once across processes (SKIP LOCKED
and a lease), retried with backoff while storage is down, and a missing object ends quarantined."""

from __future__ import annotations

import hashlib
import uuid

import aiohttp
import psycopg2
import pytest

from portal_core import keys
from portal_core.direct_client import DirectClient
from tests.support.db import create_token, create_user, run_sql
from tests.support.gate import S3Gate
from tests.support.moto import free_port, r2_env, s3_client


@pytest.fixture
async def portals(make_app, aiohttp_client, database_url):
    """portals(**env) -> (app, client as a token user); each app's own verifier loop is stopped, so the test
    drives verify_batch() itself."""
    sessions = []
    token = create_token(database_url, create_user(database_url))

    async def make(**env):
        port = free_port()
        app = make_app(APP_BASE_URL=f"http://127.0.0.1:{port}", **env)
        await aiohttp_client(app, server_kwargs={"port": port, "host": "127.0.0.1"})
        await app[keys.VERIFIER].stop()
        session = aiohttp.ClientSession()
        sessions.append(session)
        return app, DirectClient(session, f"http://127.0.0.1:{port}", {"Authorization": f"Bearer {token}"})

    yield make
    for session in sessions:
        await session.close()


async def direct_upload(client: DirectClient, data: bytes, sha256: str | None = None) -> dict:
    created = await client.create("a.bin", len(data), "application/octet-stream", sha256=sha256)
    etag = await client.put_part(await client.sign(created["uploadId"], created["key"], 1), data)
    return (await client.complete(created["uploadId"], created["key"], {1: etag}))["artifact"]


def state(database_url: str, artifact_id: str) -> tuple:
    return run_sql(database_url, "SELECT verification, sha256 FROM artifacts WHERE id = %s", (artifact_id,))[0]


async def test_verification_survives_a_restart_and_happens_once_across_processes(portals, database_url):
    first, client = await portals()
    data = b"portal" * 1000
    artifact = await direct_upload(client, data)
    assert state(database_url, artifact["id"]) == ("unverified", "")  # the process "died" before verifying
    second, _ = await portals()  # another process (or the same after a restart) on the same database
    holder = psycopg2.connect(database_url)
    try:
        with holder.cursor() as cur:  # a third process is claiming the row right now
            cur.execute("SELECT 1 FROM artifact_verifications FOR UPDATE")
            assert await second[keys.VERIFIER].verify_batch() == 0
        holder.rollback()
    finally:
        holder.close()
    # ...it took the lease and is reading the object:
    run_sql(database_url, "UPDATE artifact_verifications SET next_attempt_at = now() + interval '10 minutes'")
    assert await first[keys.VERIFIER].verify_batch() == 0 and await second[keys.VERIFIER].verify_batch() == 0
    # ...and died: the lease runs out and another process takes it.
    run_sql(database_url, "UPDATE artifact_verifications SET next_attempt_at = now() - interval '1 second'")
    assert await second[keys.VERIFIER].verify_batch() == 1
    assert state(database_url, artifact["id"]) == ("verified", hashlib.sha256(data).hexdigest())
    assert await first[keys.VERIFIER].verify_batch() == 0
    assert run_sql(database_url, "SELECT count(*) FROM events WHERE type = 'artifact.verified'") == [(1,)]
    assert run_sql(database_url, "SELECT count(*) FROM artifact_verifications") == [(0,)]


async def test_storage_down_means_try_again_later_not_a_verdict(portals, database_url, moto_endpoint):
    async with s3_client(moto_endpoint) as s3, S3Gate(moto_endpoint) as gate:
        bucket = f"verify-{uuid.uuid4().hex[:12]}"
        await s3.create_bucket(Bucket=bucket)
        app, client = await portals(STORAGE_BACKEND="r2", **r2_env(gate.url, bucket))
        data = b"x" * 5000
        artifact = await direct_upload(client, data, sha256=hashlib.sha256(data).hexdigest())
        gate.refuse(lambda request: request.method == "GET")  # reading objects back fails
        assert await app[keys.VERIFIER].verify_batch() == 1
        (attempts, error, later), = run_sql(database_url, "SELECT attempts, last_error, next_attempt_at > now() "
                                                          "FROM artifact_verifications")
        assert attempts == 1 and "ServiceUnavailable" in error and later
        assert state(database_url, artifact["id"])[0] == "unverified"
        gate.open()
        run_sql(database_url, "UPDATE artifact_verifications SET next_attempt_at = now()")
        assert await app[keys.VERIFIER].verify_batch() == 1
        assert state(database_url, artifact["id"])[0] == "verified"


async def test_an_object_missing_from_storage_ends_quarantined(portals, database_url):
    app, client = await portals()
    artifact = await direct_upload(client, b"soon gone")
    key = run_sql(database_url, "SELECT storage_key FROM artifacts")[0][0]
    await app[keys.STORAGE].delete(key)
    assert await app[keys.VERIFIER].verify_batch() == 1
    verification, detail = run_sql(database_url, "SELECT verification, verification_detail FROM artifacts")[0]
    assert (verification, detail) == ("quarantined", "the stored object is missing")
    assert (await client.call("GET", f"/api/artifacts/{artifact['id']}"))["verification"] == "quarantined"
