"""The portal rides out its dependencies failing, without a restart of its own.

PostgreSQL restarting under load (a throwaway cluster this test stops and starts; never the machine's
main cluster), and R2 being unreachable (an endpoint on a closed port).
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import threading
import time
import urllib.error
import urllib.request

import aiohttp
import pytest

from tests.ops.client import bearer, upload
from tests.ops.pgcluster import throwaway_cluster
from tests.support.db import create_token, create_user, provision, run_sql
from tests.support.portal import PORTAL_BIN, free_port, run_portal


def get(url: str, token: str | None = None) -> int:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0  # no answer at all


def healthcheck(port: int) -> subprocess.CompletedProcess:
    return subprocess.run([str(PORTAL_BIN), "healthcheck"], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PORT": str(port)})


def wait_for(check, what: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if result := check():
            return result
        time.sleep(0.1)
    raise AssertionError(f"{what} did not happen within {timeout:g}s")


class Load:
    """Threads listing artifacts over and over; every status seen, in order."""

    def __init__(self, url: str, token: str, workers: int = 4) -> None:
        self.url, self.token = url, token
        self.statuses: list[int] = []
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, daemon=True) for _ in range(workers)]

    def run(self) -> None:
        while not self.stop.is_set():
            self.statuses.append(get(self.url + "/api/artifacts", self.token))

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fast", "immediate"])
async def test_postgres_restart_under_load_is_survived_without_restarting_the_portal(mode) -> None:
    # "fast" is a clean restart (clients told to go); "immediate" is a crash (the server just vanishes).
    with throwaway_cluster() as cluster:
        url = cluster.create_database("portal")
        await provision(url)
        token = create_token(url, create_user(url))
        with run_portal(url) as portal:
            with Load(portal.url, token) as load:
                wait_for(lambda: load.statuses.count(200) >= 20, "requests succeeding before the restart")
                cluster.stop(mode)
                wait_for(lambda: get(portal.url + "/health") == 503, "/health answering 503 while the database is down")
                # Liveness never asks the database: an outage must not make the orchestrator restart every pod.
                assert get(portal.url + "/health/live") == 200
                down = healthcheck(portal.port)
                assert down.returncode == 1 and down.stdout.startswith("503"), down.stdout
                seen_while_down = len(load.statuses)
                wait_for(lambda: len(load.statuses) > seen_while_down + 4, "requests answered while the database is down")
                while_down = load.statuses[seen_while_down:]
                cluster.start()
                wait_for(lambda: get(portal.url + "/health") == 200, "/health answering 200 again")
                recovered = len(load.statuses)
                wait_for(lambda: len(load.statuses) > recovered + 40, "requests after the restart")
            # While it is down the portal answers at once with 503 rather than hanging or dropping connections.
            assert while_down and set(while_down) == {503}, while_down
            after = load.statuses[recovered:]
            assert set(after) == {200}, f"after the database came back: {sorted(set(after))}\n{portal.log()[-3000:]}"
            assert portal.process.poll() is None, "the portal itself must not have restarted"
            up = healthcheck(portal.port)
            assert up.returncode == 0 and up.stdout.strip() == "200 ok"
            # Writes work again too, on fresh connections.
            status, body = await upload(portal.url, token, b"after the restart", "after.txt")
            assert status == 201, body


async def test_pool_connections_use_tcp_keepalives(database_url) -> None:
    from portal_core.db import create_pool

    pool = await create_pool(database_url, connect_timeout=5)
    try:
        async with pool.acquire() as conn:
            parameters = conn.raw.get_dsn_parameters()
    finally:
        pool.close()
        await pool.wait_closed()
    assert parameters["keepalives"] == "1" and parameters["keepalives_idle"] == "30", parameters


def test_healthcheck_is_0_when_healthy_and_1_when_unreachable(dev_portal) -> None:
    healthy = healthcheck(dev_portal.port)
    assert healthy.returncode == 0 and healthy.stdout.strip() == "200 ok"
    nobody = healthcheck(free_port())
    assert nobody.returncode == 1 and "unreachable" in nobody.stdout


async def test_unreachable_storage_fails_an_upload_with_a_clear_503_and_leaves_no_row(database_url, api_token) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    env = {"STORAGE_BACKEND": "r2", "R2_ACCOUNT_ID": "ops", "R2_ACCESS_KEY_ID": "ops", "R2_SECRET_ACCESS_KEY": "ops",
           "R2_BUCKET_NAME": "ops", "R2_ENDPOINT_URL": closed, "R2_REGION": "us-east-1", "R2_HEALTH_TIMEOUT": "1"}
    with run_portal(database_url, env) as portal:
        async with aiohttp.ClientSession() as http:
            async with http.get(portal.url + "/health") as response:
                health = await response.json()
            # Storage down leaves the portal up (sign-in, listing still work): degraded, not out of rotation.
            assert response.status == 200 and health["status"] == "degraded", health
            assert health["checks"]["storage"]["status"] == "down"
            status, body = await upload(portal.url, api_token, os.urandom(10_000), "lost.bin")
            async with http.get(portal.url + "/api/artifacts", headers=bearer(api_token)) as response:
                listing = await response.json()
        assert portal.process.poll() is None
    assert status == 503, body
    assert body["error"]["code"] == "unavailable" and "storage is unavailable" in body["error"]["message"], body
    assert listing["artifacts"] == []
    assert run_sql(database_url, "SELECT count(*) FROM artifacts") == [(0,)]
