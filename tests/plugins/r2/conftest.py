"""Fixtures for the r2 plugin's tests: a moto S3 server, a fresh bucket, an open R2Storage on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.moto import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY



@pytest.fixture
async def r2(moto_endpoint: str, s3_bucket: str) -> AsyncIterator[object]:
    """An open R2Storage on this test's bucket, configured the way production is (but region us-east-1)."""
    from portal_plugins.r2.storage import R2Storage

    async with R2Storage(endpoint_url=moto_endpoint, access_key_id=ACCESS_KEY_ID,
                         secret_access_key=SECRET_ACCESS_KEY, bucket=s3_bucket, region=REGION) as storage:
        yield storage
