"""/health/ready answers from the services' last known health, refreshed in the background, so a slow
provider never makes a readiness probe time out (and a pod leave rotation) while the database is fine."""

from __future__ import annotations

import asyncio

from portal_core import keys
from portal_core.interfaces import Health
from portal_core.web import health


async def test_a_slow_service_check_never_holds_up_readiness(make_app, aiohttp_client, monkeypatch) -> None:
    monkeypatch.setattr(health, "SERVICE_CACHE_SECONDS", 0.0)  # every probe finds the cache stale
    app = make_app()
    client = await aiohttp_client(app)
    gate = asyncio.Event()
    answers = [Health.down("first answer")]
    calls = []

    async def gated_health(self) -> Health:
        calls.append(answers[-1].status)
        await gate.wait()
        return answers[-1]

    monkeypatch.setattr(type(app[keys.STORAGE]), "health", gated_health)
    gate.set()
    first = await client.get("/health/ready")
    assert first.status == 200 and (await first.json())["checks"]["storage"] == {"status": "down"}

    # The provider hangs: the probe still answers at once, with the last known state.
    gate.clear()
    answers.append(Health.ok())
    hanging = await asyncio.wait_for(client.get("/health/ready"), 2)
    assert (await hanging.json())["checks"]["storage"] == {"status": "down"}
    assert calls == ["down", "ok"], "a background refresh must have started"
    again = await asyncio.wait_for(client.get("/health/ready"), 2)
    assert (await again.json())["status"] == "degraded"
    assert calls == ["down", "ok"], "one refresh at a time, however many probes arrive"

    # Once the provider answers, the next probe shows it.
    gate.set()
    for _ in range(100):
        body = await (await client.get("/health/ready")).json()
        if body["status"] == "ok":
            break
        await asyncio.sleep(0.01)
    assert body == {"status": "ok", "checks": {name: {"status": "ok"}
                                               for name in ("database", "auth", "storage", "billing")}}


async def test_a_draining_process_is_unready_without_asking_anything(make_app, aiohttp_client) -> None:
    app = make_app()
    client = await aiohttp_client(app)
    app[keys.LIFECYCLE].draining = True
    answer = await client.get("/health/ready")
    assert (answer.status, await answer.json()) == (503, {"status": "draining"})
    assert (await client.get("/health/live")).status == 200


async def test_a_service_status_outside_ok_degraded_down_is_shown_anonymously_as_down(make_app, aiohttp_client,
                                                                                        monkeypatch) -> None:
    """A plugin's own wording of its status may carry internals (a path, a bucket): anonymous callers see
    only ok, degraded or down; operators see it in the detail, masked."""
    app = make_app(OPS_TOKEN="ops-" + "7e" * 16)

    async def odd_health(self) -> Health:
        return Health("unreachable s3://internal-bucket", "endpoint https://key:hunter2-secret@s3.internal/")

    client = await aiohttp_client(app)
    monkeypatch.setattr(type(app[keys.STORAGE]), "health", odd_health)
    anonymous = await (await client.get("/health")).text()
    assert '"storage": {"status": "down"}' in anonymous and "internal" not in anonymous
    operator = await (await client.get("/health", headers={"Authorization": "Bearer ops-" + "7e" * 16})).json()
    assert operator["checks"]["storage"]["detail"] == "endpoint https://key:***@s3.internal/"
