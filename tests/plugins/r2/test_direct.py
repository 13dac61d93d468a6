"""R2's side of direct uploads beyond the conformance cases: ListParts answered in several pages, and the
origin browsers PUT parts to (the CSP's connect-src) for path and virtual addressing."""

from __future__ import annotations

from portal_core.interfaces import StoredPart
from portal_core.testing.conformance.direct_uploads import put_part
from tests.support.moto import ACCESS_KEY_ID, SECRET_ACCESS_KEY


async def test_every_part_is_listed_however_many_pages_r2_answers_in(r2) -> None:
    upload_id = await r2.create_multipart("7/paged", content_type="text/plain")
    etags = {}
    for number in range(1, 6):
        signed = await r2.presign_part("7/paged", upload_id, number, expires_in=60)
        status, etags[number], _text = await put_part(signed.url, b"x" * number)
        assert status == 200
    r2.list_page_size = 2  # five parts in pages of two: three ListParts calls
    calls = []
    original = r2.client.list_parts

    async def counting(**params):
        calls.append(params["PartNumberMarker"])
        return await original(**params)

    r2.client.list_parts = counting
    try:
        listed = await r2.list_parts("7/paged", upload_id)
    finally:
        r2.client.list_parts = original
    assert listed == [StoredPart(n, etags[n], n) for n in range(1, 6)]
    assert calls == [0, 2, 4]
    await r2.abort_multipart("7/paged", upload_id)


def test_browsers_put_parts_to_the_endpoint_or_the_buckets_own_host() -> None:
    from portal_plugins.r2.storage import R2Storage

    def origins(style: str) -> tuple[str, ...]:
        return R2Storage(endpoint_url="https://acct.r2.cloudflarestorage.com/", access_key_id=ACCESS_KEY_ID,
                         secret_access_key=SECRET_ACCESS_KEY, bucket="files", addressing_style=style).upload_origins

    assert origins("path") == ("https://acct.r2.cloudflarestorage.com",)
    assert origins("virtual") == ("https://files.acct.r2.cloudflarestorage.com",)
