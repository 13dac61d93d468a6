"""Event delivery through real `portal` processes to a third-party plugin installed through the `portal`
entry-point group (tests/plugins/event_probe: a sync handler appending each event it receives to a file).

Every event type of the issue's table from real flows (dev billing and Stripe's webhook path included); a
process SIGKILLed while a committed event is being delivered (held at a gate) delivers it after a restart;
three processes on one database deliver each event to the plugin exactly once, woken by NOTIFY.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections import Counter
from pathlib import Path

import aiohttp

from portal_core.testing.client import signed_in
from tests.support.db import run_sql
from tests.support.portal import run_portal, start_portal, wait_healthy
from tests.support.stripe import event_body, signed_headers, stripe_env

ROOT = Path(__file__).resolve().parents[2]
PROBE = ROOT / "tests" / "plugins" / "event_probe"
WAIT_SECONDS = 30
ISSUE_TYPES = {"user.created", "user.signed_in", "user.signed_out", "user.sign_in_failed", "artifact.created",
               "artifact.downloaded", "artifact.deleted", "token.created", "token.revoked", "plan.changed"}


def probe_env(log: Path, **extra: str) -> dict[str, str]:
    """A portal with the probe plugin installed (its dist-info on the path) writing to ``log``."""
    return {"PYTHONPATH": str(PROBE), "EVENT_PROBE_LOG": str(log), **extra}


def delivered(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


async def all_delivered(database_url: str, log: Path, *portals) -> list[dict]:
    """The probe's lines once every event recorded so far reached it and no delivery is left in the queue."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while True:
        recorded = {row[0] for row in run_sql(database_url, "SELECT id FROM events")}
        queued = run_sql(database_url, "SELECT count(*) FROM event_deliveries WHERE plugin = 'event_probe'")[0][0]
        lines = delivered(log)
        if queued == 0 and recorded <= {line["id"] for line in lines}:
            return lines
        if loop.time() > deadline:
            logs = "\n".join(p.log()[-1500:] for p in portals)
            raise AssertionError(f"not delivered within {WAIT_SECONDS}s: {sorted(recorded - {line['id'] for line in lines})} "
                                 f"missing, {queued} queued\n{logs}")
        await asyncio.sleep(0.05)


async def dev_flows(url: str, email: str) -> None:
    """Sign in, fail a sign-in, upload, download, delete, make and revoke a token, go Pro and back, sign out."""
    async with aiohttp.ClientSession() as stranger, stranger.post(url + "/auth/callback", data={}) as response:
        assert response.status == 400  # no sign-in in progress: user.sign_in_failed
    async with await signed_in(url, email) as user:
        async with await user.upload(b"hello", "hello.txt") as response:
            assert response.status == 201
            artifact = await response.json()
        async with user.get(f"/api/artifacts/{artifact['id']}/download") as response:
            assert response.status == 200 and await response.read() == b"hello"
        async with user.delete(f"/api/artifacts/{artifact['id']}") as response:
            assert response.status == 204
        async with user.post("/api/tokens", json={"name": "ci"}) as response:
            assert response.status == 201
            token = await response.json()
        async with user.delete(f"/api/tokens/{token['id']}") as response:
            assert response.status == 204
        async with user.post("/dev/billing/checkout", data={"plan": "pro", "csrf_token": user.csrf}) as response:
            assert response.status in (302, 303), await response.text()
        async with user.post("/dev/billing/portal/cancel", data={"csrf_token": user.csrf}) as response:
            assert response.status in (302, 303), await response.text()
        async with user.post("/auth/logout") as response:
            assert response.status in (302, 303)


async def stripe_webhook_flow(url: str, fake, email: str) -> None:
    """Check out on the fake Stripe and let only its signed webhook tell the portal (the browser never returns)."""
    async with await signed_in(url, email) as user:
        async with user.post("/api/billing/checkout", json={"plan": "pro"}) as response:
            assert response.status == 200, await response.text()
            await fake.pay((await response.json())["url"])
    body = event_body(await fake.event("checkout.session.completed"))
    async with aiohttp.ClientSession() as stripe, stripe.post(url + "/webhooks/stripe", data=body,
                                                             headers=signed_headers(body)) as response:
        assert (response.status, (await response.json())["outcome"]) == (200, "applied")


async def test_an_installed_plugin_receives_every_event_type_from_real_flows(database_url, stripe_fake, tmp_path):
    log = tmp_path / "probe.jsonl"
    with run_portal(database_url, probe_env(log)) as dev, \
            run_portal(database_url, probe_env(log, BILLING_BACKEND="stripe", **stripe_env(stripe_fake))) as paid:
        await dev_flows(dev.url, "ada@example.com")
        await stripe_webhook_flow(paid.url, stripe_fake, "grace@example.com")
        lines = await all_delivered(database_url, log, dev, paid)
    assert ISSUE_TYPES <= {line["type"] for line in lines}
    changes = {line["data"]["provider"]: line["data"] for line in lines if line["type"] == "plan.changed"}
    assert changes["stripe"]["old"] == "free" and changes["stripe"]["new"] == "pro"
    assert [(line["data"]["old"], line["data"]["new"]) for line in sorted(lines, key=lambda line: line["id"])
            if line["data"].get("provider") == "dev"] == [("free", "pro"), ("pro", "free")]
    # Each once, all of them, and the sync handler ran off the event loop with the app at hand.
    assert sorted(line["id"] for line in lines) == sorted(row[0] for row in run_sql(database_url, "SELECT id FROM events"))
    assert not [line for line in lines if line["on_main_thread"] or not line["has_pool"]]
    failed = next(line for line in lines if line["type"] == "user.sign_in_failed")
    assert failed["data"]["reason"] == "callback without a pending login in the session"


async def test_a_process_killed_between_commit_and_delivery_delivers_after_restart(database_url, tmp_path):
    log, gate = tmp_path / "probe.jsonl", tmp_path / "gate"
    gate.mkdir()
    held = probe_env(log, EVENT_PROBE_HOLD="token.created", EVENT_PROBE_GATE=str(gate), EVENTS_HANDLER_TIMEOUT="1")
    first = start_portal(database_url, held)
    try:
        async with await signed_in(first.url, "ada@example.com") as user:
            async with user.post("/api/tokens", json={"name": "ci"}) as response:
                assert response.status == 201  # committed: the event is in the outbox
        for _ in range(WAIT_SECONDS * 20):  # the handler has it, and waits at the gate
            if list(gate.glob("reached-*")):
                break
            await asyncio.sleep(0.05)
        assert list(gate.glob("reached-*")), first.log()
        first.stop(signal.SIGKILL)
    finally:
        first.stop(signal.SIGKILL)
        first.remove()
    event_id = int(next(gate.glob("reached-*")).name.removeprefix("reached-"))
    assert "token.created" not in [line["type"] for line in delivered(log)]
    assert run_sql(database_url, "SELECT count(*) FROM event_deliveries WHERE plugin = 'event_probe' AND event_id = %s", (event_id,)) == [(1,)]

    with run_portal(database_url, probe_env(log, EVENTS_HANDLER_TIMEOUT="1")) as second:
        lines = await all_delivered(database_url, log, second)
    assert [line["pid"] for line in lines if line["id"] == event_id] == [second.pid]


async def test_three_processes_deliver_each_event_to_the_plugin_once_woken_by_notify(database_url, tmp_path):
    log = tmp_path / "probe.jsonl"
    # Polling every minute: only NOTIFY can make the deliveries arrive within the wait below.
    env = probe_env(log, EVENTS_POLL_SECONDS="60")
    with contextlib.ExitStack() as stack:
        portals = [start_portal(database_url, env, wait=False) for _ in range(3)]
        for portal in portals:
            stack.callback(portal.remove)
            stack.callback(portal.stop)
        for portal in portals:
            wait_healthy(portal)

        async def customer(url: str, email: str) -> None:
            async with await signed_in(url, email) as user:
                for n in range(4):
                    async with await user.upload(f"file {n}".encode(), f"{n}.txt") as response:
                        assert response.status == 201

        await asyncio.gather(*(customer(p.url, f"user{i}@example.com") for i, p in enumerate(portals)))
        lines = await all_delivered(database_url, log, *portals)
    counts = Counter(line["id"] for line in lines)
    assert [event for event, count in counts.items() if count > 1] == []
    assert sorted(counts) == sorted(row[0] for row in run_sql(database_url, "SELECT id FROM events"))
    assert len(counts) == 3 * (2 + 4)
