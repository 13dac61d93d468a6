"""Benchmark 1: authenticated GET /api/artifacts (50 artifacts) against a bare aiohttp + aiopg SELECT 1.

The portal and the floor run side by side, single-process, with the same pool size; wrk drives both
with the same threads, connections and duration, one after the other within each run.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator

import aiohttp

from portal_core.db import create_pool
from tests.support.db import create_token, run_sql
from tests.support.portal import dev_sign_in, free_port, run_portal

from .harness import ROOT, BenchError, Figure, Row, paired_ratio, scratch_database, wrk

ARTIFACTS = 50
CONNECTIONS = 32
SECONDS = 5
BUDGET = 0.8
# The portal's pool size, read from the code so the floor cannot drift from it.
POOL_MAXSIZE = inspect.signature(create_pool).parameters["maxsize"].default


@contextlib.contextmanager
def floor_server(database_url: str) -> Iterator[tuple[str, int]]:
    """The floor app on a free port; yields its URL and pid, stops it by PID."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "bench" / "floor_app.py"), database_url, str(port),
                                str(POOL_MAXSIZE)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                raise BenchError(f"the floor app exited: {process.stderr.read().decode()}")
            try:
                with urllib.request.urlopen(url, timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise BenchError("the floor app did not answer within 30 s") from None
                time.sleep(0.05)
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)


async def sign_in(portal_url: str) -> tuple[str, int]:
    """The session cookie and user id of a dev sign-in through the real login form."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        await dev_sign_in(session, portal_url, email="bench@example.com", name="Bench")
        async with session.get(portal_url + "/api/me") as response:
            user_id = (await response.json())["user"]["id"]
        cookie = next(c for c in session.cookie_jar if c.key == "portal_session")
        return cookie.value, user_id


def check_listing(url: str, headers: dict[str, str]) -> None:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        import json
        count = len(json.load(response)["artifacts"])
    if count != ARTIFACTS:
        raise BenchError(f"GET /api/artifacts listed {count} artifacts, expected {ARTIFACTS}")


def run(runs: int, log) -> list[Row]:
    with scratch_database() as database_url, run_portal(database_url, {"LOG_LEVEL": "WARNING"}) as portal, \
            floor_server(database_url) as (floor_url, floor_pid):
        cookie, user_id = asyncio.run(sign_in(portal.url))
        token = create_token(database_url, user_id, "bench")
        run_sql(database_url, """
            INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key, created_at)
            SELECT gen_random_uuid(), %s, 'artifact-' || n || '.tar.gz', 1000 * n, 'application/gzip',
                   repeat('ab', 32), 'bench/' || n, now() - n * interval '1 minute'
            FROM generate_series(1, %s) AS n""", (user_id, ARTIFACTS))
        api = portal.url + "/api/artifacts"
        targets = {
            "floor": (floor_url, {}, floor_pid),
            "rows": (f"{floor_url}list?owner={user_id}", {}, floor_pid),
            "token": (api, {"Authorization": f"Bearer {token}"}, portal.pid),
            "cookie": (api, {"Cookie": f"portal_session={cookie}"}, portal.pid),
        }
        for name in ("token", "cookie", "rows"):
            check_listing(*targets[name][:2])
        for url, headers, _pid in targets.values():  # warm up: pools filled, code paths hot
            wrk(url, headers=headers, connections=CONNECTIONS, seconds=1)
        rates: dict[str, list[float]] = {name: [] for name in targets}
        cpu: dict[str, list[float]] = {name: [] for name in targets}
        db: dict[str, list[float]] = {name: [] for name in targets}
        order = list(targets)
        for i in range(runs):
            for name in order[i % len(order):] + order[:i % len(order)]:  # rotate who goes first
                url, headers, pid = targets[name]
                load = wrk(url, headers=headers, connections=CONNECTIONS, seconds=SECONDS, pid=pid,
                           database=database_url)
                rates[name].append(load.rate)
                cpu[name].append(load.cpu_us)
                db[name].append(load.db_cpu_us)
            log(f"  run {i + 1}/{runs}: " + ", ".join(
                f"{n} {rates[n][-1]:,.0f} req/s ({cpu[n][-1]:.0f} + {db[n][-1]:.0f} µs CPU/req)" for n in order))
    floor = Figure(tuple(rates["floor"]))
    rows = []
    for name, label in (("token", "API token"), ("cookie", "session cookie")):
        ratio = paired_ratio(rates[name], rates["floor"])
        rows.append(Row(name=f"GET /api/artifacts, 50 items, {label}", unit="req/s", portal=Figure(tuple(rates[name])),
                        floor=floor, floor_name=f"aiohttp + aiopg SELECT 1 (pool {POOL_MAXSIZE})", ratio=ratio,
                        budget=f"≥ {BUDGET}× floor", met=ratio.median >= BUDGET))
    rows.append(Row(name="… the API token listing (informative floor)", unit="req/s", portal=Figure(tuple(rates["token"])),
                    floor=Figure(tuple(rates["rows"])),
                    floor_name="aiohttp + aiopg: the same 50 rows by owner, no credential, json_response",
                    ratio=paired_ratio(rates["token"], rates["rows"]), budget="(informative)", met=True))
    for name, label in (("token", "API token listing"), ("rows", "50-row floor")):
        rows.append(Row(name=f"… CPU per request, {label}: server process", unit="µs", portal=Figure(tuple(cpu[name])),
                        floor=Figure(tuple(cpu["floor"])), floor_name="SELECT 1 floor's process",
                        ratio=paired_ratio(cpu[name], cpu["floor"]), budget="(informative)", met=True))
        rows.append(Row(name=f"… CPU per request, {label}: PostgreSQL", unit="µs", portal=Figure(tuple(db[name])),
                        floor=Figure(tuple(db["floor"])), floor_name="SELECT 1 floor's PostgreSQL",
                        ratio=paired_ratio(db[name], db["floor"]), budget="(informative)", met=True))
    return rows


SETUP = (f"wrk -t1 -c{CONNECTIONS} -d{SECONDS}s per figure; portal (DEV_MODE, LOG_LEVEL=WARNING) and floor each "
         f"single-process, aiopg pool maxsize {POOL_MAXSIZE}; {ARTIFACTS} artifacts listed per request")
