"""DirectUploadsConformance (portal_core.testing) against both implementations: the dev storage, whose part
URLs a real HTTP server on 127.0.0.1 answers with the dev_stubs route, and R2Storage on moto."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from portal_core import keys
from portal_core.testing.conformance.direct_uploads import DirectUploadsConformance
from portal_plugins.dev_stubs.direct import part_routes
from portal_plugins.dev_stubs.storage import LocalStorage
from tests.support.moto import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, object_keys, pending_uploads, s3_client


class LocalDirectHarness:
    def __init__(self, storage: LocalStorage) -> None:
        self.storage = storage

    async def leftovers(self) -> list[str]:
        root = self.storage.root
        uploads = root / ".uploads"
        pending = [f"pending upload of {json.loads((d / 'upload.json').read_text())['key']}"
                   for d in (uploads.iterdir() if uploads.exists() else []) if (d / "upload.json").exists()]
        objects = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                         if p.is_file() and ".uploads" not in p.relative_to(root).parts)
        strays = [str(p) for p in uploads.rglob("*") if p.is_file() and p.parent.name != uploads.name
                  and not (p.parent / "upload.json").exists()] if uploads.exists() else []
        return objects + pending + strays


class TestLocalDirectUploads(DirectUploadsConformance):
    @pytest.fixture
    async def direct_uploads(self, tmp_path: Path):
        storage = LocalStorage(tmp_path / "artifacts")
        app = web.Application()
        app[keys.STORAGE] = storage
        app.add_routes(part_routes())
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        storage.base_url = str(server.make_url("")).rstrip("/")
        try:
            yield LocalDirectHarness(storage)
        finally:
            await server.close()


class R2DirectHarness:
    def __init__(self, storage, client, bucket: str) -> None:
        self.storage = storage
        self.client = client
        self.bucket = bucket

    async def leftovers(self) -> list[str]:
        return sorted(await object_keys(self.client, self.bucket)) + [
            f"pending upload of {key}" for key in await pending_uploads(self.client, self.bucket)]


class TestR2DirectUploads(DirectUploadsConformance):
    @pytest.fixture
    async def direct_uploads(self, moto_endpoint: str):
        from portal_plugins.r2.storage import R2Storage

        async with s3_client(moto_endpoint) as client:
            bucket = f"direct-{uuid.uuid4().hex[:16]}"
            await client.create_bucket(Bucket=bucket)
            async with R2Storage(endpoint_url=moto_endpoint, access_key_id=ACCESS_KEY_ID,
                                 secret_access_key=SECRET_ACCESS_KEY, bucket=bucket, region=REGION) as storage:
                yield R2DirectHarness(storage, client, bucket)
