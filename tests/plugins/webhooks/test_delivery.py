"""Real deliveries to a local receiver, verified with the standardwebhooks library as a customer's code would:
signed Standard Webhooks messages, only the customer's own events of the types asked for, retries after a
500 with the same message id, giving up after the schedule, short timeouts, and answers read only in part."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

import aiohttp
import psycopg2
import pytest
from standardwebhooks import Webhook

from portal_core.keys import METRICS
from portal_core.testing import signed_in
from tests.support.db import run_sql

pytestmark = pytest.mark.portal(env={"WEBHOOKS_ALLOW_PRIVATE": "true", "WEBHOOKS_RETRY_SCHEDULE": "0.2,0.4"})


async def endpoint(user, url, events=("artifact.created",)) -> dict:
    response = await user.post("/api/webhooks", json={"url": url, "events": list(events)})
    assert response.status == 201, await response.text()
    return await response.json()


async def log_of(user, endpoint_id, count: int) -> list[dict]:
    for _ in range(200):
        log = (await (await user.get(f"/api/webhooks/{endpoint_id}/deliveries")).json())["deliveries"]
        if len(log) >= count:
            return log
        await asyncio.sleep(0.05)
    raise AssertionError(f"the log has {log}, expected {count} attempts")


async def test_a_customers_own_events_arrive_signed_as_standard_webhooks(portal_client, receiver):
    ada = await signed_in(portal_client, "ada@example.com")
    bob = await signed_in(portal_client, "bob@example.com")
    hook = await endpoint(ada, receiver.url)
    await bob.upload(b"bob's file", "bob.txt")  # someone else's event: never sent to ada's endpoint
    artifact = await (await ada.upload(b"hello", "hello.txt", "text/plain")).json()
    await (await ada.delete(f"/api/artifacts/{artifact['id']}")).release()  # a type ada did not ask for
    (delivery,) = await receiver.wait_for(1)
    payload = Webhook(hook["secret"]).verify(delivery.body, delivery.headers)
    assert payload["type"] == "artifact.created" and payload["timestamp"].endswith("Z")
    assert payload["data"]["subject_id"] == artifact["id"]
    assert payload["data"]["details"] == {"name": "hello.txt", "size": 5, "content_type": "text/plain",
                                          "sha256": artifact["sha256"]}
    assert payload["data"]["owner_id"] == payload["data"]["actor_id"]
    assert delivery.headers["webhook-id"] == f"msg_{payload['data']['event_id']}"
    assert delivery.headers["Content-Type"] == "application/json"
    # No secret, and nothing about the client (its address or browser) travels.
    assert hook["secret"] not in delivery.body.decode() and "127.0.0.1" not in delivery.body.decode()
    assert "user_agent" not in json.dumps(payload) and "ip" not in payload["data"]
    log = await log_of(ada, hook["id"], 1)
    assert [(a["event_type"], a["attempt"], a["status"], a["state"], a["response"]) for a in log] == [
        ("artifact.created", 1, 200, "delivered", "thanks")]
    await asyncio.sleep(0.5)  # the other customer's upload and the deletion had every chance to arrive
    assert len(receiver.received) == 1


async def test_a_failed_delivery_is_retried_with_the_same_message_until_it_is_accepted(portal_client, receiver):
    receiver.answers = [500, 503]
    ada = await signed_in(portal_client, "ada@example.com")
    hook = await endpoint(ada, receiver.url, ["artifact.deleted"])  # test messages go whatever the types
    assert (await ada.post(f"/api/webhooks/{hook['id']}/test")).status == 202
    deliveries = await receiver.wait_for(3)
    webhook = Webhook(hook["secret"])
    payloads = [webhook.verify(d.body, d.headers) for d in deliveries]  # each attempt signed afresh
    assert {p["type"] for p in payloads} == {"webhook.test"}
    assert len({d.headers["webhook-id"] for d in deliveries}) == 1 and len({d.body for d in deliveries}) == 1
    log = await log_of(ada, hook["id"], 3)
    assert [(a["attempt"], a["status"]) for a in reversed(log)] == [(1, 500), (2, 503), (3, 200)]
    assert log[0]["state"] == "delivered" and all(a["duration_ms"] >= 0 for a in log)
    registry = portal_client.server.app[METRICS].registry  # what /metrics shows the operator
    assert [registry.get_sample_value("portal_webhook_attempts_total", {"outcome": outcome})
            for outcome in ("retrying", "delivered")] == [2.0, 1.0]


async def test_after_the_last_retry_the_message_is_given_up(portal_client, receiver, portal_db):
    receiver.answers = [500] * 10
    ada = await signed_in(portal_client, "ada@example.com")
    hook = await endpoint(ada, receiver.url, ["artifact.deleted"])  # test messages go whatever the types
    await ada.post(f"/api/webhooks/{hook['id']}/test")
    log = await log_of(ada, hook["id"], 3)  # the first attempt and one per delay of the schedule
    await asyncio.sleep(0.8)
    assert len(receiver.received) == 3 and log[0]["state"] == "failed"
    assert run_sql(portal_db, "SELECT state, attempts, next_attempt_at FROM webhook_deliveries") == [("failed", 3, None)]


@pytest.mark.portal(env={"WEBHOOKS_TIMEOUT_SECONDS": "1"})
async def test_a_slow_receiver_times_out_and_a_long_answer_is_read_only_in_part(portal_client, receiver):
    receiver.delay, receiver.answers = 3.0, [200]
    ada = await signed_in(portal_client, "ada@example.com")
    hook = await endpoint(ada, receiver.url, ["artifact.deleted"])  # test messages go whatever the types
    await ada.post(f"/api/webhooks/{hook['id']}/test")
    (slow,) = await log_of(ada, hook["id"], 1)
    assert slow["status"] is None and slow["error"] == "no answer within 1 s" and 900 <= slow["duration_ms"] < 2500
    receiver.delay, receiver.body_size = 0.0, 64 * 1024 * 1024
    log = await log_of(ada, hook["id"], 2)  # the retry: accepted, with an endless answer
    assert (log[0]["attempt"], log[0]["status"], log[0]["state"]) == (2, 200, "delivered")
    assert receiver.finished_body is False  # the portal stopped reading long before 64 MiB


async def test_each_due_message_is_claimed_by_one_deliverer(portal_client, receiver, portal_db):
    from portal_plugins.webhooks.deliver import DELIVERER, Deliverer

    app = portal_client.server.app
    ada = await signed_in(portal_client, "ada@example.com")
    hook = await endpoint(ada, receiver.url, ["artifact.deleted"])
    await app[DELIVERER].stop()  # this test plays two processes' deliverers itself
    one, two = Deliverer(app, app[DELIVERER].settings), Deliverer(app, app[DELIVERER].settings)
    await one.start(background=False)
    await two.start(background=False)
    try:
        run_sql(portal_db, "INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, body, next_attempt_at) "
                           "VALUES (%s, 'msg_manual', 'webhook.test', '{}', now())", (hook["id"],))
        holder = psycopg2.connect(portal_db)  # a third process, claiming it right now
        try:
            with holder.cursor() as cur:
                cur.execute("SELECT id FROM webhook_deliveries WHERE message_id = 'msg_manual' FOR UPDATE")
                assert await asyncio.wait_for(one.deliver_due(), 5) == 0  # locked elsewhere: skipped, not awaited
            holder.rollback()
        finally:
            holder.close()
        receiver.delay = 0.5  # so the first claim is still sending when the second deliverer looks
        sending = asyncio.ensure_future(one.deliver_due())
        await receiver.wait_for(1)
        assert await two.deliver_due() == 0  # claimed and leased by the first: not sent twice
        assert await sending == 1
        assert await two.deliver_due() == 0  # delivered
    finally:
        await one.stop()
        await two.stop()
    assert [d.headers["webhook-id"] for d in receiver.received] == ["msg_manual"]
    assert run_sql(portal_db, "SELECT state, attempts FROM webhook_deliveries WHERE message_id = 'msg_manual'") == [
        ("delivered", 1)]


async def test_queueing_an_event_twice_queues_it_once(portal_client, receiver, portal_db):
    from portal_core.events import Event
    from portal_core.keys import POOL
    from portal_plugins.webhooks.messages import queue_event

    ada = await signed_in(portal_client, "ada@example.com")
    hook = await endpoint(ada, receiver.url, ["thing.happened"])
    owner = run_sql(portal_db, "SELECT id FROM users WHERE email = 'ada@example.com'")[0][0]
    event = Event(id=987654, type="thing.happened", occurred_at=dt.datetime.now(dt.timezone.utc), actor_id=owner,
                  owner_id=owner, subject_id="x", data={})
    async with portal_client.server.app[POOL].acquire() as conn, conn.cursor() as cur:
        assert await queue_event(cur, event) == 1
        assert await queue_event(cur, event) == 0  # at-least-once delivery of the event: one message
    (delivery,) = await receiver.wait_for(1)
    assert Webhook(hook["secret"]).verify(delivery.body, delivery.headers)["data"]["event_id"] == 987654


async def test_a_file_a_guest_sends_through_a_request_reaches_the_owners_webhook(portal_client, receiver, portal_db):
    """issue 15: the owner learns of received files through request.file_received, so by webhook."""
    from tests.support.sharing import browser_form

    ada = await signed_in(portal_client, "ada@example.com")
    run_sql(portal_db, "INSERT INTO subscriptions (user_id, plan, status, provider) "
                       "SELECT id, 'pro', 'active', 'dev' FROM users WHERE email = 'ada@example.com'")
    hook = await endpoint(ada, receiver.url, ["request.file_received"])
    created = await (await ada.post("/api/requests", json={"title": "Scans"})).json()
    body, content_type = browser_form({"scan.pdf": b"%PDF-1.7 scan"})
    page = portal_client.make_url("/r/" + created["url"].rsplit("/", 1)[1])
    async with aiohttp.ClientSession() as guest, guest.post(page, data=body, headers={"Content-Type": content_type}) as response:
        assert response.status == 201, await response.text()
    (delivery,) = await receiver.wait_for(1)
    payload = Webhook(hook["secret"]).verify(delivery.body, delivery.headers)
    assert payload["type"] == "request.file_received" and payload["data"]["subject_id"] == created["id"]
    details = payload["data"]["details"]
    assert (details["name"], details["size"], details["title"]) == ("scan.pdf", 13, "Scans")
    assert payload["data"]["actor_id"] is None  # a guest, not the owner
