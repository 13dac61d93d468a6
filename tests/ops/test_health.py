"""/health, /health/ready, /health/live and /metrics as the public and the operators see them, from real portals.

Anonymously: the overall status and each dependency's status, nothing else (no error text, endpoint,
bucket name). With ``Authorization: Bearer $OPS_TOKEN``: the details too, and /metrics. The storage
here is R2 pointed at a closed port, so its check fails with a detail full of internals.
"""

from __future__ import annotations

import json
import os
import subprocess
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.ops.prometheus import parse, value
from tests.support.db import run_sql
from tests.support.portal import PORTAL_BIN, free_port, run_portal

OPS_TOKEN = "ops-" + "5f" * 16
BUCKET = "internal-bucket-name"


@pytest.fixture(scope="module")
def closed_port() -> int:
    return free_port()


@pytest.fixture
def broken_storage_portal(database_url, closed_port):
    env = {"STORAGE_BACKEND": "r2", "R2_ACCOUNT_ID": "ops", "R2_ACCESS_KEY_ID": "ops", "R2_SECRET_ACCESS_KEY": "ops",
           "R2_BUCKET_NAME": BUCKET, "R2_ENDPOINT_URL": f"http://127.0.0.1:{closed_port}", "R2_REGION": "us-east-1",
           "R2_HEALTH_TIMEOUT": "1", "OPS_TOKEN": OPS_TOKEN}
    with run_portal(database_url, env) as portal:
        yield portal


async def get(url: str, headers: dict | None = None) -> tuple[int, dict, str]:
    async with aiohttp.ClientSession() as http, http.get(url, headers=headers or {}) as response:
        return response.status, dict(response.headers), await response.text()


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
async def test_anonymous_health_shows_statuses_only(broken_storage_portal, closed_port, path) -> None:
    status, headers, text = await get(broken_storage_portal.url + path)
    assert status == 200 and headers["Cache-Control"] == "no-store"
    assert json.loads(text) == {"status": "degraded", "checks": {
        "database": {"status": "ok"}, "auth": {"status": "ok"}, "storage": {"status": "down"},
        "billing": {"status": "ok"}}}
    assert BUCKET not in text and str(closed_port) not in text


@pytest.mark.parametrize("authorization", [f"Bearer {OPS_TOKEN[:-1]}", f"Basic {OPS_TOKEN}", "Bearer",
                                           "Bearer t\u00f6ken-\u00fcber-sixteen-chars"])
async def test_a_wrong_token_sees_what_anonymous_sees(broken_storage_portal, authorization) -> None:
    status, _headers, text = await get(broken_storage_portal.url + "/health",
                                       {"Authorization": authorization.encode().decode("latin-1")})
    assert status == 200 and "detail" not in text and BUCKET not in text


async def test_operators_see_the_details(broken_storage_portal, closed_port) -> None:
    status, _headers, text = await get(broken_storage_portal.url + "/health/ready",
                                       {"Authorization": f"Bearer {OPS_TOKEN}"})
    storage = json.loads(text)["checks"]["storage"]
    assert status == 200 and storage["status"] == "down"
    assert str(closed_port) in storage["detail"] or BUCKET in storage["detail"], storage


def test_healthcheck_names_the_failing_check_with_the_token_in_its_environment(broken_storage_portal) -> None:
    env = {**os.environ, "PORT": str(broken_storage_portal.port)}
    with_token = subprocess.run([str(PORTAL_BIN), "healthcheck"], capture_output=True, text=True, timeout=30,
                                env={**env, "OPS_TOKEN": OPS_TOKEN})
    anonymous = subprocess.run([str(PORTAL_BIN), "healthcheck"], capture_output=True, text=True, timeout=30,
                               env={k: v for k, v in env.items() if k != "OPS_TOKEN"})
    # Degraded still serves: exit 0 either way; only the operator's answer says why.
    assert with_token.returncode == 0 and with_token.stdout.startswith("200 degraded: storage down ("), with_token.stdout
    assert anonymous.returncode == 0 and anonymous.stdout.strip() == "200 degraded: storage down", anonymous.stdout


async def test_liveness_answers_without_asking_anything(broken_storage_portal) -> None:
    status, _headers, text = await get(broken_storage_portal.url + "/health/live")
    assert (status, json.loads(text)) == (200, {"status": "ok"})


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-but-long-enough", f"Token {OPS_TOKEN}",
                                           "Bearer \u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"
                                           "\u00e9\u00e9\u00e9\u00e9\u00e9"])
async def test_metrics_refuse_anyone_without_the_token(broken_storage_portal, authorization) -> None:
    headers = {"Authorization": authorization.encode().decode("latin-1")} if authorization else {}
    status, answer_headers, text = await get(broken_storage_portal.url + "/metrics", headers)
    assert status == 401, text
    assert json.loads(text)["error"]["code"] == "unauthenticated"
    assert answer_headers["WWW-Authenticate"].startswith("Bearer")
    assert "portal_http" not in text


async def test_metrics_answer_the_operators(broken_storage_portal) -> None:
    await get(broken_storage_portal.url + "/health/live")
    status, headers, text = await get(broken_storage_portal.url + "/metrics", {"Authorization": f"Bearer {OPS_TOKEN}"})
    assert status == 200 and headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    samples = parse(text)
    assert value(samples, "portal_http_requests_total", route="/health/live", method="GET", status="200") == 1
    assert value(samples, "process_resident_memory_bytes") > 0
    # Scrapers that speak OpenMetrics get it.
    status, headers, text = await get(broken_storage_portal.url + "/metrics",
                                      {"Authorization": f"Bearer {OPS_TOKEN}",
                                       "Accept": "application/openmetrics-text; version=1.0.0"})
    assert status == 200 and headers["Content-Type"].startswith("application/openmetrics-text")
    assert text.rstrip().endswith("# EOF")


async def test_metrics_are_closed_when_no_token_is_set(dev_portal) -> None:
    status, _headers, text = await get(dev_portal.url + "/metrics", {"Authorization": "Bearer anything-at-all-here"})
    assert status == 403 and json.loads(text)["error"]["code"] == "metrics_closed"
    assert "OPS_TOKEN" in json.loads(text)["error"]["message"]


def test_a_short_ops_token_is_refused_at_start_without_printing_it(tmp_path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DEV_MODE": "true", "OPS_TOKEN": "hunter2"}
    result = subprocess.run([str(PORTAL_BIN), "check-config"], env=env, cwd=tmp_path, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 78
    assert "OPS_TOKEN: must be at least 16 characters" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_smoke_names_the_failing_check_only_with_the_token(broken_storage_portal, closed_port) -> None:
    def smoke(*extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(PORTAL_BIN), "smoke", "--base-url", broken_storage_portal.url, "--token",
                               "pt_unused", *extra], capture_output=True, text=True, timeout=60,
                              env={k: v for k, v in os.environ.items() if k != "OPS_TOKEN"})

    anonymous, operator = smoke(), smoke("--ops-token", OPS_TOKEN)
    assert anonymous.returncode == 1 and operator.returncode == 1
    health = [line for line in anonymous.stdout.splitlines() if "health" in line][0]
    assert "FAIL" in health and "storage down" in health and str(closed_port) not in anonymous.stdout
    health = [line for line in operator.stdout.splitlines() if "health" in line][0]
    assert "FAIL" in health and "storage down (" in health, operator.stdout


@pytest.fixture
def everything_down_portal(database_url):
    """Identity provider, storage and billing all unreachable (closed ports); the database is taken away
    by the test itself."""
    closed = free_port()
    env = {"STORAGE_BACKEND": "r2", "R2_ACCOUNT_ID": "ops", "R2_ACCESS_KEY_ID": "ops", "R2_SECRET_ACCESS_KEY": "ops",
           "R2_BUCKET_NAME": BUCKET, "R2_ENDPOINT_URL": f"http://127.0.0.1:{closed}", "R2_REGION": "us-east-1",
           "R2_HEALTH_TIMEOUT": "1",
           "AUTH_BACKEND": "oidc", "POCKET_ID_ISSUER": f"http://127.0.0.1:{closed}/internal-issuer",
           "POCKET_ID_CLIENT_ID": "portal", "POCKET_ID_CLIENT_SECRET": "internal-client-secret", "POCKET_ID_TIMEOUT": "1",
           "BILLING_BACKEND": "stripe", "STRIPE_SECRET_KEY": "sk_test_internal", "STRIPE_WEBHOOK_SECRET": "whsec_internal",
           "STRIPE_PRICE_ID_PRO": "price_internal", "STRIPE_API_BASE": f"http://127.0.0.1:{closed}",
           "STRIPE_TIMEOUT": "1", "OPS_TOKEN": OPS_TOKEN}
    with run_portal(database_url, env) as portal:
        yield portal, closed


def statuses_only(body: dict) -> bool:
    return set(body) == {"status", "checks"} and all(set(check) == {"status"} for check in body["checks"].values())


async def test_anonymous_health_shows_statuses_only_whatever_is_down(everything_down_portal, database_url) -> None:
    portal, closed = everything_down_portal
    internals = [BUCKET, str(closed), "internal", "127.0.0.1", urlsplit(database_url).path.lstrip("/"), "Error"]

    status, _headers, text = await get(portal.url + "/health")
    body = json.loads(text)
    assert status == 200 and body["status"] == "degraded" and statuses_only(body), text
    assert body["checks"]["database"] == {"status": "ok"}
    assert {name: check["status"] for name, check in body["checks"].items() if name != "database"} == {
        "auth": "degraded", "storage": "down", "billing": "down"}, text
    assert not [word for word in internals if word in text], text
    _status, _headers, detailed = await get(portal.url + "/health", {"Authorization": f"Bearer {OPS_TOKEN}"})
    assert str(closed) in detailed, "operators see what is wrong"

    # The database goes away too (it refuses connections, and the open ones are ended).
    dbname = urlsplit(database_url).path.lstrip("/")
    admin = database_url.rsplit("/", 1)[0] + "/postgres"
    run_sql(admin, f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS false')
    try:
        run_sql(admin, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (dbname,))
        status, _headers, text = await get(portal.url + "/health")
        body = json.loads(text)
        assert status == 503 and body["status"] == "down" and statuses_only(body), text
        assert body["checks"]["database"] == {"status": "down"}
        assert not [word for word in internals if word in text], text
        _status, _headers, detailed = await get(portal.url + "/health", {"Authorization": f"Bearer {OPS_TOKEN}"})
        assert dbname in json.loads(detailed)["checks"]["database"]["detail"], detailed
    finally:
        run_sql(admin, f'ALTER DATABASE "{dbname}" ALLOW_CONNECTIONS true')
