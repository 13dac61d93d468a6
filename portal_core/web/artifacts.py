"""The artifact API except upload: list, show, download, delete. Every query is scoped to the owner."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import unicodedata
import uuid

from aiohttp import web

from .. import keys
from ..db import Prepared
from ..events import record, record_now
from ..http_headers import content_disposition
from ..interfaces import Download, ObjectNotFound, ServiceUnavailable
from ..openapi import operation
from .errors import ApiError, bad_request, not_found, unauthenticated, unavailable
from .sessions import READ, WHO_COLUMNS, WHO_WIDTH, Credential, admit, authenticate, credential, principal_from_row

ARTIFACT_COLUMNS = "id, name, size, content_type, sha256, created_at, verification, verification_detail, file_request_id"
ARTIFACT = {"type": "object", "properties": {
    "id": {"type": "string", "format": "uuid"}, "name": {"type": "string"}, "size": {"type": "integer"},
    "content_type": {"type": "string"},
    "sha256": {"type": "string", "description": "of the stored bytes; for an unverified direct upload, as declared ('' if none was)"},
    "created_at": {"type": "string", "format": "date-time"},
    "verification": {"type": "string", "enum": ["verified", "unverified", "quarantined"],
                     "description": "verified: the SHA-256 is of the stored bytes; unverified: a direct upload not yet "
                                    "read back; quarantined: the stored bytes do not match (downloads are refused)"},
    "verification_detail": {"type": ["string", "null"], "description": "why it is quarantined"},
    "file_request_id": {"type": ["string", "null"], "format": "uuid",
                        "description": "the file request it arrived through (GET /api/requests), or null"}}}
DEFAULT_LIMIT = 50
MAX_LIMIT = 200


def artifact_json(row) -> dict:
    return {"id": str(row[0]), "name": row[1], "size": row[2], "content_type": row[3], "sha256": row[4],
            "created_at": row[5].isoformat(), "verification": row[6], "verification_detail": row[7],
            "file_request_id": str(row[8]) if row[8] else None}


def refuse_quarantined(verification: str, detail: str | None) -> None:
    """409 for a file whose stored bytes did not match the SHA-256 declared at upload: every download path
    (the owner's, a share link's) refuses it."""
    if verification == "quarantined":
        raise ApiError(409, "quarantined", f"this file is quarantined and cannot be downloaded: {detail}")


# How the listing can be ordered: the sort key, and each sort's default direction.
SORTS = {"created_at": "desc", "name": "asc", "size": "desc"}
DEFAULT_SORT = ("created_at", "desc")
MAX_QUERY = 255  # no filename is longer, so no longer search can match


def encode_cursor(sort: tuple[str, str], key: str, artifact_id: str) -> str:
    """The opaque cursor after an artifact: its sort key (as text) and id, and the sort it belongs to.

    The default sort's cursors read as before (``created_at|id``), so a page fetched before an upgrade
    still continues after it.
    """
    prefix = "" if sort == DEFAULT_SORT else f"{sort[0]}.{sort[1]}:"
    return base64.urlsafe_b64encode(f"{prefix}{key}|{artifact_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: tuple[str, str]) -> tuple[object, str]:
    """(sort key, artifact id) from a cursor of ``sort``; 400 for anything this API did not hand out."""
    prefix = "" if sort == DEFAULT_SORT else f"{sort[0]}.{sort[1]}:"
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        if not raw.startswith(prefix):
            raise ValueError("a cursor of another sort order")
        key, _, artifact_id = raw[len(prefix):].rpartition("|")
        if sort[0] == "created_at":
            # Any offset fromisoformat takes (seconds, microseconds, ±23:59) is fine once in UTC, where
            # PostgreSQL can read it; a time without an offset, or beyond year 1..9999 there, is no cursor of ours.
            value: object = dt.datetime.fromisoformat(key)
            if value.tzinfo is None:
                raise ValueError("a created_at without a UTC offset")
            value = value.astimezone(dt.timezone.utc)
        elif sort[0] == "size":
            value = int(key)
            if not 0 <= value < 2**63:
                raise ValueError("a size no artifact has")
        elif "\x00" in key:
            raise ValueError("a name no artifact has")
        else:
            value = key
        return value, str(uuid.UUID(artifact_id))
    except (binascii.Error, UnicodeDecodeError, ValueError, OverflowError):
        raise bad_request("the cursor is not one this API returned for this sort order; start again without it",
                          code="bad_cursor") from None


def parse_sort(query) -> tuple[str, str]:
    """(sort, order) from ?sort= and ?order=; 400 naming the choices for anything else."""
    sort = query.get("sort", DEFAULT_SORT[0])
    if sort not in SORTS:
        raise bad_request(f"sort must be one of: {', '.join(SORTS)}", code="bad_sort")
    order = query.get("order", SORTS[sort])
    if order not in ("asc", "desc"):
        raise bad_request("order must be asc or desc", code="bad_order")
    return sort, order


def parse_query(raw: str | None) -> str | None:
    """?q= as an ILIKE pattern matching names that contain it (any case), or None for no search."""
    if raw is None or not raw.strip():
        return None
    text = unicodedata.normalize("NFC", raw.strip())  # names are stored NFC
    if len(text) > MAX_QUERY:
        raise bad_request(f"q is {len(text)} characters long; names are at most {MAX_QUERY}", code="bad_query")
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text):
        raise bad_request("q contains control characters", code="bad_query")
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdecimal() or not 1 <= int(raw) <= MAX_LIMIT:
        raise bad_request(f"limit must be a whole number from 1 to {MAX_LIMIT}", code="bad_limit")
    return int(raw)


def artifact_id(request: web.Request) -> str:
    try:
        return str(uuid.UUID(request.match_info["id"]))
    except ValueError:
        raise not_found() from None


# The listing's JSON is rendered by PostgreSQL (compact row_to_json, one document per artifact), so the
# portal reads one row however long the page is: with Python building the list, the rows and their
# encoding cost the single-process portal more than everything else in the request. The documents carry
# the values artifact_json gives: created_at exactly as datetime.isoformat() writes it (microseconds only
# when non-zero, the session's UTC offset).
_ISO_CREATED_AT = ("replace(replace(to_char(p.created_at, 'YYYY-MM-DD\"T\"HH24:MI:SS.USTZH:TZM'), "
                   "'.000000+', '+'), '.000000-', '-')")
# Every document starts with this (row_to_json keeps column order), and it cannot occur inside a JSON
# string, where quotes are escaped: so it splits the aggregated documents safely.
_DOC_START = '{"id":"'


# The sort keys as SQL, and as text for the next page's cursor (created_at exactly as artifact_json
# writes it, so it parses back to the same instant).
_KEYS = {"created_at": "a.created_at", "name": "lower(a.name)", "size": "a.size"}
_KEY_TEXT = {"created_at": _ISO_CREATED_AT.replace("p.created_at", "p.k"), "name": "p.k", "size": "p.k::text"}


def _listing_query(cte: str, sort: str, order: str, after: bool, search: bool) -> str:
    """One page costs the same whatever the owner stores (docs/benchmarks.md, "Scale"), because:

    * the owner id is a scalar (an InitPlan), not a join to ``who``: joined, the planner could not see that
      the index yields the owner's rows in order, and fetched and sorted all of them (~1 s for 200,000);
    * the page's ids and keys come first, from an index-only scan of (owner_id, sort key, id) that stops
      after the page, and only those rows are read whole. The owner is only known when the statement runs,
      so the planner expects an average owner; an index scan that also read the rows then looked dearer
      than a bitmap scan and a sort of all the owner's rows past the cursor, which is what it chose.
    """
    direction = order.upper()
    compare = "<" if order == "desc" else ">"
    where = ""
    if search:
        where += " AND a.name ILIKE %(q)s ESCAPE '\\'"
    if after:
        where += f" AND ({_KEYS[sort]}, a.id) {compare} (%(c_key)s, %(c_id)s::uuid)"
    order_by = f"p.k {direction}, p.id {direction}"
    return f"""
        WITH {cte},
        keys AS (SELECT a.id, {_KEYS[sort]} AS k
                 FROM artifacts a WHERE a.owner_id = (SELECT user_id FROM who){where}
                 ORDER BY {_KEYS[sort]} {direction}, a.id {direction} LIMIT %(limit)s + 1),
        page AS (SELECT f.id, f.name, f.size, f.content_type, f.sha256, f.created_at, f.verification,
                        f.verification_detail, f.file_request_id, keys.k
                 FROM keys JOIN artifacts f ON f.id = keys.id)
        SELECT {WHO_COLUMNS}, (SELECT count(*) FROM page),
               (SELECT string_agg(row_to_json(doc)::text, ',' ORDER BY {order_by})
                FROM page p, LATERAL (SELECT p.id, p.name, p.size, p.content_type, p.sha256,
                                             {_ISO_CREATED_AT} AS created_at, p.verification,
                                             p.verification_detail, p.file_request_id) doc),
               (SELECT {_KEY_TEXT[sort]} FROM page p ORDER BY {order_by} OFFSET %(limit)s - 1 LIMIT 1)
        FROM who LEFT JOIN users u ON u.id = who.user_id"""


# One prepared statement per credential kind, sort, order, with or without a cursor and a search (see
# portal_core.db.Prepared), made on first use.
_LISTINGS: dict[tuple, Prepared] = {}


def listing(via: str, sort: str, order: str, after: bool, search: bool) -> Prepared:
    key = (via, sort, order, after, search)
    if key not in _LISTINGS:
        cte = Credential(via, {}).cte
        name = f"list_artifacts_{via}_{sort}_{order}{'_after' if after else ''}{'_q' if search else ''}"
        _LISTINGS[key] = Prepared(name, _listing_query(cte, sort, order, after, search))
    return _LISTINGS[key]


@operation("List your artifacts, newest first", tags=["artifacts"],
           query={"limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
                  "cursor": {"type": "string", "description": "next_cursor of the previous page"}},
           response={"type": "object", "properties": {"artifacts": {"type": "array", "items": ARTIFACT},
                                                      "next_cursor": {"type": ["string", "null"]}}})
async def list_artifacts(request: web.Request) -> web.Response:
    """Keyset-paginated, newest first unless ?sort=/order= say otherwise, ?q= keeps names containing it
    (any case); credential check and page in one database round trip."""
    limit = parse_limit(request.query.get("limit"))
    sort = parse_sort(request.query)
    pattern = parse_query(request.query.get("q"))
    cursor = request.query.get("cursor")
    cred = credential(request)
    if cred is None:
        raise unauthenticated()
    params = {**cred.params, "limit": limit}
    if cursor:
        params["c_key"], params["c_id"] = decode_cursor(cursor, sort)
    if pattern:
        params["q"] = pattern
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await listing(cred.via, *sort, bool(cursor), bool(pattern)).execute(
            cur, params, prepare=request.app[keys.CONFIG].core.database_prepare_statements)
        row = await cur.fetchone()
    principal = principal_from_row(cred, row) if row else None
    if principal is None:
        raise unauthenticated()
    # The same checks as authenticate() (suspended, expired, scope), on the columns this query already read.
    await admit(request, principal, READ)
    fetched, docs, last_key = row[WHO_WIDTH:]
    next_cursor = "null"
    if fetched > limit:  # one more than the page was fetched: drop it, and point the cursor at the last shown
        docs = docs[:docs.rindex("," + _DOC_START)]
        last = json.loads(docs[docs.rindex(_DOC_START):])
        next_cursor = json.dumps(encode_cursor(sort, last_key, last["id"]))
    return web.Response(text=f'{{"artifacts": [{docs or ""}], "next_cursor": {next_cursor}}}',
                        content_type="application/json")


async def _owned(request: web.Request, user_id: int, extra: str = "") -> tuple:
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"SELECT {ARTIFACT_COLUMNS}{extra} FROM artifacts WHERE id = %s AND owner_id = %s",
                          (artifact_id(request), user_id))
        row = await cur.fetchone()
    if row is None:
        raise not_found()
    return row


@operation("One artifact", tags=["artifacts"], response=ARTIFACT)
async def show_artifact(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    return web.json_response(artifact_json(await _owned(request, principal.user.id)))


@operation("Download an artifact: a 302 to a short-lived storage URL, or the bytes", tags=["artifacts"],
           responses={200: "The artifact's bytes (storage without URLs)", 302: "Redirect to a short-lived storage URL",
                      409: "Quarantined: the stored bytes do not match the SHA-256 declared at upload"},
           response_type="application/octet-stream")
async def download_artifact(request: web.Request) -> web.StreamResponse:
    principal = await authenticate(request)
    row = await _owned(request, principal.user.id, ", storage_key")
    name, size, content_type, key = row[1], row[2], row[3], row[9]
    refuse_quarantined(row[6], row[7])
    target = await storage_download(request.app, key, name, content_type)
    await record_now(request.app[keys.POOL], "artifact.downloaded", actor_id=principal.user.id,
                     owner_id=principal.user.id, subject_id=row[0], data={"name": name, "size": size})
    return await send_download(request, target, name, size, content_type)


async def storage_download(app: web.Application, key: str, name: str, content_type: str) -> Download:
    """The storage's :class:`Download` for an artifact's object: 404 when the object is missing, 503 when
    storage is away (nothing counted or recorded yet, so the caller can simply give up)."""
    try:
        return await app[keys.STORAGE].download(key, filename=name, content_type=content_type)
    except ObjectNotFound:
        raise not_found("stored object for this artifact") from None
    except ServiceUnavailable as exc:
        raise unavailable(f"storage is unavailable: {exc}") from None


async def send_download(request: web.Request, target: Download, name: str, size: int, content_type: str,
                        headers: dict[str, str] | None = None) -> web.StreamResponse:
    """Answer with ``target``: a 302 to its short-lived URL, or its bytes streamed as an attachment that is
    never rendered as part of the portal. Every download path (owner, share link) answers through here."""
    metrics = request.app[keys.METRICS]
    if target.url is not None:
        metrics.count_bytes("downloaded", size)
        return web.Response(status=302, headers={"Location": target.url, "Cache-Control": "no-store", **(headers or {})})
    response = web.StreamResponse(headers={
        "Content-Type": content_type,
        "Content-Disposition": content_disposition(name),
        "Cache-Control": "private, no-store",
        # Customer bytes are never rendered as part of the portal's origin.
        "Content-Security-Policy": "sandbox; default-src 'none'",
        **(headers or {}),
    })
    response.content_length = target.size if target.size is not None else size
    await response.prepare(request)
    async for chunk in target.stream:
        await response.write(chunk)
        metrics.count_bytes("downloaded", len(chunk))
    await response.write_eof()
    return response


@operation("Delete an artifact and its stored object", tags=["artifacts"], responses={204: "Deleted"})
async def delete_artifact(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user_id = principal.user.id
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("DELETE FROM artifacts WHERE id = %s AND owner_id = %s "
                              "RETURNING storage_key, id, name, size", (artifact_id(request), user_id))
            row = await cur.fetchone()
            if row is not None:
                await record(cur, "artifact.deleted", actor_id=user_id, owner_id=user_id, subject_id=row[1],
                             data={"name": row[2], "size": row[3]})
    if row is None:
        raise not_found()
    try:
        await request.app[keys.STORAGE].delete(row[0])
    except ServiceUnavailable as exc:
        # The row is gone, so the customer no longer sees or pays for it; the orphan is logged for cleanup.
        request.app.logger.error("artifact row deleted but its object %s could not be removed: %s", row[0], exc)
    return web.Response(status=204)

