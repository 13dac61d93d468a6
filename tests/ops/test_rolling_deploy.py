"""A rolling deploy and its rollback under traffic, for real: three portals behind HAProxy lose nothing.

Three portal processes of the current build share PostgreSQL and S3 (moto; STORAGE_BACKEND=r2) behind
HAProxy, which health-checks /health/ready as a Kubernetes readiness probe does. While clients keep
signing in (dev sign-in), listing, uploading and downloading, the processes are replaced one at a time
(start one new, wait until HAProxy has it in rotation, SIGTERM one old: maxSurge 1, maxUnavailable 0) by a
"next build" whose schema adds a table and a column, then rolled back to the current build the same way.

What must hold: not one request failed (HAProxy never even had to retry), every upload answered 201 is
stored whole (its row, its object, its bytes), the rows and the bucket's objects are the same set, and the
schema applies were serialised (three processes starting at once record one provisioning; a new process
waits on the schema lock without taking traffic). The longest pause any client saw is printed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

import aiohttp
import attrs
import psycopg2
import pytest

from portal_core.db import SCHEMA_LOCK_ID
from tests.ops.rollout import HAProxy, next_build
from tests.support.db import create_token, create_user, run_sql
from tests.support.moto import object_keys, pending_uploads, r2_env
from tests.support.portal import PORTAL_BIN, PortalProcess, free_port, start_portal

MiB = 1024 * 1024
SLOTS = 6  # three running, one surge, and room to alternate builds without reusing a port at once
WAITING_ON_A_LOCK = ("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                     "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")


@attrs.frozen
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


@attrs.define
class Traffic:
    """Clients hammering the load balancer; every request's outcome and timing."""

    url: str
    tokens: list[str]
    stop: asyncio.Event = attrs.field(factory=asyncio.Event)
    failures: list[str] = attrs.field(factory=list)
    counts: Counter = attrs.field(factory=Counter)
    longest: dict[str, float] = attrs.field(factory=dict)  # kind of request -> its slowest answer, seconds
    uploaded: dict[str, tuple[str, int]] = attrs.field(factory=dict)  # artifact id -> (sha256, size)

    async def request(self, http: aiohttp.ClientSession, what: str, method: str, url: str, expect: int,
                      **kwargs) -> Answer | None:
        started = time.monotonic()
        try:
            async with http.request(method, url, allow_redirects=False, **kwargs) as response:
                body = await response.read()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            self.failures.append(f"{what}: {type(exc).__name__}: {exc}")
            return None
        finally:
            self.longest[what] = max(self.longest.get(what, 0.0), time.monotonic() - started)
        self.counts[what] += 1
        if response.status != expect:
            self.failures.append(f"{what}: {response.status} {body[:300]!r}")
            return None
        return Answer(response.status, dict(response.headers), body)

    async def uploader(self, token: str, seed: int) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        n = 0
        async with aiohttp.ClientSession() as http:
            while not self.stop.is_set():
                n += 1
                # Mostly small files, every fifth one large enough for a multipart upload to S3.
                size = 6 * MiB + n if n % 5 == 0 else 50_000 + (seed * 7919 + n * 104_729) % 900_000
                data = os.urandom(size)
                form = aiohttp.FormData()
                form.add_field("file", data, filename=f"rollout-{seed}-{n}.bin", content_type="application/octet-stream")
                answer = await self.request(http, "upload", "POST", f"{self.url}/api/artifacts", 201, data=form,
                                            headers=headers)
                if answer is None:
                    continue
                artifact = json.loads(answer.body)
                digest = hashlib.sha256(data).hexdigest()
                self.uploaded[artifact["id"]] = (digest, size)
                if artifact["sha256"] != digest or artifact["size"] != size:
                    self.failures.append(f"upload {artifact['id']}: the portal recorded {artifact} for {size} bytes")
                redirect = await self.request(http, "download", "GET",
                                              f"{self.url}/api/artifacts/{artifact['id']}/download", 302, headers=headers)
                if redirect is None:
                    continue
                stored = await self.request(http, "storage GET", "GET", redirect.headers["Location"], 200)
                if stored is not None and hashlib.sha256(stored.body).hexdigest() != digest:
                    self.failures.append(f"download {artifact['id']}: the bytes differ from the upload")

    async def browser(self, seed: int) -> None:
        n = 0
        while not self.stop.is_set():
            n += 1
            async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
                login = await self.request(http, "sign-in start", "GET", f"{self.url}/auth/login?next=/", 302)
                if login is None:
                    continue
                state = login.headers["Location"].split("state=", 1)[1]
                form = {"state": state, "email": f"browser{seed}-{n % 3}@example.com", "name": "Browser"}
                if await self.request(http, "sign-in", "POST", f"{self.url}/auth/callback", 302, data=form) is None:
                    continue
                for _ in range(3):
                    await self.request(http, "me", "GET", f"{self.url}/api/me", 200)
                    await self.request(http, "listing (session)", "GET", f"{self.url}/api/artifacts", 200)

    async def lister(self, token: str) -> None:
        async with aiohttp.ClientSession() as http:
            while not self.stop.is_set():
                await self.request(http, "listing (token)", "GET", f"{self.url}/api/artifacts?limit=20", 200,
                                   headers={"Authorization": f"Bearer {token}"})


def ready(portal: PortalProcess) -> bool:
    try:
        with urllib.request.urlopen(portal.url + "/health/ready", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def wait_ready(portal: PortalProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready(portal):
        if portal.process.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"portal on {portal.port} never became ready:\n{portal.log()}")
        time.sleep(0.05)


@pytest.mark.slow
async def test_rolling_deploy_and_rollback_under_traffic_lose_nothing(empty_database_url, moto_endpoint, s3,
                                                                      s3_bucket, tmp_path) -> None:
    database_url = empty_database_url
    next_portal, next_version = await asyncio.to_thread(next_build)
    ports = [free_port() for _ in range(SLOTS)]
    lb = HAProxy(tmp_path, ports, free_port())
    env = {"STORAGE_BACKEND": "r2", **r2_env(moto_endpoint, s3_bucket), "APP_BASE_URL": lb.url,
           "SHUTDOWN_DELAY_SECONDS": "2", "SHUTDOWN_GRACE_SECONDS": "20",
           "R2_MULTIPART_THRESHOLD": "5MiB", "R2_PART_SIZE": "5MiB"}
    running: dict[int, PortalProcess] = {}
    stopped: list[PortalProcess] = []

    def start(slot: int, portal_bin: Path) -> PortalProcess:
        running[slot] = start_portal(database_url, env, port=ports[slot], wait=False, portal_bin=portal_bin)
        return running[slot]

    def stop(slot: int) -> int:
        portal = running.pop(slot)
        stopped.append(portal)
        return portal.stop(signal.SIGTERM, timeout=40)

    def replace(old: int, new: int, portal_bin: Path, gate: bool = False) -> None:
        """One step of the rollout: a new process in slot ``new`` until HAProxy routes to it, then SIGTERM ``old``."""
        lock = None
        if gate:  # hold the schema lock: the new process must wait for it, port closed, taking no traffic
            lock = psycopg2.connect(database_url)
            lock.autocommit = True
            lock.cursor().execute("SELECT pg_advisory_lock(%s)", (SCHEMA_LOCK_ID,))
        portal = start(new, portal_bin)
        if lock is not None:
            deadline = time.monotonic() + 60
            while run_sql(database_url, WAITING_ON_A_LOCK) != [(1,)]:
                assert portal.process.poll() is None and time.monotonic() < deadline, \
                    f"the new process never queued on the schema lock:\n{portal.log()}"
                time.sleep(0.05)
            # Queued on the lock, before its port opens: no traffic can reach it until the lock is free.
            assert not ready(portal) and lb.servers()[f"s{new}"]["status"].startswith("DOWN")
            lock.close()
        wait_ready(portal)
        lb.wait_status({f"s{new}": "UP"})
        assert stop(old) == 0, stopped[-1].log()
        lb.wait_status({f"s{old}": "DOWN"})

    try:
        # Three processes of the current build start at once on an empty database: the schema lock serialises them.
        for slot in range(3):
            start(slot, PORTAL_BIN)
        for slot in range(3):
            await asyncio.to_thread(wait_ready, running[slot])
        lb.start()
        await asyncio.to_thread(lb.wait_status, {"s0": "UP", "s1": "UP", "s2": "UP", "s3": "DOWN", "s4": "DOWN",
                                                 "s5": "DOWN"})
        versions = [row[0] for row in run_sql(database_url, "SELECT portal_version FROM schema_applies ORDER BY id")]
        assert len(versions) == 1, versions
        current_version = versions[0]

        tokens = [create_token(database_url, create_user(database_url, email=f"client{i}@example.com"))
                  for i in range(4)]
        traffic = Traffic(lb.url, tokens)
        clients = [asyncio.create_task(traffic.uploader(tokens[i], i)) for i in range(3)]
        clients += [asyncio.create_task(traffic.browser(i)) for i in range(2)]
        clients.append(asyncio.create_task(traffic.lister(tokens[3])))
        started = time.monotonic()
        await asyncio.sleep(1.5)

        for step in range(3):  # roll forward to the next build
            await asyncio.to_thread(replace, step, 3 + step, next_portal, gate=step == 0)
        assert [row[0] for row in run_sql(database_url, "SELECT portal_version FROM schema_applies ORDER BY id")] \
            == [current_version, next_version]
        await asyncio.sleep(1.0)
        for step in range(3):  # and back to the current build
            await asyncio.to_thread(replace, 3 + step, step, PORTAL_BIN)
        await asyncio.sleep(1.0)
        traffic.stop.set()
        await asyncio.wait_for(asyncio.gather(*clients), 60)
        elapsed = time.monotonic() - started
        servers = lb.servers()
    finally:
        for slot in list(running):
            stop(slot)
        lb.stop()

    logs = {portal.port: portal.log() for portal in stopped}
    for portal in stopped:
        portal.remove()
    slowest = max(traffic.longest, key=traffic.longest.get)
    print(f"\nrolling deploy and rollback: {sum(traffic.counts.values())} requests in {elapsed:.1f} s, "
          f"{len(traffic.failures)} failed; {len(traffic.uploaded)} uploads; longest pause a client saw: "
          f"{traffic.longest[slowest] * 1000:.0f} ms ({slowest}); slowest answer of each kind (ms): "
          f"{ {what: round(s * 1000) for what, s in sorted(traffic.longest.items())} }; requests served by slot "
          f"(s0-s2 current build, s3-s5 next): {[int(servers[f's{i}']['stot']) for i in range(SLOTS)]}")

    assert traffic.failures == [], \
        f"{len(traffic.failures)} failed requests: {traffic.failures[:20]}\nhaproxy:\n{lb.log()[-4000:]}"
    assert all(traffic.counts[what] > 0 for what in ("upload", "download", "sign-in", "listing (token)"))
    # The portal handled the drain itself: HAProxy never met a refused connection or a cut answer.
    for name, row in servers.items():
        assert [int(row[k] or 0) for k in ("wretr", "wredis", "eresp", "econ")] == [0, 0, 0, 0], \
            f"{name}: {row}\nhaproxy:\n{lb.log()[-4000:]}"
    assert all(int(servers[f"s{i}"]["stot"]) > 0 for i in range(3, 6)), "the next build must have served traffic"
    for text in logs.values():
        assert "Traceback" not in text and "ERROR" not in text, text[-3000:]

    # Schema: the next build provisioned once, the rollback recorded the current build again; the next
    # build's table and column are still there, untouched by the older build.
    assert [row[0] for row in run_sql(database_url, "SELECT portal_version FROM schema_applies ORDER BY id")] \
        == [current_version, next_version, current_version]
    assert run_sql(database_url, "SELECT to_regclass('rollout_notes') IS NOT NULL, "
                                 "count(*) FILTER (WHERE rollout_label = '') FROM artifacts") \
        == [(True, len(traffic.uploaded))]

    # Nothing lost or half-written: each 201 has its row and its whole object, and rows equal objects.
    rows = {str(id_): (sha, size, key) for id_, sha, size, key in
            run_sql(database_url, "SELECT id, sha256, size, storage_key FROM artifacts")}
    assert {id_: (sha, size) for id_, (sha, size, _key) in rows.items()} == traffic.uploaded
    keys = await object_keys(s3, s3_bucket)
    assert sorted(keys) == sorted(key for _sha, _size, key in rows.values())
    for _sha, size, key in rows.values():
        head = await s3.head_object(Bucket=s3_bucket, Key=key)
        assert head["ContentLength"] == size, key
    assert await pending_uploads(s3, s3_bucket) == []
