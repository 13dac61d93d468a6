"""Housekeeping: idempotent clean-ups every process runs at start and then every few minutes.

Each job is safe to run on several pods at once (a DELETE of expired rows, say), so no leader is
needed. A failing job is logged and retried at the next round; it never stops the others.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from . import keys
from .event_queue import forget_stale_consumers, purge_old_events, register_consumers
from .pending_uploads import expire_uploads
from .tasks import stop_tasks
from .web.links import ENDED_KEPT_DAYS, purge_ended
from .web.sessions import purge_expired
from .web.tokens import EXPIRED_KEPT_DAYS, purge_expired_tokens

log = logging.getLogger("portal.housekeeping")

INTERVAL_SECONDS = 600

Job = Callable[[web.Application], Awaitable[str | None]]


async def expired_sessions(app: web.Application) -> str | None:
    core = app[keys.CONFIG].core
    removed = await purge_expired(app[keys.POOL], idle_seconds=core.session_idle_seconds,
                                  max_age_seconds=core.session_max_age_seconds)
    return f"deleted {removed} expired session(s)" if removed else None


async def expired_tokens(app: web.Application) -> str | None:
    removed = await purge_expired_tokens(app[keys.POOL])
    return f"deleted {removed} API token(s) that expired more than {EXPIRED_KEPT_DAYS} days ago" if removed else None


async def old_events(app: web.Application) -> str | None:
    removed = await purge_old_events(app[keys.POOL], days=app[keys.CONFIG].core.events_retention_days)
    return f"deleted {removed} event(s) past EVENTS_RETENTION_DAYS" if removed else None


async def event_consumers(app: web.Application) -> str | None:
    outbox = app.get(keys.OUTBOX)
    if outbox is not None and outbox.consumers:
        await register_consumers(app[keys.POOL], [c.plugin for c in outbox.consumers])
    forgotten = await forget_stale_consumers(app[keys.POOL])
    return f"forgot {forgotten} event consumer(s) no process has run for a week" if forgotten else None


async def ended_links(app: web.Application) -> str | None:
    failures, links = await purge_ended(app[keys.POOL])
    said = []
    if failures:
        said.append(f"forgot {failures} wrong share password(s) past the lockout window")
    if links:
        said.append(f"deleted {links} share link(s) that ended more than {ENDED_KEPT_DAYS} days ago")
    return "; ".join(said) or None


# The jobs, in order. A feature with rows that expire adds its job here.
JOBS: tuple[Job, ...] = (expired_sessions, expired_tokens, old_events, event_consumers, ended_links, expire_uploads)


async def run_jobs(app: web.Application, jobs: tuple[Job, ...] = JOBS) -> None:
    for job in jobs:
        try:
            said = await job(app)
            if said:
                log.info("%s", said)
        except Exception as exc:  # the database being away must not take the loop down
            log.warning("housekeeping %s failed: %s", job.__name__, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


async def housekeeping(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: run every job at start, then every INTERVAL_SECONDS until shutdown."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(INTERVAL_SECONDS)
            await run_jobs(app)

    await run_jobs(app)
    task = asyncio.ensure_future(loop())
    yield
    await stop_tasks([task])
