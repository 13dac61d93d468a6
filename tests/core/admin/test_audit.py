"""The audit trail: filtered pages, the CSV export (streamed, flat memory for 100,000 events), and a
customer's own activity."""

from __future__ import annotations

import csv
import io
import json

import aiohttp
import pytest

from tests.support.portal import dev_sign_in, run_portal


def user_id(sql, email: str) -> int:
    return sql("SELECT id FROM users WHERE email = %s", (email,))[0][0]


async def events(admin, query: str = "") -> dict:
    async with admin.request("GET", f"/api/admin/events?{query}") as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_filter_and_page_through_the_audit_trail(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    ada = await sign_in("ada@example.com")
    for name in ("a.txt", "b.txt", "c.txt"):
        async with await ada.upload(b"x", name) as resp:
            artifact = (await resp.json())["id"]
    ada_id, root_id = user_id(sql, "ada@example.com"), user_id(sql, "root@example.com")
    async with admin.request("PATCH", f"/api/admin/users/{ada_id}", json={"frozen": True}) as resp:
        assert resp.status == 200

    uploads = (await events(admin, "type=artifact.created"))["events"]
    assert [e["data"]["name"] for e in uploads] == ["c.txt", "b.txt", "a.txt"]  # newest first
    assert uploads[0]["actor_email"] == "ada@example.com" and uploads[0]["ip"] == "127.0.0.1"
    by_admin = (await events(admin, "type=admin.*"))["events"]
    assert [(e["type"], e["actor_id"], e["owner_id"], e["owner_email"]) for e in by_admin] == [
        ("admin.user_frozen", root_id, ada_id, "ada@example.com")]
    assert [e["type"] for e in (await events(admin, f"subject={artifact}"))["events"]] == ["artifact.created"]
    assert {e["actor_id"] for e in (await events(admin, "actor=ada@example.com"))["events"]} == {ada_id}
    assert {e["owner_id"] for e in (await events(admin, f"owner={ada_id}"))["events"]} == {ada_id}
    assert (await events(admin, "since=2999-01-01T00:00:00Z"))["events"] == []
    assert len((await events(admin, "until=2999-01-01T00:00:00Z"))["events"]) >= 6

    first = await events(admin, "limit=2")
    second = await events(admin, f"limit=2&cursor={first['next_cursor']}")
    assert first["events"][-1]["id"] > second["events"][0]["id"]


@pytest.mark.parametrize("query, code", [
    ("type=DROP TABLE", "bad_type"), ("type=admin", "bad_type"), ("actor=someone", "bad_actor"),
    ("owner=-1", "bad_owner"), ("since=yesterday", "bad_since"), ("until=2025-13-01", "bad_until"),
    ("cursor=x", "bad_cursor"), ("limit=1000", "bad_limit"), ("subject=" + "s" * 201, "bad_subject"),
    ("since=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z", "bad_until"),
    ("since=2026-01-01T00:00:00Z&until=2026-01-01T00:00:00Z", "bad_until"),
])
async def test_bad_filters_are_400_naming_them(sign_in, query, code):
    admin = await sign_in("root@example.com", admin=True)
    for path in ("/api/admin/events", "/api/admin/events.csv"):
        if path.endswith(".csv") and code in ("bad_cursor", "bad_limit"):
            continue  # the export takes every row
        async with admin.request("GET", f"{path}?{query}") as resp:
            assert resp.status == 400 and (await resp.json())["error"]["code"] == code, path


async def test_the_csv_has_every_matching_event_and_defuses_formulas(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    ada = await sign_in("ada@example.com")
    async with await ada.upload(b"x", "=HYPERLINK(\"http://evil.example\")") as resp:
        assert resp.status == 201
    async with admin.request("GET", "/api/admin/events.csv?type=artifact.created") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="audit-')
        rows = list(csv.DictReader(io.StringIO(await resp.text())))
    assert len(rows) == 1
    row = rows[0]
    assert row["type"] == "artifact.created" and row["actor_email"] == "ada@example.com"
    assert json.loads(row["data"])["name"] == '=HYPERLINK("http://evil.example")'  # inside JSON: starts with {
    async with admin.request("GET", "/api/admin/events.csv?type=user.signed_in") as resp:
        signed = list(csv.DictReader(io.StringIO(await resp.text())))
    assert {r["actor_email"] for r in signed} == {"root@example.com", "ada@example.com"}
    sql("INSERT INTO events (type, subject_id) VALUES ('test.happened', '=1+1')")
    async with admin.request("GET", "/api/admin/events.csv?type=test.happened") as resp:
        assert list(csv.DictReader(io.StringIO(await resp.text())))[0]["subject_id"] == "'=1+1"


async def test_customers_see_their_own_activity_and_not_others_addresses(sign_in, sql):
    admin = await sign_in("root@example.com", admin=True)
    ada = await sign_in("ada@example.com")
    bob = await sign_in("bob@example.com")
    async with await ada.upload(b"x", "mine.txt") as resp:
        artifact = (await resp.json())["id"]
    async with ada.request("DELETE", f"/api/artifacts/{artifact}") as resp:
        assert resp.status == 204
    async with await bob.upload(b"x", "bobs.txt") as resp:
        assert resp.status == 201
    ada_id = user_id(sql, "ada@example.com")
    async with admin.request("PATCH", f"/api/admin/users/{ada_id}", json={"limits": {"quota": "1GiB"}}) as resp:
        assert resp.status == 200
    async with ada.request("GET", "/api/me/events") as resp:
        mine = (await resp.json())["events"]
    assert [e["type"] for e in mine] == ["admin.limits_changed", "artifact.deleted", "artifact.created",
                                         "user.signed_in", "user.created"]
    assert all(e["ip"] == "127.0.0.1" and e["user_agent"] for e in mine if e["by"] == "you")
    change = mine[0]
    assert change["by"] == "admin" and change["ip"] is None and change["user_agent"] is None
    assert "bobs.txt" not in json.dumps(mine)
    async with ada.request("GET", "/api/me/events?limit=2") as resp:
        page = await resp.json()
    async with ada.request("GET", f"/api/me/events?limit=2&cursor={page['next_cursor']}") as resp:
        assert [e["type"] for e in (await resp.json())["events"]] == ["artifact.created", "user.signed_in"]


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory so far (VmHWM), in KiB."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError(f"/proc/{pid}/status has no VmHWM")


EVENTS = 100_000
# Holding the export in memory would take well over 100 MiB (100,000 rows of tuples, dicts and text); the
# streamed export holds one batch. The bound is generous on purpose: it separates the two, nothing finer.
FLAT_MIB = 40


@pytest.mark.slow
async def test_the_csv_of_100000_events_streams_with_flat_memory(database_url, sql):
    sql(f"""INSERT INTO events (type, actor_id, owner_id, subject_id, ip, user_agent, data)
            SELECT 'artifact.created', 1, 1, md5(n::text), '192.0.2.1', 'Mozilla/5.0 (X11; Linux x86_64) Test/' || n,
                   jsonb_build_object('name', 'file-' || n || '.bin', 'size', n, 'sha256', md5(n::text) || md5(n::text))
            FROM generate_series(1, {EVENTS}) AS n""")
    sql("ANALYZE events")  # as autovacuum would after such a batch: the planner knows the table's size
    with run_portal(database_url) as portal:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await dev_sign_in(http, portal.url, email="root@example.com", admin=True)
            async with http.get(portal.url + "/api/admin/events.csv?type=nothing.matches") as resp:  # warm up
                assert resp.status == 200 and (await resp.text()).count("\n") == 1
            before = peak_rss_kib(portal.pid)
            rows, size, tail = 0, 0, b""
            async with http.get(portal.url + "/api/admin/events.csv?type=artifact.created") as resp:
                assert resp.status == 200
                async for chunk in resp.content.iter_chunked(256 * 1024):
                    size += len(chunk)
                    rows += chunk.count(b"\n")
                    tail = (tail + chunk)[-300:]
            grown_mib = (peak_rss_kib(portal.pid) - before) / 1024
    assert rows == EVENTS + 1, rows  # the header and every event (no newline inside these values)
    assert b"file-1.bin" in tail
    assert size > 20 * 1024 * 1024
    assert grown_mib < FLAT_MIB, f"the portal's peak memory grew by {grown_mib:.0f} MiB exporting {size >> 20} MiB of CSV"
    print(f"exported {EVENTS} events ({size / 2**20:.1f} MiB of CSV); peak RSS grew {grown_mib:.1f} MiB")
