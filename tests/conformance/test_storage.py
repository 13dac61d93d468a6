"""Every built-in Storage through portal_core.testing's StorageConformance: LocalStorage (DEV_MODE) and
R2Storage (on the moto S3 server). Each subclass can list what its backend holds, so the cases check that
a failed, oversized or abandoned upload leaves nothing at all behind — temp files and pending multipart
uploads included."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from portal_core.testing import StorageConformance
from portal_plugins.dev_stubs.storage import LocalStorage
from tests.support.moto import (
    ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, free_port, object_exists, object_keys, pending_uploads,
)


class TestLocalStorage(StorageConformance):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> LocalStorage:
        return LocalStorage(tmp_path / "artifacts")

    @pytest.fixture
    def unreachable_storage(self, tmp_path: Path) -> LocalStorage:
        # Its root cannot be created: the parent is a file (chmod would not stop root).
        blocker = tmp_path / "not-a-dir"
        blocker.write_bytes(b"")
        return LocalStorage(blocker / "artifacts")

    async def leftovers(self, storage: LocalStorage) -> list[str]:
        """Every file under the root: stored objects and any temp file a failed upload left."""
        return sorted(str(p.relative_to(storage.root)) for p in storage.root.rglob("*") if p.is_file())


class TestR2Storage(StorageConformance):
    @pytest.fixture
    async def storage(self, moto_endpoint: str, s3, s3_bucket: str):
        from portal_plugins.r2.storage import R2Storage

        self.s3, self.bucket = s3, s3_bucket
        async with R2Storage(endpoint_url=moto_endpoint, access_key_id=ACCESS_KEY_ID,
                             secret_access_key=SECRET_ACCESS_KEY, bucket=self.bucket, region=REGION) as storage:
            yield storage

    @pytest.fixture
    async def unreachable_storage(self):
        from portal_plugins.r2.storage import R2Storage

        async with R2Storage(endpoint_url=f"http://127.0.0.1:{free_port()}", access_key_id=ACCESS_KEY_ID,
                             secret_access_key=SECRET_ACCESS_KEY, bucket="nowhere", region=REGION,
                             health_timeout=10) as storage:
            yield storage

    async def leftovers(self, storage) -> list[str]:
        """Every object in the bucket, and every multipart upload still pending (they cost money on R2)."""
        return sorted(await object_keys(self.s3, self.bucket)) + [
            f"pending upload of {key}" for key in await pending_uploads(self.s3, self.bucket)]

    async def fetch(self, storage, key: str) -> bytes | None:
        download = await storage.download(key, filename="a.bin", content_type="application/octet-stream")
        assert download.stream is None and download.url is not None
        async with aiohttp.ClientSession() as http, http.get(download.url) as response:
            if response.status == 200:
                return await response.read()
            answer = await response.text()
        # R2 answers 404 for a missing key. moto answers 403 instead (it mistakes the presigned
        # response-content-disposition for a header the request should carry), so ask the bucket.
        assert response.status in (403, 404), f"{response.status}: {answer}"
        assert not await object_exists(self.s3, self.bucket, key), f"{key} exists but its URL failed: {answer}"
        return None
