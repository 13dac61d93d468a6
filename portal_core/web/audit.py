"""The audit trail: /api/admin/events (JSON pages), /api/admin/events.csv (streamed), and a customer's own
activity, /api/me/events. All of it reads the events table (portal_core/events.py).

The CSV is written in keyset batches of :data:`CSV_BATCH` rows, each sent before the next is read, so
the export of any number of events holds one batch in memory at a time.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import logging
import re

from aiohttp import web

from .. import keys
from ..events import EVENT_COLUMNS, Event
from ..openapi import operation
from .artifacts import parse_limit
from .errors import bad_request
from .inputs import check_text
from .sessions import ADMIN, authenticate

log = logging.getLogger("portal.audit")

CSV_BATCH = 1000
MAX_SUBJECT = 200
_TYPE_FILTER = re.compile(r"^[a-z][a-z_]*\.([a-z][a-z_]*|\*)$")
_COLUMNS = ", ".join(f"e.{column}" for column in EVENT_COLUMNS.split(", "))


def page_sql(where: list[str], limit: str, *, data_as_text: bool = False) -> str:
    """Newest first, keyset-paged: the page of events is picked first (the (type, id) / actor / owner / primary
    key indexes serve it), then joined to the emails, so each page costs the same however deep it is.
    ``data_as_text``: PostgreSQL writes the JSON (the export), so no row is parsed and re-encoded here."""
    columns = _COLUMNS.replace("e.data,", "e.data::text,") if data_as_text else _COLUMNS
    return f"""
        SELECT {columns}, ua.email, uo.email
        FROM (SELECT * FROM events e WHERE {' AND '.join(where) or 'true'} ORDER BY e.id DESC LIMIT {limit}) e
        LEFT JOIN users ua ON ua.id = e.actor_id LEFT JOIN users uo ON uo.id = e.owner_id
        ORDER BY e.id DESC"""


CSV_HEADER = ("id", "occurred_at", "type", "actor_id", "actor_email", "owner_id", "owner_email", "subject_id",
              "ip", "user_agent", "request_id", "data")
EVENT = {"type": "object", "properties": {
    "id": {"type": "integer"}, "type": {"type": "string"}, "occurred_at": {"type": "string", "format": "date-time"},
    "actor_id": {"type": ["integer", "null"]}, "actor_email": {"type": ["string", "null"]},
    "owner_id": {"type": ["integer", "null"]}, "owner_email": {"type": ["string", "null"]},
    "subject_id": {"type": ["string", "null"]}, "data": {"type": "object"}, "request_id": {"type": ["string", "null"]},
    "ip": {"type": ["string", "null"]}, "user_agent": {"type": ["string", "null"]}}}
FILTERS = {
    "type": {"type": "string", "description": "an event type (artifact.created) or every type of a noun (admin.*)"},
    "actor": {"type": "string", "description": "who did it: a user id or email"},
    "owner": {"type": "string", "description": "whose account or data it concerns: a user id or email"},
    "subject": {"type": "string", "description": "what it is about: an artifact, token or user id"},
    "since": {"type": "string", "format": "date-time"}, "until": {"type": "string", "format": "date-time"}}


def _timestamp(raw: str, name: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise bad_request(f"{name} must be an ISO 8601 time such as 2026-01-31T09:00:00Z", code=f"bad_{name}") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _who(raw: str, name: str, column: str, params: dict) -> str:
    raw = raw.strip()
    if raw.isdecimal() and len(raw) <= 18:
        params[name] = int(raw)
        return f"e.{column} = %({name})s"
    if "@" in raw and len(raw) <= 254:
        params[name] = check_text(raw, name)
        return f"e.{column} IN (SELECT id FROM users WHERE lower(email) = lower(%({name})s))"
    raise bad_request(f"{name} must be a user id or an email", code=f"bad_{name}")


def event_filters(query) -> tuple[list[str], dict]:
    """SQL conditions and parameters for ?type=&actor=&owner=&subject=&since=&until=; 400 naming a bad one."""
    where: list[str] = []
    params: dict = {}
    if kind := query.get("type", "").strip():
        if not _TYPE_FILTER.match(kind):
            raise bad_request("type must be an event type such as artifact.created, or noun.* (admin.*)",
                              code="bad_type")
        if kind.endswith(".*"):
            where.append("e.type LIKE %(type)s")
            params["type"] = kind[:-1] + "%"
        else:
            where.append("e.type = %(type)s")
            params["type"] = kind
    for name, column in (("actor", "actor_id"), ("owner", "owner_id")):
        if raw := query.get(name, "").strip():
            where.append(_who(raw, name, column, params))
    if subject := query.get("subject", "").strip():
        if len(subject) > MAX_SUBJECT:
            raise bad_request(f"subject must be at most {MAX_SUBJECT} characters", code="bad_subject")
        where.append("e.subject_id = %(subject)s")
        params["subject"] = check_text(subject, "subject")
    for name, op in (("since", ">="), ("until", "<")):
        if raw := query.get(name, "").strip():
            where.append(f"e.occurred_at {op} %({name})s")
            params[name] = _timestamp(raw, name)
    if "since" in params and "until" in params and params["since"] >= params["until"]:
        raise bad_request("since must be earlier than until (the trail from since up to, not including, until)",
                          code="bad_until")
    return where, params


def _row_json(row) -> dict:
    return {**Event.from_row(row).to_json(), "actor_email": row[10], "owner_email": row[11]}


def _cursor(raw: str | None) -> int | None:
    if not raw:
        return None
    if not raw.isdecimal() or len(raw) > 18:
        raise bad_request("the cursor is not one this API returned; start again without it", code="bad_cursor")
    return int(raw)


@operation("The audit trail, newest first, filtered (admins only)", tags=["admin"], auth="admin",
           query={**FILTERS, "limit": {"type": "integer", "minimum": 1, "maximum": 200},
                  "cursor": {"type": "string", "description": "next_cursor of the previous page"}},
           response={"type": "object", "properties": {"events": {"type": "array", "items": EVENT},
                                                      "next_cursor": {"type": ["string", "null"]}}})
async def list_events(request: web.Request) -> web.Response:
    await authenticate(request, scope=ADMIN)
    where, params = event_filters(request.query)
    limit = parse_limit(request.query.get("limit"))
    if (cursor := _cursor(request.query.get("cursor"))) is not None:
        where.append("e.id < %(cursor)s")
        params["cursor"] = cursor
    params["limit"] = limit + 1
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(page_sql(where, "%(limit)s"), params)
        rows = await cur.fetchall()
    events = [_row_json(row) for row in rows[:limit]]
    return web.json_response({"events": events, "next_cursor": str(events[-1]["id"]) if len(rows) > limit else None})


def _cell(value) -> object:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a leading apostrophe (OWASP)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


@operation("The audit trail as CSV, streamed, newest first, with the same filters (admins only)", tags=["admin"],
           auth="admin", query=FILTERS, response={"type": "string"}, response_type="text/csv")
async def events_csv(request: web.Request) -> web.StreamResponse:
    await authenticate(request, scope=ADMIN)
    where, params = event_filters(request.query)
    where.append("e.id < %(cursor)s")
    sql = page_sql(where, str(CSV_BATCH), data_as_text=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="audit-{stamp}.csv"'})
    await response.prepare(request)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_HEADER)
    params["cursor"] = 2**63 - 1
    pool = request.app[keys.POOL]
    try:
        while True:
            async with pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(sql, params)
                rows = await cur.fetchall()
            for row in rows:
                (event_id, kind, occurred_at, actor_id, owner_id, subject_id, data, request_id, ip, user_agent,
                 actor_email, owner_email) = row
                writer.writerow([_cell(v) for v in (
                    event_id, occurred_at.isoformat(), kind, actor_id, actor_email, owner_id, owner_email, subject_id,
                    ip, user_agent, request_id, data)])
            await response.write(buffer.getvalue().encode("utf-8"))
            buffer.seek(0)
            buffer.truncate()
            if len(rows) < CSV_BATCH:
                break
            params["cursor"] = rows[-1][0]
    except ConnectionResetError:
        # The admin closed the download: stop reading the table, nothing else to do.
        log.info("audit CSV export stopped: the client went away")
        return response
    await response.write_eof()
    return response


MY_EVENT = {"type": "object", "properties": {
    "id": {"type": "integer"}, "type": {"type": "string"}, "occurred_at": {"type": "string", "format": "date-time"},
    "by": {"type": "string", "enum": ["you", "admin", "other"]}, "subject_id": {"type": ["string", "null"]},
    "data": {"type": "object"}, "ip": {"type": ["string", "null"]}, "user_agent": {"type": ["string", "null"]}}}


@operation("Your own recent activity: sign-ins (time, IP, browser), uploads, deletes, token use, newest first",
           tags=["account"], query={"limit": {"type": "integer", "minimum": 1, "maximum": 200},
                                    "cursor": {"type": "string", "description": "next_cursor of the previous page"}},
           response={"type": "object", "properties": {"events": {"type": "array", "items": MY_EVENT},
                                                      "next_cursor": {"type": ["string", "null"]}}})
async def my_events(request: web.Request) -> web.Response:
    """Events about the customer's account; where the IP and browser were someone else's (an admin, a share
    link's visitor) they are left out."""
    principal = await authenticate(request)
    me = principal.user.id
    limit = parse_limit(request.query.get("limit"))
    cursor = _cursor(request.query.get("cursor"))
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"SELECT {EVENT_COLUMNS} FROM events WHERE owner_id = %(me)s "
                          "AND (%(cursor)s::bigint IS NULL OR id < %(cursor)s) ORDER BY id DESC LIMIT %(limit)s",
                          {"me": me, "cursor": cursor, "limit": limit + 1})
        rows = await cur.fetchall()
    events = []
    for row in rows[:limit]:
        event = Event.from_row(row)
        mine = event.actor_id == me
        by = "you" if mine else "admin" if event.type.startswith("admin.") else "other"
        events.append({"id": event.id, "type": event.type, "occurred_at": event.occurred_at.isoformat(), "by": by,
                       "subject_id": event.subject_id, "data": dict(event.data),
                       "ip": event.ip if mine else None, "user_agent": event.user_agent if mine else None})
    return web.json_response({"events": events, "next_cursor": str(events[-1]["id"]) if len(rows) > limit else None})
