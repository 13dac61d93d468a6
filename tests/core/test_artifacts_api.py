"""The artifact API on the DEV_MODE stubs: upload, list, download, delete, limits, filenames, isolation."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from urllib.parse import quote

import pytest


def stored_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "data" / "artifacts"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_upload_list_download_delete_round_trip(sign_in, sql, tmp_path):
    browser = await sign_in()
    data = os.urandom(300_000)
    async with await browser.upload(data, "report.pdf", "application/pdf") as resp:
        assert resp.status == 201, await resp.text()
        artifact = await resp.json()
    assert artifact["size"] == len(data)
    assert artifact["sha256"] == hashlib.sha256(data).hexdigest()
    assert artifact["content_type"] == "application/pdf"
    assert artifact["name"] == "report.pdf"

    async with browser.request("GET", "/api/artifacts") as resp:
        listing = await resp.json()
    assert [a["id"] for a in listing["artifacts"]] == [artifact["id"]]

    async with browser.request("GET", f"/api/artifacts/{artifact['id']}/download") as resp:
        assert resp.status == 200
        assert await resp.read() == data
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="report.pdf"')

    (key,) = sql("SELECT storage_key FROM artifacts")[0]
    assert key.startswith(f"{(await (await browser.request('GET', '/api/me')).json())['user']['id']}/")
    assert len(stored_files(tmp_path)) == 1

    async with browser.request("DELETE", f"/api/artifacts/{artifact['id']}") as resp:
        assert resp.status == 204
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]
    assert stored_files(tmp_path) == []
    async with browser.request("GET", f"/api/artifacts/{artifact['id']}") as resp:
        assert resp.status == 404


async def test_curl_style_upload_with_a_bearer_token(client, database_url):
    from tests.support.db import create_token, create_user

    token = create_token(database_url, create_user(database_url))
    import aiohttp

    form = aiohttp.FormData()
    form.add_field("file", b"hello", filename="hello.txt", content_type="text/plain")
    # No CSRF token: API tokens are exempt, as scripts and CI jobs use them.
    resp = await client.post("/api/artifacts", data=form, headers={"Authorization": f"Bearer {token}"})
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["content_type"] == "text/plain"


async def test_newest_first_and_cursor_pagination(sign_in):
    browser = await sign_in()
    ids = []
    for index in range(5):
        async with await browser.upload(f"file {index}".encode(), f"f{index}.txt") as resp:
            ids.append((await resp.json())["id"])
    seen, cursor = [], None
    while True:
        path = "/api/artifacts?limit=2" + (f"&cursor={cursor}" if cursor else "")
        async with browser.request("GET", path) as resp:
            page = await resp.json()
        assert len(page["artifacts"]) <= 2
        seen += [a["id"] for a in page["artifacts"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))


@pytest.mark.parametrize("query, code", [("limit=0", "bad_limit"), ("limit=abc", "bad_limit"),
                                         ("limit=1000", "bad_limit"), ("cursor=!!notours", "bad_cursor")])
async def test_bad_pagination_parameters_are_400(sign_in, query, code):
    browser = await sign_in()
    async with browser.request("GET", f"/api/artifacts?{query}") as resp:
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == code


async def test_another_users_artifact_is_404_never_403(sign_in, sql):
    alice = await sign_in("alice@example.com")
    bob = await sign_in("bob@example.com")
    async with await alice.upload(b"alice's secret", "secret.txt") as resp:
        artifact = (await resp.json())["id"]
    for method, path in [("GET", f"/api/artifacts/{artifact}"), ("GET", f"/api/artifacts/{artifact}/download"),
                         ("DELETE", f"/api/artifacts/{artifact}")]:
        async with bob.request(method, path) as resp:
            assert resp.status == 404, (method, path)
            assert "alice" not in await resp.text()
    async with bob.request("GET", "/api/artifacts") as resp:
        assert (await resp.json())["artifacts"] == []
    assert sql("SELECT count(*) FROM artifacts") == [(1,)]


async def test_per_file_limit_is_413_naming_the_limit_and_leaves_nothing(make_app, aiohttp_client, sign_in, sql, tmp_path):
    client = await aiohttp_client(make_app(PLAN_FREE_MAX_FILE="64KiB"))
    browser = await sign_in(on=client)
    async with await browser.upload(os.urandom(64 * 1024), "exact.bin") as resp:
        assert resp.status == 201  # exactly the limit is fine
    async with await browser.upload(os.urandom(64 * 1024 + 1), "big.bin") as resp:
        assert resp.status == 413
        error = (await resp.json())["error"]
    assert error["code"] == "too_large"
    assert "per-file limit of 64 KiB" in error["message"] and "free" in error["message"]
    assert sql("SELECT name FROM artifacts") == [("exact.bin",)]
    assert len(stored_files(tmp_path)) == 1


async def test_quota_is_413_naming_the_quota_and_leaves_nothing(make_app, aiohttp_client, sign_in, sql, tmp_path):
    client = await aiohttp_client(make_app(PLAN_FREE_QUOTA="100KiB"))
    browser = await sign_in(on=client)
    async with await browser.upload(os.urandom(60 * 1024), "first.bin") as resp:
        assert resp.status == 201
    async with await browser.upload(os.urandom(60 * 1024), "second.bin") as resp:
        assert resp.status == 413
        message = (await resp.json())["error"]["message"]
    assert "storage quota of 100 KiB" in message
    assert sql("SELECT name FROM artifacts") == [("first.bin",)]
    assert len(stored_files(tmp_path)) == 1


async def test_a_client_that_disconnects_mid_upload_leaves_nothing(client, sign_in, sql, tmp_path):
    browser = await sign_in()
    cookie = browser.session.cookie_jar.filter_cookies(client.make_url("/"))["portal_session"].value
    boundary = "xyzzy"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"cut.bin\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode()
    host, port = client.server.host, client.server.port
    reader, writer = await asyncio.open_connection(host, port)
    writer.write((f"POST /api/artifacts HTTP/1.1\r\nHost: {host}:{port}\r\nCookie: portal_session={cookie}\r\n"
                  f"X-CSRF-Token: {browser.csrf}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                  f"Content-Length: {len(head) + 5_000_000}\r\n\r\n").encode() + head + os.urandom(2_000_000))
    await writer.drain()
    for _ in range(100):  # the portal has started writing the object...
        if stored_files(tmp_path):
            break
        await asyncio.sleep(0.05)
    assert stored_files(tmp_path), "the upload never reached storage"
    writer.transport.abort()  # ...and the client vanishes mid-body.
    for _ in range(100):
        if not stored_files(tmp_path):
            break
        await asyncio.sleep(0.05)
    assert stored_files(tmp_path) == []
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]


ODD_NAMES = ["résumé 2024 — final.pdf", "日本語のファイル.txt", "../../etc/passwd", "a/b\\c.txt", "..",
             "<script>alert(1)</script>.html", "x" * 255, "emoji 🎉.png", "  spaced  .txt", 'quote".txt']


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_odd_filenames_are_stored_as_data(sign_in, sql, tmp_path, name):
    browser = await sign_in()
    async with await browser.upload(b"data", name) as resp:
        assert resp.status == 201, await resp.text()
        artifact = await resp.json()
    assert artifact["name"] == name
    (key,) = sql("SELECT storage_key FROM artifacts")[0]
    assert name not in key and ".." not in key
    async with browser.request("GET", f"/api/artifacts/{artifact['id']}/download") as resp:
        disposition = resp.headers["Content-Disposition"]
    assert disposition.endswith("filename*=UTF-8''" + quote(name, safe=""))
    fallback = disposition.split('filename="', 1)[1].split('";', 1)[0]
    assert fallback.isascii() and '"' not in fallback and "/" not in fallback and "\\" not in fallback


@pytest.mark.parametrize("name, why", [("", "no name"), ("bad\x07bell.txt", "control characters"),
                                       ("new\nline.txt", "control characters"), ("y" * 256, "256 characters")])
async def test_unacceptable_filenames_are_400_and_leave_nothing(client, database_url, sql, tmp_path, name, why):
    from tests.support.db import create_token, create_user

    token = create_token(database_url, create_user(database_url))
    boundary = "b0undary"
    # RFC 5987 filename* carries any character, as a browser or curl could send it.
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename*=UTF-8''{quote(name, safe='')}"
            f"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
    resp = await client.post("/api/artifacts", data=body, headers={
        "Authorization": f"Bearer {token}", "Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert resp.status == 400, await resp.text()
    assert why in (await resp.json())["error"]["message"]
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]
    assert stored_files(tmp_path) == []


async def test_upload_without_a_file_field_is_400(sign_in):
    browser = await sign_in()
    async with browser.request("POST", "/api/artifacts", data={"other": "x"}) as resp:
        assert resp.status == 400
        assert "multipart/form-data" in (await resp.json())["error"]["message"]



@pytest.mark.parametrize("prepare", ["true", "false"])
async def test_listing_is_the_same_with_and_without_prepared_statements(make_app, aiohttp_client, sign_in, prepare):
    client = await aiohttp_client(make_app(DATABASE_PREPARE_STATEMENTS=prepare))
    browser = await sign_in(on=client)
    for index in range(3):
        async with await browser.upload(f"file {index}".encode(), f"f{index}.txt") as resp:
            assert resp.status == 201
    for _ in range(2):  # the second time runs the prepared statement, when there is one
        async with browser.request("GET", "/api/artifacts?limit=2") as resp:
            page = await resp.json()
        assert [a["name"] for a in page["artifacts"]] == ["f2.txt", "f1.txt"] and page["next_cursor"]
