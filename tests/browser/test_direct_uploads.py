"""Direct uploads in the browser: parts go from the page straight to S3 (moto, which honours only the bucket's
own CORS rule here, set by `portal storage cors --apply`), in parallel, survive a page reload, pause and
resume, retry a failed part, and end verified; a quarantined file says why; and the real @uppy/aws-s3 drives
the portal's /api/s3 unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import subprocess
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from playwright.async_api import expect

from portal_core.direct_client import DirectClient
from tests.browser import journey
from tests.browser.chromium import open_page, screenshot
from tests.browser.journey import Person
from tests.support.db import run_sql
from tests.support.moto import MotoServer, r2_env
from tests.support.portal import PORTAL_BIN, portal_env, run_portal

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

MiB = 1024 * 1024
UPPY = Path(__file__).resolve().parent / "uppy" / "node_modules" / "uppy" / "dist" / "uppy.min.mjs"


@pytest.fixture(scope="module")
def cors_moto(tmp_path_factory):
    """A moto server of this module's own that answers CORS only as the bucket's rules say (as S3 and R2 do),
    with an empty bucket."""
    server = MotoServer(tmp_path_factory.mktemp("moto-cors") / "moto.log", env={"MOTO_DISABLE_GLOBAL_CORS": "true"})
    server.start()
    bucket = f"browser-{uuid.uuid4().hex[:12]}"
    urllib.request.urlopen(urllib.request.Request(f"{server.endpoint}/{bucket}", method="PUT"), timeout=10).close()
    try:
        yield server.endpoint, bucket
    finally:
        server.stop()


def preflight(endpoint: str, bucket: str, origin: str) -> tuple[int, dict]:
    request = urllib.request.Request(f"{endpoint}/{bucket}/1/some-key?partNumber=1&uploadId=x", method="OPTIONS",
                                     headers={"Origin": origin, "Access-Control-Request-Method": "PUT"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers)


@pytest.fixture(scope="module")
def direct_portal(portal_db, cors_moto):
    """A DEV_MODE portal storing in R2 (moto), whose bucket was given its CORS rule by `portal storage cors --apply`."""
    endpoint, bucket = cors_moto
    env = {"STORAGE_BACKEND": "r2", **r2_env(endpoint, bucket), "PLAN_FREE_MAX_FILE": "256MiB", "PLAN_FREE_QUOTA": "1GiB"}
    with run_portal(portal_db, env) as portal:
        # No rule yet: the preflight grants nothing, so browsers could not PUT a part.
        assert "Access-Control-Allow-Origin" not in preflight(endpoint, bucket, portal.url)[1]
        applied = subprocess.run([str(PORTAL_BIN), "storage", "cors", "--apply"], capture_output=True, text=True,
                                 env=portal_env(portal_db, env, portal.port, portal.data_dir), timeout=60)
        assert applied.returncode == 0, applied.stderr
        assert f"PUT from {portal.url}, ETag exposed" in applied.stdout
        status, headers = preflight(endpoint, bucket, portal.url)
        assert status == 200 and headers["Access-Control-Allow-Origin"] == portal.url
        assert "ETag" in headers["Access-Control-Expose-Headers"]
        assert "Access-Control-Allow-Origin" not in preflight(endpoint, bucket, "http://elsewhere.example")[1]
        yield portal


class Network:
    """Every request the page makes, and how many PUTs to storage were in flight at most."""

    def __init__(self, page, storage: str) -> None:
        self.storage = storage
        self.requests: list[tuple[str, str]] = []
        self.in_flight: set = set()
        self.most_in_flight = 0
        self.stored: list[int] = []  # parts whose PUT storage answered, as the page saw it
        page.on("request", self._started)
        page.on("requestfinished", self._finished)
        page.on("requestfailed", self._ended)

    def _started(self, request) -> None:
        self.requests.append((request.method, request.url))
        if request.method == "PUT" and request.url.startswith(self.storage):
            self.in_flight.add(request)
            self.most_in_flight = max(self.most_in_flight, len(self.in_flight))

    def _ended(self, request) -> None:
        self.in_flight.discard(request)

    async def _finished(self, request) -> None:
        self._ended(request)
        if request.method == "PUT" and request.url.startswith(self.storage) and "partNumber=" in request.url:
            response = await request.response()
            if response is not None and response.status == 200:
                self.stored.append(int(parse_qs(urlsplit(request.url).query)["partNumber"][0]))

    def part_puts(self, since: int = 0, until: int | None = None) -> list[int]:
        return [int(parse_qs(urlsplit(url).query)["partNumber"][0]) for method, url in self.requests[since:until]
                if method == "PUT" and url.startswith(self.storage) and "partNumber=" in url]


class PartGate:
    """Holds (or fails once) the page's PUTs of chosen parts to storage, until released: deterministic timing."""

    def __init__(self) -> None:
        self.hold_from: int | None = None
        self.fail_once: set[int] = set()
        self.release = asyncio.Event()
        self.held: list[int] = []
        self.forwarded: list[int] = []  # let through to storage (its answer may still be on the way)

    async def route(self, route) -> None:
        request = route.request
        number = int(parse_qs(urlsplit(request.url).query).get("partNumber", ["0"])[0])
        if request.method == "PUT" and number in self.fail_once:
            self.fail_once.discard(number)
            await route.fulfill(status=503, body="<Error><Code>SlowDown</Code></Error>")
            return
        if request.method == "PUT" and self.hold_from is not None and number >= self.hold_from:
            self.held.append(number)
            await self.release.wait()
            with contextlib.suppress(Exception):  # the page is gone (reloaded) or paused: nothing to send
                await route.abort()
            return
        await route.continue_()
        if request.method == "PUT":
            self.forwarded.append(number)


async def wait_until(check, timeout: float = 60.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.05)


def person(tag: str) -> Person:
    return Person(email=f"{tag}@example.com", name=tag.title())


async def test_a_64_mib_file_goes_straight_to_storage_in_parallel_and_resumes_after_a_reload(
        chromium, direct_portal, cors_moto, portal_db, tmp_path):
    endpoint, bucket = cors_moto
    data = os.urandom(64 * MiB)
    path = tmp_path / "dataset.bin"
    path.write_bytes(data)
    async with open_page(chromium) as (page, problems):
        network = Network(page, endpoint)
        gate = PartGate()
        gate.hold_from = 3
        await page.route(f"{endpoint}/**", gate.route)
        await journey.sign_in_dev(page, direct_portal.url, person("bigfile"))
        await page.set_input_files("#file-input", str(path))
        item = journey.upload_item(page, "dataset.bin")
        # Parts 1 and 2 reach storage; the next ones (four at once) wait at the gate.
        await wait_until(lambda: sorted(network.stored) == [1, 2] and len(gate.held) == 4)
        assert network.most_in_flight >= 4
        await expect(item.get_by_test_id("upload-status")).to_have_text(re.compile(r"^25% · 16 MiB of 64 MiB · [\d.]+ (MiB|KiB)/s$"))
        await expect(item.get_by_test_id("upload-pause")).to_be_visible()
        await screenshot(page, "direct-upload-in-progress")
        remembered = await page.evaluate("() => localStorage.getItem('portal.direct-uploads')")
        assert remembered and '"uploadId"' in remembered

        before = len(network.requests)
        gate.hold_from = None
        await page.reload()
        gate.release.set()
        await expect(page.get_by_test_id("upload-item")).to_have_count(0)
        await page.set_input_files("#file-input", str(path))  # the same file, chosen again
        await journey.wait_uploaded(page, "dataset.bin")
        assert sorted(network.part_puts(before)) == [3, 4, 5, 6, 7, 8]  # only what storage did not hold
        row = journey.artifact_row(page, "dataset.bin")
        digest = hashlib.sha256(data).hexdigest()
        await expect(row.get_by_test_id("artifact-sha")).to_have_attribute("title", digest)
        await expect(row.get_by_test_id("artifact-unverified")).to_have_count(0, timeout=30_000)
        assert await page.evaluate("() => localStorage.getItem('portal.direct-uploads')") == "{}"
        problems.assert_none()

    # Every part went to storage, none through the portal, which only signed, listed and completed.
    portal = direct_portal.url
    assert not [url for method, url in network.requests if url.startswith(portal) and method == "PUT"]
    assert ("POST", f"{portal}/api/artifacts") not in network.requests
    assert sorted(network.part_puts(0, before)) == [1, 2, 3, 4, 5, 6]
    shown = run_sql(portal_db, "SELECT name, size, sha256, verification FROM artifacts")
    assert shown == [("dataset.bin", len(data), digest, "verified")]
    async with aiohttp.ClientSession() as http:  # storage holds the object and no unfinished upload
        async with http.get(f"{endpoint}/{bucket}?uploads") as response:
            assert "<Upload>" not in await response.text()


async def test_pause_resume_and_a_failed_part_retried(chromium, direct_portal, cors_moto, tmp_path):
    endpoint, _bucket = cors_moto
    data = os.urandom(24 * MiB)  # three parts of 8 MiB, over the 16 MiB threshold
    path = tmp_path / "paused.bin"
    path.write_bytes(data)
    async with open_page(chromium) as (page, problems):
        network = Network(page, endpoint)
        gate = PartGate()
        gate.hold_from = 2
        gate.fail_once = {1}  # storage answers 503 to the first try of part 1
        await page.route(f"{endpoint}/**", gate.route)
        await journey.sign_in_dev(page, direct_portal.url, person("pauser"))
        await page.set_input_files("#file-input", str(path))
        item = journey.upload_item(page, "paused.bin")
        await wait_until(lambda: network.stored == [1] and sorted(gate.held) == [2, 3])
        await expect(item.get_by_test_id("upload-status")).to_contain_text("33% · 8 MiB of 24 MiB")
        assert network.part_puts().count(1) == 2  # retried after the 503, with a fresh URL
        await item.get_by_test_id("upload-pause").click()
        await expect(item).to_have_attribute("data-state", "paused")
        await expect(item.get_by_test_id("upload-status")).to_have_text("Paused at 33%")
        await expect(item.get_by_test_id("upload-pause")).to_have_text("Resume")
        await screenshot(page, "direct-upload-paused")
        gate.hold_from = None
        gate.release.set()  # the parts held at the gate were dropped by the pause: they must go again
        before = len(network.requests)
        await item.get_by_test_id("upload-pause").click()
        await journey.wait_uploaded(page, "paused.bin")
        assert sorted(network.part_puts(before)) == [2, 3]
        row = journey.artifact_row(page, "paused.bin")
        await expect(row.get_by_test_id("artifact-sha")).to_have_attribute("title", hashlib.sha256(data).hexdigest())
        problems.assert_none()


async def pro_owners_request(chromium, portal_url: str, portal_db: str, owner: Person, title: str) -> dict:
    """``owner`` on the pro plan creates a file request in their browser; its answer (with the link)."""
    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, portal_url, owner)
        run_sql(portal_db, "INSERT INTO subscriptions (user_id, plan, status, provider) "
                           "SELECT id, 'pro', 'active', 'dev' FROM users WHERE email = %s", (owner.email,))
        created = await page.evaluate("""async (title) => {
            const me = await (await fetch('/api/me')).json();
            const answer = await fetch('/api/requests', {method: 'POST', body: JSON.stringify({title}),
                headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token}});
            return answer.json();
        }""", title)
        problems.assert_none()
    assert created["title"] == title, created
    return created


async def test_a_guest_sends_a_large_file_through_a_request_straight_to_storage(chromium, direct_portal, cors_moto,
                                                                                 portal_db, tmp_path):
    """issue 15: on a file request's page, files above the threshold go straight to storage in parts (the
    portal only signs and completes), smaller ones through the form; both land in the owner's artifacts."""
    endpoint, _bucket = cors_moto
    big, small = os.urandom(20 * MiB), b"a small note"  # 20 MiB: three parts (8, 8, 4 MiB)
    (tmp_path / "survey.bin").write_bytes(big)
    (tmp_path / "note.txt").write_bytes(small)
    owner = person("asker")
    created = await pro_owners_request(chromium, direct_portal.url, portal_db, owner, "Survey data")
    async with open_page(chromium) as (guest, guest_problems):
        network = Network(guest, endpoint)
        await guest.goto(created["url"])
        await guest.set_input_files("#request-files", [str(tmp_path / "survey.bin"), str(tmp_path / "note.txt")])
        await guest.get_by_test_id("request-send").click()
        await expect(guest.get_by_test_id("request-received-direct")).to_contain_text("survey.bin", timeout=60_000)
        await expect(guest.get_by_test_id("request-received")).to_contain_text("note.txt")
        await expect(guest.get_by_test_id("request-refused")).to_have_count(0)
        await screenshot(guest, "request-direct-upload-sent")
        guest_problems.assert_none()
    assert sorted(network.part_puts()) == [1, 2, 3]  # the large file's parts, to storage
    portal = direct_portal.url
    assert not [url for method, url in network.requests if method == "PUT" and url.startswith(portal)]
    rows = run_sql(portal_db, "SELECT a.name, a.size, a.sha256, a.file_request_id::text FROM artifacts a "
                              "JOIN users u ON u.id = a.owner_id WHERE u.email = %s ORDER BY a.name", (owner.email,))
    assert rows == [("note.txt", len(small), hashlib.sha256(small).hexdigest(), created["id"]),
                    ("survey.bin", len(big), hashlib.sha256(big).hexdigest(), created["id"])]


async def test_a_quarantined_file_shows_why_and_offers_no_download(chromium, direct_portal, portal_db):
    from tests.support.db import create_token

    async with open_page(chromium) as (page, problems):
        await journey.sign_in_dev(page, direct_portal.url, person("quarantine"))
        user_id = run_sql(portal_db, "SELECT id FROM users WHERE email = 'quarantine@example.com'")[0][0]
        token = create_token(portal_db, user_id)
        data = b"these are not the bytes you declared"
        async with aiohttp.ClientSession() as http:
            client = DirectClient(http, direct_portal.url, {"Authorization": f"Bearer {token}"})
            created = await client.create("claimed.txt", len(data), "text/plain", sha256="0" * 64)
            etag = await client.put_part(await client.sign(created["uploadId"], created["key"], 1), data)
            artifact = (await client.complete(created["uploadId"], created["key"], {1: etag}))["artifact"]
            for _ in range(200):
                if (await client.call("GET", f"/api/artifacts/{artifact['id']}"))["verification"] == "quarantined":
                    break
                await asyncio.sleep(0.05)
        await page.reload()
        row = journey.artifact_row(page, "claimed.txt")
        await expect(row.get_by_test_id("artifact-quarantined")).to_be_visible()
        await expect(row.get_by_test_id("download")).to_have_count(0)
        await row.get_by_test_id("artifact-name").click()
        await expect(page.get_by_test_id("details-verification")).to_contain_text("Quarantined: the stored bytes' SHA-256 is")
        await screenshot(page, "direct-upload-quarantined")
        problems.assert_none()


UPPY_RUN = """import { Uppy, AwsS3 } from './uppy.min.mjs';
const me = await (await fetch('/api/me')).json();
const uppy = new Uppy();
uppy.use(AwsS3, { endpoint: '/api', shouldUseMultipart: true, headers: { 'X-CSRF-Token': me.csrf_token } });
window.portalUppy = uppy;
"""
# A guest on a file request's page: the request's link stands in for a sign-in.
UPPY_GUEST_RUN = """import { Uppy, AwsS3 } from './uppy.min.mjs';
const uppy = new Uppy();
uppy.use(AwsS3, { endpoint: '/api' + window.location.pathname, shouldUseMultipart: true });
window.portalUppy = uppy;
"""


async def upload_with_uppy(page, portal_url: str, path: str, run: str) -> dict:
    """Load the real Uppy bundle and the integrator's few lines ``run`` into the portal's page at ``path``,
    and upload 12 MiB of random bytes with it: {digest, ok, failed, url}."""
    if not UPPY.exists():
        pytest.fail(f"{UPPY} is missing: run tests/setup.d/uppy.sh (npm ci of tests/browser/uppy)", pytrace=False)

    async def serve(route) -> None:
        body = {"/uppy-test/run.mjs": run, "/uppy-test/uppy.min.mjs": UPPY.read_bytes()}[urlsplit(route.request.url).path]
        await route.fulfill(status=200, body=body, content_type="text/javascript")

    # Uppy and the integrator's few lines are loaded into one of the portal's own pages (under its CSP), as
    # same-origin modules the test serves: the portal itself is unchanged.
    await page.route(f"{portal_url}/uppy-test/**", serve)
    await page.goto(portal_url + path)
    await page.evaluate("() => import('/uppy-test/run.mjs')")
    await page.wait_for_function("() => window.portalUppy !== undefined")
    return await page.evaluate("""async () => {
        const bytes = new Uint8Array(12 * 1024 * 1024);
        for (let i = 0; i < bytes.length; i += 65536) crypto.getRandomValues(bytes.subarray(i, i + 65536));
        const digest = [...new Uint8Array(await crypto.subtle.digest('SHA-256', bytes))]
            .map((b) => b.toString(16).padStart(2, '0')).join('');
        const blob = new Blob([bytes], { type: 'application/octet-stream' });
        window.portalUppy.addFile({ name: 'from-uppy.bin', type: blob.type, data: blob, meta: { size: blob.size } });
        const outcome = await window.portalUppy.upload();
        return { digest, ok: outcome.successful.length, failed: outcome.failed.map((f) => String(f.error)),
                 url: outcome.successful.length ? outcome.successful[0].uploadURL : null };
    }""")


async def verified_sha256(portal_db, artifact_id: str) -> tuple[str, str]:
    for _ in range(200):
        (state, sha) = run_sql(portal_db, "SELECT verification, sha256 FROM artifacts WHERE id = %s", (artifact_id,))[0]
        if state != "unverified":
            break
        await asyncio.sleep(0.05)
    return state, sha


async def test_the_real_uppy_aws_s3_plugin_uploads_through_the_portal_unchanged(chromium, direct_portal, cors_moto,
                                                                                portal_db):
    endpoint, _bucket = cors_moto
    async with open_page(chromium) as (page, problems):
        network = Network(page, endpoint)
        await journey.sign_in_dev(page, direct_portal.url, person("uppy"))
        result = await upload_with_uppy(page, direct_portal.url, "/account", UPPY_RUN)
        assert result["failed"] == [] and result["ok"] == 1, (result, problems.errors, network.requests[-8:])
        assert sorted(network.part_puts()) == [1, 2, 3]  # Uppy's own 5 MiB parts, straight to storage
        (artifact_id, name, size, state) = run_sql(
            portal_db, "SELECT id::text, name, size, verification FROM artifacts WHERE name = 'from-uppy.bin'")[0]
        assert (name, size) == ("from-uppy.bin", 12 * MiB)
        assert result["url"] == f"{direct_portal.url}/api/artifacts/{artifact_id}"
        # Uppy declares no SHA-256: the portal computed it
        assert await verified_sha256(portal_db, artifact_id) == ("verified", result["digest"])
        problems.assert_none()


async def test_the_real_uppy_aws_s3_plugin_uploads_through_a_file_request_signed_out(chromium, direct_portal,
                                                                                     cors_moto, portal_db):
    endpoint, _bucket = cors_moto
    owner = person("uppy-asker")
    created = await pro_owners_request(chromium, direct_portal.url, portal_db, owner, "Via Uppy")
    async with open_page(chromium) as (guest, problems):  # signed out: no session, no token
        network = Network(guest, endpoint)
        result = await upload_with_uppy(guest, direct_portal.url, urlsplit(created["url"]).path, UPPY_GUEST_RUN)
        assert result["failed"] == [] and result["ok"] == 1, (result, problems.errors, network.requests[-8:])
        assert sorted(network.part_puts()) == [1, 2, 3]
        (artifact_id, request_id) = run_sql(portal_db, "SELECT id::text, file_request_id::text FROM artifacts "
                                                       "WHERE name = 'from-uppy.bin' AND file_request_id IS NOT NULL")[0]
        assert request_id == created["id"]
        assert await verified_sha256(portal_db, artifact_id) == ("verified", result["digest"])
        problems.assert_none()
