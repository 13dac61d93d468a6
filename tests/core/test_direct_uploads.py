"""Direct uploads (/api/s3) end to end over HTTP, against the dev storage and against R2 on moto.

The portal runs in-process on a fixed free port (so the dev storage's signed part URLs reach it); the
tests play the client with portal_core.direct_client (the same code `portal upload` runs) or with raw
calls, and look behind the portal's back at the bucket or the directory to see what was left.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import uuid
from pathlib import Path

import aiohttp
import attrs
import pytest

from portal_core import hookimpl, keys
from portal_core.backends import Backend
from portal_core.direct_client import DirectClient, PortalError, upload_file
from tests.support.db import create_token, create_user, run_sql
from tests.support.gate import S3Gate
from tests.support.moto import free_port, object_keys, pending_uploads, r2_env, s3_client

MiB = 1024 * 1024
PART = 8 * MiB  # both storages' preferred part size


@attrs.define
class Portal:
    kind: str
    app: object
    url: str
    database_url: str
    data_dir: Path
    s3: object = None
    bucket: str = ""
    sessions: list = attrs.field(factory=list)

    async def user(self, email: str = "ada@example.com") -> DirectClient:
        """A client authenticated with a new user's API token."""
        token = create_token(self.database_url, create_user(self.database_url, email=email))
        session = aiohttp.ClientSession()
        self.sessions.append(session)
        return DirectClient(session, self.url, {"Authorization": f"Bearer {token}"})

    async def leftovers(self) -> list[str]:
        """Objects and unfinished uploads in storage, and (dev storage) any other file under its root."""
        if self.kind == "r2":
            return sorted(await object_keys(self.s3, self.bucket)) + [
                f"pending upload of {key}" for key in await pending_uploads(self.s3, self.bucket)]
        root = self.data_dir / "artifacts"
        if not root.exists():
            return []
        objects, pending, strays = [], [], []
        for path in sorted(root.rglob("*")):
            relative = path.relative_to(root)
            if path.is_dir():
                continue
            if relative.parts[0] != ".uploads":
                objects.append(str(relative))
            elif path.name == "upload.json":
                pending.append(f"pending upload of {json.loads(path.read_text())['key']}")
            elif not (path.parent / "upload.json").exists():
                strays.append(str(relative))
        return objects + pending + strays

    def rows(self, table: str) -> list:
        return run_sql(self.database_url, f"SELECT * FROM {table}")

    def events(self, prefix: str) -> list[tuple]:
        return run_sql(self.database_url, "SELECT type, subject_id, data FROM events WHERE type LIKE %s ORDER BY id",
                       (prefix + "%",))


@pytest.fixture
async def start(request, make_app, aiohttp_client, database_url, tmp_path):
    """start(kind, extra_plugins=(), via=None) -> a Portal on the dev storage ("dev") or on R2 against moto
    ("r2"; through ``via``, an S3Gate's URL in front of moto, when given)."""
    portals = []
    stack = contextlib.AsyncExitStack()

    async def make(kind: str, extra_plugins=(), via: str | None = None) -> Portal:
        port = free_port()
        env = {"APP_BASE_URL": f"http://127.0.0.1:{port}", "PLAN_FREE_MAX_FILE": "40MiB", "PLAN_FREE_QUOTA": "48MiB"}
        s3 = bucket = None
        if kind == "r2":
            endpoint = request.getfixturevalue("moto_endpoint")
            s3 = await stack.enter_async_context(s3_client(endpoint))
            bucket = f"direct-{uuid.uuid4().hex[:16]}"
            await s3.create_bucket(Bucket=bucket)
            env.update(STORAGE_BACKEND="r2", **r2_env(via or endpoint, bucket))
        app = make_app(extra_plugins, **env)
        await aiohttp_client(app, server_kwargs={"port": port, "host": "127.0.0.1"})
        portal = Portal(kind, app, f"http://127.0.0.1:{port}", database_url, tmp_path / "data", s3, bucket or "")
        portals.append(portal)
        return portal

    yield make
    for portal in portals:
        for session in portal.sessions:
            await session.close()
    await stack.aclose()


@pytest.fixture(params=["dev", "r2"])
async def portal(request, start) -> Portal:
    return await start(request.param)


async def wait_verified(client: DirectClient, artifact_id: str) -> dict:
    for _ in range(200):
        artifact = await client.call("GET", f"/api/artifacts/{artifact_id}")
        if artifact["verification"] != "unverified":
            return artifact
        await asyncio.sleep(0.05)
    raise AssertionError(f"artifact {artifact_id} was never verified")


async def send_parts(client: DirectClient, created: dict, parts: list[bytes]) -> dict[int, str]:
    """PUT ``parts`` (numbered from 1) to their presigned URLs, in parallel; {number: ETag}."""
    async def one(number: int, data: bytes) -> tuple[int, str]:
        return number, await client.put_part(await client.sign(created["uploadId"], created["key"], number), data)

    return dict(await asyncio.gather(*(one(n, d) for n, d in enumerate(parts, start=1))))


def write(tmp_path: Path, data: bytes, name: str = "big.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


async def test_a_file_goes_up_in_parallel_parts_and_becomes_a_verified_artifact(portal, tmp_path):
    ada = await portal.user()
    data = os.urandom(2 * PART + 12345)
    seen = []
    answer = await upload_file(ada, write(tmp_path, data, "Résumé (final).bin"), parallel=3,
                               progress=lambda done, total: seen.append((done, total)))
    artifact = answer["artifact"]
    assert (artifact["name"], artifact["size"]) == ("Résumé (final).bin", len(data))
    assert artifact["verification"] == "unverified"  # nobody has read the bytes back yet
    assert answer["location"] == f"{portal.url}/api/artifacts/{artifact['id']}"
    assert seen[-1] == (len(data), len(data))
    verified = await wait_verified(ada, artifact["id"])
    assert (verified["verification"], verified["sha256"]) == ("verified", hashlib.sha256(data).hexdigest())
    listing = await ada.call("GET", "/api/artifacts")
    assert [(a["id"], a["verification"]) for a in listing["artifacts"]] == [(artifact["id"], "verified")]
    async with ada.session.get(f"{portal.url}/api/artifacts/{artifact['id']}/download", headers=ada.headers) as response:
        assert response.status == 200
        assert hashlib.sha256(await response.read()).hexdigest() == hashlib.sha256(data).hexdigest()
    assert await portal.leftovers() == [answer["key"]]
    assert portal.rows("direct_uploads") == [] and portal.rows("artifact_verifications") == []
    me = await ada.call("GET", "/api/me")
    assert me["usage"] == {"bytes": len(data), "count": 1, "reserved": 0}
    assert [e[0] for e in portal.events("upload.") + portal.events("artifact.")] == [
        "upload.started", "artifact.created", "artifact.verified", "artifact.downloaded"]


async def test_the_answers_have_the_shapes_uppy_reads(portal):
    ada = await portal.user()
    created = await ada.create("a.bin", PART + 3, "application/octet-stream")
    assert {"key", "uploadId", "partSize"} <= set(created)
    assert created["partSize"] == PART and created["maxPartNumber"] == 2  # 8 MiB + 3 bytes in 5 MiB parts
    signed = await ada.call("GET", f"/api/s3/multipart/{created['uploadId']}/1", params={"key": created["key"]})
    assert set(signed) == {"url", "expires"} and signed["expires"] == 900
    batch = await ada.call("GET", f"/api/s3/multipart/{created['uploadId']}/batch",
                           params={"key": created["key"], "partNumbers": "2,1"})
    assert set(batch["presignedUrls"]) == {"1", "2"}
    etags = await send_parts(ada, created, [os.urandom(PART), b"end"])
    listed = await ada.list_parts(created["uploadId"], created["key"])
    assert listed == [{"PartNumber": 1, "ETag": etags[1], "Size": PART}, {"PartNumber": 2, "ETag": etags[2], "Size": 3}]
    done = await ada.complete(created["uploadId"], created["key"], etags)
    assert set(done) == {"location", "key", "artifact"} and done["key"] == created["key"]
    with pytest.raises(PortalError) as gone:  # completed: no longer a pending upload
        await ada.call("DELETE", f"/api/s3/multipart/{created['uploadId']}", params={"key": created["key"]})
    assert gone.value.status == 404


@pytest.mark.parametrize("extra", [-1, +1], ids=["one-byte-fewer", "one-byte-more"])
async def test_more_or_fewer_bytes_than_declared_are_refused_at_complete_and_nothing_is_left(portal, extra):
    ada = await portal.user()
    size = PART + 1000
    created = await ada.create("a.bin", size, "application/octet-stream")
    etags = await send_parts(ada, created, [os.urandom(PART), os.urandom(1000 + extra)])
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], etags)
    assert refused.value.status == 400 and refused.value.code == "size_mismatch"
    assert f"{size + extra} bytes" in refused.value.message and f"the {size} declared" in refused.value.message
    assert await portal.leftovers() == []
    assert portal.rows("direct_uploads") == [] and portal.rows("artifacts") == []
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 0
    (event,) = portal.events("upload.aborted")
    assert event[2]["reason"].startswith("refused: storage holds")


async def test_parts_of_unequal_sizes_or_not_the_ones_listed_are_refused(portal):
    ada = await portal.user()
    size = 2 * PART
    created = await ada.create("a.bin", size, "application/octet-stream")
    etags = await send_parts(ada, created, [os.urandom(PART - 1), os.urandom(PART + 1)])
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], etags)
    assert refused.value.code == "bad_parts" and "larger than the others" in refused.value.message
    assert await portal.leftovers() == []

    created = await ada.create("b.bin", 10, "application/octet-stream")
    await send_parts(ada, created, [b"0123456789"])
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], {1: '"0000"'})
    assert refused.value.code == "bad_parts" and "storage holds it with ETag" in refused.value.message
    assert await portal.leftovers() == [] and portal.rows("direct_uploads") == []

    # The refusal names what the client sent; the audit trail keeps the first 300 characters of it.
    created = await ada.create("c.bin", 10, "application/octet-stream")
    await send_parts(ada, created, [b"0123456789"])
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], {1: "f" * 400})
    assert f'listed with ETag "{"f" * 400}"' in refused.value.message
    reason = portal.events("upload.aborted")[-1][2]["reason"]
    assert reason == ('refused: part 1 was listed with ETag "' + "f" * 400)[:300]
    assert await portal.leftovers() == [] and portal.rows("direct_uploads") == []


async def test_another_users_upload_answers_404_and_stays_intact(portal):
    ada, bob = await portal.user("ada@example.com"), await portal.user("bob@example.com")
    created = await ada.create("a.bin", 5, "text/plain")
    upload, key = created["uploadId"], created["key"]
    attempts = [("GET", f"/api/s3/multipart/{upload}/1", {"key": key}, None),
                ("GET", f"/api/s3/multipart/{upload}/batch", {"key": key, "partNumbers": "1"}, None),
                ("GET", f"/api/s3/multipart/{upload}", {"key": key}, None),
                ("POST", f"/api/s3/multipart/{upload}/complete", {"key": key}, {"parts": [{"PartNumber": 1, "ETag": "x"}]}),
                ("DELETE", f"/api/s3/multipart/{upload}", {"key": key}, None),
                # Ada's own upload id with a key that is not its key: just as unknown.
                ("GET", f"/api/s3/multipart/{upload}", {"key": key + "0"}, None),
                ("GET", f"/api/s3/multipart/{upload}", {}, None)]
    for who, (method, path, params, body) in [(bob, a) for a in attempts[:5]] + [(ada, a) for a in attempts[5:]]:
        with pytest.raises(PortalError) as refused:
            await who.call(method, path, params=params, body=body)
        assert refused.value.status == 404, (method, path, params)
        assert "no such upload" in refused.value.message
    etags = await send_parts(ada, created, [b"hello"])
    assert (await ada.complete(upload, key, etags))["artifact"]["size"] == 5


async def test_abort_frees_the_reservation_and_leaves_nothing(portal):
    ada = await portal.user()
    created = await ada.create("a.bin", 30 * MiB, "application/octet-stream")
    await send_parts(ada, created, [os.urandom(PART)])
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 30 * MiB
    assert await ada.call("DELETE", f"/api/s3/multipart/{created['uploadId']}", params={"key": created["key"]}) == {}
    assert await portal.leftovers() == []
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 0
    with pytest.raises(PortalError) as again:
        await ada.abort(created["uploadId"], created["key"])
    assert again.value.status == 404
    assert [(e[0], e[2]["reason"]) for e in portal.events("upload.aborted")] == [("upload.aborted", "canceled")]


async def test_a_reservation_counts_against_the_quota_of_every_upload_path(portal):
    ada = await portal.user()
    await ada.create("big.bin", 40 * MiB, "application/octet-stream")  # of a 48 MiB quota
    with pytest.raises(PortalError) as refused:
        await ada.create("more.bin", 9 * MiB, "application/octet-stream")
    assert refused.value.status == 413 and "storage quota of 48 MiB (40 MiB already used)" in refused.value.message
    form = aiohttp.FormData()
    form.add_field("file", os.urandom(9 * MiB), filename="streamed.bin")
    async with ada.session.post(f"{portal.url}/api/artifacts", data=form, headers=ada.headers) as response:
        assert response.status == 413, await response.text()
    assert portal.rows("artifacts") == []


@pytest.mark.parametrize("metadata, code", [
    ({}, "bad_size"), ({"size": -1}, "bad_size"), ({"size": "12MB"}, "bad_size"), ({"size": True}, "bad_size"),
    ({"size": 5, "sha256": "abc"}, "bad_sha256"), ({"size": 5, "sha256": "g" * 64}, "bad_sha256")])
async def test_a_malformed_start_is_refused_before_anything_is_stored(start, metadata, code):
    portal = await start("dev")  # refused before storage is asked, whichever it is
    ada = await portal.user()
    with pytest.raises(PortalError) as refused:
        await ada.call("POST", "/api/s3/multipart", body={"filename": "a.bin", "type": "text/plain", "metadata": metadata})
    assert (refused.value.status, refused.value.code) == (400, code)
    assert await portal.leftovers() == [] and portal.rows("direct_uploads") == []


async def test_bad_names_bodies_and_sizes_over_the_limit_are_refused_before_anything_is_stored(portal):
    ada = await portal.user()
    cases = [({"filename": "", "metadata": {"size": 1}}, 400, "bad_filename"),
             ({"filename": "a\x07b", "metadata": {"size": 1}}, 400, "bad_filename"),
             ({"filename": "a.bin", "metadata": "big"}, 400, "bad_metadata"),
             ({"filename": "a.bin", "type": 7, "metadata": {"size": 1}}, 400, "bad_type"),
             ({"filename": "a.bin", "metadata": {"size": 40 * MiB + 1}}, 413, "too_large")]
    for body, status, code in cases:
        with pytest.raises(PortalError) as refused:
            await ada.call("POST", "/api/s3/multipart", body=body)
        assert (refused.value.status, refused.value.code) == (status, code), body
    assert "per-file limit of 40 MiB" in refused.value.message
    async with ada.session.post(f"{portal.url}/api/s3/multipart", data=b"\xff", headers=ada.headers) as response:
        answer = await response.json()
        assert response.status == 400 and answer["error"]["code"] == "bad_json"
        assert answer["message"] == answer["error"]["message"]  # where Uppy looks for a message to show
    assert await portal.leftovers() == [] and portal.rows("direct_uploads") == []


async def test_part_numbers_beyond_what_the_declared_size_needs_are_refused_at_signing(portal):
    ada = await portal.user()
    created = await ada.create("a.bin", 11 * MiB, "application/octet-stream")  # at most 3 parts of 5 MiB
    path = f"/api/s3/multipart/{created['uploadId']}"
    for number in ("4", "0", "10001"):
        with pytest.raises(PortalError) as refused:
            await ada.call("GET", f"{path}/{number}", params={"key": created["key"]})
        assert refused.value.code == "bad_part_number" and "parts 1 to 3 at most" in refused.value.message
    for numbers in ("1,4", "", "x", ",".join(["1"] * 1001)):
        with pytest.raises(PortalError) as refused:
            await ada.call("GET", f"{path}/batch", params={"key": created["key"], "partNumbers": numbers})
        assert refused.value.code == "bad_part_number", numbers
    assert await ada.sign(created["uploadId"], created["key"], 3)


async def test_a_wrong_declared_sha256_ends_quarantined_and_downloads_are_refused(portal, tmp_path):
    ada = await portal.user()
    data = os.urandom(1000)
    wrong = hashlib.sha256(b"something else").hexdigest()
    created = await ada.create("claimed.bin", len(data), "application/octet-stream", sha256=wrong)
    etags = await send_parts(ada, created, [data])
    artifact = (await ada.complete(created["uploadId"], created["key"], etags))["artifact"]
    assert (artifact["verification"], artifact["sha256"]) == ("unverified", wrong)
    shown = await wait_verified(ada, artifact["id"])
    actual = hashlib.sha256(data).hexdigest()
    assert shown["verification"] == "quarantined" and shown["sha256"] == actual
    assert actual in shown["verification_detail"] and wrong in shown["verification_detail"]
    listed = (await ada.call("GET", "/api/artifacts"))["artifacts"][0]
    assert (listed["verification"], listed["verification_detail"]) == ("quarantined", shown["verification_detail"])
    with pytest.raises(PortalError) as refused:
        await ada.call("GET", f"/api/artifacts/{artifact['id']}/download")
    assert refused.value.status == 409 and refused.value.code == "quarantined"
    assert "quarantined" in refused.value.message and wrong in refused.value.message
    (event,) = portal.events("artifact.quarantined")
    assert event[2]["declared_sha256"] == wrong and event[2]["sha256"] == actual


async def test_a_sha256_declared_at_complete_must_agree_with_the_one_declared_at_start(portal):
    ada = await portal.user()
    data = b"x" * 100
    created = await ada.create("a.bin", 100, "text/plain", sha256=hashlib.sha256(data).hexdigest())
    etags = await send_parts(ada, created, [data])
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], etags, sha256="0" * 64)
    assert refused.value.code == "bad_sha256"
    done = await ada.complete(created["uploadId"], created["key"], etags, sha256=hashlib.sha256(data).hexdigest())
    assert (await wait_verified(ada, done["artifact"]["id"]))["verification"] == "verified"


async def test_an_expired_upload_is_aborted_by_housekeeping_and_its_reservation_freed(portal):
    from portal_core.pending_uploads import expire_uploads

    ada = await portal.user()
    old = await ada.create("old.bin", 20 * MiB, "application/octet-stream")
    await send_parts(ada, old, [os.urandom(PART)])
    fresh = await ada.create("fresh.bin", 5, "text/plain")
    run_sql(portal.database_url, "UPDATE direct_uploads SET expires_at = now() - interval '1 second' "
                                 "WHERE upload_id = %s", (old["uploadId"],))
    with pytest.raises(PortalError) as expired:
        await ada.sign(old["uploadId"], old["key"], 2)
    assert expired.value.status == 404
    assert await expire_uploads(portal.app) == "aborted 1 expired direct upload(s)"
    assert await portal.leftovers() == [f"pending upload of {fresh['key']}"]
    assert [row[0] for row in portal.rows("direct_uploads")] == [fresh["uploadId"]]
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 5
    (event,) = portal.events("upload.expired")
    assert event[1] == old["uploadId"] and event[2]["reason"] == "expired"
    assert await expire_uploads(portal.app) is None  # nothing more to do


async def test_expiry_on_several_pods_takes_each_upload_once(portal):
    """Two housekeeping rounds at once (two pods): a row another pod has locked or leased is skipped."""
    import psycopg2

    from portal_core.pending_uploads import expire_uploads

    ada = await portal.user()
    uploads = [await ada.create(f"{n}.bin", 5, "text/plain") for n in range(3)]
    run_sql(portal.database_url, "UPDATE direct_uploads SET expires_at = now() - interval '1 second'")
    run_sql(portal.database_url, "UPDATE direct_uploads SET busy_until = now() + interval '1 hour' WHERE upload_id = %s",
            (uploads[2]["uploadId"],))  # another pod is aborting this one right now
    other_pod = psycopg2.connect(portal.database_url)
    try:
        with other_pod.cursor() as cur:  # ...and has just claimed this one, in a transaction still open
            cur.execute("SELECT 1 FROM direct_uploads WHERE upload_id = %s FOR UPDATE", (uploads[1]["uploadId"],))
            assert await expire_uploads(portal.app) == "aborted 1 expired direct upload(s)"
        other_pod.rollback()
    finally:
        other_pod.close()
    assert sorted(r[0] for r in portal.rows("direct_uploads")) == sorted(u["uploadId"] for u in uploads[1:])
    assert await expire_uploads(portal.app) == "aborted 1 expired direct upload(s)"
    run_sql(portal.database_url, "UPDATE direct_uploads SET busy_until = now() - interval '1 second'")  # its pod died
    assert await expire_uploads(portal.app) == "aborted 1 expired direct upload(s)"
    assert portal.rows("direct_uploads") == [] and len(portal.events("upload.expired")) == 3


async def test_an_erased_users_uploads_are_aborted_in_storage_not_orphaned(portal):
    from portal_core.accounts import erase
    from portal_core.pending_uploads import expire_uploads

    ada, bob = await portal.user("ada@example.com"), await portal.user("bob@example.com")
    a = await ada.create("a.bin", PART + 1, "application/octet-stream")
    await send_parts(ada, a, [os.urandom(PART)])
    b = await bob.create("b.bin", PART + 1, "application/octet-stream")
    await send_parts(bob, b, [os.urandom(PART)])
    ada_id, bob_id = (run_sql(portal.database_url, "SELECT id FROM users WHERE email = %s", (e,))[0][0]
                      for e in ("ada@example.com", "bob@example.com"))
    await erase(portal.app, ada_id, actor_id=None)  # an admin erases Ada: her upload is aborted first
    # An erasure that forgot to call it: the user row goes, the pending row stays (no cascade)...
    run_sql(portal.database_url, "DELETE FROM users WHERE id = %s", (bob_id,))
    assert len(portal.rows("direct_uploads")) == 1
    # ...and housekeeping aborts it in storage.
    assert await expire_uploads(portal.app) == "aborted 1 direct upload(s) of deleted users"
    assert await portal.leftovers() == [] and portal.rows("direct_uploads") == []
    ada_event, bob_event = portal.events("upload.aborted")
    assert ada_event[2] == {"size": PART + 1, "erased": True}  # the erasure kept only what says nothing of her
    assert bob_event[2]["reason"] == "owner deleted"


async def test_a_policy_plugin_is_asked_at_the_start_and_again_with_the_stored_head(start):
    from tests.core.test_events import Integrator  # refuses names ending .exe and files starting with "MZ"

    plugin = Integrator()
    portal = await start("dev", extra_plugins=[plugin])
    ada = await portal.user()
    with pytest.raises(PortalError) as refused:
        await ada.create("setup.exe", 10, "application/octet-stream")
    assert (refused.value.status, refused.value.message) == (422, "executables are not accepted here")
    assert await portal.leftovers() == [] and portal.rows("direct_uploads") == []

    data = b"MZ" + os.urandom(PART)
    created = await ada.create("renamed.bin", len(data), "application/octet-stream")
    etags = await send_parts(ada, created, [data[:PART], data[PART:]])
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], etags)
    assert (refused.value.status, refused.value.message) == (422, "executables are not accepted here")
    assert plugin.checked[-2:] == [("renamed.bin", len(data), None), ("renamed.bin", len(data), data[:4096])]
    assert await portal.leftovers() == [] and portal.rows("direct_uploads") == [] and portal.rows("artifacts") == []
    (event,) = portal.events("upload.aborted")
    assert event[2]["reason"] == "refused: executables are not accepted here"


async def test_a_session_needs_its_csrf_token_and_a_token_works_for_every_call(portal):
    from tests.support.portal import dev_sign_in

    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        csrf = await dev_sign_in(browser, portal.url, email="carol@example.com")
        body = {"filename": "a.txt", "type": "text/plain", "metadata": {"size": 3}}
        async with browser.post(f"{portal.url}/api/s3/multipart", json=body) as response:
            assert response.status == 403 and (await response.json())["error"]["code"] == "csrf"
        async with browser.post(f"{portal.url}/api/s3/multipart", json=body, headers={"X-CSRF-Token": csrf}) as response:
            assert response.status == 201
    async with aiohttp.ClientSession() as anonymous, anonymous.post(f"{portal.url}/api/s3/multipart", json=body) as response:
        assert response.status == 401


class PlainStoragePlugin:
    """A third-party storage with only the streamed interface (no DirectUploads)."""

    __name__ = "plainstore"

    def __init__(self, root: Path) -> None:
        self.root = root

    @hookimpl
    def portal_storage_backend(self):
        from portal_plugins.dev_stubs.storage import LocalStorage

        class PlainStorage:
            name = "plain"

            def __init__(self, root):
                self._local = LocalStorage(root)
                self.put, self.download = self._local.put, self._local.download
                self.delete, self.health = self._local.delete, self._local.health

        @contextlib.asynccontextmanager
        async def open_storage(_ctx):
            yield PlainStorage(self.root)

        return Backend(name="plain", open=open_storage, description="streamed uploads only")


async def test_a_storage_without_direct_uploads_answers_501_and_the_streamed_upload_still_works(
        make_app, aiohttp_client, database_url, tmp_path):
    app = make_app([PlainStoragePlugin(tmp_path / "plain")], STORAGE_BACKEND="plain")
    client = await aiohttp_client(app)
    token = create_token(database_url, create_user(database_url))
    headers = {"Authorization": f"Bearer {token}"}
    meta = await (await client.get("/api/meta")).json()
    assert meta["direct_uploads"] == {"available": False, "threshold": 16 * MiB, "min_part_size": None}
    for method, path in [("POST", "/api/s3/multipart"), ("GET", "/api/s3/multipart/abc/1?key=k"),
                         ("GET", "/api/s3/multipart/abc?key=k"), ("POST", "/api/s3/multipart/abc/complete?key=k"),
                         ("DELETE", "/api/s3/multipart/abc?key=k"), ("GET", "/api/s3/multipart/abc/batch?key=k&partNumbers=1")]:
        response = await client.request(method, path, headers=headers, json={"filename": "a", "metadata": {"size": 1}})
        assert response.status == 501, (method, path)
        error = (await response.json())["error"]
        assert error["code"] == "direct_uploads_unsupported" and "POST /api/artifacts" in error["message"]
    form = aiohttp.FormData()
    form.add_field("file", b"still fine", filename="a.txt")
    response = await client.post("/api/artifacts", data=form, headers=headers)
    assert response.status == 201 and (await response.json())["verification"] == "verified"
    # A file request's page then offers only the form, and its direct path answers 501 too.
    run_sql(database_url, "INSERT INTO subscriptions (user_id, plan, status, provider) SELECT id, 'pro', 'active', 'dev' FROM users")
    token = (await (await client.post("/api/requests", headers=headers, json={"title": "t"})).json())["url"].rsplit("/", 1)[1]
    page = await (await client.get(f"/r/{token}")).text()
    assert 'data-enhance="upload-progress"' in page and "data-direct-endpoint" not in page
    response = await client.post(f"/api/r/{token}/s3/multipart", json={"filename": "a", "metadata": {"size": 1}})
    assert response.status == 501 and (await response.json())["error"]["code"] == "direct_uploads_unsupported"


async def test_two_starts_racing_for_the_last_room_in_the_quota_get_one_reservation(start):
    """Both requests queue on the user's row lock (held here until both wait on it); the second sees the
    first's reservation and is refused, and its multipart upload is aborted in storage."""
    import psycopg2

    portal = await start("dev")
    ada = await portal.user()
    stored = await ada.create("stored.bin", 5 * MiB, "application/octet-stream")  # 5 MiB of the 48 MiB are used
    await ada.complete(stored["uploadId"], stored["key"], await send_parts(ada, stored, [os.urandom(5 * MiB)]))
    user_id = run_sql(portal.database_url, "SELECT id FROM users")[0][0]
    blocker, watcher = psycopg2.connect(portal.database_url), psycopg2.connect(portal.database_url)
    watcher.autocommit = True  # each look at pg_stat_activity is fresh (it is a snapshot per transaction)
    try:
        with blocker.cursor() as cur, watcher.cursor() as watch:
            cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
            racing = [asyncio.ensure_future(ada.create(f"{n}.bin", 30 * MiB, "application/octet-stream")) for n in range(2)]
            for _ in range(200):
                watch.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                              "AND wait_event_type = 'Lock'")
                if watch.fetchone()[0] == 2:
                    break
                await asyncio.sleep(0.025)
            else:
                raise AssertionError("the two starts never both waited for the user's row")
        blocker.commit()
    finally:
        blocker.close()
        watcher.close()
    outcomes = await asyncio.gather(*racing, return_exceptions=True)
    started = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, PortalError)]
    assert len(started) == 1 and len(refused) == 1 and refused[0].status == 413
    assert refused[0].message == ("the upload would exceed the free plan's storage quota of 48 MiB "
                                  "(35 MiB already used)")  # the stored file and the winner's reservation
    assert sorted(await portal.leftovers()) == sorted([stored["key"], f"pending upload of {started[0]['key']}"])
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 30 * MiB


async def test_a_completion_already_under_way_is_not_run_twice(start):
    portal = await start("dev")
    ada = await portal.user()
    created = await ada.create("a.bin", 5, "text/plain")
    etags = await send_parts(ada, created, [b"hello"])
    run_sql(portal.database_url, "UPDATE direct_uploads SET busy_until = now() + interval '1 minute'")  # another request
    for attempt in (ada.complete(created["uploadId"], created["key"], etags), ada.abort(created["uploadId"], created["key"])):
        with pytest.raises(PortalError) as busy:
            await attempt
        assert (busy.value.status, busy.value.code) == (409, "busy")
    run_sql(portal.database_url, "UPDATE direct_uploads SET busy_until = now() - interval '1 second'")  # it died
    assert (await ada.complete(created["uploadId"], created["key"], etags))["artifact"]["size"] == 5


async def test_a_completion_while_uploads_are_paused_is_503_and_the_upload_waits_for_the_resume(start):
    portal = await start("dev")
    ada = await portal.user()
    created = await ada.create("a.bin", 5, "text/plain")
    etags = await send_parts(ada, created, [b"hello"])

    async def switch(paused: bool) -> None:
        run_sql(portal.database_url, "INSERT INTO site_settings (name, value) VALUES ('uploads_paused', %s::jsonb) "
                                     "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value", (json.dumps(paused),))
        await portal.app[keys.SITE].refresh(portal.app[keys.POOL])

    await switch(True)
    with pytest.raises(PortalError) as paused:
        await ada.complete(created["uploadId"], created["key"], etags)
    assert (paused.value.status, paused.value.code) == (503, "uploads_paused")
    assert portal.events("upload.aborted") == [] and len(portal.rows("direct_uploads")) == 1
    await switch(False)
    assert (await ada.complete(created["uploadId"], created["key"], etags))["artifact"]["size"] == 5
    assert portal.rows("direct_uploads") == []


async def test_an_upload_storage_lost_is_dropped_with_its_reservation(start):
    portal = await start("dev")
    ada = await portal.user()
    created = await ada.create("a.bin", 5, "text/plain")
    etags = await send_parts(ada, created, [b"hello"])
    storage = portal.app[keys.DIRECT_UPLOADS]
    await storage.abort_multipart(created["key"], created["uploadId"])  # behind the portal's back
    with pytest.raises(PortalError) as gone:
        await ada.complete(created["uploadId"], created["key"], etags)
    assert gone.value.status == 404 and "storage no longer has it" in gone.value.message
    assert portal.rows("direct_uploads") == [] and await portal.leftovers() == []
    assert [e[2]["reason"] for e in portal.events("upload.aborted")] == ["gone from storage"]

    # Listing the parts finds it gone too, even once the upload has expired (before housekeeping came by).
    created = await ada.create("b.bin", 5, "text/plain")
    await send_parts(ada, created, [b"hello"])
    run_sql(portal.database_url, "UPDATE direct_uploads SET expires_at = now() - interval '1 second'")
    await storage.abort_multipart(created["key"], created["uploadId"])
    with pytest.raises(PortalError) as gone:
        await ada.list_parts(created["uploadId"], created["key"])
    assert gone.value.status == 404 and "storage no longer has it" in gone.value.message
    assert portal.rows("direct_uploads") == [] and await portal.leftovers() == []
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 0


async def test_pages_may_reach_storage_and_compile_the_hash_worker_and_nothing_more(portal):
    ada = await portal.user()
    async with ada.session.get(f"{portal.url}/") as response:
        policy = dict(part.strip().split(" ", 1) for part in response.headers["Content-Security-Policy"].split(";"))
    assert policy["script-src"] == "'self' 'wasm-unsafe-eval'"
    if portal.kind == "r2":  # the browser PUTs parts to the bucket's origin
        endpoint = portal.app[keys.CONFIG].backend_settings("storage").endpoint
        assert policy["connect-src"] == f"'self' {endpoint}"
    else:  # the dev storage's part URLs are the portal's own
        assert policy["connect-src"] == "'self'"


async def test_a_share_link_to_a_quarantined_file_does_not_serve_it_nor_count(start):
    portal = await start("dev")
    ada = await portal.user()
    data = b"not what was declared"
    created = await ada.create("claimed.txt", len(data), "text/plain", sha256="0" * 64)
    etags = await send_parts(ada, created, [data])
    artifact = (await ada.complete(created["uploadId"], created["key"], etags))["artifact"]
    assert (await wait_verified(ada, artifact["id"]))["verification"] == "quarantined"
    link = await ada.call("POST", f"/api/artifacts/{artifact['id']}/shares", body={})
    async with aiohttp.ClientSession() as guest, guest.get(link["url"] + "/download", allow_redirects=False) as response:
        assert response.status == 409
        assert "quarantined" in await response.text()
    assert run_sql(portal.database_url, "SELECT downloads FROM shares") == [(0,)]


async def test_keys_are_the_portals_and_uploads_expire_after_the_setting(start):
    """A key the client sends is ignored; the upload expires DIRECT_UPLOAD_EXPIRY_SECONDS after it started
    (24 hours unless set)."""
    import datetime as dt

    portal = await start("dev")
    ada = await portal.user()
    user_id = run_sql(portal.database_url, "SELECT id FROM users")[0][0]
    created = await ada.call("POST", "/api/s3/multipart", body={
        "filename": "a.bin", "key": "somebody-else/secret.bin", "metadata": {"size": 5, "key": "../../etc/passwd"}})
    assert created["key"].startswith(f"{user_id}/") and "secret" not in created["key"] and ".." not in created["key"]
    assert str(uuid.UUID(created["key"].split("/", 1)[1])) == created["key"].split("/", 1)[1]
    expires = dt.datetime.fromisoformat(created["expiresAt"])
    left = (expires - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 24 * 3600 - 60 < left <= 24 * 3600
    assert run_sql(portal.database_url, "SELECT round(EXTRACT(EPOCH FROM expires_at - created_at)) FROM direct_uploads") \
        == [(24 * 3600,)]


async def test_the_expiry_of_pending_uploads_is_a_setting(make_app, aiohttp_client, database_url):
    import datetime as dt

    app = make_app(DIRECT_UPLOAD_EXPIRY_SECONDS="600")
    client = await aiohttp_client(app)
    token = create_token(database_url, create_user(database_url))
    response = await client.post("/api/s3/multipart", headers={"Authorization": f"Bearer {token}"},
                                 json={"filename": "a.bin", "metadata": {"size": 5}})
    assert response.status == 201, await response.text()
    left = (dt.datetime.fromisoformat((await response.json())["expiresAt"]) - dt.datetime.now(dt.timezone.utc)).total_seconds()
    assert 540 < left <= 600


def test_the_part_size_keeps_every_file_within_10000_parts():
    from portal_core.interfaces import PartLimits
    from portal_core.web.direct import max_part_number, part_size_for

    limits = PartLimits(min_size=5 * MiB, max_size=5 * 1024 * MiB, max_parts=10_000, preferred_size=8 * MiB)
    assert part_size_for(limits, 0) == part_size_for(limits, 10 * MiB) == 8 * MiB
    assert part_size_for(limits, 10_000 * 8 * MiB) == 8 * MiB  # exactly 10,000 parts of the preferred size
    for size in (10_000 * 8 * MiB + 1, 100 * 1024**3, 5 * 1024**4 - 1, 10_000 * 5 * 1024 * MiB):
        part = part_size_for(limits, size)
        assert part % MiB == 0 and part > 8 * MiB and -(-size // part) <= 10_000, size
        assert part - MiB < -(-size // 10_000)  # the smallest whole MiB that fits
    assert max_part_number(limits, 11 * MiB) == 3 and max_part_number(limits, 0) == 1
    assert max_part_number(limits, 100 * 1024**3) == 10_000


async def test_the_dev_storages_part_urls_are_signed_and_expire(start):
    """The dev storage's part URLs work like presigned S3 URLs: no session needed, but a changed
    signature, part number or key, or an expired URL, is refused with S3's 403 and stores nothing."""
    import time
    from urllib.parse import parse_qsl, urlencode, urlsplit

    portal = await start("dev")
    ada = await portal.user()
    created = await ada.create("a.bin", 10, "application/octet-stream")
    url = await ada.sign(created["uploadId"], created["key"], 1)
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    assert set(query) == {"key", "expires", "signature"} and parts.path.endswith(f"/{created['uploadId']}/1")
    storage = portal.app[keys.DIRECT_UPLOADS]
    stale = int(time.time()) - 1

    def variant(path: str = parts.path, **changes) -> str:
        return f"{parts.scheme}://{parts.netloc}{path}?{urlencode({**query, **changes})}"

    refused = [
        (variant(signature="0" * 64), "signature we calculated does not match"),
        (variant(parts.path[:-1] + "2"), "signature we calculated does not match"),  # another part
        (variant(key=created["key"] + "x"), "signature we calculated does not match"),
        (variant(expires=str(int(query["expires"]) + 3600)), "signature we calculated does not match"),
        (variant(expires=str(stale), signature=storage.sign(created["uploadId"], 1, created["key"], stale)),
         "Request has expired"),
    ]
    async with aiohttp.ClientSession() as anyone:  # no cookie, no token: the URL is the authorization
        for bad, why in refused:
            async with anyone.put(bad, data=b"0123456789") as response:
                assert response.status == 403, bad
                text = await response.text()
                assert "<Code>AccessDenied</Code>" in text and why in text, text
        assert await ada.list_parts(created["uploadId"], created["key"]) == []
        async with anyone.put(url, data=b"0123456789") as response:
            assert response.status == 200 and response.headers["ETag"]
    assert [p["PartNumber"] for p in await ada.list_parts(created["uploadId"], created["key"])] == [1]


@pytest.mark.parametrize("limit, words", [
    ("limit_max_file", "the file is larger than the free plan's per-file limit of 60 bytes"),
    ("limit_quota", "the upload would exceed the free plan's storage quota of 60 bytes (0 bytes already used)")])
async def test_limits_lowered_after_the_start_are_checked_again_at_complete(portal, limit, words):
    """The limits are checked again at completion (an admin lowered them meanwhile): 413 naming the limit,
    the upload aborted in storage, nothing left and the reservation freed."""
    ada = await portal.user()
    created = await ada.create("a.bin", 100, "application/octet-stream")
    etags = await send_parts(ada, created, [os.urandom(100)])
    run_sql(portal.database_url, f"UPDATE users SET {limit} = 60")
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], etags)
    assert (refused.value.status, refused.value.code, refused.value.message) == (413, "too_large", words)
    assert await portal.leftovers() == []
    assert portal.rows("direct_uploads") == [] and portal.rows("artifacts") == []
    assert (await ada.call("GET", "/api/me"))["usage"]["reserved"] == 0
    (event,) = portal.events("upload.aborted")
    assert event[2]["reason"] == f"refused: {words}"


async def test_a_quota_lowered_below_what_is_stored_names_the_quota_and_what_is_used(portal):
    ada = await portal.user()
    first = await ada.create("first.bin", 50, "application/octet-stream")
    await ada.complete(first["uploadId"], first["key"], await send_parts(ada, first, [os.urandom(50)]))
    created = await ada.create("a.bin", 100, "application/octet-stream")
    etags = await send_parts(ada, created, [os.urandom(100)])
    run_sql(portal.database_url, "UPDATE users SET limit_quota = 60, limit_max_file = 100")
    with pytest.raises(PortalError) as refused:
        await ada.complete(created["uploadId"], created["key"], etags)
    assert (refused.value.status, refused.value.message) == (
        413, "the upload would exceed the free plan's storage quota of 60 bytes (50 bytes already used)")
    assert [a[0] for a in run_sql(portal.database_url, "SELECT name FROM artifacts")] == ["first.bin"]
    assert portal.rows("direct_uploads") == []
    ada_id = (await ada.call("GET", "/api/me"))["user"]["id"]  # her own upload: she is the one refused
    assert run_sql(portal.database_url, "SELECT actor_id, owner_id FROM events WHERE type = 'upload.aborted'") == [
        (ada_id, ada_id)]


async def test_a_refusal_storage_cannot_be_told_of_is_503_and_keeps_the_upload_for_a_later_try(start, moto_endpoint):
    async with S3Gate(moto_endpoint) as gate:
        portal = await start("r2", via=gate.url)
        ada = await portal.user()
        created = await ada.create("a.bin", 100, "application/octet-stream")
        etags = await send_parts(ada, created, [os.urandom(100)])
        run_sql(portal.database_url, "UPDATE users SET limit_max_file = 60")
        gate.refuse(lambda request: request.method == "DELETE")  # storage cannot abort anything right now
        with pytest.raises(PortalError) as down:
            await ada.complete(created["uploadId"], created["key"], etags)
        assert down.value.status == 503 and down.value.message.startswith(
            "the upload was refused (the file is larger than the free plan's per-file limit of 60 bytes) but "
            "storage could not be told: ")
        # Nothing is orphaned: the row stays with the (joined) object it stands for, for a later try or housekeeping.
        assert len(portal.rows("direct_uploads")) == 1
        assert await portal.leftovers() == [created["key"]] and portal.rows("artifacts") == []
        gate.open()
        run_sql(portal.database_url, "UPDATE direct_uploads SET busy_until = now() - interval '1 second'")
        with pytest.raises(PortalError) as refused:
            await ada.complete(created["uploadId"], created["key"], etags)
        assert refused.value.status == 413
        assert portal.rows("direct_uploads") == [] and await portal.leftovers() == []


async def test_a_start_over_the_quota_is_refused_before_storage_is_asked_and_storage_down_is_503(start, moto_endpoint):
    async with S3Gate(moto_endpoint) as gate:
        portal = await start("r2", via=gate.url)
        ada = await portal.user()
        run_sql(portal.database_url, "UPDATE users SET limit_quota = 100")
        stored = await ada.create("stored.bin", 60, "application/octet-stream")
        await ada.complete(stored["uploadId"], stored["key"], await send_parts(ada, stored, [os.urandom(60)]))
        created = await ada.create("pending.bin", 10, "application/octet-stream")  # 60 stored + 10 reserved
        with pytest.raises(PortalError) as refused:
            await ada.create("more.bin", 50, "application/octet-stream")
        assert refused.value.status == 413 and "(70 bytes already used)" in refused.value.message
        # Only the two starts that were taken reached storage (each POST names its key).
        assert {s.path.rsplit("/", 1)[1] for s in gate.seen if s.method == "POST"} == {
            key.rsplit("/", 1)[1] for key in (stored["key"], created["key"])}
        # Storage not answering while the parts are listed: 503, and the upload stays as it was.
        gate.refuse(lambda request: request.method == "GET")
        with pytest.raises(PortalError) as down:
            await ada.list_parts(created["uploadId"], created["key"])
        assert down.value.status == 503 and down.value.message.startswith("storage is unavailable: ")
        gate.open()
        assert await ada.list_parts(created["uploadId"], created["key"]) == []
        # Storage not answering a start: 503, and nothing is reserved.
        gate.refuse(lambda request: request.method == "POST")
        with pytest.raises(PortalError) as down:
            await ada.create("later.bin", 5, "application/octet-stream")
        assert down.value.status == 503 and down.value.message.startswith("storage is unavailable, nothing was started")
        assert len(portal.rows("direct_uploads")) == 1


async def guest_of(portal: Portal, owner: DirectClient, **caps) -> tuple[DirectClient, dict]:
    """A pro owner's new file request and a client without an account speaking /api/r/<token>."""
    run_sql(portal.database_url, "INSERT INTO subscriptions (user_id, plan, status, provider) "
                                 "SELECT id, 'pro', 'active', 'dev' FROM users ON CONFLICT (user_id) DO NOTHING")
    created = await owner.call("POST", "/api/requests", body={"title": "Build outputs", **caps})
    session = aiohttp.ClientSession()
    portal.sessions.append(session)
    return DirectClient(session, portal.url, {}, endpoint=f"/api/r/{created['url'].rsplit('/', 1)[1]}"), created


async def test_a_guest_sends_a_large_file_through_a_request_straight_to_storage(portal, tmp_path):
    """issue 15: a file request takes the direct path for large files; the file lands in the owner's
    artifacts, marked with the request, verified, counted by it, and the owner hears of it."""
    olivia = await portal.user("olivia@example.com")
    guest, request = await guest_of(portal, olivia, max_files=2)
    data = os.urandom(PART + 4321)
    answer = await upload_file(guest, write(tmp_path, data, "scan.tiff"), parallel=2)
    assert answer["artifact"] == {"name": "scan.tiff", "size": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                  "verification": "unverified"}  # what arrived, nothing of the owner's account
    (artifact,) = (await olivia.call("GET", "/api/artifacts"))["artifacts"]
    assert (artifact["name"], artifact["file_request_id"]) == ("scan.tiff", request["id"])
    assert (await wait_verified(olivia, artifact["id"]))["verification"] == "verified"
    (listed,) = (await olivia.call("GET", "/api/requests"))["requests"]
    assert (listed["received_files"], listed["received_bytes"]) == (1, len(data))
    assert [f["id"] for f in listed["files"]] == [artifact["id"]]
    assert await portal.leftovers() == [answer["key"]] and portal.rows("direct_uploads") == []
    owner_id = run_sql(portal.database_url, "SELECT id FROM users")[0][0]
    events = run_sql(portal.database_url, "SELECT type, actor_id, owner_id, data->>'file_request_id' FROM events "
                                          "WHERE type IN ('upload.started', 'artifact.created', 'request.file_received')"
                                          " ORDER BY id")
    assert events == [("upload.started", None, owner_id, request["id"]), ("artifact.created", None, owner_id, request["id"]),
                      ("request.file_received", None, owner_id, None)]


async def test_a_batch_signs_up_to_1000_part_numbers_and_parts_already_joined_are_not_listed(start):
    portal = await start("dev")
    ada = await portal.user()
    created = await ada.create("a.bin", 10, "text/plain")
    assert list(await ada.sign_batch(created["uploadId"], created["key"], [1] * 1000)) == [1]
    with pytest.raises(PortalError) as refused:
        await ada.sign_batch(created["uploadId"], created["key"], [1] * 1001)
    assert (refused.value.status, refused.value.code, refused.value.message) == (
        400, "bad_part_number", "partNumbers must list 1 to 1000 part numbers, e.g. 1,2,3")
    run_sql(portal.database_url, "UPDATE direct_uploads SET stored_at = now()")  # a completion joined them
    with pytest.raises(PortalError) as joined:
        await ada.list_parts(created["uploadId"], created["key"])
    assert (joined.value.status, joined.value.code) == (409, "completing")


async def test_a_file_larger_than_storage_can_hold_is_refused_naming_its_size(start):
    portal = await start("dev")
    ada = await portal.user()
    with pytest.raises(PortalError) as refused:  # 10,000 parts of 5 GiB at most
        await ada.create("huge.bin", 10_000 * 5 * 1024 * MiB + 1, "application/octet-stream")
    assert (refused.value.status, refused.value.code) == (413, "too_large")
    assert refused.value.message.startswith("storage cannot hold a file of ")
    with pytest.raises(PortalError) as refused:  # exactly as large as storage takes: then it is the plan's limit
        await ada.create("huge.bin", 10_000 * 5 * 1024 * MiB, "application/octet-stream")
    assert refused.value.message == "the file is larger than the free plan's per-file limit of 40 MiB"
    assert portal.rows("direct_uploads") == []


async def test_an_expired_upload_can_be_aborted_and_storage_down_meanwhile_is_503_then_it_can_be_tried_again(
        start, moto_endpoint):
    async with S3Gate(moto_endpoint) as gate:
        portal = await start("r2", via=gate.url)
        ada = await portal.user()
        created = await ada.create("a.bin", 10, "application/octet-stream")
        run_sql(portal.database_url, "UPDATE direct_uploads SET expires_at = now() - interval '1 second'")
        gate.refuse(lambda request: request.method == "DELETE")
        with pytest.raises(PortalError) as down:
            await ada.abort(created["uploadId"], created["key"])
        assert down.value.status == 503
        assert down.value.message.startswith("storage is unavailable, the upload was not aborted")
        assert len(portal.rows("direct_uploads")) == 1
        gate.open()
        await ada.abort(created["uploadId"], created["key"])  # given back at once: no wait for a lease
        assert portal.rows("direct_uploads") == [] and await portal.leftovers() == []


async def test_a_start_may_reserve_exactly_the_room_left_in_the_quota(portal):
    ada = await portal.user()
    run_sql(portal.database_url, "UPDATE users SET limit_quota = 100")
    assert (await ada.create("exact.bin", 100, "application/octet-stream"))["uploadId"]
    with pytest.raises(PortalError) as refused:
        await ada.create("one.more", 1, "application/octet-stream")
    assert refused.value.status == 413 and "(100 bytes already used)" in refused.value.message


async def test_a_guests_file_may_take_exactly_the_room_the_request_has_left(portal):
    olivia = await portal.user("olivia@example.com")
    guest, _ = await guest_of(portal, olivia, max_bytes=10 * MiB)
    with pytest.raises(PortalError) as refused:
        await guest.create("over.bin", 10 * MiB + 1, "application/octet-stream")
    assert refused.value.status == 413
    assert (await guest.create("exact.bin", 10 * MiB, "application/octet-stream"))["uploadId"]


async def test_a_guests_direct_uploads_count_against_the_requests_caps_and_stay_its_own(portal):
    olivia = await portal.user("olivia@example.com")
    guest, request = await guest_of(portal, olivia, max_files=2, max_bytes=30 * MiB)
    first = await guest.create("a.bin", 10 * MiB, "application/octet-stream")
    with pytest.raises(PortalError) as refused:  # 10 MiB pending + 21 MiB > 30 MiB
        await guest.create("b.bin", 21 * MiB, "application/octet-stream")
    assert (refused.value.status, refused.value.code) == (413, "too_large")
    assert "the request takes at most 30 MiB in all, and 20 MiB of it is left" in refused.value.message
    second = await guest.create("b.bin", 5, "text/plain")
    with pytest.raises(PortalError) as refused:  # two files under way: the request takes no third
        await guest.create("c.bin", 5, "text/plain")
    assert (refused.value.status, refused.value.code) == (410, "request_full")
    assert (await olivia.call("GET", "/api/me"))["usage"]["reserved"] == 10 * MiB + 5  # the owner's quota

    # The pair is the request's: not the owner's own /api/s3, nor another request's link.
    other, _ = await guest_of(portal, olivia)
    for who in (olivia, other):
        with pytest.raises(PortalError) as unknown:
            await who.list_parts(first["uploadId"], first["key"])
        assert unknown.value.status == 404
    await guest.abort(second["uploadId"], second["key"])
    third = await guest.create("c.bin", 5, "text/plain")  # the aborted one freed its place
    etags = await send_parts(guest, third, [b"hello"])
    assert (await guest.complete(third["uploadId"], third["key"], etags))["artifact"]["size"] == 5

    # Closed: nothing more is signed, started or completed (an upload that tries is dropped at once).
    await olivia.call("DELETE", f"/api/requests/{request['id']}")
    for attempt in (guest.sign(first["uploadId"], first["key"], 1), guest.create("d.bin", 5, "text/plain"),
                    guest.complete(first["uploadId"], first["key"], {1: '"x"'})):
        with pytest.raises(PortalError) as closed:
            await attempt
        assert (closed.value.status, closed.value.code) == (410, "request_closed")
        assert "this request is closed" in closed.value.message
    assert portal.rows("direct_uploads") == [] and await portal.leftovers() == [third["key"]]
    assert (await olivia.call("GET", "/api/me"))["usage"]["reserved"] == 0
    with pytest.raises(PortalError) as unknown:
        await DirectClient(guest.session, portal.url, {}, endpoint="/api/r/" + "A" * 32).create("x", 1, "text/plain")
    assert (unknown.value.status, unknown.value.message) == (404, "no such file request")
    # The token is a secret like a share link's: never indexed, never sent on as a Referer.
    async with guest.session.get(f"{guest.base_url}{guest.multipart}/{third['uploadId']}", params={"key": "x"}) as response:
        assert response.status == 404
        assert (response.headers["X-Robots-Tag"], response.headers["Referrer-Policy"]) == ("noindex, nofollow", "no-referrer")
    open_one = other.multipart.removesuffix("/s3/multipart")  # /api/r/<token> of the request still open
    async with guest.session.get(portal.url + open_one.removeprefix("/api")) as response:
        assert f'data-direct-endpoint="{open_one}" data-direct-threshold="{16 * MiB}"' in await response.text()


async def test_a_request_that_fills_up_meanwhile_refuses_the_completion_and_keeps_nothing(start):
    """Streamed files took the request's room while a guest's parts went up: refused at completion (before
    it, or under the request's row lock as the artifact would be written), and nothing is kept."""
    portal = await start("dev")
    olivia = await portal.user("olivia@example.com")
    cases = [({"max_files": 1}, "received_files = 1", 410, "request_full",
              "refused: this request has all the files it takes"),
             ({"max_bytes": 10}, "received_bytes = 6", 413, "too_large",
              "refused: the request takes at most 10 bytes in all, and 4 bytes of it is left")]
    for caps, taken, status, code, reason in cases:
        guest, request = await guest_of(portal, olivia, **caps)
        created = await guest.create("a.bin", 5, "text/plain")
        etags = await send_parts(guest, created, [b"hello"])
        run_sql(portal.database_url, f"UPDATE file_requests SET {taken} WHERE id = %s", (request["id"],))
        with pytest.raises(PortalError) as refused:
            await guest.complete(created["uploadId"], created["key"], etags)
        assert (refused.value.status, refused.value.code) == (status, code)
        assert await portal.leftovers() == [] and portal.rows("direct_uploads") == [] and portal.rows("artifacts") == []
        assert portal.events("upload.aborted")[-1][2]["reason"].startswith(reason)


async def test_two_guests_starting_at_once_cannot_overshoot_the_requests_cap(start):
    """Both starts queue on the owner's row lock (held here until both wait on it), then take the request's
    row lock in turn: the second sees the first's pending upload and is refused; its upload is aborted."""
    import psycopg2

    from tests.support.sharing import wait_for_lock_waiters

    portal = await start("dev")
    olivia = await portal.user("olivia@example.com")
    guest, _request = await guest_of(portal, olivia, max_files=1)
    blocker = psycopg2.connect(portal.database_url)
    try:
        with blocker.cursor() as cur:
            cur.execute("SELECT id FROM users FOR UPDATE")
            racing = [asyncio.ensure_future(guest.create(f"{n}.bin", 5, "text/plain")) for n in range(2)]
            await wait_for_lock_waiters(portal.database_url, at_least=2)
        blocker.commit()
    finally:
        blocker.close()
    outcomes = await asyncio.gather(*racing, return_exceptions=True)
    started = [o for o in outcomes if isinstance(o, dict)]
    refused = [o for o in outcomes if isinstance(o, PortalError)]
    assert len(started) == 1 and [(r.status, r.code) for r in refused] == [(410, "request_full")]
    assert refused[0].message == "the request takes at most 1 file(s) and has them all, or they are on their way"
    assert await portal.leftovers() == [f"pending upload of {started[0]['key']}"]
    assert [row[0] for row in portal.rows("direct_uploads")] == [started[0]["uploadId"]]
