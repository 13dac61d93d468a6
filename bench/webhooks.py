"""Benchmark 4: signed Stripe webhook deliveries per second (with dedupe) and their 99th-percentile latency.

The portal runs with BILLING_BACKEND=stripe against the fake Stripe (tests/fakes/stripe_fake.py, via
STRIPE_API_BASE). A few users pay for Pro through Checkout on the fake first; each run then delivers
fresh copies (new event ids) of their checkout.session.completed events — each one makes the portal
verify the signature, record the id and re-read the customer's subscriptions from the fake — plus
~10 % redeliveries of ids already applied, which must come back as duplicates. Bodies are signed as
Stripe signs them (HMAC-SHA256 over "{t}.{body}", Stripe-Signature: t=...,v1=...).

Informative floor: the fake's own rate for the one API call an applied event makes (list the customer's
subscriptions), at the same concurrency.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import statistics
import time

import aiohttp

from tests.support.db import create_token, create_user
from tests.support.portal import run_portal
from tests.support.stripe import SECRET_KEY, StripeFake, event_body, signed_headers, stripe_env

from .harness import BenchError, Figure, Row, cpu_seconds, paired_ratio, scratch_database

USERS = 8
EVENTS = 300  # fresh events per run
DUPLICATES = 30  # redeliveries per run, of events applied earlier in the run
CONCURRENCY = 16
RUN_TIMEOUT = 120  # seconds


async def _deliver_all(session: aiohttp.ClientSession, url: str, bodies: list[tuple[bytes, str]]) -> tuple[float, list, dict]:
    """POST every (body, expected outcome) with CONCURRENCY workers; wall seconds, latencies, outcomes."""
    queue: asyncio.Queue = asyncio.Queue()
    for item in bodies:
        queue.put_nowait(item)
    latencies: list[float] = []
    outcomes: dict[str, int] = {}

    async def worker() -> None:
        while not queue.empty():
            body, expected = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=signed_headers(body)) as response:
                answer = await response.json(content_type=None)
            latencies.append(time.perf_counter() - started)
            outcome = answer.get("outcome") if response.status == 200 else f"HTTP {response.status}"
            if outcome != expected:
                raise BenchError(f"a delivery expected to be {expected} came back {outcome}: {answer}")
            outcomes[outcome] = outcomes.get(outcome, 0) + 1

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), RUN_TIMEOUT)
    return time.perf_counter() - started, latencies, outcomes


async def _fake_rate(session: aiohttp.ClientSession, fake: StripeFake, customers: list[str]) -> float:
    """Requests per second the fake answers the listing an applied event asks for, at CONCURRENCY."""
    paths = [f"{fake.base_url}/v1/subscriptions?customer={customers[n % len(customers)]}&status=all&limit=100"
             for n in range(EVENTS)]
    headers = {"Authorization": f"Bearer {SECRET_KEY}"}

    async def worker() -> None:
        while paths:
            async with session.get(paths.pop(), headers=headers) as response:
                await response.read()
                if response.status != 200:
                    raise BenchError(f"the fake Stripe answered {response.status} to a subscription listing")

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), RUN_TIMEOUT)
    return EVENTS / (time.perf_counter() - started)


async def _subscribe_users(session: aiohttp.ClientSession, portal_url: str, fake: StripeFake, tokens: list[str]) -> list[dict]:
    """Each user pays for Pro through Checkout on the fake; their checkout.session.completed events."""
    for token in tokens:
        async with session.post(portal_url + "/api/billing/checkout", json={"plan": "pro"},
                                headers={"Authorization": f"Bearer {token}"}) as response:
            answer = await response.json()
            if response.status != 200:
                raise BenchError(f"checkout answered {response.status}: {answer}")
        await fake.pay(answer["url"])
    events = await fake.events("checkout.session.completed")
    if len(events) != len(tokens):
        raise BenchError(f"the fake emitted {len(events)} checkout.session.completed events for {len(tokens)} payments")
    return events


async def _measure(runs: int, log, portal, fake: StripeFake, tokens: list[str]) -> dict[str, list[float]]:
    portal_url = portal.url
    got: dict[str, list[float]] = {"rate": [], "p99": [], "fake": [], "cpu": []}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(connector=connector) as session:
        templates = await _subscribe_users(session, portal_url, fake, tokens)
        customers = [t["data"]["object"]["customer"] for t in templates]
        url = portal_url + "/webhooks/stripe"
        for i in range(-1, runs):  # run -1 warms up
            fresh = []
            for n in range(EVENTS):
                event = copy.deepcopy(templates[n % len(templates)])
                event["id"] = f"evt_bench_{i + 1}_{n}"
                fresh.append((event_body(event), "applied"))
            # Redeliveries of events from the first half: applied long before their copy is sent.
            bodies = fresh + [(fresh[n * (EVENTS // 2) // DUPLICATES][0], "duplicate") for n in range(DUPLICATES)]
            cpu = cpu_seconds(portal.pid)
            seconds, latencies, outcomes = await _deliver_all(session, url, bodies)
            cpu = cpu_seconds(portal.pid) - cpu
            fake_rate = await _fake_rate(session, fake, customers)
            if i < 0:
                continue
            got["rate"].append(len(bodies) / seconds)
            got["p99"].append(statistics.quantiles(latencies, n=100)[98] * 1000)
            got["fake"].append(fake_rate)
            got["cpu"].append(cpu / len(bodies) * 1000)
            log(f"  run {i + 1}/{runs}: {got['rate'][-1]:.0f} deliveries/s ({outcomes}), p99 {got['p99'][-1]:.0f} ms; "
                f"portal CPU {got['cpu'][-1]:.1f} ms/delivery; fake Stripe alone {fake_rate:.0f} listings/s")
    return got


def run(runs: int, log) -> list[Row]:
    with contextlib.ExitStack() as stack:
        fake = StripeFake().start()
        stack.callback(fake.stop)

        async def prepare() -> None:
            await fake.reset()
            fake.pro_price = await fake.create_price("Pro", 900)

        asyncio.run(prepare())
        database_url = stack.enter_context(scratch_database())
        portal = stack.enter_context(run_portal(database_url, {
            "BILLING_BACKEND": "stripe", "LOG_LEVEL": "WARNING", **stripe_env(fake)}))
        tokens = [create_token(database_url, create_user(database_url, email=f"payer{n}@example.com"))
                  for n in range(USERS)]
        got = asyncio.run(_measure(runs, log, portal, fake, tokens))
    return [
        Row(name=f"POST /webhooks/stripe, signed, {DUPLICATES * 100 // EVENTS} % redeliveries", unit="deliveries/s",
            portal=Figure(tuple(got["rate"])), floor=Figure(tuple(got["fake"])),
            floor_name="the fake Stripe answering the subscription listing each applied event makes",
            ratio=paired_ratio(got["rate"], got["fake"]), budget="(reported)", met=True),
        Row(name="… the portal's CPU per delivery", unit="ms", portal=Figure(tuple(got["cpu"])), floor=None,
            floor_name="", ratio=None, budget="(informative)", met=True, fmt="{:.2f}"),
        Row(name="… 99th-percentile latency of those deliveries", unit="ms", portal=Figure(tuple(got["p99"])),
            floor=None, floor_name="", ratio=None, budget="(reported)", met=True),
    ]


SETUP = (f"{EVENTS} fresh events + {DUPLICATES} redeliveries per run from {USERS} customers, {CONCURRENCY} "
         "concurrent aiohttp deliveries; portal LOG_LEVEL=WARNING; every outcome checked (applied / duplicate)")
