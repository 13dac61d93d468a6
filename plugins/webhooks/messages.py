"""What a delivery looks like on the wire: the Standard Webhooks message, its signature and its queueing.

https://www.standardwebhooks.com: the body is ``{"type", "timestamp", "data"}``; the headers are
``webhook-id`` (the same on every attempt, for de-duplication), ``webhook-timestamp`` (the attempt's Unix
time) and ``webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` keyed with the endpoint's
secret (``whsec_`` + base64 of its bytes). Any Standard Webhooks library verifies it.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import secrets
import uuid
from collections.abc import Mapping
from typing import Any

from portal_core.events import Event

SECRET_PREFIX = "whsec_"
TEST_TYPE = "webhook.test"
# Events whose type an endpoint asked for ("*" asks for every type).
ALL_TYPES = "*"


def new_secret() -> str:
    """A fresh signing secret: whsec_ and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The ``webhook-signature`` header's value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")


def body_for(type: str, occurred_at: dt.datetime, data: Mapping[str, Any]) -> str:
    return json.dumps({"type": type, "timestamp": _utc(occurred_at), "data": data}, separators=(",", ":"),
                      ensure_ascii=False, default=str)


def event_message(event: Event) -> tuple[str, str]:
    """(message id, body) for an event. ``data`` carries the event's fields; never the client's IP or user
    agent (they may be someone else's), and the event's own data never holds a secret (the core refuses it)."""
    data = {"event_id": event.id, "actor_id": event.actor_id, "owner_id": event.owner_id,
            "subject_id": event.subject_id, "request_id": event.request_id, "details": dict(event.data)}
    return f"msg_{event.id}", body_for(event.type, event.occurred_at, data)


def ping_message(endpoint_id: str, user_id: int) -> tuple[str, str]:
    """(message id, body) of the ``webhook.test`` message POST /api/webhooks/{id}/test sends."""
    message_id = f"msg_test_{uuid.uuid4().hex}"
    data = {"endpoint_id": endpoint_id, "owner_id": user_id,
            "details": {"message": "A test delivery from the portal: your endpoint received it."}}
    return message_id, body_for(TEST_TYPE, dt.datetime.now(dt.timezone.utc), data)


async def queue_event(cur, event: Event) -> int:
    """Queue ``event`` for every endpoint of its owner that asked for its type; how many were queued.

    Only the owner's endpoints: an event reaches a customer's webhooks only when it is about their own
    account or data; and only endpoints that existed when it happened (the outbox may hand over an older
    event after an endpoint was added). Queueing the same event twice queues it once (portal_event is at
    least once).
    """
    if event.owner_id is None:
        return 0
    message_id, body = event_message(event)
    await cur.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, body, next_attempt_at) "
        "SELECT id, %(message_id)s, %(type)s, %(body)s, now() FROM webhook_endpoints "
        "WHERE user_id = %(owner)s AND (%(type)s = ANY (event_types) OR %(all)s = ANY (event_types)) "
        "AND created_at <= %(occurred_at)s "
        "ON CONFLICT (endpoint_id, message_id) DO NOTHING",
        {"message_id": message_id, "type": event.type, "body": body, "owner": event.owner_id, "all": ALL_TYPES,
         "occurred_at": event.occurred_at})
    return cur.rowcount


async def queue_test(cur, endpoint_id: str, user_id: int) -> tuple[int, str]:
    """Queue a ``webhook.test`` message for one endpoint; (delivery id, message id)."""
    message_id, body = ping_message(endpoint_id, user_id)
    await cur.execute(
        "INSERT INTO webhook_deliveries (endpoint_id, message_id, event_type, body, next_attempt_at) "
        "VALUES (%s, %s, %s, %s, now()) RETURNING id", (endpoint_id, message_id, TEST_TYPE, body))
    return (await cur.fetchone())[0], message_id
