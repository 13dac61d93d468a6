"""POST /api/s3/multipart/{uploadId}/complete: turn a direct upload into an artifact, trusting nothing the
client says.

The upload is claimed (so a second completion, an abort or the expiry job cannot run alongside), its parts
are listed from storage and must be numbered 1..n, equal in size but the last, agree with the client's
list and add up to exactly the declared size. Storage then joins them; the policy plugins see the first
4 KiB read back from storage; the plan's per-file limit is checked again, and the artifact row is written
under the user's lock with the quota re-checked (``commit_row``), in the transaction that drops the
reservation. Any refusal aborts the upload in storage, deletes whatever it stored and says why (400, 413,
422): nothing is left behind. A storage outage answers 503 and gives the upload back for a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections.abc import Awaitable
from typing import Any

import attrs
from aiohttp import web

from .. import keys
from ..interfaces import PartLimits, ServiceUnavailable, StoredPart, UploadNotFound, User
from ..openapi import operation
from ..pending_uploads import Pending, claim, discard, mark_stored, release, reserved_bytes
from .artifacts import ARTIFACT
from .direct_inputs import Guest, declared_sha256, direct_storage, parse_parts, pending_upload
from .errors import ApiError, bad_request, not_found, unavailable
from .inputs import json_object
from .sessions import WRITE, authenticate
from .upload import HEAD_BYTES, OWNER, check_upload, commit_row, human, limits_for, too_large, usage

log = logging.getLogger("portal.uploads")


class Refused(Exception):
    """The upload was discarded; answer with ``error``."""

    def __init__(self, error: ApiError) -> None:
        super().__init__(error.message)
        self.error = error


async def shielded(awaitable: Awaitable[Any]) -> None:
    """Run a clean-up to its end even if the request is cancelled meanwhile; its own failure is logged
    (the error that made it necessary is the one to report)."""
    task = asyncio.ensure_future(awaitable)
    try:
        await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise
    except Exception as exc:  # noqa: BLE001
        log.warning("clean-up after a failed direct upload did not work: %s", exc)


async def vanished(app: web.Application, upload: Pending) -> None:
    """Storage no longer has the upload: drop the row (and anything under its key) so the reservation goes."""
    if await claim(app[keys.POOL], upload, unexpired=False):
        with contextlib.suppress(ServiceUnavailable):
            await discard(app, upload, "upload.aborted", reason="gone from storage", actor_id=None)


def check_parts(stored: list[StoredPart], claimed: dict[int, str], size: int, limits: PartLimits) -> ApiError | None:
    """Why the parts storage holds cannot make the declared file, or None."""
    def refuse(code: str, message: str) -> ApiError:
        return ApiError(400, code, message)

    if not stored:
        return refuse("no_parts", "no part of this upload has reached storage")
    numbers = [part.number for part in stored]
    if numbers != list(range(1, len(stored) + 1)):
        return refuse("bad_parts", f"the parts must be numbered 1 to {len(stored)} without gaps; storage holds "
                                   f"parts {', '.join(map(str, numbers[:20]))}{' …' if len(numbers) > 20 else ''}")
    for part in stored:
        sent = claimed.get(part.number)
        if sent != part.etag.strip('"'):
            what = "was not listed" if sent is None else f'was listed with ETag "{sent}"'
            return refuse("bad_parts", f'part {part.number} {what}, but storage holds it with ETag {part.etag}')
    extra = sorted(set(claimed) - set(numbers))
    if extra:
        return refuse("bad_parts", f"part {extra[0]} was listed but storage does not hold it")
    total = sum(part.size for part in stored)
    if total != size:
        more = "more" if total > size else "fewer"
        return refuse("size_mismatch", f"storage holds {total} bytes, {more} than the {size} declared for this upload")
    first = stored[0].size
    for part in stored[:-1]:
        if part.size != first:
            return refuse("bad_parts", f"every part but the last must be the same size: part 1 is {first} bytes, "
                                       f"part {part.number} {part.size}")
    if len(stored) > 1 and first < limits.min_size:
        return refuse("bad_parts", f"every part but the last must be at least {human(limits.min_size)}; "
                                   f"these are {first} bytes")
    if len(stored) > 1 and stored[-1].size > first:
        return refuse("bad_parts", f"the last part ({stored[-1].size} bytes) is larger than the others ({first})")
    return None


@operation("Complete a direct upload: the artifact is created from the parts storage holds",
           description="The @uppy/aws-s3 completeMultipartUpload call. The parts are listed from storage and must "
                       "add up to the declared size; the artifact starts `unverified` and becomes `verified` (or "
                       "`quarantined`) once its bytes are read back and hashed. `sha256` may be declared here when "
                       "it was not known at the start.",
           tags=["direct uploads"], query={"key": {"type": "string"}}, required_query=["key"],
           body={"type": "object", "required": ["parts"], "properties": {
               "parts": {"type": "array", "items": {"type": "object", "properties": {
                   "PartNumber": {"type": "integer"}, "ETag": {"type": "string"}}}},
               "sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$"}}},
           responses={409: "", 413: "", 422: "", 501: ""},
           response={"type": "object", "properties": {"location": {"type": "string"}, "key": {"type": "string"},
                                                      "artifact": ARTIFACT}})
async def complete(request: web.Request) -> web.Response:
    principal = await authenticate(request, scope=WRITE)
    return web.json_response(await complete_upload(request, principal.user))


async def complete_upload(request: web.Request, user: User, guest: Guest | None = None) -> dict:
    """Complete ``user``'s pending upload named by the request: {location, key, artifact}. ``guest``: one a
    guest sent through a file request, checked against its caps and counted by it."""
    app = request.app
    storage = direct_storage(request)
    upload = await pending_upload(request, user.id, guest.file_request_id if guest else None)
    body = await json_object(request, '{"parts": [{"PartNumber": 1, "ETag": "\\"<etag>\\""}]}')
    claimed = parse_parts(body.get("parts"))
    sha256 = declared_sha256(body.get("sha256"), "sha256")
    if sha256 and upload.sha256 and sha256 != upload.sha256:
        raise bad_request("sha256 differs from the metadata.sha256 declared when the upload started", code="bad_sha256")
    pool = app[keys.POOL]
    if not await claim(pool, upload, unexpired=True):
        if upload.expired:
            raise not_found("upload (it expired: start a new one)")
        raise ApiError(409, "busy", "this upload is being completed or aborted right now")
    try:
        artifact = await _finish(app, storage, upload, user, claimed, sha256 or upload.sha256, guest)
    except Refused as refused:
        raise refused.error from None
    except BaseException:
        await shielded(release(pool, upload.upload_id))
        raise
    app[keys.VERIFIER].wake()
    app[keys.METRICS].count_bytes("uploaded", upload.size)
    base = app[keys.CONFIG].core.base_url
    return {"location": f"{base}/api/artifacts/{artifact['id']}", "key": upload.key, "artifact": artifact}


async def _refuse(app: web.Application, upload: Pending, user: User, error: ApiError) -> Refused:
    """Abort and delete everything of the upload, then the Refused to raise (503 if storage cannot be told)."""
    actor_id = None if upload.file_request_id else user.id  # a guest's upload: no account refused it
    try:
        await discard(app, upload, "upload.aborted", reason=f"refused: {error.message}"[:300], actor_id=actor_id)
    except ServiceUnavailable as exc:
        raise unavailable(f"the upload was refused ({error.message}) but storage could not be told: {exc}") from None
    return Refused(error)


async def _finish(app: web.Application, storage, upload: Pending, user: User, claimed: dict[int, str],
                  sha256: str | None, guest: Guest | None) -> dict:
    pool = app[keys.POOL]
    try:
        if upload.stored_at is None:
            try:
                stored = await storage.list_parts(upload.key, upload.upload_id)
            except UploadNotFound:
                await discard(app, upload, "upload.aborted", reason="gone from storage", actor_id=None)
                raise Refused(not_found("upload (storage no longer has it: start a new one)")) from None
            problem = check_parts(stored, claimed, upload.size, storage.part_limits)
            if problem is not None:
                raise await _refuse(app, upload, user, problem)
            await storage.complete_multipart(upload.key, upload.upload_id, stored)
            await mark_stored(pool, upload.upload_id)
            upload = attrs.evolve(upload, stored_at=dt.datetime.now(dt.timezone.utc))
        head = b"".join([chunk async for chunk in storage.read(upload.key, end=HEAD_BYTES)])
    except ServiceUnavailable as exc:
        raise unavailable(f"storage is unavailable; complete the upload again later: {exc}") from None
    plan, limits = await limits_for(app, user)
    try:
        await check_upload(app, user, upload.name, upload.content_type, upload.size, head, plan=plan)
    except ApiError as refusal:
        if refusal.status == 503:
            raise  # uploads are paused for now: the upload is kept, to complete once they resume
        raise await _refuse(app, upload, user, refusal) from None
    if upload.size > limits.max_file:
        raise await _refuse(app, upload, user, too_large(plan, limits, 0, limits.max_file))
    event_data = {"via": "direct", "upload_id": upload.upload_id}
    if guest is not None:
        event_data["file_request_id"] = guest.file_request_id
    try:
        artifact = await commit_row(pool, user, upload.key, upload.name, upload.content_type, upload.size,
                                    sha256 or "", limits, event_data=event_data, direct_upload=upload.upload_id,
                                    hook=guest.on_commit if guest else None, actor_id=None if guest else OWNER,
                                    verified=False)
    except ApiError as refusal:  # the file request's caps (closed, expired or full meanwhile)
        raise await _refuse(app, upload, user, refusal) from None
    if artifact is None:
        held = (await usage(pool, user.id))[0] + await reserved_bytes(pool, user.id) - upload.size
        raise await _refuse(app, upload, user, too_large(plan, limits, held, max(0, limits.quota - held)))
    return artifact
