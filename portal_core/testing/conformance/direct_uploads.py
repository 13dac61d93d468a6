"""The cases every :class:`~portal_core.interfaces.DirectUploads` implementation must pass.

Subclass :class:`DirectUploadsConformance` in a test module and give it a fixture named ``direct_uploads``
that yields an object with:

* ``storage``: the storage under test, open, on an empty bucket or directory;
* ``async leftovers() -> list[str]``: everything the storage holds behind the portal's back (objects, and
  any multipart upload still pending: on R2 those cost money), so a case can check nothing was left.

Refusing an expired or tampered part URL is the storage server's job (R2 checks SigV4; the dev storage's
route checks its HMAC, tests/plugins/dev_stubs); moto checks neither, so it is not a case here.

The cases play the client: they PUT part bytes to the presigned URLs with a plain HTTP client, as a
browser or the ``portal upload`` command does, so the URLs must be reachable from the test.

    class TestMyStorage(DirectUploadsConformance):
        @pytest.fixture
        async def direct_uploads(self, tmp_path):
            async with MyStorage(...) as storage:
                yield MyHarness(storage)
"""

from __future__ import annotations

import asyncio
import hashlib
import os

import aiohttp
import pytest

from portal_core.interfaces import DirectUploads, ObjectNotFound, Storage, StoredPart, UploadNotFound
from portal_core.testing.conformance.shape import assert_implements

MiB = 1024 * 1024


async def put_part(url: str, data: bytes) -> tuple[int, str | None, str]:
    """PUT ``data`` to a part URL as a browser would: (status, ETag header, body text)."""
    async with aiohttp.ClientSession() as http, http.put(url, data=data) as response:
        return response.status, response.headers.get("ETag"), await response.text()


async def read_all(storage: DirectUploads, key: str, **kwargs) -> bytes:
    return b"".join([chunk async for chunk in storage.read(key, **kwargs)])


class DirectUploadsConformance:
    """Storage-side cases of direct uploads: create, sign, PUT, list, complete, abort, read back."""

    key = "7/direct"

    async def upload(self, storage: DirectUploads, parts: list[bytes], key: str | None = None) -> tuple[str, list[StoredPart]]:
        """Create an upload of ``key`` and PUT each of ``parts`` (numbered from 1) concurrently."""
        key = key or self.key
        upload_id = await storage.create_multipart(key, content_type="application/octet-stream")

        async def send(number: int, data: bytes) -> StoredPart:
            signed = await storage.presign_part(key, upload_id, number, expires_in=300)
            status, etag, text = await put_part(signed.url, data)
            assert status == 200, f"PUT of part {number} answered {status}: {text}"
            assert etag, f"PUT of part {number} gave no ETag header"
            return StoredPart(number=number, etag=etag, size=len(data))

        sent = await asyncio.gather(*(send(n, data) for n, data in enumerate(parts, start=1)))
        return upload_id, list(sent)

    def test_it_is_a_storage_with_direct_uploads(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        assert_implements(storage, Storage)
        assert_implements(storage, DirectUploads)
        limits = storage.part_limits
        assert 0 < limits.min_size <= limits.preferred_size <= limits.max_size
        assert limits.max_parts >= 1
        assert all(origin.startswith(("http://", "https://")) for origin in storage.upload_origins)

    async def test_parts_sent_out_of_order_complete_into_the_object(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        size = storage.part_limits.min_size
        parts = [os.urandom(size), os.urandom(size), os.urandom(12345)]
        upload_id, sent = await self.upload(storage, parts)
        listed = await storage.list_parts(self.key, upload_id)
        assert listed == sent  # numbers in order, the ETags the PUTs answered, the sizes sent
        await storage.complete_multipart(self.key, upload_id, listed)
        data = b"".join(parts)
        assert hashlib.sha256(await read_all(storage, self.key)).hexdigest() == hashlib.sha256(data).hexdigest()
        assert await direct_uploads.leftovers() == [self.key]

    async def test_reading_a_range_gives_exactly_those_bytes(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        data = os.urandom(10_000)
        upload_id, sent = await self.upload(storage, [data])
        await storage.complete_multipart(self.key, upload_id, sent)
        assert await read_all(storage, self.key, end=4096) == data[:4096]
        assert await read_all(storage, self.key, start=9000) == data[9000:]
        assert await read_all(storage, self.key, start=100, end=200) == data[100:200]
        assert await read_all(storage, self.key, start=50, end=50) == b""

    async def test_an_empty_object_is_one_empty_part(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        upload_id, sent = await self.upload(storage, [b""])
        assert await storage.list_parts(self.key, upload_id) == [StoredPart(1, sent[0].etag, 0)]
        await storage.complete_multipart(self.key, upload_id, sent)
        assert await read_all(storage, self.key) == b""
        assert await read_all(storage, self.key, end=4096) == b""

    async def test_a_part_sent_again_replaces_the_first_copy(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        upload_id, _sent = await self.upload(storage, [b"first copy, longer"])
        signed = await storage.presign_part(self.key, upload_id, 1, expires_in=300)
        status, etag, _text = await put_part(signed.url, b"second")
        assert status == 200
        assert await storage.list_parts(self.key, upload_id) == [StoredPart(1, etag, 6)]
        await storage.complete_multipart(self.key, upload_id, [StoredPart(1, etag, 6)])
        assert await read_all(storage, self.key) == b"second"

    async def test_a_new_upload_has_no_parts(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        upload_id = await storage.create_multipart(self.key, content_type="text/plain")
        assert await storage.list_parts(self.key, upload_id) == []
        assert await direct_uploads.leftovers() == [f"pending upload of {self.key}"]
        await storage.abort_multipart(self.key, upload_id)

    async def test_abort_drops_every_part_and_forgets_the_upload(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        upload_id, _sent = await self.upload(storage, [os.urandom(storage.part_limits.min_size), b"tail"])
        await storage.abort_multipart(self.key, upload_id)
        assert await direct_uploads.leftovers() == []
        with pytest.raises(UploadNotFound):
            await storage.list_parts(self.key, upload_id)
        await storage.abort_multipart(self.key, upload_id)  # again: already gone is fine

    async def test_an_unknown_upload_is_not_found(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        # Not asked: whether an id is refused with another upload's key, or a complete after an abort (the
        # core passes only the key it stored with the id, and completes only uploads it has not aborted;
        # moto, unlike S3, checks neither).
        real = await storage.create_multipart(self.key, content_type="text/plain")
        with pytest.raises(UploadNotFound):
            await storage.list_parts(self.key, "0" * 32)
        await storage.abort_multipart(self.key, real)
        with pytest.raises(UploadNotFound):
            await storage.list_parts(self.key, real)
        assert await direct_uploads.leftovers() == []

    async def test_a_completed_upload_is_gone_and_leaves_only_the_object(self, direct_uploads) -> None:
        storage = direct_uploads.storage
        upload_id, sent = await self.upload(storage, [b"done"])
        await storage.complete_multipart(self.key, upload_id, sent)
        with pytest.raises(UploadNotFound):
            await storage.list_parts(self.key, upload_id)
        await storage.abort_multipart(self.key, upload_id)  # nothing to abort: not an error, object kept
        assert await direct_uploads.leftovers() == [self.key]
        await storage.delete(self.key)
        assert await direct_uploads.leftovers() == []

    async def test_reading_a_missing_object_is_not_found(self, direct_uploads) -> None:
        with pytest.raises(ObjectNotFound):
            await read_all(direct_uploads.storage, "7/never-stored")
