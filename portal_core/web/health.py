"""Health and metrics: GET /health/live, /health/ready (= /health) and /metrics.

- ``/health/live`` answers while the event loop does. It never asks the database: a database outage must
  not make an orchestrator restart every replica at once (restarting cannot fix the database).
- ``/health/ready`` (and ``/health``, its older name) asks the database and the selected services. 503 when
  the database is unreachable or the process is shutting down (so a load balancer moves away before the
  listener closes); a service that is down leaves the rest of the portal useful: 200 ``degraded``.
- Anonymous callers see only the overall status and each dependency's status. Error text, paths, bucket
  names and provider answers are internals, shown only with the operators' bearer token (``OPS_TOKEN``),
  which ``/metrics`` always needs.
"""

from __future__ import annotations

import asyncio
import hmac
import time

import attrs
from aiohttp import web

from .. import keys
from ..interfaces import Health
from ..redact import mask
from ..openapi import operation
from .errors import json_error

CHECK_TIMEOUT = 3.0
# Service checks (remote calls) are reused for a few seconds and refreshed in the background, so a slow
# provider never makes a readiness probe time out; the database is asked every time.
SERVICE_CACHE_SECONDS = 5.0
NO_STORE = {"Cache-Control": "no-store"}


@attrs.define
class Lifecycle:
    """Where the process is in its life; ``draining`` turns readiness off once SIGTERM arrives."""

    draining: bool = False


def is_operator(request: web.Request) -> bool:
    """Whether the request carries ``Authorization: Bearer <OPS_TOKEN>`` (never true when OPS_TOKEN is unset)."""
    expected = request.app[keys.CONFIG].core.ops_token
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer":
        return False
    # Bytes, so a header with non-ASCII characters is simply wrong, never a TypeError from compare_digest.
    return hmac.compare_digest(presented.strip().encode("utf-8", "surrogateescape"), expected.encode())


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


async def _refresh(app: web.Application) -> None:
    cache = app[keys.HEALTH_CACHE]
    names = ("auth", "storage", "billing")
    services = (app[keys.AUTH], app[keys.STORAGE], app[keys.BILLING])
    results = await asyncio.gather(*(_service(s) for s in services))
    cache["checks"] = dict(zip(names, results))
    cache["at"] = time.monotonic()


async def service_checks(app: web.Application) -> dict[str, Health]:
    """The services' health: at most SERVICE_CACHE_SECONDS old, plus the time one refresh takes.

    Only the very first call waits for the services; later ones answer from the cache at once and start
    one refresh in the background when it is stale.
    """
    cache = app[keys.HEALTH_CACHE]
    running = cache.get("refresh")
    if running is None or running.done():
        if cache.get("at", -1e9) + SERVICE_CACHE_SECONDS < time.monotonic():
            running = cache["refresh"] = asyncio.ensure_future(_refresh(app))
    if "checks" not in cache:
        await asyncio.shield(running)  # shielded: a client hanging up must not cancel everyone's refresh
    return cache["checks"]


async def stop_refresh(app: web.Application) -> None:
    """on_cleanup: a refresh still running when the app stops is cancelled, not left pending."""
    running = app[keys.HEALTH_CACHE].get("refresh")
    if running is not None and not running.done():
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)


def shown_status(health: Health) -> str:
    """The status anyone may see: ok, degraded or down (a plugin's own wording is a detail, for operators)."""
    return health.status if health.status in ("ok", "degraded", "down") else "down"


@operation("Liveness: the event loop answers (never asks the database)", tags=["operations"], auth="none",
           response={"type": "object"})
async def live(request: web.Request) -> web.Response:
    # Answering at all is the check: a blocked or dead event loop cannot.
    return web.json_response({"status": "ok"}, headers=NO_STORE)


@operation("Readiness: the database and each service; anonymous callers see statuses only, the operators' "
           "bearer token (OPS_TOKEN) adds details", tags=["operations"], auth="none", response={"type": "object"},
           responses={503: "The database is unavailable, or the process is draining"})
async def ready(request: web.Request) -> web.Response:
    app = request.app
    if app[keys.LIFECYCLE].draining:
        # Shutting down: out of rotation whatever the dependencies say, answered without asking them.
        return web.json_response({"status": "draining"}, status=503, headers=NO_STORE)
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
    # Details are for operators, and even they never see a URL's password or a secret parameter.
    detailed = is_operator(request)
    body = {"status": status,
            "checks": {name: {"status": shown_status(h),
                              **({"detail": mask(h.detail)} if h.detail and detailed else {})}
                       for name, h in checks.items()}}
    return web.json_response(body, status=code, headers=NO_STORE)


@operation("Prometheus metrics for operators: the bearer token OPS_TOKEN", tags=["operations"], auth="none",
           response={"type": "string"}, response_type="text/plain",
           responses={401: "Without the operators' bearer token", 403: "OPS_TOKEN is not set: metrics are closed"})
async def metrics(request: web.Request) -> web.Response:
    if not request.app[keys.CONFIG].core.ops_token:
        return json_error(403, "metrics_closed", "/metrics is closed: set OPS_TOKEN and scrape with that bearer token")
    if not is_operator(request):
        return json_error(401, "unauthenticated", "/metrics needs the operators' bearer token (OPS_TOKEN)",
                          **{"WWW-Authenticate": 'Bearer realm="portal-ops"'})
    await request.app[keys.METRICS].refresh()
    body, content_type = request.app[keys.METRICS].render(request.headers.get("Accept", ""))
    # Content-Type is set whole (the exposition format's own media type), so a scraper never has to guess.
    return web.Response(body=body, headers={"Content-Type": content_type, **NO_STORE})
