"""Metrics live on the Application: one prometheus_client registry per app, none in module globals."""

from __future__ import annotations

import prometheus_client
import pytest

from portal_core import keys
from portal_core.metrics import Metrics


def samples(metrics: Metrics) -> dict[tuple, float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in metrics.registry.collect() for s in family.samples}


def test_two_apps_count_separately_and_the_default_registry_stays_empty_of_portal_series(make_app) -> None:
    first, second = make_app(), make_app()
    first[keys.METRICS].observe_request("/api/me", "GET", 200, 0.01)
    first[keys.METRICS].count_bytes("uploaded", 10)
    key = ("portal_http_requests_total", (("method", "GET"), ("route", "/api/me"), ("status", "200")))
    assert samples(first[keys.METRICS])[key] == 1
    assert key not in samples(second[keys.METRICS])
    assert samples(second[keys.METRICS])[("portal_artifact_bytes_total", (("direction", "uploaded"),))] == 0
    default = {family.name for family in prometheus_client.REGISTRY.collect()}
    assert not [name for name in default if name.startswith("portal_")], default


def test_process_collectors_are_on_each_registry() -> None:
    names = {family.name for family in Metrics().registry.collect()}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds",
            "python_gc_collections", "python_info"} <= names, names


def test_other_modules_register_their_own_series_on_the_apps_registry() -> None:
    metrics = Metrics()
    parked = metrics.gauge("portal_events_parked", "Deliveries parked after too many failures.", ("hook",))
    parked.labels("audit").set(3)
    sent = metrics.counter("portal_events_delivered_total", "Events delivered.")
    sent.inc(2)
    text = metrics.render()[0].decode()
    assert 'portal_events_parked{hook="audit"} 3.0' in text
    assert "portal_events_delivered_total 2.0" in text
    # The same name twice is a programming error, said at once rather than silently merged.
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        metrics.gauge("portal_events_parked", "again")
    assert "portal_events_parked" not in Metrics().render()[0].decode()


def test_schema_apply_time_is_exposed_only_once_known() -> None:
    metrics = Metrics()
    assert b"portal_schema_apply_seconds" not in metrics.render()[0]
    metrics.schema_apply_seconds = 0.25
    assert b"portal_schema_apply_seconds 0.25" in metrics.render()[0]
    assert metrics.schema_apply_seconds == 0.25
