"""Harnesses that let one set of storage cases run against every Storage implementation.

Each harness knows how to look behind its storage's back (list the bucket or the directory, fetch
what a Download points at) so the cases can check what a user would see, whichever backend it is.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from portal_plugins.dev_stubs.storage import LocalStorage
from portal_core.interfaces import Download, ObjectNotFound, Storage
from tests.support.moto import (
    ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, free_port, object_exists, object_keys, pending_uploads, s3_client,
)



class LocalHarness:
    """LocalStorage in a temporary directory."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = LocalStorage(root)

    async def leftovers(self) -> list[str]:
        """Every file under the root: stored objects and any temp file a failed upload left."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())

    async def fetch(self, key: str, *, filename: str = "a.bin") -> bytes | None:
        try:
            download = await self.storage.download(key, filename=filename, content_type="application/octet-stream")
        except ObjectNotFound:
            return None
        assert download.url is None and download.stream is not None
        body = b"".join([chunk async for chunk in download.stream])
        assert download.size == len(body)
        return body

    @contextlib.asynccontextmanager
    async def unavailable(self) -> AsyncIterator[Storage]:
        """A LocalStorage whose root cannot be created (its parent is a file; chmod does not stop root)."""
        blocker = self.root.parent / f"not-a-dir-{uuid.uuid4().hex[:8]}"
        blocker.write_bytes(b"")
        yield LocalStorage(blocker / "artifacts")


class R2Harness:
    """R2Storage against a fresh bucket on the moto server."""

    def __init__(self, endpoint: str, client: object, bucket: str, storage: Storage) -> None:
        self.endpoint = endpoint
        self.client = client
        self.bucket = bucket
        self.storage = storage

    async def leftovers(self) -> list[str]:
        """Every object in the bucket, and every multipart upload still pending (they cost money on R2)."""
        return sorted(await object_keys(self.client, self.bucket)) + [
            f"pending upload of {key}" for key in await pending_uploads(self.client, self.bucket)]

    async def fetch(self, key: str, *, filename: str = "a.bin") -> bytes | None:
        download = await self.storage.download(key, filename=filename, content_type="application/octet-stream")
        assert download.stream is None and download.url is not None
        async with aiohttp.ClientSession() as http, http.get(download.url) as response:
            if response.status == 200:
                return await response.read()
            answer = await response.text()
        # R2 answers 404 for a missing key. moto answers 403 instead (it mistakes the presigned
        # response-content-disposition for a header the request should carry), so ask the bucket.
        assert response.status in (403, 404), f"{response.status}: {answer}"
        assert not await object_exists(self.client, self.bucket, key), f"{key} exists but its URL failed: {answer}"
        return None

    @contextlib.asynccontextmanager
    async def unavailable(self) -> AsyncIterator[Storage]:
        """An R2Storage pointed at a port nothing listens on."""
        from portal_plugins.r2.storage import R2Storage

        async with R2Storage(endpoint_url=f"http://127.0.0.1:{free_port()}", access_key_id=ACCESS_KEY_ID,
                             secret_access_key=SECRET_ACCESS_KEY, bucket=self.bucket, region=REGION,
                             health_timeout=10) as storage:
            yield storage


@pytest.fixture(params=["local", "r2"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[LocalHarness | R2Harness]:
    """Each storage implementation in turn, empty."""
    if request.param == "local":
        yield LocalHarness(tmp_path / "artifacts")
        return
    from portal_plugins.r2.storage import R2Storage

    endpoint = request.getfixturevalue("moto_endpoint")
    async with s3_client(endpoint) as client:
        bucket = f"conformance-{uuid.uuid4().hex[:16]}"
        await client.create_bucket(Bucket=bucket)
        async with R2Storage(endpoint_url=endpoint, access_key_id=ACCESS_KEY_ID,
                             secret_access_key=SECRET_ACCESS_KEY, bucket=bucket, region=REGION) as storage:
            yield R2Harness(endpoint, client, bucket, storage)
