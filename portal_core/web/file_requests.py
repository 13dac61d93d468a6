"""File requests, the owner's side: a link (``/r/<token>``) through which people without an account send
files into the owner's artifacts. Create one, list them with what arrived, close one.

The link is in the answer to POST once; only the token's SHA-256 is kept. The guest's page is in
:mod:`portal_core.web.request_pages`.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid

from aiohttp import web

from .. import keys
from ..events import record
from ..openapi import operation
from .errors import not_found
from .inputs import json_object, optional_int, required_text
from .links import RULES, check_fields, expires_in, link, new_token, owner_plan, plan_refusal, rules_json
from .sessions import authenticate

MAX_TITLE = 200
MAX_FILES = 10_000
MAX_BYTES = 2**62
FIELDS = ("title", "expires_in", "max_bytes", "max_files")
REQUEST_COLUMNS = ("r.id, r.title, r.expires_at, r.max_bytes, r.max_files, r.received_files, r.received_bytes, "
                   "r.closed_at, r.created_at, now()")
RECEIVED = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "size": {"type": "integer"},
    "created_at": {"type": "string", "format": "date-time"}}}
REQUEST = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "title": {"type": "string"},
    "expires_at": {"type": "string", "format": "date-time"},
    "max_bytes": {"type": ["integer", "null"]}, "max_files": {"type": ["integer", "null"]},
    "received_files": {"type": "integer"}, "received_bytes": {"type": "integer"},
    "closed_at": {"type": ["string", "null"], "format": "date-time"}, "created_at": {"type": "string", "format": "date-time"},
    "state": {"type": "string", "enum": ["open", "closed", "expired", "full"]},
    "files": {"type": "array", "items": RECEIVED, "description": "the received files still in your artifacts"}}}


def request_state(expires_at: dt.datetime, max_bytes: int | None, max_files: int | None, received_files: int,
                  received_bytes: int, closed_at: dt.datetime | None, now: dt.datetime) -> str:
    """Whether a request takes files, and if not why: closed by its owner, expired, or every cap reached."""
    if closed_at is not None:
        return "closed"
    if expires_at <= now:
        return "expired"
    if (max_files is not None and received_files >= max_files) or (max_bytes is not None and received_bytes >= max_bytes):
        return "full"
    return "open"


def request_json(row, files: list | None = None) -> dict:
    request_id, title, expires_at, max_bytes, max_files, received_files, received_bytes, closed_at, created_at, now = row
    return {"id": str(request_id), "title": title, "expires_at": expires_at.isoformat(), "max_bytes": max_bytes,
            "max_files": max_files, "received_files": received_files, "received_bytes": received_bytes,
            "closed_at": closed_at.isoformat() if closed_at else None, "created_at": created_at.isoformat(),
            "state": request_state(expires_at, max_bytes, max_files, received_files, received_bytes, closed_at, now),
            "files": files or []}


@operation("Create a file request: a link through which anyone can send files into your artifacts until it "
           "expires, is closed or reaches its caps", tags=["file requests"],
           body={"type": "object", "required": ["title"], "properties": {
               "title": {"type": "string", "maxLength": MAX_TITLE, "description": "shown to the people sending files"},
               "expires_in": {"type": "integer", "minimum": 60, "description": "seconds; default 7 days"},
               "max_bytes": {"type": ["integer", "null"], "minimum": 1, "description": "bytes in all, every file together"},
               "max_files": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_FILES}}},
           responses={201: "Created; the URL is in this answer only", 403: "Refused by the plan's rules "
                      "(code plan_rule: the message names the rule and the upgrade)"},
           response={**REQUEST, "properties": {**REQUEST["properties"], "url": {"type": "string"}}})
async def create_request(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user = principal.user
    app = request.app
    body = await json_object(request, '{"title": "Photos from the trip", "max_files": 20}')
    check_fields(body, FIELDS)
    plan, rules = await owner_plan(app, user)
    if not rules.file_requests:
        raise plan_refusal(app, plan, "does not include file requests", lambda better: better.file_requests)
    title = required_text(body, "title", max_length=MAX_TITLE)
    seconds = expires_in(app, body, plan, rules)
    max_bytes = optional_int(body, "max_bytes", minimum=1, maximum=MAX_BYTES)
    max_files = optional_int(body, "max_files", minimum=1, maximum=MAX_FILES)
    token, digest = new_token()
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute(
                f"""WITH r AS (
                        INSERT INTO file_requests (owner_id, token_hash, title, expires_at, max_bytes, max_files)
                        VALUES (%s, %s, %s, now() + make_interval(secs => %s), %s, %s) RETURNING *)
                    SELECT {REQUEST_COLUMNS} FROM r""",
                (user.id, digest, title, seconds, max_bytes, max_files))
            created = request_json(await cur.fetchone())
            await record(cur, "request.created", actor_id=user.id, owner_id=user.id, subject_id=created["id"],
                         data={"title": title, "expires_at": created["expires_at"], "max_bytes": max_bytes,
                               "max_files": max_files})
    return web.json_response({**created, "url": link(request, "r", token)}, status=201,
                             headers={"Cache-Control": "no-store"})


@operation("Your file requests, newest first, with the files each has received, and your plan's rules",
           tags=["file requests"],
           response={"type": "object", "properties": {"requests": {"type": "array", "items": REQUEST}, "rules": RULES}})
async def list_requests(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            f"""SELECT {REQUEST_COLUMNS},
                       (SELECT COALESCE(json_agg(json_build_object('id', a.id, 'name', a.name, 'size', a.size,
                                                                   'created_at', a.created_at)
                                                 ORDER BY a.created_at, a.id), '[]')
                        FROM artifacts a WHERE a.file_request_id = r.id)
                FROM file_requests r WHERE r.owner_id = %s ORDER BY r.created_at DESC, r.id""",
            (principal.user.id,))
        rows = await cur.fetchall()
    plan, rules = await owner_plan(request.app, principal.user)
    requests = [request_json(row[:10], [_received(f) for f in (json.loads(row[10]) if isinstance(row[10], str) else row[10])])
                for row in rows]
    return web.json_response({"requests": requests, "rules": rules_json(plan, rules)})


def _received(doc: dict) -> dict:
    # json_build_object writes timestamps without the offset's colon form Python writes; normalise them.
    return {"id": str(doc["id"]), "name": doc["name"], "size": doc["size"],
            "created_at": dt.datetime.fromisoformat(doc["created_at"]).isoformat()}


@operation("Close a file request at once: its page then says it takes no more files", tags=["file requests"],
           responses={204: "Closed"})
async def close_request(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user_id = principal.user.id
    try:
        request_id = str(uuid.UUID(request.match_info["id"]))
    except ValueError:
        raise not_found("file request") from None
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT closed_at IS NULL, title, received_files FROM file_requests "
                              "WHERE id = %s AND owner_id = %s FOR UPDATE", (request_id, user_id))
            row = await cur.fetchone()
            if row is None:
                raise not_found("file request")
            if row[0]:  # closing twice is fine, and recorded once
                await cur.execute("UPDATE file_requests SET closed_at = now() WHERE id = %s", (request_id,))
                await record(cur, "request.closed", actor_id=user_id, owner_id=user_id, subject_id=request_id,
                             data={"title": row[1], "received_files": row[2]})
    return web.Response(status=204)


def routes() -> list[web.AbstractRouteDef]:
    return [
        web.post("/api/requests", create_request),
        web.get("/api/requests", list_requests),
        web.delete("/api/requests/{id}", close_request),
    ]
