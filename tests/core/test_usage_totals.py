"""The running usage totals: users.bytes_used / files_used, kept by triggers on artifacts (schema.sql).

/api/me and every upload's quota check read them instead of summing the user's artifacts, so they must equal
that sum after every kind of change — whichever upload path, delete, erasure, concurrent commit, older build
or hand-written SQL made it — and a database an older build filled must be counted right the first time a
newer build starts.
"""

from __future__ import annotations

import asyncio
import uuid

import aiohttp

from portal_core import __version__
from portal_core.db import apply_schema, core_schema, create_pool
from tests.core.test_direct_uploads import start  # noqa: F401 (fixture)
from tests.support.db import create_token, create_user, run_sql
from tests.support.gate import S3Gate
from tests.support.moto import object_keys, r2_env, s3_client
from tests.support.sharing import browser_form, make_pro, me_id, token_of

TOTALS_SECTION = "-- ---- Usage totals"


def totals_and_sums(database_url: str) -> tuple[list[tuple], list[tuple]]:
    """(id, bytes_used, files_used) of every user, and the same figures summed from artifacts."""
    rows = run_sql(database_url, """
        SELECT u.id, u.bytes_used, u.files_used, COALESCE(sum(a.size), 0), count(a.id)
        FROM users u LEFT JOIN artifacts a ON a.owner_id = u.id GROUP BY u.id ORDER BY u.id""")
    return [(r[0], r[1], r[2]) for r in rows], [(r[0], r[3], r[4]) for r in rows]


def assert_totals_right(database_url: str) -> None:
    kept, summed = totals_and_sums(database_url)
    assert kept == summed


async def me_usage(browser) -> dict:
    async with browser.request("GET", "/api/me") as resp:
        return (await resp.json())["usage"]


async def test_uploads_deletes_file_requests_and_erasure_keep_the_totals_and_api_me_right(client, sign_in, sql,
                                                                                           database_url):
    admin = await sign_in("root@example.com", admin=True)
    ada = await sign_in("ada@example.com")
    ids = []
    for size in (1000, 2500, 40):
        async with await ada.upload(b"a" * size, f"{size}.bin") as resp:
            assert resp.status == 201
            ids.append((await resp.json())["id"])
        assert_totals_right(database_url)
    assert await me_usage(ada) == {"bytes": 3540, "count": 3, "reserved": 0}

    async with ada.request("DELETE", f"/api/artifacts/{ids[1]}") as resp:
        assert resp.status == 204
    assert_totals_right(database_url)
    assert await me_usage(ada) == {"bytes": 1040, "count": 2, "reserved": 0}

    # A guest's files through a file request count against the owner.
    make_pro(sql, await me_id(ada))
    async with ada.request("POST", "/api/requests", json={"title": "Papers"}) as resp:
        assert resp.status == 201, await resp.text()
        url = client.make_url(f"/r/{token_of((await resp.json())['url'])}")
    body, content_type = browser_form({"one.pdf": b"1" * 300, "two.pdf": b"2" * 700})
    async with aiohttp.ClientSession() as guest, guest.post(url, data=body,
                                                             headers={"Content-Type": content_type}) as resp:
        assert resp.status == 201, await resp.text()
    assert_totals_right(database_url)
    assert await me_usage(ada) == {"bytes": 2040, "count": 4, "reserved": 0}

    # Erasure removes the artifacts one by one, then the user: no total is left behind, the admin's untouched.
    async with await admin.upload(b"r" * 77, "root.bin") as resp:
        assert resp.status == 201
    victim = await me_id(ada)
    sql("UPDATE subscriptions SET status = 'canceled' WHERE user_id = %s", (victim,))  # erasure's precondition
    async with admin.request("DELETE", f"/api/admin/users/{victim}", json={"email": "ada@example.com"}) as resp:
        assert resp.status == 200, await resp.text()
    assert_totals_right(database_url)
    assert sql("SELECT bytes_used, files_used FROM users WHERE email = 'root@example.com'") == [(77, 1)]
    assert await me_usage(admin) == {"bytes": 77, "count": 1, "reserved": 0}


async def test_a_direct_upload_counts_as_reserved_until_completed_then_as_stored(start):  # noqa: F811
    portal = await start("dev")
    ada = await portal.user()
    data = b"d" * 5000
    created = await ada.create("d.bin", len(data), "application/octet-stream")
    assert (await ada.call("GET", "/api/me"))["usage"] == {"bytes": 0, "count": 0, "reserved": 5000}
    etag = await ada.put_part(await ada.sign(created["uploadId"], created["key"], 1), data)
    await ada.complete(created["uploadId"], created["key"], {1: etag})
    assert (await ada.call("GET", "/api/me"))["usage"] == {"bytes": 5000, "count": 1, "reserved": 0}
    assert_totals_right(portal.database_url)


def test_an_older_builds_plain_sql_keeps_the_totals_right(database_url, sql):
    """Any writer — an older build, a script, psql — is counted: the triggers are on the table."""
    ada, bob = create_user(database_url, email="ada@example.com"), create_user(database_url, email="bob@example.com")
    insert = ("INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
              "SELECT gen_random_uuid(), %s, 'f' || n, n * 10, 'x/y', 'h', gen_random_uuid()::text "
              "FROM generate_series(1, %s) AS n")
    sql(insert, (ada, 50))
    sql(insert, (bob, 3))
    assert_totals_right(database_url)
    assert sql("SELECT bytes_used, files_used FROM users WHERE id = %s", (ada,)) == [(12750, 50)]
    sql("DELETE FROM artifacts WHERE size > 300")  # both users at once
    assert_totals_right(database_url)
    sql("UPDATE artifacts SET size = size + 1 WHERE owner_id = %s", (ada,))
    sql("UPDATE artifacts SET owner_id = %s WHERE size = 10", (bob,))
    sql("UPDATE artifacts SET name = 'renamed'")  # neither size nor owner: nothing to count
    assert_totals_right(database_url)
    sql("DELETE FROM users WHERE id = %s", (bob,))  # the cascade removes bob's artifacts with him
    assert_totals_right(database_url)
    sql("TRUNCATE artifacts CASCADE")
    assert sql("SELECT bytes_used, files_used FROM users") == [(0, 0)]


async def test_an_artifact_an_older_build_inserted_counts_against_the_quota(make_app, aiohttp_client, sign_in,
                                                                            sql):
    client = await aiohttp_client(make_app(PLAN_FREE_QUOTA="10KiB"))
    ada = await sign_in(on=client)
    sql("INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
        "VALUES (gen_random_uuid(), %s, 'old.bin', 9216, 'x/y', 'h', 'old-build-key')", (await me_id(ada),))
    assert await me_usage(ada) == {"bytes": 9216, "count": 1, "reserved": 0}
    async with await ada.upload(b"x" * 2048, "new.bin") as resp:
        assert resp.status == 413
        assert "9 KiB already used" in (await resp.json())["error"]["message"]
    async with await ada.upload(b"x" * 1024, "fits.bin") as resp:
        assert resp.status == 201


async def test_a_database_an_older_build_filled_is_counted_when_the_newer_build_first_starts(empty_database_url):
    full = core_schema()
    older = full[:full.index(TOTALS_SECTION)]  # the schema of a build before the totals
    pool = await create_pool(empty_database_url, connect_timeout=5)
    try:
        await apply_schema(pool, [("schema.sql", older)], version="older")
        ada = create_user(empty_database_url, email="ada@example.com")
        create_user(empty_database_url, email="bob@example.com")  # nothing stored: 0, 0
        run_sql(empty_database_url,
                "INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key) "
                "SELECT gen_random_uuid(), %s, 'f', n, 'x/y', 'h', gen_random_uuid()::text "
                "FROM generate_series(1, 20) AS n", (ada,))
        await apply_schema(pool, [("schema.sql", full)], version=__version__)
        assert_totals_right(empty_database_url)
        assert run_sql(empty_database_url, "SELECT bytes_used, files_used FROM users ORDER BY id") == [(210, 20), (0, 0)]
        # The older build runs again (a rollback): its schema leaves the triggers alone, and they count its writes.
        await apply_schema(pool, [("schema.sql", older)], version="older-again")
        run_sql(empty_database_url, "DELETE FROM artifacts WHERE size <= 5")
        await apply_schema(pool, [("schema.sql", full)], version=__version__ + "-again")
        assert run_sql(empty_database_url, "SELECT bytes_used, files_used FROM users ORDER BY id") == [(195, 15), (0, 0)]
        assert_totals_right(empty_database_url)
    finally:
        pool.close()
        await pool.wait_closed()


async def held_uploads(client, gate: S3Gate, headers: dict, sizes: list[int]) -> list[int]:
    """Upload files of ``sizes`` at once; their stores are held at the gate until all are in flight, then
    released together, so every commit contends for the user's row. The answers' statuses, in order."""
    gate.hold(lambda request: request.method == "PUT")

    async def upload(n: int, size: int) -> int:
        form = aiohttp.FormData()
        form.add_field("file", bytes([65 + n]) * size, filename=f"{n}.bin")
        async with client.post("/api/artifacts", data=form, headers=headers) as resp:
            return resp.status

    uploads = [asyncio.ensure_future(upload(n, size)) for n, size in enumerate(sizes)]
    await gate.wait_for(lambda: len(gate.holding()) == len(sizes))
    gate.open()
    return list(await asyncio.gather(*uploads))


async def test_concurrent_uploads_held_at_the_gate_are_all_counted(make_app, aiohttp_client, database_url,
                                                                  moto_endpoint):
    async with s3_client(moto_endpoint) as s3, S3Gate(moto_endpoint) as gate:
        bucket = f"totals-{uuid.uuid4().hex[:12]}"
        await s3.create_bucket(Bucket=bucket)
        client = await aiohttp_client(make_app(STORAGE_BACKEND="r2", PLAN_FREE_QUOTA="1MiB",
                                               **r2_env(gate.url, bucket)))
        headers = {"Authorization": f"Bearer {create_token(database_url, create_user(database_url))}"}
        assert await held_uploads(client, gate, headers, [1000, 2000, 3000, 4000]) == [201] * 4
    assert_totals_right(database_url)
    assert run_sql(database_url, "SELECT bytes_used, files_used FROM users") == [(10_000, 4)]


async def test_concurrent_uploads_past_the_quota_leave_the_last_committer_out(make_app, aiohttp_client,
                                                                              database_url, moto_endpoint):
    """All four fit the quota when they start; together they are one byte over it. The commit-time
    recheck, under the user's row lock, reads the total the earlier commits' triggers left: exactly one is
    refused (the last to commit, whichever it is), its object is deleted, and the quota is not overshot."""
    async with s3_client(moto_endpoint) as s3, S3Gate(moto_endpoint) as gate:
        bucket = f"totals-{uuid.uuid4().hex[:12]}"
        await s3.create_bucket(Bucket=bucket)
        client = await aiohttp_client(make_app(STORAGE_BACKEND="r2", PLAN_FREE_QUOTA="9999",
                                               **r2_env(gate.url, bucket)))
        headers = {"Authorization": f"Bearer {create_token(database_url, create_user(database_url))}"}
        statuses = await held_uploads(client, gate, headers, [1000, 2000, 3000, 4000])
        assert sorted(statuses) == [201, 201, 201, 413]
        stored = await object_keys(s3, bucket)
    assert_totals_right(database_url)
    ((used, files),) = run_sql(database_url, "SELECT bytes_used, files_used FROM users")
    assert files == 3 and used == 10_000 - [1000, 2000, 3000, 4000][statuses.index(413)] <= 9999
    assert len(stored) == 3
