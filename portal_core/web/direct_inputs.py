"""Reading a direct-upload request: which storage, which pending upload, and the declared size, SHA-256
and parts — each refused with a 400 (or 404, 501) naming what was wrong."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import attrs
from aiohttp import web

from .. import keys
from ..pending_uploads import Pending, find
from .errors import ApiError, bad_request, not_found
from .upload import CommitHook

_HEX = set("0123456789abcdef")


@attrs.frozen
class Guest:
    """A direct upload that a guest sends through a file request, into the request owner's artifacts."""

    file_request_id: str
    max_size: int  # the largest file the request takes now (the owner's plan and quota, the request's bytes left)
    too_large: Callable[[], ApiError]  # what to tell the guest when a file is larger (nothing of the owner's plan)
    on_start: CommitHook  # checks the request's caps, counting its pending uploads, as the reservation is written
    on_commit: CommitHook  # checks them again, and counts and marks the file, as the artifact is written


def s3_errors(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
    """Errors of the /api/s3 routes also carry the message at the top level, where Uppy's client looks for
    one to show the person ({"error": {"code", "message"}, "message"}); the portal's own clients read either."""
    @functools.wraps(handler)  # keeps the OpenAPI operation too
    async def answer(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return web.json_response({"error": {"code": exc.code, "message": exc.message}, "message": exc.message},
                                     status=exc.status)

    return answer


def unsupported() -> ApiError:
    return ApiError(501, "direct_uploads_unsupported",
                    "the selected storage backend does not offer direct uploads; upload through POST /api/artifacts")


def direct_storage(request: web.Request):
    storage = request.app[keys.DIRECT_UPLOADS]
    if storage is None:
        raise unsupported()
    return storage


def declared_size(metadata: Mapping[str, Any]) -> int:
    value = metadata.get("size")
    if isinstance(value, str) and value.strip().isdecimal():  # a client that sends every meta value as text
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_request("metadata.size is required: the file's size in bytes, a whole number", code="bad_size")
    return value


def declared_sha256(value: Any, where: str = "metadata.sha256") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) != 64 or not set(value.lower()) <= _HEX:
        raise bad_request(f"{where} must be the file's SHA-256 as 64 hexadecimal digits", code="bad_sha256")
    return value.lower()


async def pending_upload(request: web.Request, user_id: int, file_request_id: str | None = None) -> Pending:
    """The caller's pending upload named by the path's uploadId and the query's key, or 404 (a guest's:
    one sent through ``file_request_id``)."""
    upload_id = request.match_info["upload_id"]
    key = request.query.get("key", "")
    upload = await find(request.app[keys.POOL], user_id, upload_id, key, file_request_id) if key else None
    if upload is None:
        raise not_found("upload (it may have been completed, aborted or expired: start a new one)")
    return upload


def parse_parts(raw: Any) -> dict[int, str]:
    """The client's ``parts`` as {number: ETag without quotes}; 400 naming the problem."""
    example = 'send {"parts": [{"PartNumber": 1, "ETag": "\\"<etag>\\""}, ...]}'
    if not isinstance(raw, list) or not raw:
        raise bad_request(f"'parts' must list the uploaded parts: {example}", code="bad_parts")
    parts: dict[int, str] = {}
    for item in raw:
        number = item.get("PartNumber") if isinstance(item, dict) else None
        etag = item.get("ETag") if isinstance(item, dict) else None
        if isinstance(number, str) and number.isdecimal():
            number = int(number)
        if isinstance(number, bool) or not isinstance(number, int) or not isinstance(etag, str) or not etag.strip('"'):
            raise bad_request(f"every part needs a PartNumber and an ETag: {example}", code="bad_parts")
        if number in parts:
            raise bad_request(f"part {number} is listed twice", code="bad_parts")
        parts[number] = etag.strip('"')
    return parts
