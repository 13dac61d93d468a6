"""API tokens: created with a session (shown once), listed without secrets, revoked. Stored hashed."""

from __future__ import annotations

import secrets
import uuid

from aiohttp import web

from .. import keys
from ..events import record
from ..openapi import operation
from .errors import bad_request, not_found
from .sessions import TOKEN_PREFIX, authenticate, digest

MAX_NAME = 100
TOKEN = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
    "created_at": {"type": "string", "format": "date-time"}, "last_used_at": {"type": ["string", "null"], "format": "date-time"}}}


def token_json(row) -> dict:
    return {"id": str(row[0]), "name": row[1], "created_at": row[2].isoformat(),
            "last_used_at": row[3].isoformat() if row[3] else None}


async def _json_body(request: web.Request) -> dict:
    try:
        body = await request.json()
    except ValueError:
        raise bad_request('send a JSON object, e.g. {"name": "ci"}') from None
    if not isinstance(body, dict):
        raise bad_request('send a JSON object, e.g. {"name": "ci"}')
    return body


@operation("Create an API token; the secret is in the answer, once", tags=["tokens"], auth="session",
           body={"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": MAX_NAME}}},
           responses={201: "Created"},
           response={**TOKEN, "properties": {**TOKEN["properties"], "token": {"type": "string"}}})
async def create_token(request: web.Request) -> web.Response:
    # Token management needs a signed-in browser: a leaked token must not be able to mint more.
    principal = await authenticate(request, allow_token=False)
    name = (await _json_body(request)).get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise bad_request(f"'name' must be a non-empty string of at most {MAX_NAME} characters", code="bad_name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user_id = principal.user.id
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash) VALUES (%s, %s, %s) "
                "RETURNING id, name, created_at, last_used_at",
                (user_id, name.strip(), digest(secret)))
            row = await cur.fetchone()
            await record(cur, "token.created", actor_id=user_id, owner_id=user_id, subject_id=row[0],
                         data={"name": row[1]})
    return web.json_response({**token_json(row), "token": secret}, status=201)


@operation("List your API tokens (never their secrets)", tags=["tokens"], auth="session",
           response={"type": "object", "properties": {"tokens": {"type": "array", "items": TOKEN}}})
async def list_tokens(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = %s "
                          "ORDER BY created_at DESC", (principal.user.id,))
        rows = await cur.fetchall()
    return web.json_response({"tokens": [token_json(row) for row in rows]})


@operation("Revoke an API token at once", tags=["tokens"], auth="session", responses={204: "Revoked"})
async def revoke_token(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    try:
        token_id = str(uuid.UUID(request.match_info["id"]))
    except ValueError:
        raise not_found("token") from None
    user_id = principal.user.id
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("DELETE FROM api_tokens WHERE id = %s AND user_id = %s RETURNING id, name",
                              (token_id, user_id))
            row = await cur.fetchone()
            if row is not None:
                await record(cur, "token.revoked", actor_id=user_id, owner_id=user_id, subject_id=row[0],
                             data={"name": row[1]})
    if row is None:
        raise not_found("token")
    return web.Response(status=204)
