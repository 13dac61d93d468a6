"""The deliverer: a background task in every portal process that sends queued webhook messages.

It claims due rows with ``FOR UPDATE SKIP LOCKED`` and pushes their next attempt one lease ahead, so with
several processes each attempt is made by one of them, and a row whose process died is tried again once
the lease runs out. Each attempt is logged (time, attempt, status, duration); a 2xx answer delivers the
message, anything else (another status, a timeout, a refused address) schedules the next attempt from
WEBHOOKS_RETRY_SCHEDULE, and after the last one the message is given up ("failed"). Redirects are not
followed. Answers are read only up to RESPONSE_LIMIT bytes. The portal_event hook only queues rows and
wakes this task, so a slow receiver never holds up the portal's event delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp
import attrs
from aiohttp import web

from portal_core import __version__, keys
from portal_core.tasks import stop_tasks

from .messages import sign
from .settings import WebhooksSettings
from .ssrf import AddressRefused, PublicOnlyResolver, is_ip, parse_url, refused_address

log = logging.getLogger("portal.webhooks")

BATCH = 20
CONCURRENCY = 8
POLL_SECONDS = 5.0
RESPONSE_LIMIT = 4096  # bytes of an answer read at most; the log keeps the first KEEP_RESPONSE characters
KEEP_RESPONSE = 500
CLEAN_EVERY_SECONDS = 3600.0

_CLAIM = """
    WITH due AS (
        SELECT id FROM webhook_deliveries
        WHERE state = 'pending' AND next_attempt_at <= now()
        ORDER BY next_attempt_at, id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
    UPDATE webhook_deliveries d
    SET attempts = d.attempts + 1, next_attempt_at = now() + make_interval(secs => %(lease)s)
    FROM due, webhook_endpoints e
    WHERE d.id = due.id AND e.id = d.endpoint_id
    RETURNING d.id, d.endpoint_id, d.message_id, d.body, d.attempts, e.url, e.secret"""


@attrs.frozen
class Claimed:
    id: int
    endpoint_id: str
    message_id: str
    body: str
    attempt: int
    url: str
    secret: str


@attrs.frozen
class Outcome:
    status: int | None
    duration_ms: int
    error: str = ""
    response: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class Deliverer:
    """One process's deliverer: ``start()`` in portal_startup, ``stop()`` in portal_shutdown, ``wake()``
    when something was queued."""

    def __init__(self, app: web.Application, settings: WebhooksSettings, attempts=None) -> None:
        self.app = app
        self.settings = settings
        # portal_webhook_attempts_total{outcome}: registered once per app, by the plugin's startup.
        self.attempts = attempts
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self._http: aiohttp.ClientSession | None = None
        self._limit = asyncio.Semaphore(CONCURRENCY)

    @property
    def lease_seconds(self) -> float:
        # Longer than an attempt can take, so a live process never loses a row it is still sending.
        return self.settings.timeout_seconds * 2 + 5

    async def start(self, *, background: bool = True) -> None:
        """Open the HTTP client and (unless ``background=False``: a caller drives :meth:`deliver_due`) start
        the delivery loop."""
        resolver = None if self.settings.allow_private else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(resolver=resolver, force_close=True, limit=CONCURRENCY * 2)
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_seconds,
                                        connect=min(5.0, self.settings.timeout_seconds))
        self._http = aiohttp.ClientSession(connector=connector, timeout=timeout, trust_env=False,
                                           headers={"User-Agent": f"portal-webhooks/{__version__}"})
        if background:
            self._tasks.append(asyncio.ensure_future(self._run()))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks.clear()
        if self._http is not None:
            await self._http.close()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        cleaned = 0.0
        while True:
            try:
                if time.monotonic() - cleaned > CLEAN_EVERY_SECONDS:
                    await self.clean()
                    cleaned = time.monotonic()
                while await self.deliver_due():
                    pass
                pause = await self._until_next()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database going away must not end delivery
                log.warning("webhook delivery paused: %s", str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
                pause = POLL_SECONDS
            self._wake.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)

    async def _until_next(self) -> float:
        async with self.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now()) FROM webhook_deliveries "
                              "WHERE state = 'pending'")
            (seconds,) = await cur.fetchone()
        return POLL_SECONDS if seconds is None else min(POLL_SECONDS, max(0.05, float(seconds)))

    async def deliver_due(self) -> int:
        """Claim the due messages and make one attempt at each; how many were attempted."""
        async with self.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
            await cur.execute(_CLAIM, {"batch": BATCH, "lease": self.lease_seconds})
            claimed = [Claimed(row[0], str(row[1]), *row[2:]) for row in await cur.fetchall()]
        await asyncio.gather(*(self._attempt(item) for item in claimed))
        return len(claimed)

    async def _attempt(self, item: Claimed) -> None:
        async with self._limit:
            outcome = await self.send(item)
        await self._record(item, outcome)

    async def send(self, item: Claimed) -> Outcome:
        """POST one message, signed for this attempt; what came of it (never raises)."""
        started = time.monotonic()

        def took() -> int:
            return int((time.monotonic() - started) * 1000)

        try:
            _scheme, host, _port = parse_url(item.url)
            # aiohttp does not resolve IP literals, so the resolver never sees them: check them here.
            reason = None if self.settings.allow_private or not is_ip(host) else refused_address(host)
            if reason:
                return Outcome(None, took(), f"refused: {host} is {reason} (WEBHOOKS_ALLOW_PRIVATE)")
            timestamp = int(time.time())
            headers = {"Content-Type": "application/json", "webhook-id": item.message_id,
                       "webhook-timestamp": str(timestamp),
                       "webhook-signature": sign(item.secret, item.message_id, timestamp, item.body)}
            async with self._http.post(item.url, data=item.body.encode(), headers=headers,
                                       allow_redirects=False) as response:
                head = await _read_some(response, RESPONSE_LIMIT)
                return Outcome(response.status, took(), "" if 200 <= response.status < 300 else f"HTTP {response.status}",
                               _printable(head)[:KEEP_RESPONSE])
        except asyncio.CancelledError:
            raise
        except asyncio.TimeoutError:
            return Outcome(None, took(), f"no answer within {self.settings.timeout_seconds:g} s")
        except aiohttp.ClientConnectorError as exc:
            if isinstance(exc.os_error, AddressRefused):
                return Outcome(None, took(), f"refused: {exc.os_error.strerror}")
            return Outcome(None, took(), _first_line(exc))
        except Exception as exc:  # noqa: BLE001 - a receiver's failure is data for the log, never ours
            return Outcome(None, took(), _first_line(exc))

    async def _record(self, item: Claimed, outcome: Outcome) -> None:
        delays = self.settings.retry_delays
        if outcome.delivered:
            state, delay = "delivered", None
        elif item.attempt > len(delays):
            state, delay = "failed", None
        else:
            state, delay = "pending", delays[item.attempt - 1]
        try:
            async with self.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
                async with cur.begin():
                    await cur.execute(
                        "UPDATE webhook_deliveries SET state = %s, next_attempt_at = "
                        "CASE WHEN %s::float8 IS NULL THEN NULL ELSE now() + make_interval(secs => %s::float8) END "
                        "WHERE id = %s", (state, delay, delay, item.id))
                    if cur.rowcount:  # the endpoint (and its queue) may have been deleted meanwhile
                        await cur.execute(
                            "INSERT INTO webhook_attempts (delivery_id, endpoint_id, attempt, status_code, duration_ms, "
                            "error, response) VALUES (%s, %s, %s, %s, %s, %s, %s)",
                            (item.id, item.endpoint_id, item.attempt, outcome.status, outcome.duration_ms,
                             outcome.error[:500], outcome.response))
        except Exception as exc:  # noqa: BLE001 - the lease runs out and the attempt is made again
            log.warning("could not record webhook attempt %s of message %s: %s", item.attempt, item.message_id,
                        _first_line(exc))
            return
        if self.attempts is not None:
            self.attempts.labels(outcome="retrying" if state == "pending" else state).inc()
        if state == "failed":
            log.warning("gave up on webhook message %s to endpoint %s after %s attempts", item.message_id,
                        item.endpoint_id, item.attempt)

    async def clean(self) -> int:
        """Forget finished messages (and their log) older than WEBHOOKS_RETENTION_DAYS; how many."""
        async with self.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
            await cur.execute("DELETE FROM webhook_deliveries WHERE state <> 'pending' "
                              "AND created_at < now() - make_interval(days => %s)", (self.settings.retention_days,))
            return cur.rowcount


async def _read_some(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """At most ``limit`` bytes of the answer's body: a receiver cannot make the portal read megabytes."""
    data = b""
    while len(data) < limit:
        chunk = await response.content.read(limit - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _printable(data: bytes) -> str:
    # PostgreSQL text holds no NUL; a receiver's answer is shown as text, whatever it sent.
    return data.decode("utf-8", errors="replace").replace("\x00", "\ufffd")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


# This process's deliverer, on the application (set by the plugin's portal_startup).
DELIVERER = web.AppKey("webhooks_deliverer", Deliverer)
