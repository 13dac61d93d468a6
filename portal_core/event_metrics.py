"""Event delivery on /metrics: each plugin's pending and parked deliveries, and this process's outcomes.

The queue lengths are read from the database at every scrape (they are the whole cluster's, so every
process reports the same value: aggregate them with ``max``, not ``sum``); the delivery counters are
this process's own.
"""

from __future__ import annotations

from .metrics import Metrics

_QUEUES = """
    SELECT c.plugin, count(d.event_id) FILTER (WHERE d.parked_at IS NULL),
           count(d.event_id) FILTER (WHERE d.parked_at IS NOT NULL)
    FROM event_consumers c LEFT JOIN event_deliveries d ON d.plugin = c.plugin
    GROUP BY c.plugin"""


async def delivery_queues(pool) -> dict[str, tuple[int, int]]:
    """{plugin: (pending, parked)} for every plugin that receives events."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(_QUEUES)
        return {plugin: (pending, parked) for plugin, pending, parked in await cur.fetchall()}


class DeliveryMetrics:
    """The outbox's series on an app's :class:`~portal_core.metrics.Metrics`."""

    def __init__(self, metrics: Metrics, pool_of) -> None:
        self._pool_of = pool_of
        self._pending = metrics.gauge("portal_event_deliveries_pending",
                                      "Event deliveries waiting for (or being retried to) each plugin, in the database.",
                                      ("plugin",))
        self._parked = metrics.gauge("portal_event_deliveries_parked",
                                     "Event deliveries parked after EVENTS_MAX_ATTEMPTS failures "
                                     "(`portal events retry PLUGIN`), in the database.", ("plugin",))
        self._outcomes = metrics.counter("portal_event_deliveries_total",
                                         "Event deliveries this process made, by plugin and outcome.",
                                         ("plugin", "outcome"))
        metrics.add_refresher(self.refresh)

    def delivered(self, plugin: str) -> None:
        self._outcomes.labels(plugin, "delivered").inc()

    def failed(self, plugin: str) -> None:
        self._outcomes.labels(plugin, "failed").inc()

    async def refresh(self) -> None:
        queues = await delivery_queues(self._pool_of())
        self._pending.clear()
        self._parked.clear()
        for plugin, (pending, parked) in queues.items():
            self._pending.labels(plugin).set(pending)
            self._parked.labels(plugin).set(parked)
