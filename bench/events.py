"""Benchmark 6: events — deliveries per second to a no-op handler, commit-to-delivery latency, and what
recording the event adds to an upload.

* **Throughput.** A portal with a no-op ``portal_event`` plugin installed through the entry-point group
  (bench/plugins/event_noop; the built-in webhooks consumer disabled, so the no-op is the only one) gets a
  burst of BURST events committed in one transaction; the figure is BURST / (commit → its queue empty).
  Floor: the queue's own SQL — the same claim (``FOR UPDATE SKIP LOCKED``) and delete statements the outbox
  runs, in batches of the same size on one connection — draining the same burst queued for a second
  consumer, with no plugin call, no Event built and no NOTIFY wake-up.
* **Latency.** PINGS single events, each committed on its own PING_GAP apart (an idle portal); the
  latency is from the writer sending its INSERT to the handler running (the no-op notes ``time.time()``;
  GET /bench/received hands the times over). Floor: a NOTIFY on one connection to its receipt on another
  that LISTENs, the same way — what LISTEN/NOTIFY itself takes.
* **Upload.** UPLOADS uploads of UPLOAD_KIB KiB, UPLOAD_CONCURRENCY at a time with an API token, to the
  portal (DEV_MODE: local disk storage) with no ``portal_event`` plugin, and to the same portal with
  artifact.created left unrecorded (bench/portal_without_events.py): what *recording* the event costs,
  budget 5 %. Informative: the shipped portal, whose built-in webhooks plugin receives each event in the
  same process (claim, handler, delete: the cost of *delivering* it, to one consumer). Each portal has a
  database of its own; the three are measured back to back in rotating order.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import sys
import time
from pathlib import Path

import aiohttp
import aiopg
import attrs
import psycopg2

from portal_core.outbox import _CLAIM, BATCH
from portal_core.testing.client import browser_multipart
from tests.support.db import create_token, create_user
from tests.support.portal import run_portal

from .harness import ROOT, BenchError, Figure, Row, backend_cpu, cpu_seconds, paired_ratio, scratch_database

NOOP = ROOT / "bench" / "plugins" / "event_noop"
WITHOUT_EVENTS = ROOT / "bench" / "portal_without_events.py"
BURST = 2000
PINGS = 100
PING_GAP = 0.02
UPLOADS = 150
UPLOAD_ROUND = 15
UPLOAD_KIB = 64
UPLOAD_CONCURRENCY = 4
UPLOAD_BUDGET = 0.95  # recording the event may cost at most 5 % of the upload rate
DRAIN_TIMEOUT = 120
PORTAL_ENV = {"LOG_LEVEL": "WARNING", "PLAN_FREE_QUOTA": "100GiB", "PLAN_FREE_MAX_FILE": "1GiB"}
NO_CONSUMERS = {"PORTAL_DISABLE_PLUGINS": "webhooks"}  # the only built-in portal_event plugin


@attrs.frozen
class Side:
    """One portal of the upload comparison."""

    name: str
    url: str
    pid: int
    database_url: str
    token: str


def _queued(database_url: str, plugin: str) -> int:
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM event_deliveries WHERE plugin = %s", (plugin,))
        return cur.fetchone()[0]


def _burst(database_url: str) -> float:
    """Commit BURST events at once (queued for bench_noop and bench_floor); returns when it committed."""
    with contextlib.closing(psycopg2.connect(database_url)) as conn:
        with conn, conn.cursor() as cur:
            cur.execute("INSERT INTO event_consumers (plugin) VALUES ('bench_floor') ON CONFLICT DO NOTHING")
            cur.execute("INSERT INTO events (type, data) SELECT 'bench.happened', jsonb_build_object('n', g) "
                        "FROM generate_series(1, %s) g", (BURST,))
        return time.perf_counter()


def _portal_drain(database_url: str, committed: float) -> float:
    deadline = committed + DRAIN_TIMEOUT
    while _queued(database_url, "bench_noop"):
        if time.perf_counter() > deadline:
            raise BenchError(f"the portal did not deliver {BURST} events within {DRAIN_TIMEOUT}s")
        time.sleep(0.01)
    return BURST / (time.perf_counter() - committed)


async def _floor_drain(database_url: str) -> float:
    """The outbox's claim and delete statements alone, draining bench_floor's queue; events per second."""
    async with aiopg.connect(database_url) as conn, conn.cursor() as cur:
        started = time.perf_counter()
        while True:
            await cur.execute(_CLAIM, {"plugin": "bench_floor", "batch": BATCH, "lease": 60})
            rows = await cur.fetchall()
            if not rows:
                break
            await cur.execute("DELETE FROM event_deliveries WHERE plugin = 'bench_floor' AND event_id = ANY(%s)",
                              ([row[1] for row in rows],))
        return BURST / (time.perf_counter() - started)


async def _received(session: aiohttp.ClientSession, portal_url: str) -> dict[int, float]:
    async with session.get(portal_url + "/bench/received") as response:
        return {int(k): v for k, v in (await response.json()).items()}


async def _portal_latencies(database_url: str, session: aiohttp.ClientSession, portal_url: str) -> list[float]:
    sent: dict[int, float] = {}
    await _received(session, portal_url)  # forget the burst
    async with aiopg.connect(database_url) as conn, conn.cursor() as cur:
        for n in range(PINGS):
            started = time.time()
            await cur.execute("INSERT INTO events (type, data) VALUES ('bench.pinged', jsonb_build_object('n', %s)) "
                              "RETURNING id", (n,))
            sent[(await cur.fetchone())[0]] = started
            await asyncio.sleep(PING_GAP)
    arrived: dict[int, float] = {}
    for _ in range(500):
        arrived.update(await _received(session, portal_url))
        if set(sent) <= set(arrived):
            return [(arrived[i] - sent[i]) * 1000 for i in sent]
        await asyncio.sleep(0.01)
    raise BenchError(f"{len(set(sent) - set(arrived))} of {PINGS} pings never reached the no-op handler")


async def _notify_latencies(database_url: str) -> list[float]:
    async with aiopg.connect(database_url) as listener, aiopg.connect(database_url) as sender:
        async with listener.cursor() as listen, sender.cursor() as send:
            await listen.execute("LISTEN bench_ping")
            latencies = []
            for _ in range(PINGS):
                started = time.perf_counter()
                await send.execute("NOTIFY bench_ping")
                await asyncio.wait_for(listener.notifies.get(), 10)
                latencies.append((time.perf_counter() - started) * 1000)
                await asyncio.sleep(PING_GAP)
            return latencies


async def _uploads(session: aiohttp.ClientSession, portal_url: str, token: str, count: int) -> float:
    """Seconds for ``count`` uploads, UPLOAD_CONCURRENCY at a time."""
    body, content_type = browser_multipart(b"\x42" * (UPLOAD_KIB * 1024), "bench.bin", "application/octet-stream")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    left = list(range(count))

    async def worker() -> None:
        while left:
            left.pop()
            async with session.post(portal_url + "/api/artifacts", data=body, headers=headers) as response:
                await response.read()
                if response.status != 201:
                    raise BenchError(f"an upload answered {response.status}: {await response.text()}")

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(UPLOAD_CONCURRENCY))), DRAIN_TIMEOUT)
    return time.perf_counter() - started


async def _upload_sides(session: aiohttp.ClientSession, sides, first: int) -> dict[str, tuple[float, float]]:
    """{side: (uploads per second, CPU ms per upload of its portal process and its PostgreSQL backends)}.

    The sides take turns in rounds of UPLOAD_ROUND uploads, so a machine whose load changes meanwhile
    weighs on each of them alike."""
    seconds = {side.name: 0.0 for side in sides}
    cpu = {side.name: 0.0 for side in sides}
    order = sides[first % len(sides):] + sides[:first % len(sides)]
    for _ in range(UPLOADS // UPLOAD_ROUND):
        for side in order:
            before = cpu_seconds(side.pid) + sum(backend_cpu(side.database_url).values())
            seconds[side.name] += await _uploads(session, side.url, side.token, UPLOAD_ROUND)
            cpu[side.name] += cpu_seconds(side.pid) + sum(backend_cpu(side.database_url).values()) - before
    return {name: (UPLOADS / seconds[name], cpu[name] / UPLOADS * 1000) for name in seconds}


def _p(values: list[float], percentile: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[percentile - 1]


async def _measure(runs: int, log, delivery, sides) -> dict[str, list[float]]:
    delivery_db, deliverer = delivery
    got: dict[str, list[float]] = {k: [] for k in ("rate", "floor_rate", "p50", "p99", "notify_p50", "notify_p99",
                                                   *(side.name for side in sides),
                                                   *(side.name + "_cpu" for side in sides))}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=UPLOAD_CONCURRENCY * 2)) as session:
        for i in range(-1, runs):  # run -1 warms up
            committed = await asyncio.to_thread(_burst, delivery_db)
            rate = await asyncio.to_thread(_portal_drain, delivery_db, committed)
            floor_rate = await _floor_drain(delivery_db)
            latencies = await _portal_latencies(delivery_db, session, deliverer.url)
            notify = await _notify_latencies(delivery_db)
            uploads = await _upload_sides(session, sides, i)
            if i < 0:
                continue
            got["rate"].append(rate)
            got["floor_rate"].append(floor_rate)
            got["p50"].append(_p(latencies, 50))
            got["p99"].append(_p(latencies, 99))
            got["notify_p50"].append(_p(notify, 50))
            got["notify_p99"].append(_p(notify, 99))
            for name, (rate_of_side, cpu_ms) in uploads.items():
                got[name].append(rate_of_side)
                got[name + "_cpu"].append(cpu_ms)
            log(f"  run {i + 1}/{runs}: {rate:.0f} events/s delivered (queue SQL alone {floor_rate:.0f}/s); "
                f"commit→delivery p50 {got['p50'][-1]:.1f} ms p99 {got['p99'][-1]:.1f} ms (NOTIFY alone p50 "
                f"{got['notify_p50'][-1]:.1f} ms); uploads/s (CPU ms each): "
                + ", ".join(f"{name} {rate_of_side:.0f} ({cpu_ms:.2f})" for name, (rate_of_side, cpu_ms) in uploads.items()))
    return got


def run(runs: int, log) -> list[Row]:
    with contextlib.ExitStack() as stack:
        delivery_db = stack.enter_context(scratch_database())
        deliverer = stack.enter_context(run_portal(delivery_db, {
            **PORTAL_ENV, "PYTHONPATH": str(NOOP), "PORTAL_DISABLE_PLUGINS": "webhooks"}))
        sides = []
        for name, env, extra in (
                ("recorded", {**PORTAL_ENV, **NO_CONSUMERS}, {}),
                ("unrecorded", {**PORTAL_ENV, **NO_CONSUMERS}, {"portal_bin": Path(sys.executable), "args": (str(WITHOUT_EVENTS),)}),
                ("delivered", PORTAL_ENV, {})):
            database_url = stack.enter_context(scratch_database())
            portal = stack.enter_context(run_portal(database_url, env, **extra))
            token = create_token(database_url, create_user(database_url, email="uploader@example.com"))
            sides.append(Side(name, portal.url, portal.pid, database_url, token))
        got = asyncio.run(_measure(runs, log, (delivery_db, deliverer), sides))
    figure = lambda key: Figure(tuple(got[key]))  # noqa: E731
    upload_ratio = paired_ratio(got["recorded"], got["unrecorded"])  # wall-clock: swings with the machine's load
    cpu_ratio = paired_ratio(got["recorded_cpu"], got["unrecorded_cpu"])
    upload = f"POST /api/artifacts, {UPLOAD_KIB} KiB, {UPLOAD_CONCURRENCY} at a time"
    return [
        Row(name=f"events delivered to a no-op portal_event handler (a burst of {BURST:,} in one commit)", unit="events/s",
            portal=figure("rate"), floor=figure("floor_rate"),
            floor_name="the outbox's claim + delete SQL alone, same batches, one connection",
            ratio=paired_ratio(got["rate"], got["floor_rate"]), budget="(reported)", met=True),
        Row(name="… commit → delivery, idle portal, p50", unit="ms", portal=figure("p50"), floor=figure("notify_p50"),
            floor_name="NOTIFY → LISTEN receipt on another connection, p50",
            ratio=paired_ratio(got["p50"], got["notify_p50"]), budget="< 1 s", met=max(got["p50"]) < 1000, fmt="{:.1f}"),
        Row(name="… commit → delivery, idle portal, p99", unit="ms", portal=figure("p99"), floor=figure("notify_p99"),
            floor_name="NOTIFY → LISTEN receipt on another connection, p99",
            ratio=paired_ratio(got["p99"], got["notify_p99"]), budget="< 1 s", met=max(got["p99"]) < 1000, fmt="{:.1f}"),
        Row(name=f"{upload}, recording artifact.created (no portal_event plugin): CPU per upload, portal + PostgreSQL",
            unit="ms", portal=figure("recorded_cpu"), floor=figure("unrecorded_cpu"),
            floor_name="the same portal, the event left unrecorded", ratio=cpu_ratio,
            budget=f"≤ {2 - UPLOAD_BUDGET:.2f}× floor (≤ 5 % cost)", met=cpu_ratio.median <= 2 - UPLOAD_BUDGET, fmt="{:.2f}"),
        Row(name="… the same uploads' rate", unit="uploads/s", portal=figure("recorded"), floor=figure("unrecorded"),
            floor_name="the same portal, the event left unrecorded", ratio=upload_ratio,
            budget="(informative: ±15 % run to run here)", met=True),
        Row(name="… recording it and delivering it, in the same process, to the built-in webhooks plugin (shipped "
                 "default): CPU per upload", unit="ms", portal=figure("delivered_cpu"), floor=figure("unrecorded_cpu"),
            floor_name="the same portal, the event left unrecorded",
            ratio=paired_ratio(got["delivered_cpu"], got["unrecorded_cpu"]), budget="(informative)", met=True, fmt="{:.2f}"),
        Row(name="… those uploads' rate", unit="uploads/s", portal=figure("delivered"), floor=figure("unrecorded"),
            floor_name="the same portal, the event left unrecorded", ratio=paired_ratio(got["delivered"], got["unrecorded"]),
            budget="(informative)", met=True),
    ]


SETUP = (f"a burst of {BURST} events in one transaction, then {PINGS} single events {PING_GAP * 1000:.0f} ms apart, "
         f"to a portal whose only consumer is a no-op plugin (bench/plugins/event_noop; PORTAL_DISABLE_PLUGINS=webhooks); "
         f"{UPLOADS} uploads of {UPLOAD_KIB} KiB, {UPLOAD_CONCURRENCY} at a time, to three portals (DEV_MODE, local disk, "
         "a database each): no portal_event plugin; the same with artifact.created unrecorded "
         "(bench/portal_without_events.py); the shipped default (the webhooks plugin receiving events); order rotated "
         "per run; LOG_LEVEL=WARNING")
