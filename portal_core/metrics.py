"""Prometheus metrics in the text exposition format, without a client library.

Counters and one latency histogram live on the Application (keys.METRICS), never in globals.
"""

from __future__ import annotations

from collections import defaultdict

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _labels(pairs: tuple[tuple[str, str], ...]) -> str:
    if not pairs:
        return ""
    escaped = (f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34)).replace(chr(10), " ")}"'
               for k, v in pairs)
    return "{" + ",".join(escaped) + "}"


class Metrics:
    def __init__(self) -> None:
        self.requests: dict[tuple, int] = defaultdict(int)
        self.latency_buckets: dict[tuple, list[int]] = {}
        self.latency_sum: dict[tuple, float] = defaultdict(float)
        self.latency_count: dict[tuple, int] = defaultdict(int)
        self.bytes: dict[str, int] = defaultdict(int)
        self.webhooks: dict[tuple, int] = defaultdict(int)
        self.schema_apply_seconds: float | None = None

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests[(route, method, str(status))] += 1
        key = (route, method)
        buckets = self.latency_buckets.setdefault(key, [0] * len(LATENCY_BUCKETS))
        for index, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                buckets[index] += 1
        self.latency_sum[key] += seconds
        self.latency_count[key] += 1

    def count_bytes(self, direction: str, amount: int) -> None:
        self.bytes[direction] += amount

    def webhook(self, event_type: str, outcome: str) -> None:
        self.webhooks[(event_type, outcome)] += 1

    def render(self) -> str:
        out = ["# HELP portal_http_requests_total HTTP requests by route, method and status.",
               "# TYPE portal_http_requests_total counter"]
        for (route, method, status), value in sorted(self.requests.items()):
            out.append(f"portal_http_requests_total{_labels((('route', route), ('method', method), ('status', status)))} {value}")
        out += ["# HELP portal_http_request_duration_seconds Time to answer a request.",
                "# TYPE portal_http_request_duration_seconds histogram"]
        for key, buckets in sorted(self.latency_buckets.items()):
            base = (("route", key[0]), ("method", key[1]))
            for bound, value in zip(LATENCY_BUCKETS, buckets):
                out.append(f"portal_http_request_duration_seconds_bucket{_labels(base + (('le', repr(bound)),))} {value}")
            out.append(f"portal_http_request_duration_seconds_bucket{_labels(base + (('le', '+Inf'),))} {self.latency_count[key]}")
            out.append(f"portal_http_request_duration_seconds_sum{_labels(base)} {self.latency_sum[key]:.6f}")
            out.append(f"portal_http_request_duration_seconds_count{_labels(base)} {self.latency_count[key]}")
        out += ["# HELP portal_artifact_bytes_total Artifact bytes uploaded and downloaded through the portal.",
                "# TYPE portal_artifact_bytes_total counter"]
        for direction in ("uploaded", "downloaded"):
            out.append(f"portal_artifact_bytes_total{_labels((('direction', direction),))} {self.bytes[direction]}")
        out += ["# HELP portal_webhook_events_total Billing webhook deliveries by event type and outcome.",
                "# TYPE portal_webhook_events_total counter"]
        for (event_type, outcome), value in sorted(self.webhooks.items()):
            out.append(f"portal_webhook_events_total{_labels((('type', event_type), ('outcome', outcome)))} {value}")
        if self.schema_apply_seconds is not None:
            out += ["# HELP portal_schema_apply_seconds How long applying the schema took at startup.",
                    "# TYPE portal_schema_apply_seconds gauge",
                    f"portal_schema_apply_seconds {self.schema_apply_seconds:.6f}"]
        return "\n".join(out) + "\n"
