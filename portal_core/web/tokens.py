"""API tokens: created with a session (shown once), listed without secrets, revoked. Stored hashed."""

from __future__ import annotations

import secrets
import uuid

from aiohttp import web

from .. import keys
from .errors import bad_request, not_found
from .sessions import TOKEN_PREFIX, authenticate, digest

MAX_NAME = 100


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


async def create_token(request: web.Request) -> web.Response:
    # Token management needs a signed-in browser: a leaked token must not be able to mint more.
    principal = await authenticate(request, allow_token=False)
    name = (await _json_body(request)).get("name")
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME:
        raise bad_request(f"'name' must be a non-empty string of at most {MAX_NAME} characters", code="bad_name")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO api_tokens (user_id, name, token_hash) VALUES (%s, %s, %s) "
            "RETURNING id, name, created_at, last_used_at",
            (principal.user.id, name.strip(), digest(secret)))
        row = await cur.fetchone()
    return web.json_response({**token_json(row), "token": secret}, status=201)


async def list_tokens(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id, name, created_at, last_used_at FROM api_tokens WHERE user_id = %s "
                          "ORDER BY created_at DESC", (principal.user.id,))
        rows = await cur.fetchall()
    return web.json_response({"tokens": [token_json(row) for row in rows]})


async def revoke_token(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    try:
        token_id = str(uuid.UUID(request.match_info["id"]))
    except ValueError:
        raise not_found("token") from None
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("DELETE FROM api_tokens WHERE id = %s AND user_id = %s RETURNING id",
                          (token_id, principal.user.id))
        if await cur.fetchone() is None:
            raise not_found("token")
    return web.Response(status=204)
