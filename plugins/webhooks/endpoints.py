"""A customer's webhook endpoints: create (checked and recorded), list, delete, test, and their delivery log.

Shared by the JSON API (api.py) and the page (pages.py), so both refuse the same things the same way.
Every query is scoped to the customer: another customer's endpoint answers exactly like a missing one.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Any

from aiohttp import web

from portal_core import keys
from portal_core.events import record
from portal_core.interfaces import User
from portal_core.web.errors import ApiError, bad_request, not_found

from .messages import ALL_TYPES, new_secret, queue_test
from .settings import WebhooksSettings
from .ssrf import UrlRefused, check_url, parse_url

SECTION = "webhooks"
# 50 types of up to 64 characters keep the webhook.created event's data under the core's 4 KiB.
MAX_TYPES = 50
MAX_TYPE = 64
_TYPE = re.compile(r"^[a-z][a-z_]*\.[a-z][a-z_]*$")
LOG_LIMIT = 50


def settings_of(app: web.Application) -> WebhooksSettings:
    return app[keys.CONFIG].sections[SECTION]


def event_types(value: Any) -> list[str]:
    """The event types an endpoint asks for: a non-empty list of types ("artifact.created") or "*"."""
    if not isinstance(value, list) or not value or len(value) > MAX_TYPES:
        raise bad_request(f"'events' must be a list of 1 to {MAX_TYPES} event types, e.g. [\"artifact.created\"], "
                          f"or [\"{ALL_TYPES}\"] for every type (docs/events.md lists them)", code="bad_events")
    types: list[str] = []
    for item in value:
        if not isinstance(item, str) or not (item == ALL_TYPES or (_TYPE.match(item) and len(item) <= MAX_TYPE)):
            raise bad_request(f"'events' holds {item!r}, which is not an event type such as \"artifact.created\"",
                              code="bad_events")
        if item not in types:
            types.append(item)
    return types


def endpoint_json(row: Sequence[Any]) -> dict[str, Any]:
    endpoint_id, url, types, created_at = row[:4]
    return {"id": str(endpoint_id), "url": url, "events": list(types), "created_at": created_at.isoformat()}


def _uuid(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise not_found("webhook") from None


async def create(app: web.Application, user: User, url: str, types: list[str]) -> dict[str, Any]:
    """Register an endpoint after checking its URL (a public address unless WEBHOOKS_ALLOW_PRIVATE); the
    answer holds the signing secret, which is never shown again."""
    settings = settings_of(app)
    try:
        await check_url(url, allow_private=settings.allow_private)
    except UrlRefused as exc:
        raise ApiError(400 if exc.code == "bad_url" else 422, exc.code, str(exc)) from None
    host = parse_url(url)[1]
    secret = new_secret()
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            # One customer's endpoints are counted under their row's lock: two creations cannot both squeeze in.
            await cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user.id,))
            await cur.execute("SELECT count(*) FROM webhook_endpoints WHERE user_id = %s", (user.id,))
            if (await cur.fetchone())[0] >= settings.max_endpoints:
                raise ApiError(409, "too_many_webhooks", f"you have {settings.max_endpoints} webhook endpoints "
                               "already (WEBHOOKS_MAX_ENDPOINTS): delete one first")
            await cur.execute(
                "INSERT INTO webhook_endpoints (id, user_id, url, event_types, secret) VALUES (%s, %s, %s, %s, %s) "
                "RETURNING id, url, event_types, created_at", (str(uuid.uuid4()), user.id, url, types, secret))
            row = await cur.fetchone()
            await record(cur, "webhook.created", actor_id=user.id, owner_id=user.id, subject_id=row[0],
                         data={"host": host, "events": types})
    return {**endpoint_json(row), "secret": secret}


async def list_for(app: web.Application, user: User) -> list[dict[str, Any]]:
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id, url, event_types, created_at FROM webhook_endpoints WHERE user_id = %s "
                          "ORDER BY created_at, id", (user.id,))
        return [endpoint_json(row) for row in await cur.fetchall()]


async def delete(app: web.Application, user: User, endpoint_id: str) -> None:
    """Remove an endpoint with its queue and log; 404 when it is not this customer's."""
    endpoint_id = _uuid(endpoint_id)
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("DELETE FROM webhook_endpoints WHERE id = %s AND user_id = %s RETURNING url",
                              (endpoint_id, user.id))
            row = await cur.fetchone()
            if row is None:
                raise not_found("webhook")
            await record(cur, "webhook.deleted", actor_id=user.id, owner_id=user.id, subject_id=endpoint_id,
                         data={"host": parse_url(row[0])[1]})


async def send_test(app: web.Application, user: User, endpoint_id: str) -> dict[str, Any]:
    """Queue a ``webhook.test`` message for one of this customer's endpoints (whatever types it asked for)."""
    endpoint_id = _uuid(endpoint_id)
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT 1 FROM webhook_endpoints WHERE id = %s AND user_id = %s", (endpoint_id, user.id))
            if await cur.fetchone() is None:
                raise not_found("webhook")
            delivery_id, message_id = await queue_test(cur, endpoint_id, user.id)
    wake(app)
    return {"delivery_id": delivery_id, "message_id": message_id}


async def attempts(app: web.Application, user: User, endpoint_id: str, limit: int = LOG_LIMIT) -> list[dict[str, Any]]:
    """The endpoint's delivery log, newest first; 404 when it is not this customer's."""
    endpoint_id = _uuid(endpoint_id)
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT 1 FROM webhook_endpoints WHERE id = %s AND user_id = %s", (endpoint_id, user.id))
        if await cur.fetchone() is None:
            raise not_found("webhook")
        await cur.execute(
            "SELECT a.attempted_at, a.attempt, a.status_code, a.duration_ms, a.error, d.event_type, d.message_id, "
            "d.state, a.response FROM webhook_attempts a JOIN webhook_deliveries d ON d.id = a.delivery_id "
            "WHERE a.endpoint_id = %s ORDER BY a.attempted_at DESC, a.id DESC LIMIT %s", (endpoint_id, limit))
        rows = await cur.fetchall()
    return [{"attempted_at": r[0].isoformat(), "attempt": r[1], "status": r[2], "duration_ms": r[3], "error": r[4],
             "event_type": r[5], "message_id": r[6], "state": r[7], "response": r[8]} for r in rows]


def wake(app: web.Application) -> None:
    """Wake this process's deliverer (something was queued)."""
    from .deliver import DELIVERER

    deliverer = app.get(DELIVERER)
    if deliverer is not None:
        deliverer.wake()
