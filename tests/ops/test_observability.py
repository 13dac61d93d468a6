"""GET /metrics read by Prometheus's own parser, and JSON log lines carrying the request id, from real portals.

The portal runs DEV_MODE with Stripe billing on the fake Stripe, so webhooks arrive as Stripe sends them.
"""

from __future__ import annotations

import json
import os
import uuid

import aiohttp
import pytest

from tests.ops.client import bearer, upload
from tests.ops.prometheus import parse, value
from tests.support.db import create_token, create_user
from tests.support.portal import dev_sign_in, run_portal
from tests.support.stripe import event_body, signed_headers, stripe_env

OPS_TOKEN = "ops-" + "7" * 28
IGNORED_EVENT = {"id": "evt_ops_metrics", "object": "event", "type": "invoice.created", "api_version": "2024-06-20",
                 "created": 1700000000, "data": {"object": {"id": "in_ops", "object": "invoice"}}}


@pytest.fixture
def stripe_portal(database_url, stripe_fake, request):
    env = {"BILLING_BACKEND": "stripe", "OPS_TOKEN": OPS_TOKEN, **stripe_env(stripe_fake), **getattr(request, "param", {})}
    with run_portal(database_url, env) as portal:
        yield portal


async def webhook(http: aiohttp.ClientSession, portal, body: bytes, headers: dict) -> int:
    async with http.post(f"{portal.url}/webhooks/stripe", data=body, headers=headers) as response:
        return response.status


async def test_metrics_count_requests_latency_bytes_webhooks_and_schema_time(stripe_portal, database_url) -> None:
    portal = stripe_portal
    token = create_token(database_url, create_user(database_url))
    data = os.urandom(70_000)
    status, artifact = await upload(portal.url, token, data, "metrics.bin")
    assert status == 201, artifact
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{portal.url}/api/artifacts/{artifact['id']}/download", headers=bearer(token)) as response:
            assert await response.read() == data
        async with http.get(f"{portal.url}/no-such-page-{uuid.uuid4().hex}") as response:
            assert response.status == 404
        body = event_body(IGNORED_EVENT)
        assert await webhook(http, portal, body, signed_headers(body)) == 200
        assert await webhook(http, portal, body, signed_headers(body, secret="whsec_wrong")) == 400
        async with http.get(f"{portal.url}/metrics", headers=bearer(OPS_TOKEN)) as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
            samples = parse(await response.text())

    requests = "portal_http_requests_total"
    assert value(samples, requests, route="/api/artifacts", method="POST", status="201") == 1
    assert value(samples, requests, route="/api/artifacts/{id}/download", method="GET", status="200") == 1
    assert value(samples, requests, route="/webhooks/{backend}", method="POST", status="400") == 1
    # Unknown paths share one label, so scanners cannot blow up the number of series.
    assert value(samples, requests, route="unmatched", method="GET", status="404") == 1
    assert not [s for s in samples if "no-such-page" in json.dumps(s["labels"])]

    histogram = "portal_http_request_duration_seconds"
    upload_route = {"route": "/api/artifacts", "method": "POST"}
    buckets = [(float(s["labels"]["le"]), s["value"]) for s in samples
               if s["name"] == histogram + "_bucket" and {k: v for k, v in s["labels"].items() if k != "le"} == upload_route]
    counts = [count for _le, count in sorted(buckets)]
    assert counts == sorted(counts) and counts[-1] == 1, buckets
    assert value(samples, histogram + "_count", **upload_route) == 1
    assert value(samples, histogram + "_sum", **upload_route) > 0

    assert value(samples, "portal_artifact_bytes_total", direction="uploaded") == len(data)
    assert value(samples, "portal_artifact_bytes_total", direction="downloaded") == len(data)
    assert value(samples, "portal_webhook_events_total", type="invoice.created", outcome="ignored") == 1
    assert value(samples, "portal_webhook_events_total", type="unknown", outcome="rejected") == 1
    assert value(samples, "portal_schema_apply_seconds") > 0
    # The process itself, as prometheus_client's collectors see it: CPU, memory, open files, GC.
    assert value(samples, "process_cpu_seconds_total") > 0
    assert value(samples, "process_resident_memory_bytes") > 10 * 1024 * 1024
    assert value(samples, "process_open_fds") >= 3
    assert value(samples, "python_gc_collections_total", generation="0") >= 0


@pytest.mark.parametrize("stripe_portal", [{"LOG_FORMAT": "json"}], indirect=True)
async def test_json_logs_carry_the_request_id_on_every_line_of_a_request(stripe_portal) -> None:
    portal = stripe_portal
    body = event_body(IGNORED_EVENT)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        # An id from the load balancer is kept, so one request is traced through both logs.
        async with http.post(f"{portal.url}/webhooks/stripe", data=body,
                             headers={**signed_headers(body, secret="whsec_wrong"), "X-Request-Id": "lb-7f3a"}) as response:
            assert response.status == 400
        await dev_sign_in(http, portal.url, email="grace@example.com")

    entries = []
    for line in portal.log().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            pytest.fail(f"a log line is not JSON: {line!r}")
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries), entries
    startup = [e for e in entries if e["message"].startswith("listening on http://")]
    assert startup and "request_id" not in startup[0], "lines outside a request carry no request id"
    rejected = [e for e in entries if e["message"].startswith("webhook rejected")]
    assert len(rejected) == 1 and rejected[0]["request_id"] == "lb-7f3a" and rejected[0]["level"] == "warning"
    signed_in = [e for e in entries if "signed in via dev" in e["message"]]
    assert len(signed_in) == 1 and len(signed_in[0].get("request_id", "")) >= 8, signed_in


async def test_every_answer_names_its_request_id(dev_portal) -> None:
    # The id a customer quotes from an error must be the one in the logs: every answer carries it.
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{dev_portal.url}/health", headers={"X-Request-Id": "lb-9c21"}) as response:
            assert response.headers.get("X-Request-Id") == "lb-9c21"
        async with http.get(f"{dev_portal.url}/api/artifacts") as response:
            assert response.status == 401
            generated = response.headers.get("X-Request-Id", "")
        async with http.get(f"{dev_portal.url}/api/artifacts") as response:
            assert len(generated) >= 8 and response.headers.get("X-Request-Id") not in ("", None, generated)
