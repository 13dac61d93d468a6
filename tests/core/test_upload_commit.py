"""The upload's commit step (portal_core.web.upload.commit_row): the quota is re-checked under the owner's row
lock when the row is written, an upload that exactly fills the quota is taken, and an object whose row
cannot be written is deleted. Concurrency is made deterministic with a gate inside PostgreSQL
(tests.support.gate.DatabaseGate): a transaction is held where the test wants it, and what the other one
waits for is read from pg_locks.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from portal_core import hookimpl
from portal_core.direct_client import PortalError
from portal_core.settings import Limits
from tests.core.test_artifacts_api import stored_files
from tests.support.db import run_sql
from tests.support.gate import DatabaseGate, S3Gate
from tests.support.moto import object_keys, pending_uploads, r2_env, s3_client

KiB = 1024


async def test_two_uploads_racing_for_the_last_room_in_the_quota_cannot_overshoot_it(
        make_app, aiohttp_client, sign_in, sql, database_url, tmp_path):
    client = await aiohttp_client(make_app(PLAN_FREE_QUOTA="100KiB", PLAN_FREE_MAX_FILE="100KiB"))
    browser = await sign_in(on=client)
    first_data, second_data = os.urandom(60 * KiB), os.urandom(60 * KiB)
    gate = DatabaseGate(database_url)
    gate.hold_inserts_into("artifacts")

    async def upload(data: bytes, name: str) -> tuple[int, str]:
        async with await browser.upload(data, name) as resp:
            return resp.status, (await resp.json()).get("error", {}).get("message", "")

    with gate:
        # The first upload streams its file and stops inside its commit, at the INSERT, its owner's row locked.
        first = asyncio.ensure_future(upload(first_data, "first.bin"))
        await gate.wait_for_waiters(lambda waits: gate.waiting_at_gate() == 1)
        # The second passes the pre-check (the first row is not committed: 0 of 100 KiB used), stores its
        # file and reaches its own commit: it must queue on the owner's row, not go on to insert.
        second = asyncio.ensure_future(upload(second_data, "second.bin"))
        waits = await gate.wait_for_waiters(lambda waits: len(waits) == 2 or second.done())
        assert not second.done(), f"the second upload finished ({second.result()}) while the first was uncommitted"
        assert gate.waiting_at_gate() == 1, f"both commits reached the INSERT: nothing serialises them ({waits})"
        assert len(stored_files(tmp_path)) == 2  # both passed the pre-check and stored their bytes
    (first_status, _), (second_status, refusal) = await asyncio.gather(first, second)
    assert (first_status, second_status) == (201, 413)
    assert refusal == "the upload would exceed the free plan's storage quota of 100 KiB (60 KiB already used)"
    assert sql("SELECT name, size FROM artifacts") == [("first.bin", 60 * KiB)]
    assert sql("SELECT sum(size) FROM artifacts")[0][0] <= 100 * KiB
    assert len(stored_files(tmp_path)) == 1  # the refused upload's object is deleted
    assert stored_files(tmp_path)[0].read_bytes() == first_data
    assert sql("SELECT count(*) FROM events WHERE type = 'artifact.created'") == [(1,)]


async def test_an_upload_that_exactly_fills_the_quota_is_taken_and_the_next_byte_is_not(
        make_app, aiohttp_client, sign_in, sql, tmp_path):
    client = await aiohttp_client(make_app(PLAN_FREE_QUOTA="100KiB", PLAN_FREE_MAX_FILE="1MiB"))
    browser = await sign_in(on=client)
    async with await browser.upload(os.urandom(40 * KiB), "first.bin") as resp:
        assert resp.status == 201
    async with await browser.upload(os.urandom(60 * KiB), "fills-it.bin") as resp:
        assert resp.status == 201, await resp.text()  # 40 + 60 KiB is the quota, not more
        # The portal hashed every byte on the way in: the artifact is verified from the start.
        assert (await resp.json())["verification"] == "verified"
    async with await browser.upload(b"x", "one-more-byte.bin") as resp:
        assert resp.status == 413
    async with await browser.upload(b"", "empty.bin") as resp:
        assert resp.status == 201  # an empty file takes no room, even in a full quota
    assert sql("SELECT sum(size), count(*) FROM artifacts") == [(100 * KiB, 3)]
    assert sql("SELECT count(*) FROM artifact_verifications") == [(0,)]  # nothing queued to read back
    assert len(stored_files(tmp_path)) == 3


async def test_an_object_whose_row_cannot_be_written_is_deleted_from_storage(client, sign_in, sql, tmp_path):
    browser = await sign_in()
    # The row insert fails inside the commit (after the quota check), as a full disk or a bad row would.
    sql("""CREATE FUNCTION test_refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
           BEGIN RAISE EXCEPTION 'the row cannot be written'; END $$;
           CREATE TRIGGER test_refuse_row BEFORE INSERT ON artifacts FOR EACH ROW EXECUTE FUNCTION test_refuse_row();""")
    async with await browser.upload(os.urandom(20 * KiB), "unlucky.bin") as resp:
        assert resp.status == 500
        assert "request id" in (await resp.json())["error"]["message"]
    assert stored_files(tmp_path) == []
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]
    assert sql("SELECT count(*) FROM events WHERE type = 'artifact.created'") == [(0,)]
    # Once the database takes rows again, the same upload works and is the only file stored.
    sql("DROP TRIGGER test_refuse_row ON artifacts")
    async with await browser.upload(b"fine", "fine.bin") as resp:
        assert resp.status == 201
    assert [p.read_bytes() for p in stored_files(tmp_path)] == [b"fine"]


async def test_an_admins_override_of_either_limit_alone_replaces_only_that_one(make_app, aiohttp_client, sign_in, sql):
    client = await aiohttp_client(make_app(PLAN_FREE_MAX_FILE="1KiB", PLAN_FREE_QUOTA="4KiB"))
    browser = await sign_in(on=client)
    sql("UPDATE users SET limit_max_file = 2000")  # the quota stays the plan's 4 KiB
    async with await browser.upload(b"x" * 2000, "over-the-plans-file-limit.bin") as resp:
        assert resp.status == 201, await resp.text()
    sql("UPDATE users SET limit_max_file = NULL, limit_quota = 3024")  # the per-file limit is the plan's 1 KiB again
    async with await browser.upload(b"x" * 1025, "over-the-plans-file-limit-again.bin") as resp:
        assert resp.status == 413 and "per-file limit of 1 KiB" in (await resp.json())["error"]["message"]
    async with await browser.upload(b"x" * 1024, "fills-the-override.bin") as resp:
        assert resp.status == 201, await resp.text()
    async with await browser.upload(b"x", "one-byte-over-the-override.bin") as resp:
        assert resp.status == 413
    assert sql("SELECT sum(size) FROM artifacts") == [(3024,)]


async def test_an_upload_larger_than_the_room_left_is_refused_before_its_body_is_read(make_app, aiohttp_client,
                                                                                      sign_in, sql, tmp_path):
    plugin = PolicyPlugin()  # asked with the file's first bytes: only once the body is being read
    client = await aiohttp_client(make_app([plugin], PLAN_FREE_QUOTA="1MiB", PLAN_FREE_MAX_FILE="10MiB"))
    browser = await sign_in(on=client)
    async with await browser.upload(os.urandom(600 * KiB), "first.bin") as resp:
        assert resp.status == 201
    async with await browser.upload(os.urandom(1024 * KiB), "too-big.bin") as resp:
        assert resp.status == 413
        assert "storage quota of 1 MiB (600 KiB already used)" in (await resp.json())["error"]["message"]
    assert [name for name, _head in plugin.asked] == ["first.bin"]  # the second was refused from its headers
    assert len(stored_files(tmp_path)) == 1


async def test_storage_refusing_the_bytes_is_503_and_leaves_no_row(make_app, aiohttp_client, sign_in, sql,
                                                                   moto_endpoint):
    async with s3_client(moto_endpoint) as s3, S3Gate(moto_endpoint) as gate:
        bucket = f"refusing-{uuid.uuid4().hex[:12]}"
        await s3.create_bucket(Bucket=bucket)
        client = await aiohttp_client(make_app(STORAGE_BACKEND="r2", **r2_env(gate.url, bucket)))
        browser = await sign_in(on=client)
        gate.refuse(lambda request: request.method in ("PUT", "POST"))
        async with await browser.upload(b"hello", "a.bin") as resp:
            assert resp.status == 503
            assert "storage is unavailable, nothing was stored" in (await resp.json())["error"]["message"]
        assert await object_keys(s3, bucket) == [] and await pending_uploads(s3, bucket) == []
    assert sql("SELECT count(*) FROM artifacts") == [(0,)]


class LimitsPlugin:
    """portal_limits: gives ``answer`` for everyone."""

    __name__ = "limits_for_test"

    def __init__(self, answer) -> None:
        self.answer = answer

    @hookimpl
    def portal_limits(self, user, plan, limits, config):
        return self.answer


async def test_a_portal_limits_plugin_replaces_the_limits_and_must_answer_with_limits(make_app, aiohttp_client, sign_in, sql):
    client = await aiohttp_client(make_app([LimitsPlugin(Limits(max_file=3000, quota=3000))], PLAN_FREE_MAX_FILE="1KiB"))
    browser = await sign_in(on=client)
    async with await browser.upload(b"x" * 3000, "as-the-plugin-allows.bin") as resp:
        assert resp.status == 201, await resp.text()
    async with await browser.upload(b"x", "past-the-plugins-quota.bin") as resp:
        assert resp.status == 413
    plugin = LimitsPlugin(None)
    broken = await aiohttp_client(make_app([plugin]))
    browser = await sign_in("bob@example.com", on=broken)
    plugin.answer = {"quota": 10}  # not a Limits: a bug in the plugin
    async with await browser.upload(b"x", "a.bin") as resp:
        assert resp.status == 500  # a plugin bug is loud, never a silently wrong limit
    assert sql("SELECT name FROM artifacts") == [("as-the-plugin-allows.bin",)]


class PolicyPlugin:
    """portal_check_upload: refuses names ending in .exe (synchronously) and files starting with MZ (awaitably)."""

    __name__ = "policy_for_test"

    def __init__(self) -> None:
        self.asked: list[tuple[str, bytes]] = []

    @hookimpl
    def portal_check_upload(self, user, plan, filename, content_type, size, head, config):
        self.asked.append((filename, head))
        if filename.endswith(".exe"):
            return "no programs, please"

        async def later():
            return "no programs inside either" if head.startswith(b"MZ") else None
        return later()


async def test_a_policy_plugins_refusal_is_422_naming_it_and_nothing_is_stored(make_app, aiohttp_client, sign_in, sql,
                                                                              tmp_path):
    plugin = PolicyPlugin()
    client = await aiohttp_client(make_app([plugin]))
    browser = await sign_in(on=client)
    for data, name, says in ((b"hello", "setup.exe", "no programs, please"),
                             (b"MZ\x90\x00" + bytes(5000), "innocent.txt", "no programs inside either")):
        async with await browser.upload(data, name) as resp:
            assert resp.status == 422
            assert (await resp.json())["error"]["message"] == says
    async with await browser.upload(b"fine", "fine.txt") as resp:
        assert resp.status == 201
    assert [name for name, _head in plugin.asked] == ["setup.exe", "innocent.txt", "fine.txt"]
    assert plugin.asked[1][1] == b"MZ\x90\x00" + bytes(4092)  # the first 4 KiB, before anything is stored
    assert sql("SELECT name FROM artifacts") == [("fine.txt",)]
    assert [p.read_bytes() for p in stored_files(tmp_path)] == [b"fine"]


# -- the direct-upload completion (portal_core.web.direct_complete): the same commit, under the same lock --

from tests.core.test_direct_uploads import send_parts, start, wait_verified  # noqa: E402,F401 - `start`: a fixture


async def started_upload(portal, data: bytes):
    """(client, upload id, key, ETags) of a direct upload of ``data`` whose parts are all in storage."""
    ada = await portal.user()
    created = await ada.create("direct.bin", len(data), "application/octet-stream")
    etags = await send_parts(ada, created, [data])
    return ada, created["uploadId"], created["key"], etags


async def test_a_direct_upload_that_exactly_fills_the_quota_and_the_file_limit_is_taken(start):
    portal = await start("dev")
    ada, upload_id, key, etags = await started_upload(portal, b"hello")
    # An admin narrowed both limits to this very file after it started: exactly full is still fine, and
    # the upload's own reservation is not counted twice against it.
    run_sql(portal.database_url, "UPDATE users SET limit_quota = 5, limit_max_file = 5")
    done = await ada.complete(upload_id, key, etags)
    assert done["artifact"]["size"] == 5
    # Its bytes did not pass through the portal: it is queued for verification, and the verifier reads them.
    assert (await wait_verified(ada, done["artifact"]["id"]))["verification"] == "verified"
    assert await portal.leftovers() == [key]
    assert portal.rows("direct_uploads") == []
    assert (await ada.call("GET", "/api/me"))["usage"] == {"bytes": 5, "count": 1, "reserved": 0}


@pytest.mark.parametrize("column, says", [("limit_quota", "storage quota of 4 bytes"),
                                          ("limit_max_file", "per-file limit of 4 bytes")])
async def test_a_direct_upload_over_a_limit_narrowed_meanwhile_is_refused_at_completion_and_nothing_is_left(
        start, column, says):
    portal = await start("dev")
    ada, upload_id, key, etags = await started_upload(portal, b"hello")
    run_sql(portal.database_url, f"UPDATE users SET {column} = 4")
    with pytest.raises(PortalError) as refused:
        await ada.complete(upload_id, key, etags)
    assert (refused.value.status, refused.value.code) == (413, "too_large")
    assert says in refused.value.message
    assert await portal.leftovers() == []
    assert portal.rows("direct_uploads") == [] and portal.rows("artifacts") == []
    assert (await ada.call("GET", "/api/me"))["usage"] == {"bytes": 0, "count": 0, "reserved": 0}
    assert [e[2]["reason"].startswith("refused:") for e in portal.events("upload.aborted")] == [True]


async def test_a_direct_upload_whose_row_cannot_be_written_is_given_back_for_a_retry(start):
    portal = await start("dev")
    ada, upload_id, key, etags = await started_upload(portal, b"hello")
    run_sql(portal.database_url, """
        CREATE FUNCTION test_refuse_row() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'the row cannot be written'; END $$;
        CREATE TRIGGER test_refuse_row BEFORE INSERT ON artifacts FOR EACH ROW EXECUTE FUNCTION test_refuse_row();""")
    with pytest.raises(PortalError) as failed:
        await ada.complete(upload_id, key, etags)
    assert failed.value.status == 500
    # Nothing half-done: no artifact, the reservation still held by the pending upload whose bytes storage
    # keeps (not an orphan: the upload owns them), and the upload is free to be completed again at once.
    assert portal.rows("artifacts") == []
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 5
    assert await portal.leftovers() == [key]
    run_sql(portal.database_url, "DROP TRIGGER test_refuse_row ON artifacts")
    done = await ada.complete(upload_id, key, etags)
    assert done["artifact"]["size"] == 5 and portal.rows("direct_uploads") == []
    assert await portal.leftovers() == [key]
