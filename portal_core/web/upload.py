"""POST /api/artifacts: stream a multipart upload into storage, then commit the row — and the upload policy
every upload path shares (:func:`limits_for`, :func:`check_upload`, :func:`store_part`, :func:`commit_row`).

The body is never held whole in memory or on disk here: chunks flow from the socket through a meter
(size, SHA-256, limit) into ``Storage.put``. The limit is the smaller of the plan's per-file limit and
what is left of its quota, enforced while streaming; the quota is checked again under a row lock when
the row is written, so two concurrent uploads cannot overshoot it. Whatever fails, nothing is left:
the storage removes partial objects itself, and an object whose row cannot be written is deleted.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from aiohttp import web

from .. import keys
from ..events import record
from ..interfaces import ObjectTooLarge, ServiceUnavailable, User
from ..pending_uploads import reserved_bytes
from ..settings import Limits
from ..site import uploads_paused_error
from ..openapi import operation
from .artifacts import ARTIFACT, ARTIFACT_COLUMNS, artifact_json
from .errors import ApiError, bad_request, unavailable
from .form_parts import FileParts, read_head
from .sessions import authenticate

log = logging.getLogger("portal.upload")

# How much of a file policy plugins see before it is stored (magic bytes sit in the first few hundred).
HEAD_BYTES = 4096
MAX_NAME = 255
# Multipart framing and headers around the file never come near this.
ENVELOPE_SLACK = 64 * 1024
_BROWSER_FILENAME = re.compile(r';\s*filename="([^"]*)"')
_CONTENT_TYPE = re.compile(r"^[\w!#$&^.+-]+/[\w!#$&^.+-]+$")


def validate_filename(raw: str | None) -> str:
    """A filename is data: any printable text up to 255 characters; empty or control characters → 400."""
    if raw is None or not raw.strip():
        raise bad_request("the file has no name: send it as the 'file' field with a filename", code="bad_filename")
    name = unicodedata.normalize("NFC", raw)
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in name):
        raise bad_request("the filename contains control characters", code="bad_filename")
    if len(name) > MAX_NAME:
        raise bad_request(f"the filename is {len(name)} characters long; the limit is {MAX_NAME}", code="bad_filename")
    return name


def browser_filename(part) -> str | None:
    """The part's filename as the person named it.

    Browsers send filename="..." as raw UTF-8 with only '"', CR and LF percent-encoded and backslashes
    left as they are (HTML spec), so the value is read verbatim rather than as an RFC 2616 quoted-string.
    RFC 5987 filename*= is decoded by aiohttp.
    """
    header = part.headers.get("Content-Disposition", "")
    match = _BROWSER_FILENAME.search(header)
    if match is None or "filename*" in header:
        return part.filename
    return match.group(1).replace("%22", '"').replace("%0D", "\r").replace("%0A", "\n")


def clean_content_type(raw: str | None) -> str:
    value = (raw or "").split(";", 1)[0].strip().lower()
    return value if _CONTENT_TYPE.match(value) and len(value) <= 127 else "application/octet-stream"


def human(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


class Meter:
    """Counts and hashes chunks on their way to storage; raises ObjectTooLarge past ``limit``."""

    def __init__(self, source: AsyncIterator[bytes], limit: int) -> None:
        self.source = source
        self.limit = limit
        self.size = 0
        self.sha256 = hashlib.sha256()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.source:
            self.size += len(chunk)
            if self.size > self.limit:
                raise ObjectTooLarge(self.limit)
            self.sha256.update(chunk)
            yield chunk


def too_large(plan: str, limits: Limits, used: int, limit: int) -> ApiError:
    if limit >= limits.max_file:
        message = f"the file is larger than the {plan} plan's per-file limit of {human(limits.max_file)}"
    else:
        message = (f"the upload would exceed the {plan} plan's storage quota of {human(limits.quota)} "
                   f"({human(used)} already used)")
    return ApiError(413, "too_large", message)


async def usage(pool, user_id: int) -> tuple[int, int]:
    """(bytes, files) the user stores: the running totals that triggers on artifacts keep (schema.sql), so
    the cost does not grow with the number of artifacts."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT bytes_used, files_used FROM users WHERE id = %s", (user_id,))
        row = await cur.fetchone()
    return (int(row[0]), int(row[1])) if row else (0, 0)


async def locked_usage(cur, user_id: int, *, excluding_upload: str | None = None) -> int:
    """Bytes the user's quota holds — stored artifacts plus the reservations of pending direct uploads
    (all but ``excluding_upload``) — with the user's row locked for the rest of the caller's transaction,
    so concurrent uploads of one user queue here and each sees the others'. The sum is a second statement,
    so its snapshot, taken once the lock is held, sees every reservation and artifact committed before.
    Stored bytes are the running total (schema.sql), so the check costs the same however many files there are."""
    await cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user_id,))
    await cur.execute(
        "SELECT COALESCE((SELECT bytes_used FROM users WHERE id = %(user)s), 0)"
        " + (SELECT COALESCE(sum(size), 0) FROM direct_uploads WHERE owner_id = %(user)s"
        "    AND upload_id IS DISTINCT FROM %(upload)s)", {"user": user_id, "upload": excluding_upload})
    (held,) = await cur.fetchone()
    return int(held)


async def limits_for(app: web.Application, user: User) -> tuple[str, Limits]:
    """The user's plan and the limits that apply to them: the plan's (PLAN_<NAME>_*), then an admin's
    override of either limit (``PATCH /api/admin/users/{id}``), unless a ``portal_limits`` plugin replaces them."""
    plan = (await app[keys.BILLING].current_plan(user.id)).name
    limits = app[keys.CONFIG].core.limits(plan)
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT limit_max_file, limit_quota FROM users WHERE id = %s", (user.id,))
        override = await cur.fetchone()
    if override is not None and (override[0] is not None or override[1] is not None):
        limits = Limits(max_file=limits.max_file if override[0] is None else override[0],
                        quota=limits.quota if override[1] is None else override[1])
    replaced = app[keys.PLUGIN_MANAGER].hook.portal_limits(user=user, plan=plan, limits=limits,
                                                                  config=app[keys.CONFIG])
    if replaced is not None:
        if not isinstance(replaced, Limits):
            raise TypeError(f"portal_limits must return a portal_core.settings.Limits or None, got {replaced!r}")
        limits = replaced
    return plan, limits


def check_uploads_open(app: web.Application) -> None:
    """503 with the banner while an admin has paused uploads (the ``uploads_paused`` site switch)."""
    settings = app[keys.SITE].current
    if settings.uploads_paused:
        raise uploads_paused_error(settings)


async def check_upload(app: web.Application, user: User, filename: str, content_type: str, size: int | None,
                       head: bytes | None = None, *, plan: str | None = None) -> None:
    """Refuse an upload before any byte is stored: 503 while uploads are paused, then ask every
    ``portal_check_upload`` plugin (the first refusal becomes a 422 naming it). Call it before storing,
    with the first :data:`HEAD_BYTES` of the file when they are at hand, and the user's ``plan`` when
    :func:`limits_for` already gave it (else it is looked up)."""
    check_uploads_open(app)
    if plan is None:
        plan = (await app[keys.BILLING].current_plan(user.id)).name
    for verdict in app[keys.PLUGIN_MANAGER].hook.portal_check_upload(
            user=user, plan=plan, filename=filename, content_type=content_type, size=size, head=head,
            config=app[keys.CONFIG]):
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if verdict:
            raise ApiError(422, "upload_refused", str(verdict))


class CommitHook(Protocol):
    """More work inside :func:`commit_row`'s transaction, for an upload path with rules of its own (a file
    request's caps). Both run after the owner's row is locked and the quota re-checked."""

    async def before(self, cur, size: int) -> None:
        """Lock and check whatever else the new row depends on; raise an :class:`ApiError` to refuse it
        (the transaction is rolled back and the stored object deleted)."""

    async def after(self, cur, artifact: dict) -> None:
        """Write what goes with the new artifact row (counters, the path's own events)."""


# commit_row's default actor: the owner uploaded it themselves.
OWNER = object()


async def next_file_part(reader):
    """The next 'file' part of ``reader`` (a :class:`FileParts`, or aiohttp's ``MultipartReader``), other
    fields skipped; None when there is none left. Malformed framing is a 400."""
    form = reader if isinstance(reader, FileParts) else FileParts(reader)
    return await form.next_file()


async def store_part(app: web.Application, user: User, part, *, plan: str, limits: Limits, used: int, limit: int,
                     too_large_error: Callable[[], ApiError] | None = None, hook: CommitHook | None = None,
                     event_data: dict | None = None, actor_id: int | None | object = OWNER,
                     form: FileParts | None = None, whole_form: bool = False) -> dict:
    """Stream one multipart file part into storage and commit its artifact row; returns the artifact.

    ``form`` is the :class:`FileParts` the part came from: the file counts only once the boundary after it
    arrived (with ``whole_form``, the rest of the form up to its closing boundary); a body cut off before
    that is a 400 and nothing is kept. Without ``form``, the part's own boundary must arrive.

    ``limit`` caps the bytes while streaming, and the quota is re-checked at commit (413 from
    ``too_large_error``, by default naming the plan's limit). Asks ``portal_check_upload`` with the file's
    first bytes before storing any. Whatever fails, nothing is left: the storage removes partial objects,
    and an object whose row is not written is deleted. Every streamed upload path (the owner's POST, a file
    request's) stores its files through here.
    """
    name = validate_filename(browser_filename(part))
    content_type = clean_content_type(part.headers.get("Content-Type"))
    head = await read_head(part, HEAD_BYTES)
    await check_upload(app, user, name, content_type, None, head, plan=plan)
    key = f"{user.id}/{uuid.uuid4()}"
    form = form if form is not None else FileParts(None)
    meter = Meter(form.chunks(part, head, whole_form=whole_form), limit)
    storage = app[keys.STORAGE]
    try:
        stored = await storage.put(key, aiter(meter), max_bytes=limit, content_type=content_type)
    except ObjectTooLarge:
        raise (too_large_error() if too_large_error else too_large(plan, limits, used, limit)) from None
    except ServiceUnavailable as exc:
        raise unavailable(f"storage is unavailable, nothing was stored: {exc}") from None
    if stored.size != meter.size:
        await storage.delete(key)
        raise unavailable(f"storage kept {stored.size} bytes of {meter.size}; nothing was stored")
    try:
        artifact = await commit_row(app[keys.POOL], user, key, name, content_type, meter.size,
                                    meter.sha256.hexdigest(), limits, event_data=event_data, hook=hook,
                                    actor_id=actor_id)
    except BaseException:
        await storage.delete(key)
        raise
    if artifact is None:
        await storage.delete(key)
        if too_large_error is not None:
            raise too_large_error()
        used, _count = await usage(app[keys.POOL], user.id)
        used += await reserved_bytes(app[keys.POOL], user.id)
        raise too_large(plan, limits, used, max(0, limits.quota - used))
    app[keys.METRICS].count_bytes("uploaded", meter.size)
    return artifact


@operation("Upload a file (multipart/form-data, field 'file'); streamed to storage", tags=["artifacts"],
           body={"type": "object", "required": ["file"],
                 "properties": {"file": {"type": "string", "format": "binary"}}},
           body_type="multipart/form-data",
           responses={201: "Stored; the artifact", 413: "", 422: "", 503: "Uploads are paused (the message is the banner)"},
           response=ARTIFACT)
async def upload(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user = principal.user
    app = request.app
    check_uploads_open(app)  # before reading a byte of the body (check_upload asks again, for every path)
    plan, limits = await limits_for(app, user)
    used, _count = await usage(app[keys.POOL], user.id)
    used += await reserved_bytes(app[keys.POOL], user.id)  # pending direct uploads hold their share
    limit = max(0, min(limits.max_file, limits.quota - used))
    if request.content_length is not None and request.content_length > limit + ENVELOPE_SLACK:
        raise too_large(plan, limits, used, limit)
    form = await FileParts.of(request)
    part = await form.next_file()
    if part is None:
        raise bad_request("the form has no 'file' field (curl -F file=@path)")
    artifact = await store_part(app, user, part, plan=plan, limits=limits, used=used, limit=limit, form=form,
                                whole_form=True)
    return web.json_response(artifact, status=201)


async def commit_row(pool, user: User, key: str, name: str, content_type: str, size: int, sha256: str,
                     limits: Limits, *, event_data: dict | None = None, hook: CommitHook | None = None,
                     actor_id: int | None | object = OWNER, direct_upload: str | None = None,
                     verified: bool = True) -> dict | None:
    """Insert the artifact row and its ``artifact.created`` event unless the quota filled up meanwhile (then None).

    The user's row is locked first, so concurrent commits of one user queue here and each sees the others'
    sizes and the reservations of their pending direct uploads: the quota cannot be overshot, whichever
    upload path the bytes came by. ``hook`` adds a path's own checks and writes to the same transaction;
    ``actor_id`` is who uploaded it (default: the owner; None for someone without an account).
    ``direct_upload`` is the pending direct upload being completed: its own reservation is not counted, and
    its row goes in the same transaction. ``verified=False`` (bytes that did not pass through the portal)
    queues the artifact for its SHA-256 to be checked (portal_core.verification).
    """
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            held = await locked_usage(cur, user.id, excluding_upload=direct_upload)
            if held + size > limits.quota:
                return None
            if hook is not None:
                await hook.before(cur, size)
            if direct_upload is not None:
                await cur.execute("DELETE FROM direct_uploads WHERE upload_id = %s RETURNING upload_id", (direct_upload,))
                if await cur.fetchone() is None:
                    raise RuntimeError(f"direct upload {direct_upload} vanished while it was being completed")
            await cur.execute(
                f"""INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key, verification)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING {ARTIFACT_COLUMNS}""",
                (str(uuid.uuid4()), user.id, name, size, content_type, sha256, key,
                 "verified" if verified else "unverified"))
            artifact = artifact_json(await cur.fetchone())
            if not verified:
                await cur.execute("INSERT INTO artifact_verifications (artifact_id) VALUES (%s)", (artifact["id"],))
            await record(cur, "artifact.created", actor_id=user.id if actor_id is OWNER else actor_id,
                         owner_id=user.id, subject_id=artifact["id"],
                         data={"name": name, "size": size, "content_type": content_type, "sha256": sha256,
                               **(event_data or {})})
            if hook is not None:
                await hook.after(cur, artifact)
            return artifact
