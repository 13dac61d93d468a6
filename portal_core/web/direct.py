"""Direct uploads under /api/s3: the @uppy/aws-s3 multipart protocol, so bytes go straight to storage.

The portal authorizes, tracks and completes; clients PUT the parts to presigned URLs in parallel:

    POST   /api/s3/multipart                              {filename, type, metadata: {size, sha256?}} -> {key, uploadId}
    GET    /api/s3/multipart/{uploadId}/{n}?key=          -> {url, expires}
    GET    /api/s3/multipart/{uploadId}/batch?key=&partNumbers=1,2   -> {presignedUrls: {"1": url, ...}}
    GET    /api/s3/multipart/{uploadId}?key=              -> [{PartNumber, ETag, Size}]   (to resume)
    POST   /api/s3/multipart/{uploadId}/complete?key=     {parts: [{PartNumber, ETag}]} -> {location, key, artifact}
    DELETE /api/s3/multipart/{uploadId}?key=              -> {}

Every call is authenticated like the rest of the API, and an uploadId/key pair that is not one of the
caller's pending uploads answers 404. Nothing the client says is trusted at completion: the parts are
listed from storage, and their sizes must add up to the declared size, which was checked against the
plan's limits and reserved from the quota when the upload started. Completion itself is in
direct_complete.py; the rows are portal_core/pending_uploads.py. Guests sending files through a file
request use the same protocol under /api/r/<token> (request_direct.py), with ``start_upload``'s ``guest``.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from aiohttp import web

from .. import keys
from ..events import record
from ..interfaces import PartLimits, ServiceUnavailable, UploadNotFound, User
from ..openapi import operation
from ..pending_uploads import Pending, claim, discard, release, reserved_bytes
from . import direct_complete
from .direct_inputs import Guest, declared_sha256, declared_size, direct_storage, pending_upload, s3_errors
from .errors import ApiError, bad_request, not_found, unavailable
from .inputs import json_object
from .sessions import WRITE, authenticate
from .upload import check_upload, clean_content_type, human, limits_for, locked_usage, too_large, usage, validate_filename

MiB = 1024 * 1024
MAX_BATCH = 1000

CREATE_BODY = {"type": "object", "required": ["filename", "metadata"], "properties": {
    "filename": {"type": "string", "maxLength": 255},
    "type": {"type": "string", "description": "the media type (default application/octet-stream)"},
    "metadata": {"type": "object", "required": ["size"], "properties": {
        "size": {"type": "integer", "minimum": 0, "description": "the file's size in bytes"},
        "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$",
                   "description": "the file's SHA-256, checked once the upload is complete"}}}}}
CREATED = {"type": "object", "properties": {
    "key": {"type": "string"}, "uploadId": {"type": "string"},
    "partSize": {"type": "integer", "description": "the size every part but the last should have"},
    "maxPartNumber": {"type": "integer"}, "expiresAt": {"type": "string", "format": "date-time"}}}
UPLOAD_QUERY = {"key": {"type": "string", "description": "the key POST /api/s3/multipart returned"}}


def part_size_for(limits: PartLimits, size: int) -> int:
    """The part size the portal's clients use: the storage's preferred size, raised (in whole MiB) when a file
    of ``size`` bytes would otherwise need more than ``max_parts`` parts. Every part but the last has it."""
    needed = math.ceil(size / limits.max_parts)
    part = limits.preferred_size if needed <= limits.preferred_size else math.ceil(needed / MiB) * MiB
    return max(part, limits.min_size)


def max_part_number(limits: PartLimits, size: int) -> int:
    """The highest part number a file of ``size`` bytes can need: with the smallest parts storage allows.
    (Clients choose their part size — Uppy's is 5 MiB — so this bound holds for any of them.)"""
    return max(1, min(limits.max_parts, math.ceil(size / limits.min_size)))


@operation("Start a direct upload: reserve the declared size and create a multipart upload in storage",
           description="The @uppy/aws-s3 createMultipartUpload call. metadata.size is required and counts against "
                       "the quota until the upload is completed, aborted or expires (DIRECT_UPLOAD_EXPIRY_SECONDS).",
           tags=["direct uploads"], body=CREATE_BODY, response=CREATED,
           responses={201: "Started", 413: "", 422: "", 501: ""})
async def create(request: web.Request) -> web.Response:
    principal = await authenticate(request, scope=WRITE)
    return await start_upload(request, principal.user)


async def start_upload(request: web.Request, user: User, *, guest: Guest | None = None) -> web.Response:
    """Start a direct upload into ``user``'s artifacts (``guest``: sent by a guest through a file request)."""
    app = request.app
    storage = direct_storage(request)
    body = await json_object(request, '{"filename": "a.bin", "type": "application/octet-stream", "metadata": {"size": 123}}')
    name = validate_filename(body.get("filename") if isinstance(body.get("filename"), str) else None)
    if body.get("type") is not None and not isinstance(body.get("type"), str):
        raise bad_request("'type' must be the file's media type as a string", code="bad_type")
    content_type = clean_content_type(body.get("type"))
    metadata = body.get("metadata", {})
    if not isinstance(metadata, dict):
        raise bad_request("'metadata' must be an object with the file's size, e.g. {\"size\": 123}", code="bad_metadata")
    size = declared_size(metadata)
    sha256 = declared_sha256(metadata.get("sha256"))
    limits = storage.part_limits
    if size > limits.max_parts * limits.max_size:
        raise ApiError(413, "too_large", f"storage cannot hold a file of {human(size)}")
    plan, plan_limits = await limits_for(app, user)
    pool = app[keys.POOL]
    if guest is not None and size > guest.max_size:
        raise guest.too_large()
    if size > plan_limits.max_file:
        raise too_large(plan, plan_limits, 0, plan_limits.max_file)
    held = (await usage(pool, user.id))[0] + await reserved_bytes(pool, user.id)
    if held + size > plan_limits.quota:  # checked again under the lock when the reservation is written
        raise guest.too_large() if guest else too_large(plan, plan_limits, held, max(0, plan_limits.quota - held))
    await check_upload(app, user, name, content_type, size, None, plan=plan)
    key = f"{user.id}/{uuid.uuid4()}"
    part_size = part_size_for(limits, size)
    try:
        upload_id = await storage.create_multipart(key, content_type=content_type)
    except ServiceUnavailable as exc:
        raise unavailable(f"storage is unavailable, nothing was started: {exc}") from None
    try:
        row = await _reserve(request, user.id, upload_id, key, name, content_type, size, part_size, sha256,
                             plan_limits.quota, guest)
    except BaseException:
        await direct_complete.shielded(storage.abort_multipart(key, upload_id))
        raise
    if row is None:  # another upload took the room meanwhile
        await direct_complete.shielded(storage.abort_multipart(key, upload_id))
        held = (await usage(pool, user.id))[0] + await reserved_bytes(pool, user.id)
        raise guest.too_large() if guest else too_large(plan, plan_limits, held, max(0, plan_limits.quota - held))
    return web.json_response({"key": key, "uploadId": upload_id, "partSize": part_size,
                              "maxPartNumber": max_part_number(limits, size), "expiresAt": row.isoformat()},
                             status=201)


async def _reserve(request: web.Request, user_id: int, upload_id: str, key: str, name: str, content_type: str,
                   size: int, part_size: int, sha256: str | None, quota: int, guest: Guest | None):
    """Write the pending row under the user's lock unless the quota (with every other reservation) has no
    room (None), or a guest's file request refuses it (its ApiError); returns when it expires."""
    expiry = request.app[keys.CONFIG].core.direct_upload_expiry_seconds
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            if await locked_usage(cur, user_id) + size > quota:
                return None
            if guest is not None:
                await guest.on_start.before(cur, size)
            await cur.execute(
                """INSERT INTO direct_uploads (upload_id, storage_key, owner_id, name, content_type, size, part_size,
                                               sha256, expires_at, file_request_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, now() + make_interval(secs => %s), %s)
                   RETURNING expires_at""",
                (upload_id, key, user_id, name, content_type, size, part_size, sha256, expiry,
                 guest.file_request_id if guest else None))
            (expires_at,) = await cur.fetchone()
            await record(cur, "upload.started", actor_id=None if guest else user_id, owner_id=user_id,
                         subject_id=upload_id, data={"name": name, "size": size, "content_type": content_type,
                                                     **({"file_request_id": guest.file_request_id} if guest else {})})
    return expires_at


def _part_number(raw: str, upload: Pending, limits: PartLimits) -> int:
    highest = max_part_number(limits, upload.size)
    if not raw.isdecimal() or not 1 <= int(raw) <= highest:
        raise bad_request(f"part number {raw!r} is out of range: a file of {human(upload.size)} has parts 1 to "
                          f"{highest} at most", code="bad_part_number")
    return int(raw)


async def _sign(request: web.Request, storage, upload: Pending, number: int) -> tuple[str, int]:
    seconds = request.app[keys.CONFIG].core.direct_upload_url_seconds
    signed = await storage.presign_part(upload.key, upload.upload_id, number, expires_in=seconds)
    return signed.url, seconds


async def _signable(request: web.Request, owner_id: int | None, file_request_id: str | None) -> tuple[Any, Pending]:
    if owner_id is None:
        owner_id = (await authenticate(request, scope=WRITE)).user.id  # a GET, but signing a part is writing
    storage = direct_storage(request)
    upload = await pending_upload(request, owner_id, file_request_id)
    if upload.expired or upload.stored_at is not None:
        raise not_found("upload (it may have been completed, aborted or expired: start a new one)")
    return storage, upload


@operation("A presigned URL to PUT one part to (its answer's ETag header is the part's ETag)",
           description="The @uppy/aws-s3 signPart call. `expires` is in seconds.", tags=["direct uploads"],
           query=UPLOAD_QUERY, required_query=["key"], responses={501: ""},
           response={"type": "object", "properties": {"url": {"type": "string"}, "expires": {"type": "integer"}}})
async def sign_part(request: web.Request, owner_id: int | None = None, file_request_id: str | None = None) -> web.Response:
    storage, upload = await _signable(request, owner_id, file_request_id)
    number = _part_number(request.match_info["part"], upload, storage.part_limits)
    url, seconds = await _sign(request, storage, upload, number)
    return web.json_response({"url": url, "expires": seconds})


@operation("Presigned URLs for several parts at once", tags=["direct uploads"],
           query={**UPLOAD_QUERY, "partNumbers": {"type": "string", "description": "comma-separated, e.g. 1,2,3"}},
           required_query=["key", "partNumbers"], responses={501: ""},
           response={"type": "object", "properties": {"presignedUrls": {"type": "object"}}})
async def sign_batch(request: web.Request, owner_id: int | None = None, file_request_id: str | None = None) -> web.Response:
    storage, upload = await _signable(request, owner_id, file_request_id)
    raw = [item.strip() for item in request.query.get("partNumbers", "").split(",") if item.strip()]
    if not raw or len(raw) > MAX_BATCH:
        raise bad_request(f"partNumbers must list 1 to {MAX_BATCH} part numbers, e.g. 1,2,3", code="bad_part_number")
    numbers = sorted({_part_number(item, upload, storage.part_limits) for item in raw})
    urls = {str(n): (await _sign(request, storage, upload, n))[0] for n in numbers}
    return web.json_response({"presignedUrls": urls})


@operation("The parts storage holds so far, to resume an interrupted upload", tags=["direct uploads"],
           description="The @uppy/aws-s3 listParts call: every stored part, however many pages storage answers in.",
           query=UPLOAD_QUERY, required_query=["key"], responses={409: "", 501: ""},
           response={"type": "array", "items": {"type": "object", "properties": {
               "PartNumber": {"type": "integer"}, "ETag": {"type": "string"}, "Size": {"type": "integer"}}}})
async def list_parts(request: web.Request, owner_id: int | None = None, file_request_id: str | None = None) -> web.Response:
    if owner_id is None:
        owner_id = (await authenticate(request, scope=WRITE)).user.id
    storage = direct_storage(request)
    upload = await pending_upload(request, owner_id, file_request_id)
    if upload.stored_at is not None:
        raise ApiError(409, "completing", "this upload is being completed; its parts are already joined")
    try:
        parts = await storage.list_parts(upload.key, upload.upload_id)
    except UploadNotFound:
        await direct_complete.vanished(request.app, upload)
        raise not_found("upload (storage no longer has it: start a new one)") from None
    except ServiceUnavailable as exc:
        raise unavailable(f"storage is unavailable: {exc}") from None
    return web.json_response([{"PartNumber": p.number, "ETag": p.etag, "Size": p.size} for p in parts])


@operation("Abort a direct upload: storage drops its parts and the reservation is freed", tags=["direct uploads"],
           description="The @uppy/aws-s3 abortMultipartUpload call.", query=UPLOAD_QUERY, required_query=["key"],
           responses={409: "", 501: ""}, response={"type": "object"})
async def abort(request: web.Request, owner_id: int | None = None, file_request_id: str | None = None) -> web.Response:
    actor_id = None  # a guest's upload: nobody with an account aborted it
    if owner_id is None:
        owner_id = actor_id = (await authenticate(request, scope=WRITE)).user.id
    direct_storage(request)
    upload = await pending_upload(request, owner_id, file_request_id)
    pool = request.app[keys.POOL]
    if not await claim(pool, upload, unexpired=False):
        raise ApiError(409, "busy", "this upload is being completed or aborted right now")
    try:
        await discard(request.app, upload, "upload.aborted", reason="canceled", actor_id=actor_id)
    except ServiceUnavailable as exc:
        await release(pool, upload.upload_id)
        raise unavailable(f"storage is unavailable, the upload was not aborted: {exc}") from None
    return web.json_response({})


def routes() -> list[web.RouteDef]:
    return [
        web.post("/api/s3/multipart", s3_errors(create)),
        web.get("/api/s3/multipart/{upload_id}/batch", s3_errors(sign_batch)),
        web.get(r"/api/s3/multipart/{upload_id}/{part:\d+}", s3_errors(sign_part)),
        web.get("/api/s3/multipart/{upload_id}", s3_errors(list_parts)),
        web.post("/api/s3/multipart/{upload_id}/complete", s3_errors(direct_complete.complete)),
        web.delete("/api/s3/multipart/{upload_id}", s3_errors(abort)),
    ]
