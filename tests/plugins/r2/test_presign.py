"""The presigned download URLs R2Storage makes, checked offline (moto does not verify them fully).

Presigning is local, so these need no server: they check the URL's shape R2 will verify.
"""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from portal_plugins.r2.storage import R2Storage
from portal_core.http_headers import content_disposition

ENDPOINT = "https://0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"


@pytest.fixture
async def r2() -> R2Storage:
    async with R2Storage(endpoint_url=ENDPOINT, access_key_id="AKIDEXAMPLE", secret_access_key="secret",
                         bucket="artifacts", presign_seconds=120) as storage:
        yield storage


async def presigned(r2: R2Storage, filename: str = "report.pdf", content_type: str = "application/pdf"):
    download = await r2.download("42/3f2c9a1e-uuid", filename=filename, content_type=content_type)
    assert download.stream is None and download.size is None
    url = urlsplit(download.url)
    return url, {name: values[0] for name, values in parse_qs(url.query, strict_parsing=True).items()}


async def test_url_is_a_sigv4_presigned_get_on_the_account_endpoint_path_style(r2) -> None:
    url, query = await presigned(r2)
    assert (url.scheme, url.netloc) == ("https", "0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com")
    assert url.path == "/artifacts/42/3f2c9a1e-uuid"
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Expires"] == "120"
    assert query["X-Amz-Credential"].startswith("AKIDEXAMPLE/")
    assert query["X-Amz-Credential"].endswith("/auto/s3/aws4_request")
    assert query["X-Amz-SignedHeaders"] == "host"
    assert len(query["X-Amz-Signature"]) == 64
    assert not [name for name in query if "checksum" in name.lower()]  # R2 refuses checksum parameters


async def test_url_makes_the_browser_save_the_customers_filename(r2) -> None:
    filename = 'naïve "quoted"\\name ✓.tar.gz'
    _url, query = await presigned(r2, filename=filename, content_type="application/gzip")
    disposition = query["response-content-disposition"]
    assert disposition == content_disposition(filename)
    assert disposition.startswith('attachment; filename="')
    assert "filename*=UTF-8''na%C3%AFve%20%22quoted%22%5Cname%20%E2%9C%93.tar.gz" in disposition
    assert query["response-content-type"] == "application/gzip"


async def test_expiry_and_addressing_follow_the_settings() -> None:
    async with R2Storage(endpoint_url=ENDPOINT, access_key_id="AKIDEXAMPLE", secret_access_key="secret",
                         bucket="artifacts", presign_seconds=900, addressing_style="virtual") as r2:
        url, query = await presigned(r2)
    assert url.netloc == "artifacts.0123456789abcdef0123456789abcdef.r2.cloudflarestorage.com"
    assert url.path == "/42/3f2c9a1e-uuid"
    assert query["X-Amz-Expires"] == "900"


async def test_each_download_gets_its_own_signature_for_its_filename(r2) -> None:
    _u, first = await presigned(r2, filename="a.txt")
    _u, second = await presigned(r2, filename="b.txt")
    assert first["X-Amz-Signature"] != second["X-Amz-Signature"]
