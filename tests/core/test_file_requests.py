"""File requests: a guest sends files through /r/<token> into the owner's artifacts, within the owner's
plan and quota and the request's own caps (atomically), and the owner sees them and the events."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

import aiohttp
import psycopg2

from portal_core import keys
from tests.support.sharing import browser_form, make_pro, me_id, token_of, wait_for_lock_waiters

PRIVATE = {"X-Robots-Tag": "noindex, nofollow", "Referrer-Policy": "no-referrer"}


def stored_files(tmp_path: Path) -> list[Path]:
    root = tmp_path / "data" / "artifacts"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def create_request(browser, **body) -> dict:
    async with browser.request("POST", "/api/requests", json={"title": "Tax papers 2024", **body}) as resp:
        assert resp.status == 201, await resp.text()
        return await resp.json()


async def pro_owner(sign_in, sql, **kwargs):
    browser = await sign_in("owner@example.com", name="Olivia Owner", **kwargs)
    make_pro(sql, await me_id(browser))
    return browser


async def send(url, files: dict[str, bytes]) -> tuple[int, str]:
    body, content_type = browser_form(files)
    async with aiohttp.ClientSession() as guest, guest.post(url, data=body, headers={"Content-Type": content_type}) as resp:
        return resp.status, await resp.text()


async def test_a_guest_sends_files_and_the_owner_sees_them_and_the_events(sign_in, client, sql):
    owner = await pro_owner(sign_in, sql)
    created = await create_request(owner, max_files=5)
    assert created["state"] == "open" and created["files"] == [] and created["url"].startswith("http://127.0.0.1:8080/r/")
    url = client.make_url(f"/r/{token_of(created['url'])}")
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 200
        assert {k: resp.headers.get(k) for k in PRIVATE} == PRIVATE
        page = await resp.text()
    assert "Tax papers 2024" in page and "Olivia Owner" in page and 'type="file"' in page and "up to 5 more" in page
    files = {"payslip.pdf": b"%PDF payslip", "receipt 東京.jpg": b"\xff\xd8 receipt"}
    status, page = await send(url, files)
    assert status == 201, page
    assert "Sent 2 files" in page and "receipt 東京.jpg" in page and "up to 3 more" in page

    async with owner.request("GET", "/api/artifacts") as resp:
        artifacts = (await resp.json())["artifacts"]
    assert sorted(a["name"] for a in artifacts) == sorted(files)
    assert {a["sha256"] for a in artifacts} == {hashlib.sha256(d).hexdigest() for d in files.values()}
    assert {a["file_request_id"] for a in artifacts} == {created["id"]}  # marked with the request
    async with owner.request("GET", f"/api/artifacts/{artifacts[0]['id']}") as resp:
        assert (await resp.json())["file_request_id"] == created["id"]
    async with owner.request("GET", "/api/requests") as resp:
        (listed,) = (await resp.json())["requests"]
    assert (listed["received_files"], listed["received_bytes"]) == (2, sum(map(len, files.values())))
    assert sorted(f["name"] for f in listed["files"]) == sorted(files)
    assert sql("SELECT count(*) FROM artifacts WHERE file_request_id = %s", (created["id"],)) == [(2,)]
    owner_id = await me_id(owner)
    events = sql("SELECT type, actor_id, owner_id, data->>'name', data->>'file_request_id' FROM events "
                 "WHERE type IN ('request.created', 'request.file_received', 'artifact.created') ORDER BY id")
    assert events[0] == ("request.created", owner_id, owner_id, None, None)
    received = [e for e in events if e[0] == "request.file_received"]
    assert sorted(e[3] for e in received) == sorted(files) and {e[1:3] for e in received} == {(None, owner_id)}
    by_guest = [e for e in events if e[0] == "artifact.created"]
    assert {(e[1], e[2], e[4]) for e in by_guest} == {(None, owner_id, created["id"])}


async def test_the_file_cap_stops_the_form_and_the_page_says_so(sign_in, client, sql, tmp_path):
    owner = await pro_owner(sign_in, sql)
    created = await create_request(owner, max_files=2)
    url = client.make_url(f"/r/{token_of(created['url'])}")
    status, page = await send(url, {"a.txt": b"a", "b.txt": b"b", "c.txt": b"c"})
    assert status == 410
    assert "Sent 2 files" in page and "“c.txt” was not sent" in page and "This request has all the files it takes" in page
    assert 'type="file"' not in page
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 410
        assert "has received as much as it accepts" in await resp.text()
    assert sql("SELECT count(*) FROM artifacts") == [(2,)] and len(stored_files(tmp_path)) == 2


async def test_the_byte_cap_refuses_a_file_that_would_pass_it_and_keeps_nothing_of_it(sign_in, client, sql, tmp_path):
    owner = await pro_owner(sign_in, sql)
    created = await create_request(owner, max_bytes=100)
    url = client.make_url(f"/r/{token_of(created['url'])}")
    assert (await send(url, {"first.bin": b"1" * 60}))[0] == 201
    status, page = await send(url, {"second.bin": b"2" * 60})
    assert status == 413
    assert "“second.bin” was not sent: the file is larger than this request takes: at most 40 bytes" in page
    assert "40 bytes more in all" in page  # the form stays, saying what is left
    assert sql("SELECT name FROM artifacts") == [("first.bin",)] and len(stored_files(tmp_path)) == 1
    assert (await send(url, {"last.bin": b"3" * 40}))[0] == 201
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 410


async def test_two_guests_at_once_cannot_overshoot_the_cap(sign_in, client, sql, database_url, tmp_path):
    owner = await pro_owner(sign_in, sql)
    created = await create_request(owner, max_files=1)
    url = client.make_url(f"/r/{token_of(created['url'])}")
    # Hold the request's row: both uploads stream in, then queue at the commit (one on the owner's row,
    # one on the request's), and are decided one after the other when the gate opens.
    gate = psycopg2.connect(database_url)
    gate.cursor().execute("SELECT 1 FROM file_requests WHERE id = %s FOR UPDATE", (created["id"],))
    tasks = [asyncio.ensure_future(send(url, {f"guest{n}.txt": b"x" * 10})) for n in range(2)]
    await wait_for_lock_waiters(database_url, at_least=2)
    gate.commit()
    gate.close()
    statuses = sorted(status for status, _ in await asyncio.gather(*tasks))
    assert statuses == [201, 410]
    assert sql("SELECT received_files FROM file_requests") == [(1,)]
    assert sql("SELECT count(*) FROM artifacts") == [(1,)] and len(stored_files(tmp_path)) == 1


async def test_guests_files_count_against_the_owners_quota(make_app, aiohttp_client, sign_in, sql, tmp_path):
    client = await aiohttp_client(make_app(PLAN_PRO_QUOTA="1KiB"))
    owner = await pro_owner(sign_in, sql, on=client)
    url = client.make_url(f"/r/{token_of((await create_request(owner))['url'])}")
    status, page = await send(url, {"big.bin": b"x" * 2048})
    assert status == 413 and "at most 1 KiB" in page
    assert sql("SELECT count(*) FROM artifacts") == [(0,)] and stored_files(tmp_path) == []
    assert (await send(url, {"fits.bin": b"x" * 1024}))[0] == 201
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert "has no storage left" in await resp.text()


async def test_closed_expired_and_downgraded_requests_take_nothing(sign_in, client, sql):
    owner = await pro_owner(sign_in, sql)
    requests = [await create_request(owner) for _ in range(3)]
    urls = [client.make_url(f"/r/{token_of(r['url'])}") for r in requests]
    async with owner.request("DELETE", f"/api/requests/{requests[0]['id']}") as resp:
        assert resp.status == 204
    sql("UPDATE file_requests SET expires_at = now() - interval '1 second' WHERE id = %s", (requests[1]["id"],))
    for url, words in zip(urls[:2], ["This request is closed", "This request has expired"]):
        status, page = await send(url, {"late.txt": b"late"})
        assert status == 410 and words in page
    sql("DELETE FROM subscriptions")  # back on the free plan, which has no file requests
    status, page = await send(urls[2], {"late.txt": b"late"})
    assert status == 403 and "cannot receive them through a request on their current plan" in page
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]
    async with owner.request("GET", "/api/requests") as resp:
        states = [r["state"] for r in (await resp.json())["requests"]]
    assert sorted(states) == ["closed", "expired", "open"]
    assert sql("SELECT count(*) FROM events WHERE type = 'request.closed'") == [(1,)]


async def test_a_form_without_a_file_says_so(sign_in, client, sql):
    owner = await pro_owner(sign_in, sql)
    url = client.make_url(f"/r/{token_of((await create_request(owner))['url'])}")
    data = aiohttp.FormData()
    data.add_field("file", b"", filename="", content_type="application/octet-stream")  # what a browser sends
    async with aiohttp.ClientSession() as guest, guest.post(url, data=data) as resp:
        assert resp.status == 400
        assert "Nothing was sent: choose at least one file to send" in await resp.text()
    async with aiohttp.ClientSession() as guest, guest.post(url, data=b"x", headers={"Content-Type": "text/plain"}) as resp:
        assert resp.status == 400
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]


BAD_REQUESTS = [
    ({}, "bad_title"), ({"title": "   "}, "bad_title"), ({"title": "x" * 201}, "bad_title"),
    ({"title": "t", "expires_in": 59}, "bad_expires_in"), ({"title": "t", "max_files": 0}, "bad_max_files"),
    ({"title": "t", "max_bytes": -1}, "bad_max_bytes"), ({"title": "t", "maxfiles": 3}, "unknown_field"),
]


async def test_bad_request_input_is_400_naming_it_and_creates_nothing(sign_in, sql):
    owner = await pro_owner(sign_in, sql)
    for body, code in BAD_REQUESTS:
        async with owner.request("POST", "/api/requests", json=body) as resp:
            assert resp.status == 400, body
            assert (await resp.json())["error"]["code"] == code, body
    async with owner.request("POST", "/api/requests", json={"title": "t", "expires_in": 91 * 86400}) as resp:
        assert resp.status == 403 and (await resp.json())["error"]["code"] == "plan_rule"
    assert sql("SELECT count(*) FROM file_requests") == [(0,)]


async def test_nobody_closes_or_lists_another_owners_requests(sign_in, sql):
    owner = await pro_owner(sign_in, sql)
    created = await create_request(owner)
    other = await sign_in("mallory@example.com")
    for path in (f"/api/requests/{created['id']}", "/api/requests/nope"):
        async with other.request("DELETE", path) as resp:
            assert resp.status == 404
    async with other.request("GET", "/api/requests") as resp:
        assert (await resp.json())["requests"] == []
    assert sql("SELECT count(closed_at) FROM file_requests") == [(0,)]


async def test_unknown_request_tokens_are_404_pages(client):
    for token in ("B" * 32, "nope"):
        resp = await client.get(f"/r/{token}")
        assert resp.status == 404
        assert {k: resp.headers.get(k) for k in PRIVATE} == PRIVATE


async def test_a_suspended_owners_request_takes_nothing_until_unfrozen(sign_in, client, sql):
    owner = await pro_owner(sign_in, sql)
    url = client.make_url(f"/r/{token_of((await create_request(owner))['url'])}")
    sql("UPDATE users SET frozen_at = now()")
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 403
        assert "has been suspended" in await resp.text()
    status, page = await send(url, {"a.txt": b"a"})
    assert status == 403 and "has been suspended" in page
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]
    sql("UPDATE users SET frozen_at = NULL")
    assert (await send(url, {"a.txt": b"a"}))[0] == 201


async def test_a_freeze_that_lands_mid_upload_is_seen_at_the_commit(sign_in, client, sql, database_url, tmp_path):
    owner = await pro_owner(sign_in, sql)
    url = client.make_url(f"/r/{token_of((await create_request(owner))['url'])}")
    gate = psycopg2.connect(database_url)  # the upload streams in, then waits for the owner's row at the commit
    gate.cursor().execute("SELECT 1 FROM users FOR UPDATE")
    task = asyncio.ensure_future(send(url, {"late.txt": b"late"}))
    await wait_for_lock_waiters(database_url, at_least=1)
    gate.cursor().execute("UPDATE users SET frozen_at = now()")
    gate.commit()
    gate.close()
    status, page = await task
    assert status == 403 and "suspended" in page
    assert sql("SELECT count(*) FROM artifacts") == [(0,)] and stored_files(tmp_path) == []


async def test_while_uploads_are_paused_the_request_page_says_so(sign_in, client, sql):
    owner = await pro_owner(sign_in, sql)
    url = client.make_url(f"/r/{token_of((await create_request(owner))['url'])}")
    sql("INSERT INTO site_settings (name, value) VALUES ('uploads_paused', 'true')")
    await client.server.app[keys.SITE].refresh(client.server.app[keys.POOL])
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 503
        assert "Uploads are paused for maintenance" in await resp.text()
    assert (await send(url, {"a.txt": b"a"}))[0] == 503
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]


async def test_while_the_portal_is_read_only_the_request_page_offers_no_form(sign_in, client, sql):
    owner = await pro_owner(sign_in, sql)
    url = client.make_url(f"/r/{token_of((await create_request(owner))['url'])}")
    sql("INSERT INTO site_settings (name, value) VALUES ('read_only', 'true')")
    await client.server.app[keys.SITE].refresh(client.server.app[keys.POOL])
    async with aiohttp.ClientSession() as guest, guest.get(url) as resp:
        assert resp.status == 503
        page = await resp.text()
    assert "read-only for maintenance" in page and 'type="file"' not in page


async def test_while_the_portal_is_read_only_the_public_forms_answer_with_a_page(sign_in, client, sql):
    """A guest's form POST (a file request's files, a share link's password, a scripted download) gets the
    layout's page saying the portal is read-only — not the API's JSON — and the link's private headers."""
    from tests.support.sharing import share

    owner = await pro_owner(sign_in, sql)
    request_url = client.make_url(f"/r/{token_of((await create_request(owner))['url'])}")
    async with await owner.upload(b"secret", "plans.pdf", "application/pdf") as resp:
        artifact = await resp.json()
    share_token = token_of((await share(owner, artifact["id"], password="pw-1234"))["url"])
    sql("INSERT INTO site_settings (name, value) VALUES ('read_only', 'true'), ('banner', '\"back at 6\"')")
    await client.server.app[keys.SITE].refresh(client.server.app[keys.POOL])
    body, content_type = browser_form({"a.txt": b"a"})
    attempts = [(request_url, body, content_type),
                (client.make_url(f"/s/{share_token}"), b"password=pw-1234", "application/x-www-form-urlencoded"),
                (client.make_url(f"/s/{share_token}/download"), b"password=pw-1234", "application/x-www-form-urlencoded")]
    async with aiohttp.ClientSession() as guest:
        for url, data, kind in attempts:
            async with guest.post(url, data=data, headers={"Content-Type": kind}, allow_redirects=False) as resp:
                assert resp.status == 503, url
                assert resp.content_type == "text/html", url
                assert {k: resp.headers.get(k) for k in PRIVATE} == PRIVATE
                page = await resp.text()
            assert "The portal is read-only right now" in page and "nothing was changed" in page and "back at 6" in page
    async with owner.request("POST", "/api/requests", json={"title": "x"}) as resp:  # the API still answers JSON
        assert resp.status == 503 and (await resp.json())["error"]["code"] == "read_only"
    assert sql("SELECT count(*) FROM artifacts") == [(1,)] and sql("SELECT downloads FROM shares") == [(0,)]
