"""One live portal per module for the generated tests, with signed-in customers and some data to aim at.

Run length: ``PORTAL_FUZZ_EXAMPLES`` examples per test (a bounded run in the suite; ``scripts/fuzz``
raises it). In the suite the examples are derandomized, so a run is repeatable; ``scripts/fuzz`` sets
``PORTAL_FUZZ_RANDOM=1`` for fresh ones each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator

import aiohttp
import attrs
import pytest
from hypothesis import HealthCheck, settings

from portal_core.testing.portal import create_database, drop_database, provision
from tests.support.db import create_user, run_sql
from tests.support.live import Credentials, LivePortal, bucket_agrees, live_portal, storage_agrees
from tests.support.moto import r2_env, s3_client
from tests.support.sharing import make_pro

from .strategies import raw_request

EXAMPLES = int(os.environ.get("PORTAL_FUZZ_EXAMPLES", "300"))
RANDOM = os.environ.get("PORTAL_FUZZ_RANDOM") == "1"

# The examples of one test: no deadline (the portal fsyncs uploads), repeatable in the suite.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=not RANDOM,
                database=settings().database if RANDOM else None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                       HealthCheck.function_scoped_fixture], print_blob=True)

# Deliberate 5xx answers: an admin switched the site to read-only or paused uploads (the fuzzer may do it
# through PUT /api/admin/settings). Anything else at 500 or above is a bug.
DELIBERATE_5XX = {"read_only", "uploads_paused"}


@attrs.define
class Fuzzing:
    """The live portal, who is signed in, and ids that exist (so requests reach past 'not found')."""

    portal: LivePortal
    admin: Credentials
    customer: Credentials
    known: dict[str, list[str]]
    agree: Callable[[LivePortal], list[str]] = storage_agrees

    def refresh(self) -> None:
        """Sign both in again (a request may have signed a session out or revoked a token)."""
        self.admin = self.portal.sign_in("fuzz-admin@example.com", admin=True)
        self.customer = self.portal.sign_in("fuzz@example.com")

    def reset_switches(self) -> None:
        """Turn read-only mode and paused uploads off again (the fuzzer may have switched them on)."""
        body = b'{"read_only": false, "uploads_paused": false}'
        status, payload = self.portal.raw(raw_request("PUT", b"/api/admin/settings", [
            (b"Authorization", b"Bearer " + self.admin.token.encode())], body, b"application/json"))
        assert status == 200, payload

    def send(self, request: bytes, what: str) -> tuple[int, bytes]:
        """Send a raw request; fail naming it when the portal answered 5xx (or not at all) or logged an error."""
        before = len(self.portal.records)
        status, payload = self.portal.raw(request)
        assert status != 0, f"the portal closed the connection without answering {what}:\n{request[:600]!r}"
        if status >= 500:
            assert _deliberate(payload), (f"{what} answered {status}: {payload[:300]!r}\nrequest:\n{request[:800]!r}")
        alarming = self.portal.alarming(before)
        assert not alarming, f"{what} logged {alarming}\nrequest:\n{request[:800]!r}"
        return status, payload

    def assert_consistent(self) -> None:
        """Afterwards the database and storage agree, and nothing at ERROR (or a traceback) was logged."""
        assert self.agree(self.portal) == []
        assert self.portal.alarming() == []


def _deliberate(payload: bytes) -> bool:
    try:
        return json.loads(payload)["error"]["code"] in DELIBERATE_5XX
    except (ValueError, KeyError, TypeError):
        return False


def _seed(portal: LivePortal, customer: Credentials) -> dict[str, list[str]]:
    """An artifact, a share link of it and a file request of the customer's, so routes find something."""

    async def run() -> dict[str, list[str]]:
        bearer = {"Authorization": f"Bearer {customer.token}"}
        async with aiohttp.ClientSession(headers=bearer) as http:
            form = aiohttp.FormData()
            form.add_field("file", b"seed bytes", filename="seed.txt", content_type="text/plain")
            async with http.post(f"{portal.url}/api/artifacts", data=form) as resp:
                assert resp.status == 201, await resp.text()
                artifact = (await resp.json())["id"]
            async with http.post(f"{portal.url}/api/artifacts/{artifact}/shares", json={}) as resp:
                assert resp.status == 201, await resp.text()
                share = await resp.json()
            async with http.post(f"{portal.url}/api/requests", json={"title": "Send me things"}) as resp:
                assert resp.status == 201, await resp.text()
                request = await resp.json()
        share_token = share["url"].rstrip("/").rsplit("/", 1)[1]
        request_token = request["url"].rstrip("/").rsplit("/", 1)[1]
        return {"id": [artifact, share["id"], request["id"]], "token": [share_token, request_token],
                "artifact_id": [artifact]}

    return asyncio.run(run())


@contextlib.contextmanager
def fuzzing(server_url: str, data_dir, env: dict[str, str] | None = None,
            agree: Callable[[LivePortal], list[str]] = storage_agrees) -> Iterator[Fuzzing]:
    """A live portal on a fresh database with an admin, a pro customer and their seed data."""
    database_url = create_database(server_url)
    try:
        asyncio.run(provision(database_url, env))
        # Users 1-3 exist before the fuzzing users, so a small id in a path rarely names one of them.
        for n in range(3):
            create_user(database_url, email=f"bystander{n}@example.com", name=f"Bystander {n}")
        with live_portal(database_url, data_dir, env) as portal:
            admin = portal.sign_in("fuzz-admin@example.com", admin=True)
            customer = portal.sign_in("fuzz@example.com")
            # On the pro plan, so file requests and share options are open to the fuzzer too.
            (user_id,) = run_sql(database_url, "SELECT id FROM users WHERE email = 'fuzz@example.com'")[0]
            make_pro(lambda query, params=(): run_sql(database_url, query, params), user_id)
            yield Fuzzing(portal, admin, customer, _seed(portal, customer), agree)
    finally:
        drop_database(database_url)


@pytest.fixture(scope="module")
def fuzz(portal_db_server, tmp_path_factory):
    """The portal with dev storage (files under its data directory)."""
    with fuzzing(portal_db_server, tmp_path_factory.mktemp("fuzz-data")) as fuzzing_run:
        yield fuzzing_run


@pytest.fixture(scope="module")
def fuzz_r2(portal_db_server, tmp_path_factory, moto_endpoint):
    """The portal with the r2 storage on the loopback S3 server (moto), in a bucket of its own."""
    bucket = f"fuzz-{uuid.uuid4().hex[:16]}"

    async def create() -> None:
        async with s3_client(moto_endpoint) as client:
            await client.create_bucket(Bucket=bucket)

    asyncio.run(create())
    env = {"STORAGE_BACKEND": "r2", **r2_env(moto_endpoint, bucket)}
    with fuzzing(portal_db_server, tmp_path_factory.mktemp("fuzz-r2"), env,
                 lambda portal: bucket_agrees(portal, moto_endpoint, bucket)) as fuzzing_run:
        yield fuzzing_run
