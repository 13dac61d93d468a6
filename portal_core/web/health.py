"""GET /health (polled every few seconds: cheap) and GET /metrics."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from .. import keys
from ..interfaces import Health
from ..openapi import operation

CHECK_TIMEOUT = 3.0
# Service checks (remote calls) are reused for a few seconds; the database is asked every time.
SERVICE_CACHE_SECONDS = 5.0
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"


async def _database(app: web.Application) -> Health:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
                await cur.execute("SELECT 1")
                await cur.fetchone()
        return Health.ok()
    except Exception as exc:  # any failure means "down", with the reason for the operator
        return Health.down(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}".rstrip(": "))


async def _service(service) -> Health:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            return await service.health()
    except Exception as exc:
        return Health.down(f"health check failed: {type(exc).__name__}: {exc}")


async def service_checks(app: web.Application) -> dict[str, Health]:
    cache = app[keys.HEALTH_CACHE]
    now = time.monotonic()
    if cache.get("at", -1e9) + SERVICE_CACHE_SECONDS < now:
        names = ("auth", "storage", "billing")
        services = (app[keys.AUTH], app[keys.STORAGE], app[keys.BILLING])
        results = await asyncio.gather(*(_service(s) for s in services))
        cache["checks"] = dict(zip(names, results))
        cache["at"] = now
    return cache["checks"]


@operation("Health of the portal and each dependency (200 unless the database is down)", tags=["operations"],
           auth="none", response={"type": "object"}, responses={503: "The database is unavailable"})
async def health(request: web.Request) -> web.Response:
    app = request.app
    database, services = await asyncio.gather(_database(app), service_checks(app))
    checks = {"database": database, **services}
    # Only the database takes the pod out of rotation: without it nothing works. A service that is
    # down or degraded leaves the rest of the portal useful, so it is reported, not fatal.
    if database.status != "ok":
        status, code = "down", 503
    elif any(h.status != "ok" for h in services.values()):
        status, code = "degraded", 200
    else:
        status, code = "ok", 200
    body = {"status": status,
            "checks": {name: {"status": h.status, **({"detail": h.detail} if h.detail else {})}
                       for name, h in checks.items()}}
    return web.json_response(body, status=code, headers={"Cache-Control": "no-store"})


@operation("Prometheus metrics (text exposition format)", tags=["operations"], auth="none",
           response={"type": "string"}, response_type="text/plain")
async def metrics(request: web.Request) -> web.Response:
    # The exposition format's own media type, so a scraper never has to guess the version.
    return web.Response(body=request.app[keys.METRICS].render().encode(),
                        headers={"Content-Type": PROMETHEUS_TEXT, "Cache-Control": "no-store"})
