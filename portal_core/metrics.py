"""Prometheus metrics through ``prometheus_client``, on one registry per Application (keys.METRICS).

prometheus_client's default ``REGISTRY`` is a module global: two apps in one process (the tests build many)
would share and double-count it, so every :class:`Metrics` makes its own ``CollectorRegistry`` and
registers the process collectors (CPU, RSS, open files, GC) on it. Callers use the small methods below;
other core modules add their own series with :meth:`Metrics.counter` / :meth:`Metrics.gauge` /
:meth:`Metrics.histogram`, or any custom collector on :attr:`Metrics.registry`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

from prometheus_client import (CollectorRegistry, Counter, Gauge, GCCollector, Histogram, PlatformCollector,
                               ProcessCollector)
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
log = logging.getLogger("portal.metrics")

# The text format every Prometheus version reads; OpenMetrics is served to scrapers that ask for it.
PROMETHEUS_TEXT = CONTENT_TYPE_PLAIN_0_0_4


class Metrics:
    """The portal's metrics on a registry of their own; ``render`` gives the exposition text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        self._requests = self.counter("portal_http_requests_total", "HTTP requests by route, method and status.",
                                      ("route", "method", "status"))
        self._latency = self.histogram("portal_http_request_duration_seconds", "Time to answer a request.",
                                       ("route", "method"), buckets=LATENCY_BUCKETS)
        self._bytes = self.counter("portal_artifact_bytes_total",
                                   "Artifact bytes uploaded and downloaded through the portal.", ("direction",))
        for direction in ("uploaded", "downloaded"):
            self._bytes.labels(direction)  # both series exist from the start, at 0
        self._webhooks = self.counter("portal_webhook_events_total",
                                      "Billing webhook deliveries by event type and outcome.", ("type", "outcome"))
        self._schema_gauge: Gauge | None = None
        self._schema_seconds: float | None = None
        self._refreshers: list[Callable[[], Awaitable[None]]] = []

    # ---- what the core records -------------------------------------------------------------------

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self._requests.labels(route, method, str(status)).inc()
        self._latency.labels(route, method).observe(seconds)

    def count_bytes(self, direction: str, amount: int) -> None:
        self._bytes.labels(direction).inc(amount)

    def webhook(self, event_type: str, outcome: str) -> None:
        self._webhooks.labels(event_type, outcome).inc()

    @property
    def schema_apply_seconds(self) -> float | None:
        return self._schema_seconds

    @schema_apply_seconds.setter
    def schema_apply_seconds(self, seconds: float) -> None:
        # Registered only once known, so a scrape never shows a misleading 0 before the schema is applied.
        if self._schema_gauge is None:
            self._schema_gauge = self.gauge("portal_schema_apply_seconds", "How long applying the schema took at startup.")
        self._schema_gauge.set(seconds)
        self._schema_seconds = seconds

    # ---- for other modules: series of their own on this app's registry ----------------------------

    def counter(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Counter:
        """A Counter on this app's registry (``name`` ends in ``_total``). Register once, at startup."""
        return Counter(name.removesuffix("_total"), documentation, tuple(labels), registry=self.registry)

    def gauge(self, name: str, documentation: str, labels: Sequence[str] = ()) -> Gauge:
        """A Gauge on this app's registry: set it when the value changes, or ``set_function`` to read it at scrape."""
        return Gauge(name, documentation, tuple(labels), registry=self.registry)

    def histogram(self, name: str, documentation: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = LATENCY_BUCKETS) -> Histogram:
        """A Histogram on this app's registry."""
        return Histogram(name, documentation, tuple(labels), buckets=tuple(buckets), registry=self.registry)

    def add_refresher(self, refresh: Callable[[], Awaitable[None]]) -> None:
        """Have ``await refresh()`` run before every scrape, to set gauges read from the database."""
        self._refreshers.append(refresh)

    async def refresh(self) -> None:
        """Run the refreshers; one that fails (the database away) is logged and its gauges keep their last value."""
        for refresh in self._refreshers:
            try:
                await refresh()
            except Exception as exc:
                log.warning("metrics refresher %s failed: %s", getattr(refresh, "__qualname__", refresh), exc)

    # ---- exposition --------------------------------------------------------------------------------

    def render(self, accept: str = "") -> tuple[bytes, str]:
        """(body, Content-Type) for a scrape; OpenMetrics when ``accept`` asks for it, else text 0.0.4."""
        encoder, content_type = choose_encoder(accept)
        if encoder is generate_latest:
            content_type = PROMETHEUS_TEXT
        return encoder(self.registry), content_type
