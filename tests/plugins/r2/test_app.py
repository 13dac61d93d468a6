"""The portal with STORAGE_BACKEND=r2 (DEV_MODE for everything else) against moto, end to end over HTTP.

A real `portal` process talks to a real S3 server; the tests upload through POST /api/artifacts and
look at the bucket behind the portal's back.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from portal_core.http_headers import content_disposition
from tests.support.db import create_token, create_user, run_sql
from tests.support.moto import object_keys, pending_uploads, r2_env
from tests.support.portal import PortalProcess, run_portal

MiB = 1024 * 1024


@pytest.fixture
def portal(database_url: str, moto_endpoint: str, s3_bucket: str) -> Iterator[PortalProcess]:
    env = {"STORAGE_BACKEND": "r2", **r2_env(moto_endpoint, s3_bucket),
           "PLAN_FREE_MAX_FILE": "2GiB", "PLAN_FREE_QUOTA": "4GiB"}
    with run_portal(database_url, env) as process:
        yield process


@pytest.fixture
def token(database_url: str, portal: PortalProcess) -> str:
    return create_token(database_url, create_user(database_url))


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def upload(portal: PortalProcess, token: str, body, filename: str) -> tuple[int, dict]:
    # Like browsers and curl: the filename as raw UTF-8, not percent-encoded (aiohttp's default).
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", body, filename=filename, content_type="application/octet-stream")
    timeout = aiohttp.ClientTimeout(total=None, sock_read=120)
    async with aiohttp.ClientSession(timeout=timeout) as http, \
            http.post(f"{portal.url}/api/artifacts", data=form, headers=auth(token)) as response:
        return response.status, await response.json()


def memory_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"{field} missing from /proc/{pid}/status")


async def eventually(check, what: str, timeout: float = 60.0):
    """Poll ``check()`` until it returns something truthy; fail saying ``what`` never happened."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := await check():
            return result
        await asyncio.sleep(0.2)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")


async def test_health_reports_the_bucket(portal: PortalProcess) -> None:
    async with aiohttp.ClientSession() as http, http.get(f"{portal.url}/health") as response:
        body = await response.json()
    assert body["checks"]["storage"]["status"] == "ok", body


async def test_upload_round_trips_through_r2_and_downloads_by_presigned_redirect(
        portal, token, s3, s3_bucket, moto_endpoint) -> None:
    data = os.urandom(12 * MiB)
    filename = "Résumé 2024 (final).bin"
    status, artifact = await upload(portal, token, data, filename)
    assert status == 201, artifact
    assert artifact["size"] == len(data)
    assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
    assert artifact["name"] == filename
    [key] = await object_keys(s3, s3_bucket)
    assert (await s3.head_object(Bucket=s3_bucket, Key=key))["ETag"].strip('"').endswith("-2")

    async with aiohttp.ClientSession() as http:
        async with http.get(f"{portal.url}/api/artifacts/{artifact['id']}/download", headers=auth(token),
                            allow_redirects=False) as response:
            assert response.status == 302, await response.text()
            location = response.headers["Location"]
        assert location.startswith(f"{moto_endpoint}/{s3_bucket}/")
        async with http.get(location) as response:
            assert response.status == 200
            assert response.headers["Content-Disposition"] == content_disposition(filename)
            assert await response.read() == data


@pytest.mark.slow
async def test_one_gib_upload_keeps_portal_memory_bounded(portal, token, s3, s3_bucket) -> None:
    chunk = os.urandom(MiB)
    total = 1024 * MiB
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        for _ in range(total // MiB):
            digest.update(chunk)
            yield chunk

    # Warm up (first request imports and allocates), then reset the peak so it measures this upload only.
    assert (await upload(portal, token, b"warm-up", "warm.txt"))[0] == 201
    Path(f"/proc/{portal.pid}/clear_refs").write_text("5")
    before = memory_kib(portal.pid, "VmRSS")
    status, artifact = await upload(portal, token, body(), "big.bin")
    peak = memory_kib(portal.pid, "VmHWM")
    assert status == 201, artifact
    assert artifact["size"] == total
    assert artifact["sha256"] == digest.hexdigest()
    growth_mib = (peak - before) / 1024
    assert growth_mib < 64, f"portal RSS grew by {growth_mib:.0f} MiB during a 1 GiB upload"
    assert await pending_uploads(s3, s3_bucket) == []


async def test_client_disconnecting_mid_upload_leaves_nothing(portal, token, database_url, s3, s3_bucket) -> None:
    boundary = "portal-test-boundary"
    head = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="cut.bin"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n").encode()
    declared = 64 * MiB
    reader, writer = await asyncio.open_connection("127.0.0.1", portal.port)
    writer.write((f"POST /api/artifacts HTTP/1.1\r\nHost: 127.0.0.1:{portal.port}\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Length: {declared}\r\n"
                  f"Content-Type: multipart/form-data; boundary={boundary}\r\n\r\n").encode() + head)
    block = os.urandom(MiB)
    for _ in range(20):  # 20 MiB: past the multipart threshold, so parts are already in the bucket
        writer.write(block)
        await writer.drain()

    async def started():
        return await pending_uploads(s3, s3_bucket)

    await eventually(started, "a multipart upload starting in the bucket")
    writer.transport.abort()  # the client vanishes mid-body, no FIN handshake niceties

    async def cleaned_up():
        return not await pending_uploads(s3, s3_bucket) and not await object_keys(s3, s3_bucket)

    await eventually(cleaned_up, "the aborted upload's multipart upload and objects being removed")
    assert run_sql(database_url, "SELECT count(*) FROM artifacts")[0][0] == 0
    # The portal is still serving.
    status, artifact = await upload(portal, token, b"after", "after.txt")
    assert status == 201, artifact
