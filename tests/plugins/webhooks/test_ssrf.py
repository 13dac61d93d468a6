"""SSRF: with WEBHOOKS_ALLOW_PRIVATE=false, an endpoint must reach a public address, both when it is created
and at every delivery (DNS can change after creation): loopback, private, link-local (metadata services),
unspecified and IPv4-mapped addresses are refused, and nothing is ever sent to them."""

from __future__ import annotations

import asyncio

import pytest

from portal_core.config import read_section
from portal_core.testing import signed_in
from portal_core.testing.portal import make_portal_app
from portal_plugins.webhooks.settings import WebhooksSettings
from portal_plugins.webhooks.ssrf import refused_address
from tests.support.db import run_sql

pytestmark = pytest.mark.portal(env={"WEBHOOKS_ALLOW_PRIVATE": "false", "WEBHOOKS_RETRY_SCHEDULE": "60"})


PRIVATE = [
    ("http://127.0.0.1:{port}/hooks", "a loopback address"),
    ("http://localhost:{port}/hooks", "a loopback address"),
    ("http://[::1]:{port}/hooks", "a loopback address"),
    ("http://[::ffff:127.0.0.1]:{port}/hooks", "a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", "link-local address (where cloud metadata services answer)"),
    ("http://10.1.2.3/hooks", "a private or reserved address"),
    ("http://192.168.0.10/hooks", "a private or reserved address"),
    ("http://100.100.100.200/", "a private or reserved address"),
    ("http://0.0.0.0:{port}/", "not a unicast address"),
    ("http://[fd00:ec2::254]/", "a private or reserved address"),
]


async def test_a_private_address_is_refused_at_creation(portal_client, receiver, portal_db):
    ada = await signed_in(portal_client, "ada@example.com")
    port = receiver.url.rsplit(":", 1)[1].split("/")[0]
    for url, says in PRIVATE:  # one portal for every case: each is one request
        url = url.format(port=port)
        response = await ada.post("/api/webhooks", json={"url": url, "events": ["*"]})
        error = (await response.json())["error"]
        assert (response.status, error["code"]) == (422, "url_refused"), url
        assert says in error["message"] and "public addresses only" in error["message"], (url, error)
    assert run_sql(portal_db, "SELECT count(*) FROM webhook_endpoints") == [(0,)]
    assert receiver.received == []


async def test_a_host_that_does_not_resolve_is_refused_at_creation(portal_client):
    ada = await signed_in(portal_client, "ada@example.com")
    response = await ada.post("/api/webhooks", json={"url": "https://no-such-host.invalid/hooks", "events": ["*"]})
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "url_unresolvable"


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"], ids=["ip-literal", "hostname"])
async def test_an_endpoint_that_turned_private_is_refused_at_delivery(portal_client, receiver, portal_db, host):
    # As if the host had resolved to a public address at creation and its DNS changed since.
    ada = await signed_in(portal_client, "ada@example.com")
    user_id = run_sql(portal_db, "SELECT id FROM users WHERE email = 'ada@example.com'")[0][0]
    url = receiver.url.replace("127.0.0.1", host)
    (endpoint_id,) = run_sql(portal_db, "INSERT INTO webhook_endpoints (id, user_id, url, event_types, secret) VALUES "
                                        "(gen_random_uuid(), %s, %s, '{*}', 'whsec_c2VjcmV0') RETURNING id",
                             (user_id, url))[0]
    assert (await ada.post(f"/api/webhooks/{endpoint_id}/test")).status == 202
    for _ in range(100):
        log = (await (await ada.get(f"/api/webhooks/{endpoint_id}/deliveries")).json())["deliveries"]
        if log:
            break
        await asyncio.sleep(0.05)
    (attempt,) = log
    assert attempt["status"] is None and "a loopback address" in attempt["error"] and "refused" in attempt["error"]
    assert attempt["state"] == "pending"  # retried later, in case the address turns public again
    assert receiver.received == []


def test_which_addresses_are_public():
    assert refused_address("93.184.215.14") is None and refused_address("2606:2800:21f:cb07:6820:80da:af6b:8b2c") is None
    assert refused_address("fe80::1%eth0") and refused_address("224.0.0.1") and refused_address("::")
    assert refused_address("::1") and refused_address("fd00:ec2::254") and refused_address("100.100.100.200")


@pytest.mark.parametrize("address, why", [
    ("::ffff:127.0.0.1", "loopback"),            # IPv4-mapped
    ("::127.0.0.1", "loopback"),                 # IPv4-compatible (deprecated, still routed by some stacks)
    ("64:ff9b::a9fe:a9fe", "link-local"),        # NAT64 of 169.254.169.254, the metadata service
    ("64:ff9b:1::a00:1", "private"),             # local-use NAT64 of 10.0.0.1
    ("2002:a9fe:a9fe::1", "link-local"),         # 6to4 of 169.254.169.254
    ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "private"),  # Teredo
])
def test_an_ipv4_address_wrapped_in_ipv6_is_judged_as_the_ipv4_address(address, why):
    assert why in (refused_address(address) or ""), address
    assert refused_address("64:ff9b::5db8:d70e") is None  # NAT64 of a public address stays public


def test_private_addresses_are_allowed_by_default_only_in_dev_mode_and_retries_last_a_day(portal_db, tmp_path):
    from portal_core.keys import CONFIG

    def section(**env):
        return make_portal_app(portal_db, tmp_path, env)[CONFIG].sections["webhooks"]

    assert section().allow_private is True  # DEV_MODE
    assert section(WEBHOOKS_ALLOW_PRIVATE="false").allow_private is False
    production, problems = read_section(WebhooksSettings, {}, dev_mode=False)
    assert problems == [] and production.allow_private is False
    assert sum(production.retry_delays) >= 24 * 3600  # retries for at least a day
    assert list(production.retry_delays) == sorted(production.retry_delays)  # a backoff
    for wrong in ("60,5", "soon", "0"):
        _none, problems = read_section(WebhooksSettings, {"WEBHOOKS_RETRY_SCHEDULE": wrong}, dev_mode=False)
        assert [p.variable for p in problems] == ["WEBHOOKS_RETRY_SCHEDULE"], wrong
