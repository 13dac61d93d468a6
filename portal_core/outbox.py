"""The outbox: delivers recorded events to every plugin that implements ``portal_event``.

Each consumer plugin has its own queue rows in ``event_deliveries``, created by a trigger in the
event's own transaction (schema.sql). Every process runs one delivery loop per consumer:

* it **claims** due rows with ``FOR UPDATE SKIP LOCKED`` and pushes their ``next_attempt_at`` one lease
  into the future, so with several processes each row is taken by one of them, and a row whose process
  died is taken again once the lease runs out (at least once, never lost);
* it calls the plugin, then **deletes** the rows delivered; a handler that raises (or times out) gets
  its row back with a backoff, its attempts and last error kept, and is **parked** after
  ``EVENTS_MAX_ATTEMPTS`` (``portal events`` lists it, ``portal events retry PLUGIN`` requeues it);
* it sleeps until ``NOTIFY portal_events`` (sent by the trigger, so only once the event's transaction
  has committed), the next retry falls due, or ``EVENTS_POLL_SECONDS`` pass, whichever is first.

/metrics shows each plugin's pending and parked deliveries (:mod:`portal_core.event_metrics`); what operators
and housekeeping do to the queues (requeue parked deliveries, purge old events) is in :mod:`portal_core.event_queue`.

Consumers are independent tasks: a slow or failing plugin delays no other plugin, and never the
request that recorded the event.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
from collections.abc import Callable, Iterator

import aiopg
import attrs
import psycopg2
from aiohttp import web

from . import keys
from .event_metrics import DeliveryMetrics
from .event_queue import CHANNEL, register_consumers
from .events import EVENT_COLUMNS, Event
from .retrying import doubling, jittered
from .tasks import stop_tasks

log = logging.getLogger("portal.events")

BATCH = 100
MAX_BACKOFF_SECONDS = 3600.0
MAX_ERROR_TEXT = 2000

_CLAIM = f"""
    WITH due AS (
        SELECT event_id FROM event_deliveries
        WHERE plugin = %(plugin)s AND parked_at IS NULL AND next_attempt_at <= now()
        ORDER BY event_id LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
    UPDATE event_deliveries d
    SET next_attempt_at = now() + make_interval(secs => %(lease)s), attempts = d.attempts + 1
    FROM due JOIN events e ON e.id = due.event_id
    WHERE d.plugin = %(plugin)s AND d.event_id = due.event_id
    RETURNING d.attempts, {', '.join('e.' + c.strip() for c in EVENT_COLUMNS.split(','))}"""
# Seconds until this consumer's next delivery falls due (NULL: none queued), the done ones excluded.
_NEXT_DUE = """
    SELECT EXTRACT(EPOCH FROM min(next_attempt_at) - now()) FROM event_deliveries
    WHERE plugin = %(plugin)s AND parked_at IS NULL AND NOT (event_id = ANY(%(done)s::bigint[]))"""
# Forget the delivered ones and say when the next is due, in one round trip (once per batch: per event when
# they come one at a time).
_DONE = f"""
    WITH gone AS (DELETE FROM event_deliveries WHERE plugin = %(plugin)s AND event_id = ANY(%(done)s::bigint[]))
    {_NEXT_DUE}"""


@attrs.frozen
class OutboxSettings:
    max_attempts: int
    retry_seconds: float
    handler_timeout: float
    poll_seconds: float

    @property
    def lease_seconds(self) -> float:
        # Longer than a handler may run, so a live process never loses a row it is still delivering.
        return self.handler_timeout * 2 + 5


@attrs.define
class Consumer:
    """One plugin that implements portal_event, and how to call just that plugin."""

    plugin: str
    call: Callable[..., list]
    is_async: bool
    wake: asyncio.Event = attrs.field(factory=asyncio.Event)


def consumers_of(pm) -> list[Consumer]:
    """Every plugin implementing portal_event, each with a hook caller that reaches only that plugin.

    Calls go through pluggy (a subset hook caller), so hook-call monitoring (PORTAL_TRACE_HOOKS) sees them.
    """
    impls = pm.hook.portal_event.get_hookimpls()
    result = []
    for impl in impls:
        others = [other.plugin for other in impls if other is not impl]
        caller = pm.subset_hook_caller("portal_event", remove_plugins=others)
        result.append(Consumer(impl.plugin_name, caller, inspect.iscoroutinefunction(impl.function)))
    return result


def listen_retry_delays() -> Iterator[float]:
    """The pause before each new try of a lost LISTEN connection: 0.5 s, doubling, at most 30 s (deliveries
    are polled meanwhile)."""
    return doubling(0.5, 30.0)


def backoff(attempts: int, base: float) -> float:
    """Seconds before the next attempt after ``attempts`` failures: exponential, capped, with jitter."""
    delay = min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
    return jittered(delay, 0.2)


class Outbox:
    """One process's deliverer: a LISTEN connection and one loop per consumer. ``start()`` / ``stop()``."""

    def __init__(self, app: web.Application, consumers: list[Consumer], settings: OutboxSettings) -> None:
        self.app = app
        self.consumers = consumers
        self.settings = settings
        self._tasks: list[asyncio.Task] = []
        self.metrics = DeliveryMetrics(app[keys.METRICS], lambda: self.pool) if keys.METRICS in app else None

    @property
    def pool(self):
        return self.app[keys.POOL]

    async def start(self) -> None:
        if not self.consumers:
            return
        await register_consumers(self.pool, [c.plugin for c in self.consumers])
        self._tasks.append(asyncio.ensure_future(self._listen()))
        self._tasks += [asyncio.ensure_future(self._run(consumer)) for consumer in self.consumers]
        log.info("delivering events to %s", ", ".join(c.plugin for c in self.consumers))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks.clear()

    def wake_all(self) -> None:
        for consumer in self.consumers:
            consumer.wake.set()

    # -- LISTEN ------------------------------------------------------------------------------------

    async def _listen(self) -> None:
        dsn = self.app[keys.CONFIG].core.database_url
        delays = listen_retry_delays()
        while True:
            try:
                async with aiopg.connect(dsn, timeout=10) as conn, conn.cursor() as cur:
                    await cur.execute(f"LISTEN {CHANNEL}")
                    delays = listen_retry_delays()
                    self.wake_all()  # anything recorded while we were not listening
                    while True:
                        await conn.notifies.get()
                        self.wake_all()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database going away must not end delivery: poll meanwhile
                log.warning("event notifications unavailable (%s); polling every %gs until they are back",
                            _first_line(exc), self.settings.poll_seconds)
                await asyncio.sleep(next(delays))

    # -- delivery ----------------------------------------------------------------------------------

    async def _run(self, consumer: Consumer) -> None:
        while True:
            consumer.wake.clear()
            next_due: float | None = None
            try:
                claimed, next_due = await self.deliver_batch(consumer)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # database away: try again later, nothing is lost
                log.warning("event delivery to %s paused: %s", consumer.plugin, _first_line(exc))
                claimed = 0
                await asyncio.sleep(1.0)
            if claimed >= BATCH:
                continue
            wait = self._wait(next_due) if claimed else await self._seconds_to_next(consumer)
            # asyncio.timeout, not wait_for: on 3.11, wait_for can lose a cancellation that arrives as its
            # timeout fires, and stop() would then wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await consumer.wake.wait()

    async def _seconds_to_next(self, consumer: Consumer) -> float:
        try:
            async with self.pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(_NEXT_DUE, {"plugin": consumer.plugin, "done": []})
                (seconds,) = await cur.fetchone()
        except (psycopg2.Error, OSError, asyncio.TimeoutError):
            return self.settings.poll_seconds
        return self._wait(seconds)

    def _wait(self, seconds) -> float:
        """How long to sleep when the next delivery is due in ``seconds`` (None: nothing queued)."""
        if seconds is None:
            return self.settings.poll_seconds
        return min(max(float(seconds), 0.01), self.settings.poll_seconds)

    async def deliver_batch(self, consumer: Consumer) -> tuple[int, float | None]:
        """Claim up to BATCH due deliveries for ``consumer`` and deliver them in order; returns how many were
        claimed, and in how many seconds the next delivery is due (None: none queued)."""
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(_CLAIM, {"plugin": consumer.plugin, "batch": BATCH,
                                       "lease": self.settings.lease_seconds})
            rows = await cur.fetchall()
        if not rows:
            return 0, None
        rows.sort(key=lambda row: row[1])
        done: list[int] = []
        for row in rows:
            attempts, event = row[0], Event.from_row(row[1:])
            try:
                async with asyncio.timeout(self.settings.handler_timeout):
                    await self._call(consumer, event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if self.metrics:
                    self.metrics.failed(consumer.plugin)
                await self._failed(consumer, event, attempts, exc)
            else:
                if self.metrics:
                    self.metrics.delivered(consumer.plugin)
                done.append(event.id)
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(_DONE, {"plugin": consumer.plugin, "done": done})
            (next_due,) = await cur.fetchone()
        return len(rows), next_due

    async def _call(self, consumer: Consumer, event: Event) -> None:
        if consumer.is_async:
            results = consumer.call(event=event, app=self.app)
        else:
            # A plain function may block (a requests.post, a file write): keep it off the event loop.
            results = await asyncio.to_thread(consumer.call, event=event, app=self.app)
        for result in results:
            if inspect.isawaitable(result):
                await result

    async def _failed(self, consumer: Consumer, event: Event, attempts: int, exc: BaseException) -> None:
        error = (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:MAX_ERROR_TEXT]
        if isinstance(exc, TimeoutError):
            error = f"timed out after {self.settings.handler_timeout:g}s"
        park = attempts >= self.settings.max_attempts
        delay = backoff(attempts, self.settings.retry_seconds)
        async with self.pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                "UPDATE event_deliveries SET last_error = %s, parked_at = CASE WHEN %s THEN now() END, "
                "next_attempt_at = now() + make_interval(secs => %s) WHERE plugin = %s AND event_id = %s",
                (error, park, delay, consumer.plugin, event.id))
        if park:
            log.error("event %s (%s) parked for %s after %d attempts: %s", event.id, event.type, consumer.plugin,
                      attempts, error)
        else:
            log.warning("event %s (%s) to %s failed (attempt %d, next in %.1fs): %s", event.id, event.type,
                        consumer.plugin, attempts, delay, error)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
