"""File requests, the guest's direct path: large files go straight to storage, like the owner's own.

The same @uppy/aws-s3 multipart protocol as /api/s3 (portal_core/web/direct.py), under the request's link
instead of an account — ``/api/r/<token>/s3/multipart…`` — so the request page (or Uppy with
``endpoint: '/api/r/<token>'``) sends parts in parallel to presigned URLs. The request's token stands
in for a sign-in: each call looks the request up and refuses (JSON, with the page's reasons) when it takes
nothing now. The upload belongs to the request's owner and is reserved from their quota as it starts,
with the request's caps checked under its row lock counting its other pending uploads; at completion the
caps are checked again and the file is counted and marked, exactly as a streamed file is
(``request_pages.RequestCaps``). An uploadId/key pair that is not one of this request's answers 404.
"""

from __future__ import annotations

from aiohttp import web

from .. import keys
from ..interfaces import ServiceUnavailable
from ..openapi import operation
from ..pending_uploads import claim, discard, release
from . import direct, direct_complete
from .direct import CREATE_BODY, CREATED, UPLOAD_QUERY
from .direct_inputs import Guest, pending_upload, s3_errors
from .errors import ApiError, not_found
from .middleware import secret_path
from .request_pages import FileRequest, RequestCaps, budget, find, refusal

TAGS = ["file requests"]
TOKEN = {"description": "the file request's link is /r/<token>; this is its token"}


async def open_request(request: web.Request, *, taking: bool = True) -> FileRequest:
    """The file request the URL's token opens, or 404; with ``taking``, 403/410/503 when it takes nothing now."""
    req = await find(request)
    if req is None:
        raise not_found("file request")
    if taking:
        await check_taking(request, req)
    return req


async def check_taking(request: web.Request, req: FileRequest) -> None:
    """403 (the owner suspended, or their plan has no file requests), 410 (closed, expired, full) or 503
    (read-only, uploads paused) when the request takes no files now, with the request page's reason."""
    stop = await refusal(request.app, req)
    if stop is not None:
        status, code, title, _message = stop
        raise ApiError(status, code, f"{title[0].lower()}{title[1:]}: it takes no files now")


async def guest(request: web.Request, req: FileRequest) -> Guest:
    room = await budget(request.app, req)
    return Guest(file_request_id=req.id, max_size=room.limit, too_large=room.too_large,
                 on_start=RequestCaps(req, starting=True), on_commit=RequestCaps(req))


@operation("A guest starts a direct upload through a file request", tags=TAGS, auth="none",
           description="The @uppy/aws-s3 createMultipartUpload call with the request's link standing in for a "
                       "sign-in. The file goes into the request owner's artifacts: its size is reserved from their "
                       "quota and counted against the request's caps (pending uploads included) until it is "
                       "completed, aborted or expires.",
           body=CREATE_BODY, response=CREATED,
           responses={201: "Started", 403: "The owner cannot take files now", 404: "No such request",
                      410: "The request is closed, expired or full", 413: "", 422: "", 501: "", 503: ""})
@secret_path
async def create(request: web.Request) -> web.Response:
    req = await open_request(request)
    return await direct.start_upload(request, req.owner, guest=await guest(request, req))


@operation("A presigned URL to PUT one part of a guest's upload to", tags=TAGS, auth="none",
           query=UPLOAD_QUERY, required_query=["key"], responses={403: "", 404: "", 410: "", 501: "", 503: ""},
           response={"type": "object", "properties": {"url": {"type": "string"}, "expires": {"type": "integer"}}})
@secret_path
async def sign_part(request: web.Request) -> web.Response:
    req = await open_request(request)
    return await direct.sign_part(request, req.owner.id, req.id)


@operation("Presigned URLs for several parts of a guest's upload", tags=TAGS, auth="none",
           query={**UPLOAD_QUERY, "partNumbers": {"type": "string", "description": "comma-separated, e.g. 1,2,3"}},
           required_query=["key", "partNumbers"], responses={403: "", 404: "", 410: "", 501: "", 503: ""},
           response={"type": "object", "properties": {"presignedUrls": {"type": "object"}}})
@secret_path
async def sign_batch(request: web.Request) -> web.Response:
    req = await open_request(request)
    return await direct.sign_batch(request, req.owner.id, req.id)


@operation("The parts of a guest's upload storage holds so far, to resume it", tags=TAGS, auth="none",
           query=UPLOAD_QUERY, required_query=["key"], responses={404: "", 409: "", 501: ""},
           response={"type": "array", "items": {"type": "object", "properties": {
               "PartNumber": {"type": "integer"}, "ETag": {"type": "string"}, "Size": {"type": "integer"}}}})
@secret_path
async def list_parts(request: web.Request) -> web.Response:
    req = await open_request(request, taking=False)
    return await direct.list_parts(request, req.owner.id, req.id)


@operation("Complete a guest's upload: the file lands in the owner's artifacts, counted by the request",
           tags=TAGS, auth="none", query=UPLOAD_QUERY, required_query=["key"],
           description="The parts are listed from storage and must add up to the declared size; the request's caps "
                       "are checked again as the artifact is written (and the upload discarded if they refuse it). "
                       "The owner hears of it through request.file_received.",
           body={"type": "object", "required": ["parts"], "properties": {
               "parts": {"type": "array", "items": {"type": "object", "properties": {
                   "PartNumber": {"type": "integer"}, "ETag": {"type": "string"}}}},
               "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}}},
           responses={403: "", 404: "", 409: "", 410: "", 413: "", 422: "", 501: "", 503: ""},
           response={"type": "object", "properties": {"key": {"type": "string"}, "artifact": {
               "type": "object", "description": "what arrived: name, size, sha256 (as declared until verified), verification"}}})
@secret_path
async def complete(request: web.Request) -> web.Response:
    req = await open_request(request, taking=False)
    try:
        await check_taking(request, req)
    except ApiError as stop:
        if stop.status == 410:  # it will never take this file: the upload goes now, not at its expiry
            await _discard(request, req, stop)
        raise
    done = await direct_complete.complete_upload(request, req.owner, await guest(request, req))
    # The guest learns what arrived, not where it is kept in the owner's account.
    artifact = {name: done["artifact"][name] for name in ("name", "size", "sha256", "verification")}
    return web.json_response({"key": done["key"], "artifact": artifact})


async def _discard(request: web.Request, req: FileRequest, reason: ApiError) -> None:
    upload = await pending_upload(request, req.owner.id, req.id)
    pool = request.app[keys.POOL]
    if await claim(pool, upload, unexpired=False):
        try:
            await discard(request.app, upload, "upload.aborted", reason=f"refused: {reason.message}", actor_id=None)
        except ServiceUnavailable:
            await release(pool, upload.upload_id)  # housekeeping aborts it at its expiry


@operation("Abort a guest's upload: storage drops its parts and the owner's reservation is freed", tags=TAGS,
           auth="none", query=UPLOAD_QUERY, required_query=["key"], responses={404: "", 409: "", 501: ""},
           response={"type": "object"})
@secret_path
async def abort(request: web.Request) -> web.Response:
    req = await open_request(request, taking=False)
    return await direct.abort(request, req.owner.id, req.id)


def routes() -> list[web.RouteDef]:
    base = "/api/r/{token}/s3/multipart"
    return [
        web.post(base, s3_errors(create)),
        web.get(base + "/{upload_id}/batch", s3_errors(sign_batch)),
        web.get(base + r"/{upload_id}/{part:\d+}", s3_errors(sign_part)),
        web.get(base + "/{upload_id}", s3_errors(list_parts)),
        web.post(base + "/{upload_id}/complete", s3_errors(complete)),
        web.delete(base + "/{upload_id}", s3_errors(abort)),
    ]
