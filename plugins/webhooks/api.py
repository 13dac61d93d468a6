"""The webhooks API: POST/GET /api/webhooks, DELETE /api/webhooks/{id}, POST /api/webhooks/{id}/test and
GET /api/webhooks/{id}/deliveries. A session (with its CSRF token) or an API token; JSON errors naming the
input at fault; every route described for /api/openapi.json."""

from __future__ import annotations

from aiohttp import web

from portal_core.openapi import operation
from portal_core.web.inputs import json_object, required_text
from portal_core.web.sessions import authenticate

from . import endpoints
from .ssrf import MAX_URL

TAGS = ["webhooks"]
ENDPOINT = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "url": {"type": "string"},
    "events": {"type": "array", "items": {"type": "string"}}, "created_at": {"type": "string", "format": "date-time"}}}
ATTEMPT = {"type": "object", "properties": {
    "attempted_at": {"type": "string", "format": "date-time"}, "attempt": {"type": "integer"},
    "status": {"type": ["integer", "null"]}, "duration_ms": {"type": "integer"}, "error": {"type": "string"},
    "event_type": {"type": "string"}, "message_id": {"type": "string"},
    "state": {"type": "string", "enum": ["pending", "delivered", "failed"]},
    "response": {"type": "string", "description": "the start of the receiver's answer"}}}
EXAMPLE = '{"url": "https://example.com/hooks", "events": ["artifact.created"]}'


@operation("Register a webhook endpoint; the signing secret (whsec_...) is in the answer, once", tags=TAGS,
           description="Deliveries follow the Standard Webhooks specification (webhook-id, webhook-timestamp, "
                       "webhook-signature). The URL must reach a public address.",
           body={"type": "object", "required": ["url", "events"], "properties": {
               "url": {"type": "string", "maxLength": MAX_URL},
               "events": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                          "maxItems": endpoints.MAX_TYPES}}},
           responses={201: "Created", 409: "The customer has the most endpoints allowed",
                      422: "The URL's host is not a public address, or cannot be resolved"},
           response={**ENDPOINT, "properties": {**ENDPOINT["properties"], "secret": {"type": "string"}}})
async def create_webhook(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await json_object(request, EXAMPLE)
    url = required_text(body, "url", max_length=MAX_URL)
    types = endpoints.event_types(body.get("events"))
    return web.json_response(await endpoints.create(request.app, principal.user, url, types), status=201)


@operation("List your webhook endpoints (never their secrets)", tags=TAGS,
           response={"type": "object", "properties": {"webhooks": {"type": "array", "items": ENDPOINT}}})
async def list_webhooks(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    return web.json_response({"webhooks": await endpoints.list_for(request.app, principal.user)})


@operation("Remove a webhook endpoint, with its pending deliveries and its log", tags=TAGS,
           responses={204: "Removed"})
async def delete_webhook(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await endpoints.delete(request.app, principal.user, request.match_info["id"])
    return web.Response(status=204)


@operation("Send a webhook.test message to an endpoint (delivered, retried and logged like any other)",
           tags=TAGS, responses={202: "Queued"},
           response={"type": "object", "properties": {"delivery_id": {"type": "integer"},
                                                      "message_id": {"type": "string"}}})
async def send_test_webhook(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    return web.json_response(await endpoints.send_test(request.app, principal.user, request.match_info["id"]),
                             status=202)


@operation("An endpoint's delivery log, newest first: time, attempt, status code, duration", tags=TAGS,
           response={"type": "object", "properties": {"deliveries": {"type": "array", "items": ATTEMPT}}})
async def list_deliveries(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    log = await endpoints.attempts(request.app, principal.user, request.match_info["id"])
    return web.json_response({"deliveries": log})


def routes() -> list[web.AbstractRouteDef]:
    from . import pages

    return [
        web.post("/api/webhooks", create_webhook),
        web.get("/api/webhooks", list_webhooks),
        web.delete("/api/webhooks/{id}", delete_webhook),
        web.post("/api/webhooks/{id}/test", send_test_webhook),
        web.get("/api/webhooks/{id}/deliveries", list_deliveries),
        *pages.routes(),
    ]
