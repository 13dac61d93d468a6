"""R2Storage against moto: what R2 needs from the client, multipart uploads, errors, one client."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiobotocore.session import AioSession

from portal_plugins.r2.storage import MAX_PARTS, R2Storage, part_size_for
from portal_core.http_headers import content_disposition
from portal_core.interfaces import ServiceUnavailable
from tests.support.moto import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, free_port, pending_uploads

MiB = 1024 * 1024


async def chunks_of(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start:start + size]


def storage_at(endpoint: str, bucket: str = "artifacts", **options) -> R2Storage:
    return R2Storage(endpoint_url=endpoint, access_key_id=ACCESS_KEY_ID, secret_access_key=SECRET_ACCESS_KEY,
                     bucket=bucket, region=REGION, **options)


async def test_client_sends_checksums_only_when_required(r2, s3, s3_bucket) -> None:
    # R2 rejects the CRC32 trailers botocore >= 1.36 adds by default.
    config = r2.client.meta.config
    assert config.request_checksum_calculation == "when_required"
    assert config.response_checksum_validation == "when_required"
    await r2.put("1/plain", chunks_of(b"payload"), max_bytes=100, content_type="text/plain")
    head = await s3.head_object(Bucket=s3_bucket, Key="1/plain", ChecksumMode="ENABLED")
    assert "ChecksumCRC32" not in head  # a default botocore client would have stored one


async def test_small_upload_is_one_put_with_its_content_type(r2, s3, s3_bucket) -> None:
    await r2.put("1/small", chunks_of(os.urandom(MiB)), max_bytes=20 * MiB, content_type="image/png")
    head = await s3.head_object(Bucket=s3_bucket, Key="1/small")
    assert "-" not in head["ETag"]
    assert head["ContentType"] == "image/png"
    assert head["ContentLength"] == MiB


async def test_twelve_mib_upload_goes_multipart_in_fixed_parts(r2, s3, s3_bucket) -> None:
    data = os.urandom(12 * MiB)
    stored = await r2.put("1/big", chunks_of(data, 100_000), max_bytes=20 * MiB, content_type="application/zip")
    assert stored.size == len(data)
    head = await s3.head_object(Bucket=s3_bucket, Key="1/big")
    assert head["ETag"].strip('"').endswith("-2")  # 8 MiB + 4 MiB
    assert head["ContentType"] == "application/zip"
    first = await s3.head_object(Bucket=s3_bucket, Key="1/big", PartNumber=1)
    assert first["ContentLength"] == 8 * MiB
    assert await pending_uploads(s3, s3_bucket) == []
    body = await (await s3.get_object(Bucket=s3_bucket, Key="1/big"))["Body"].read()
    assert body == data


async def test_body_of_exactly_the_threshold_is_one_put(moto_endpoint, s3, s3_bucket) -> None:
    async with storage_at(moto_endpoint, s3_bucket, multipart_threshold=5 * MiB, part_size=5 * MiB) as r2:
        await r2.put("1/edge", chunks_of(os.urandom(5 * MiB)), max_bytes=50 * MiB, content_type="text/plain")
        await r2.put("1/over", chunks_of(os.urandom(5 * MiB + 1)), max_bytes=50 * MiB, content_type="text/plain")
    assert "-" not in (await s3.head_object(Bucket=s3_bucket, Key="1/edge"))["ETag"]
    assert (await s3.head_object(Bucket=s3_bucket, Key="1/over"))["ETag"].strip('"').endswith("-2")


def test_part_size_grows_when_the_limit_needs_more_than_10000_parts() -> None:
    assert part_size_for(5 * 1024 * MiB, 8 * MiB) == 8 * MiB
    assert part_size_for(8 * MiB * MAX_PARTS, 8 * MiB) == 8 * MiB
    grown = part_size_for(100 * 1024 * MiB, 8 * MiB)
    assert grown % MiB == 0 and grown * MAX_PARTS >= 100 * 1024 * MiB and grown < 12 * MiB
    with pytest.raises(ValueError):
        part_size_for(6 * 1024 * MiB * MAX_PARTS, 8 * MiB)


def test_part_size_below_the_r2_minimum_is_refused() -> None:
    with pytest.raises(ValueError, match="5 MiB"):
        storage_at("http://127.0.0.1:1", part_size=4 * MiB)


async def test_one_client_for_the_storage_lifetime(moto_endpoint, s3_bucket) -> None:
    class CountingSession(AioSession):
        made = 0

        def create_client(self, *args, **kwargs):
            CountingSession.made += 1
            return super().create_client(*args, **kwargs)

    storage = storage_at(moto_endpoint, s3_bucket, session=CountingSession())
    async with storage:
        for n in range(3):
            await storage.put(f"1/{n}", chunks_of(b"x" * 10), max_bytes=10, content_type="text/plain")
            await storage.download(f"1/{n}", filename="x.txt", content_type="text/plain")
            assert (await storage.health()).status == "ok"
            await storage.delete(f"1/{n}")
    assert CountingSession.made == 1
    with pytest.raises(RuntimeError, match="not open"):
        await storage.delete("1/0")
    assert (await storage.health()).status == "down"


async def test_presigned_url_serves_the_bytes_under_the_customers_filename(r2) -> None:
    await r2.put("1/report", chunks_of(b"%PDF-1.7 ..."), max_bytes=100, content_type="application/pdf")
    filename = 'Résumé "final" 2024.pdf'
    download = await r2.download("1/report", filename=filename, content_type="application/pdf")
    async with aiohttp.ClientSession() as http, http.get(download.url) as response:
        assert response.status == 200
        assert await response.read() == b"%PDF-1.7 ..."
        assert response.headers["Content-Disposition"] == content_disposition(filename)
        assert response.headers["Content-Type"] == "application/pdf"


async def test_unreachable_endpoint_is_service_unavailable() -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    async with storage_at(endpoint) as r2:
        with pytest.raises(ServiceUnavailable, match="cannot reach http://127.0.0.1"):
            await r2.put("1/x", chunks_of(b"abc"), max_bytes=10, content_type="text/plain")
        with pytest.raises(ServiceUnavailable, match="DeleteObject"):
            await r2.delete("1/x")
        health = await r2.health()
    assert health.status == "down" and "127.0.0.1" in health.detail


async def test_missing_bucket_is_service_unavailable_and_health_down(moto_endpoint) -> None:
    async with storage_at(moto_endpoint, "no-such-bucket-here") as r2:
        with pytest.raises(ServiceUnavailable, match="NoSuchBucket"):
            await r2.put("1/x", chunks_of(b"abc"), max_bytes=10, content_type="text/plain")
        with pytest.raises(ServiceUnavailable, match="NoSuchBucket"):
            await r2.put("1/y", chunks_of(os.urandom(9 * MiB)), max_bytes=10 * MiB, content_type="text/plain")
        health = await r2.health()
    assert health.status == "down" and "404" in health.detail


async def test_health_is_down_when_the_endpoint_never_answers() -> None:
    # A peer that accepts connections and then says nothing: health must give up, not hang.
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with storage_at(f"http://127.0.0.1:{port}", health_timeout=0.5) as r2:
            health = await r2.health()
    finally:
        server.close()
    assert health.status == "down"
    assert "did not answer within 0.5s" in health.detail
