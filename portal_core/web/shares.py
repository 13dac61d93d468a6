"""Share links, the owner's side: create one for an artifact, list them, revoke one.

The link (``/s/<token>``) is in the answer to POST once; only the token's SHA-256 is kept. What a
visitor sees is in :mod:`portal_core.web.share_pages`.
"""

from __future__ import annotations

import datetime as dt
import uuid

from aiohttp import web

from .. import keys
from ..events import record
from ..openapi import operation
from .artifacts import artifact_id
from .errors import not_found
from .inputs import json_object, optional_int
from .links import (RULES, check_fields, expires_in, hash_password_async, link, new_token, optional_password,
                    owner_plan, plan_refusal, rules_json)
from .sessions import authenticate

MAX_DOWNLOADS = 1_000_000
SHARE_COLUMNS = ("s.id, s.artifact_id, s.artifact_name, s.expires_at, s.max_downloads, s.downloads, "
                 "s.password_hash IS NOT NULL, s.revoked_at, s.created_at, now()")
SHARE = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "artifact_id": {"type": ["string", "null"], "format": "uuid"},
    "name": {"type": "string"}, "expires_at": {"type": "string", "format": "date-time"},
    "max_downloads": {"type": ["integer", "null"]}, "downloads": {"type": "integer"},
    "has_password": {"type": "boolean"}, "revoked_at": {"type": ["string", "null"], "format": "date-time"},
    "created_at": {"type": "string", "format": "date-time"},
    "state": {"type": "string", "enum": ["active", "expired", "revoked", "exhausted", "deleted"]}}}
FIELDS = ("expires_in", "password", "max_downloads")


def share_state(artifact_id, expires_at: dt.datetime, max_downloads: int | None, downloads: int,
                revoked_at: dt.datetime | None, now: dt.datetime) -> str:
    """Why a link works or not, in the order a visitor is told: the file deleted, revoked, expired, used up."""
    if artifact_id is None:
        return "deleted"
    if revoked_at is not None:
        return "revoked"
    if expires_at <= now:
        return "expired"
    if max_downloads is not None and downloads >= max_downloads:
        return "exhausted"
    return "active"


def share_json(row) -> dict:
    share_id, art_id, name, expires_at, max_downloads, downloads, has_password, revoked_at, created_at, now = row
    return {"id": str(share_id), "artifact_id": str(art_id) if art_id else None, "name": name,
            "expires_at": expires_at.isoformat(), "max_downloads": max_downloads, "downloads": downloads,
            "has_password": has_password, "revoked_at": revoked_at.isoformat() if revoked_at else None,
            "created_at": created_at.isoformat(),
            "state": share_state(art_id, expires_at, max_downloads, downloads, revoked_at, now)}


@operation("Create a share link for an artifact: anyone with the URL can download it until it expires, is "
           "revoked or reaches its download limit", tags=["shares"],
           body={"type": "object", "properties": {
               "expires_in": {"type": "integer", "minimum": 60, "description": "seconds; default 7 days"},
               "password": {"type": ["string", "null"], "maxLength": 256},
               "max_downloads": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_DOWNLOADS}}},
           body_required=False,
           responses={201: "Created; the URL is in this answer only", 403: "Refused by the plan's rules "
                      "(code plan_rule: the message names the rule and the upgrade)"},
           response={**SHARE, "properties": {**SHARE["properties"], "url": {"type": "string"}}})
async def create_share(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user = principal.user
    app = request.app
    target = artifact_id(request)
    body = await json_object(request, '{"expires_in": 86400, "max_downloads": 5}') if request.body_exists else {}
    check_fields(body, FIELDS)
    plan, rules = await owner_plan(app, user)
    seconds = expires_in(app, body, plan, rules)
    password = optional_password(body)
    max_downloads = optional_int(body, "max_downloads", minimum=1, maximum=MAX_DOWNLOADS)
    if password is not None and not rules.share_passwords:
        raise plan_refusal(app, plan, "does not allow passwords on share links", lambda better: better.share_passwords)
    password_hash = await hash_password_async(password) if password is not None else None
    token, digest = new_token()
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            # One statement: the artifact must be the caller's, and the foreign key holds it until commit.
            await cur.execute(
                f"""WITH s AS (
                        INSERT INTO shares (owner_id, artifact_id, token_hash, artifact_name, password_hash,
                                            expires_at, max_downloads)
                        SELECT owner_id, id, %s, name, %s, now() + make_interval(secs => %s), %s
                        FROM artifacts WHERE id = %s AND owner_id = %s
                        RETURNING *)
                    SELECT {SHARE_COLUMNS} FROM s""",
                (digest, password_hash, seconds, max_downloads, target, user.id))
            row = await cur.fetchone()
            if row is None:
                raise not_found()
            share = share_json(row)
            await record(cur, "share.created", actor_id=user.id, owner_id=user.id, subject_id=share["id"],
                         data={"artifact_id": share["artifact_id"], "name": share["name"],
                               "expires_at": share["expires_at"], "max_downloads": max_downloads,
                               "has_password": password is not None})
    return web.json_response({**share, "url": link(request, "s", token)}, status=201,
                             headers={"Cache-Control": "no-store"})


@operation("Your share links, newest first, with their downloads and state, and your plan's rules for them",
           tags=["shares"],
           response={"type": "object", "properties": {"shares": {"type": "array", "items": SHARE}, "rules": RULES}})
async def list_shares(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"SELECT {SHARE_COLUMNS} FROM shares s WHERE s.owner_id = %s "
                          "ORDER BY s.created_at DESC, s.id", (principal.user.id,))
        rows = await cur.fetchall()
    plan, rules = await owner_plan(request.app, principal.user)
    return web.json_response({"shares": [share_json(row) for row in rows], "rules": rules_json(plan, rules)})


@operation("Revoke a share link at once (it then answers 410)", tags=["shares"], responses={204: "Revoked"})
async def revoke_share(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user_id = principal.user.id
    try:
        share_id = str(uuid.UUID(request.match_info["id"]))
    except ValueError:
        raise not_found("share link") from None
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT revoked_at IS NULL, artifact_id, artifact_name FROM shares "
                              "WHERE id = %s AND owner_id = %s FOR UPDATE", (share_id, user_id))
            row = await cur.fetchone()
            if row is None:
                raise not_found("share link")
            if row[0]:  # revoking twice is fine, and recorded once
                await cur.execute("UPDATE shares SET revoked_at = now() WHERE id = %s", (share_id,))
                await record(cur, "share.revoked", actor_id=user_id, owner_id=user_id, subject_id=share_id,
                             data={"artifact_id": str(row[1]) if row[1] else None, "name": row[2]})
    return web.Response(status=204)


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.post("/api/artifacts/{id}/shares", create_share),
        web.get("/api/shares", list_shares),
        web.delete("/api/shares/{id}", revoke_share),
    ]
