"""API tokens: created with a session (shown once), listed without secrets, revoked. Stored hashed.

A token carries scopes (artifacts:read, artifacts:write, admin; both artifact scopes by default) and may
expire (``expires_in`` seconds). Only an admin can create an admin token; using a token outside its scopes
is 403, after its expiry 401 (portal_core.web.sessions.admit). Housekeeping deletes a token
:data:`EXPIRED_KEPT_DAYS` after it expired (until then it still answers "expired" and stays listed).
"""

from __future__ import annotations

import secrets
import uuid

from aiohttp import web

from .. import keys
from ..events import record
from ..openapi import operation
from .errors import bad_request, forbidden, not_found
from .inputs import json_object, optional_int, required_text
from .sessions import ADMIN, DEFAULT_SCOPES, SCOPES, TOKEN_PREFIX, authenticate, digest

MAX_NAME = 100
# Ten years: long enough for any real use, short enough that the timestamp arithmetic stays ordinary.
MAX_EXPIRES_IN = 10 * 365 * 86400
MIN_EXPIRES_IN = 60
# An expired token is kept this long, so its holder still reads "this API token expired at …" (not an
# unknown token) and the account page still lists it; then housekeeping deletes it.
EXPIRED_KEPT_DAYS = 30
TOKEN = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"},
    "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)}},
    "created_at": {"type": "string", "format": "date-time"},
    "last_used_at": {"type": ["string", "null"], "format": "date-time"},
    "expires_at": {"type": ["string", "null"], "format": "date-time"}}}
TOKEN_COLUMNS = "id, name, created_at, last_used_at, scopes, expires_at"


def token_json(row) -> dict:
    return {"id": str(row[0]), "name": row[1], "created_at": row[2].isoformat(),
            "last_used_at": row[3].isoformat() if row[3] else None, "scopes": list(row[4]),
            "expires_at": row[5].isoformat() if row[5] else None}


def parse_scopes(body: dict) -> list[str]:
    """``body["scopes"]``: a non-empty list of known scopes (default both artifact scopes); 400 otherwise."""
    raw = body.get("scopes")
    if raw is None:
        return list(DEFAULT_SCOPES)
    if not isinstance(raw, list) or not raw or not all(isinstance(s, str) for s in raw):
        raise bad_request(f"'scopes' must be a non-empty list of: {', '.join(SCOPES)}", code="bad_scopes")
    unknown = [s for s in raw if s not in SCOPES]
    if unknown:
        raise bad_request(f"unknown scope(s) {', '.join(map(repr, unknown))}; 'scopes' may hold: {', '.join(SCOPES)}",
                          code="bad_scopes")
    return [s for s in SCOPES if s in raw]  # canonical order, no repeats


@operation("Create an API token; the secret is in the answer, once", tags=["tokens"], auth="session",
           body={"type": "object", "required": ["name"], "properties": {
               "name": {"type": "string", "maxLength": MAX_NAME},
               "scopes": {"type": "array", "items": {"type": "string", "enum": list(SCOPES)},
                          "description": "default: artifacts:read and artifacts:write; admin only for admins"},
               "expires_in": {"type": "integer", "minimum": MIN_EXPIRES_IN, "maximum": MAX_EXPIRES_IN,
                              "description": "seconds until the token stops working (default: never)"}}},
           responses={201: "Created", 403: "The admin scope was asked for by someone who is not an admin"},
           response={**TOKEN, "properties": {**TOKEN["properties"], "token": {"type": "string"}}})
async def create_token(request: web.Request) -> web.Response:
    # Token management needs a signed-in browser: a leaked token must not be able to mint more.
    principal = await authenticate(request, allow_token=False)
    body = await json_object(request, '{"name": "ci", "scopes": ["artifacts:read"], "expires_in": 86400}')
    name = required_text(body, "name", max_length=MAX_NAME)
    scopes = parse_scopes(body)
    expires_in = optional_int(body, "expires_in", minimum=MIN_EXPIRES_IN, maximum=MAX_EXPIRES_IN)
    if ADMIN in scopes and not principal.user.is_admin:
        raise forbidden("only administrators can create a token with the 'admin' scope", code="admin_scope")
    secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
    user_id = principal.user.id
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute(
                "INSERT INTO api_tokens (user_id, name, token_hash, scopes, expires_at) "
                "VALUES (%s, %s, %s, %s, now() + make_interval(secs => %s)) "
                f"RETURNING {TOKEN_COLUMNS}",
                (user_id, name, digest(secret), scopes, expires_in))
            row = await cur.fetchone()
            await record(cur, "token.created", actor_id=user_id, owner_id=user_id, subject_id=row[0],
                         data={"name": row[1], "scopes": scopes, "expires_in": expires_in})
    return web.json_response({**token_json(row), "token": secret}, status=201)


@operation("List your API tokens (never their secrets)", tags=["tokens"], auth="session",
           response={"type": "object", "properties": {"tokens": {"type": "array", "items": TOKEN}}})
async def list_tokens(request: web.Request) -> web.Response:
    principal = await authenticate(request, allow_token=False)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = %s "
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


async def purge_expired_tokens(pool, *, kept_days: int = EXPIRED_KEPT_DAYS) -> int:
    """Delete API tokens that expired more than ``kept_days`` ago (they can never work again); returns how many."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("DELETE FROM api_tokens WHERE expires_at < now() - make_interval(days => %s)", (kept_days,))
        return cur.rowcount
