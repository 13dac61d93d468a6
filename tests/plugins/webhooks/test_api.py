"""The webhooks API and page: endpoints are created with a secret shown once, listed without it, deleted,
tested; wrong input gets a 4xx naming it and changes nothing; one customer never reaches another's."""

from __future__ import annotations

import asyncio

import pytest

from portal_core.testing import signed_in
from tests.support.db import run_sql

pytestmark = pytest.mark.portal(env={"WEBHOOKS_ALLOW_PRIVATE": "true"})


async def create(user, url, events=("artifact.created",)):
    return await user.post("/api/webhooks", json={"url": url, "events": list(events)})


async def test_an_endpoint_is_created_with_its_secret_once_listed_without_it_and_deleted(portal_client, receiver,
                                                                                         portal_db, captured_events):
    ada = await signed_in(portal_client, "ada@example.com")
    response = await create(ada, receiver.url, ["artifact.created", "artifact.deleted", "artifact.created"])
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["secret"].startswith("whsec_") and len(created["secret"]) > 40
    assert created["events"] == ["artifact.created", "artifact.deleted"] and created["url"] == receiver.url
    listing = await (await ada.get("/api/webhooks")).json()
    assert listing == {"webhooks": [{k: v for k, v in created.items() if k != "secret"}]}
    assert created["secret"] not in await (await ada.get("/account/webhooks")).text()
    recorded = await captured_events.wait_for("webhook.created", subject_id=created["id"])
    assert recorded.data == {"host": "127.0.0.1", "events": ["artifact.created", "artifact.deleted"]}
    assert (await ada.delete(f"/api/webhooks/{created['id']}")).status == 204
    assert (await (await ada.get("/api/webhooks")).json()) == {"webhooks": []}
    assert (await ada.delete(f"/api/webhooks/{created['id']}")).status == 404
    await captured_events.wait_for("webhook.deleted", subject_id=created["id"])
    assert run_sql(portal_db, "SELECT count(*) FROM webhook_endpoints") == [(0,)]


WRONG = [
    (None, "bad_json"),
    ({"events": ["artifact.created"]}, "bad_url"),
    ({"url": "ftp://example.com/x", "events": ["artifact.created"]}, "bad_url"),
    ({"url": "https://user:pw@example.com/x", "events": ["artifact.created"]}, "bad_url"),
    ({"url": "http://exa mple.com/", "events": ["artifact.created"]}, "bad_url"),
    ({"url": "http://example.com:99999/", "events": ["artifact.created"]}, "bad_url"),
    ({"url": "https://" + "a" * 2000 + ".com/", "events": ["artifact.created"]}, "bad_url"),
    ({"url": "http://127.0.0.1:9/", "events": []}, "bad_events"),
    ({"url": "http://127.0.0.1:9/", "events": "artifact.created"}, "bad_events"),
    ({"url": "http://127.0.0.1:9/", "events": ["Artifact Created"]}, "bad_events"),
    ({"url": "http://127.0.0.1:9/", "events": [7]}, "bad_events"),
    ({"url": "http://127.0.0.1:9/", "events": ["a.b"] * 51}, "bad_events"),
    ({"url": "http://127.0.0.1:9/", "events": ["a." + "b" * 63]}, "bad_events"),
    ({"url": "http://127.0.0.1:9/\u0000", "events": ["*"]}, "bad_text"),
]


async def test_wrong_input_is_refused_naming_it_and_nothing_is_stored(portal_client, portal_db):
    ada = await signed_in(portal_client, "ada@example.com")
    for body, code in WRONG:  # one portal for every case: each is one request
        response = await (ada.post("/api/webhooks", data=b"{nope") if body is None
                          else ada.post("/api/webhooks", json=body))
        error = (await response.json())["error"]
        assert (response.status, error["code"]) == (400, code), (body, error)
        assert error["message"]
    assert run_sql(portal_db, "SELECT count(*) FROM webhook_endpoints") == [(0,)]


async def test_the_longest_list_of_types_is_accepted(portal_client, captured_events):
    ada = await signed_in(portal_client, "ada@example.com")
    types = [f"t{chr(97 + n // 26)}{chr(97 + n % 26)}." + "x" * 60 for n in range(50)]  # 50 types of 64 characters
    created = await ada.post("/api/webhooks", json={"url": "http://127.0.0.1:9/", "events": types})
    assert created.status == 201, await created.text()
    assert (await captured_events.wait_for("webhook.created")).data["events"] == types


@pytest.mark.portal(env={"WEBHOOKS_MAX_ENDPOINTS": "2"})
async def test_a_customer_may_have_only_so_many_endpoints(portal_client, receiver):
    ada = await signed_in(portal_client, "ada@example.com")
    for _ in range(2):
        assert (await create(ada, receiver.url)).status == 201
    refused = await create(ada, receiver.url)
    assert refused.status == 409 and "WEBHOOKS_MAX_ENDPOINTS" in (await refused.json())["error"]["message"]
    bob = await signed_in(portal_client, "bob@example.com")  # the limit is per customer
    assert (await create(bob, receiver.url)).status == 201


async def test_another_customers_endpoint_answers_like_a_missing_one(portal_client, receiver, portal_db):
    ada = await signed_in(portal_client, "ada@example.com")
    bob = await signed_in(portal_client, "bob@example.com")
    endpoint = await (await create(ada, receiver.url)).json()
    for method, path in [("DELETE", f"/api/webhooks/{endpoint['id']}"), ("POST", f"/api/webhooks/{endpoint['id']}/test"),
                         ("GET", f"/api/webhooks/{endpoint['id']}/deliveries"), ("DELETE", "/api/webhooks/not-a-uuid"),
                         ("POST", "/api/webhooks/not-a-uuid/test")]:
        response = await bob.request(method, path)
        assert response.status == 404, (method, path)
        assert (await response.json())["error"] == {"code": "not_found", "message": "no such webhook"}
    assert (await (await bob.get("/api/webhooks")).json()) == {"webhooks": []}
    assert run_sql(portal_db, "SELECT count(*) FROM webhook_endpoints") == [(1,)]
    assert receiver.received == []


async def test_the_api_needs_a_signed_in_customer_and_the_session_needs_its_csrf_token(portal_client, receiver):
    assert (await portal_client.get("/api/webhooks")).status == 401
    assert (await portal_client.post("/api/webhooks", json={"url": receiver.url, "events": ["*"]})).status == 401
    ada = await signed_in(portal_client, "ada@example.com")
    response = await ada.post("/api/webhooks", json={"url": receiver.url, "events": ["*"]}, csrf=False)
    assert response.status == 403 and (await response.json())["error"]["code"] == "csrf"


async def test_the_page_lists_endpoints_with_their_log_and_adds_one_showing_its_secret_once(portal_client, receiver):
    ada = await signed_in(portal_client, "ada@example.com")
    page = await ada.get("/account/webhooks")
    text = await page.text()
    assert page.status == 200 and "You have no webhook endpoints yet." in text
    assert 'href="/account/webhooks"' in text  # the header's nav link, in the portal's layout
    me = await (await ada.get("/api/me")).json()
    assert {"label": "Webhooks", "href": "/account/webhooks"} in me["nav"]
    added = await ada.post("/account/webhooks", data={"url": receiver.url, "events": "artifact.created, *",
                                                      "csrf_token": ada.csrf}, csrf=False)
    text = await added.text()
    assert added.status == 201 and 'id="webhook-secret">whsec_' in text
    endpoint = (await (await ada.get("/api/webhooks")).json())["webhooks"][0]
    assert endpoint["events"] == ["artifact.created", "*"]
    assert (await ada.post(f"/account/webhooks/{endpoint['id']}/test", data={"csrf_token": ada.csrf}, csrf=False)).status == 302
    await receiver.wait_for(1)
    for _ in range(100):  # the attempt is logged just after the receiver answered
        text = await (await ada.get("/account/webhooks")).text()
        if "webhook.test" in text:
            break
        await asyncio.sleep(0.05)
    assert "webhook.test" in text and "<td>200</td>" in text and "whsec_" not in text
    refused = await ada.post("/account/webhooks", data={"url": "gopher://x", "events": "*", "csrf_token": ada.csrf},
                             csrf=False)
    assert refused.status == 400 and "http:// or https://" in await refused.text()
    forged = await ada.post(f"/account/webhooks/{endpoint['id']}/delete", data={}, csrf=False)
    assert forged.status == 403
    assert (await ada.post(f"/account/webhooks/{endpoint['id']}/delete", data={"csrf_token": ada.csrf},
                           csrf=False)).status == 302
    assert (await (await ada.get("/api/webhooks")).json()) == {"webhooks": []}
