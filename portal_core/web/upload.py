"""POST /api/artifacts: stream a multipart upload into storage, then commit the row.

The body is never held whole in memory or on disk here: chunks flow from the socket through a meter
(size, SHA-256, limit) into ``Storage.put``. The limit is the smaller of the plan's per-file limit and
what is left of its quota, enforced while streaming; the quota is checked again under a row lock when
the row is written, so two concurrent uploads cannot overshoot it. Whatever fails, nothing is left:
the storage removes partial objects itself, and an object whose row cannot be written is deleted.
"""

from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
import uuid
from collections.abc import AsyncIterator

from aiohttp import web

from .. import keys
from ..interfaces import ObjectTooLarge, ServiceUnavailable, User
from ..settings import Limits
from .artifacts import ARTIFACT_COLUMNS, artifact_json
from .errors import ApiError, bad_request, unavailable
from .sessions import authenticate

log = logging.getLogger("portal.upload")

CHUNK = 512 * 1024
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


async def read_part(part) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk


def too_large(plan: str, limits: Limits, used: int, limit: int) -> ApiError:
    if limit >= limits.max_file:
        message = f"the file is larger than the {plan} plan's per-file limit of {human(limits.max_file)}"
    else:
        message = (f"the upload would exceed the {plan} plan's storage quota of {human(limits.quota)} "
                   f"({human(used)} already used)")
    return ApiError(413, "too_large", message)


async def usage(pool, user_id: int) -> tuple[int, int]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT COALESCE(sum(size), 0), count(*) FROM artifacts WHERE owner_id = %s", (user_id,))
        used, count = await cur.fetchone()
    return int(used), int(count)


async def upload(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user = principal.user
    app = request.app
    plan = (await app[keys.BILLING].current_plan(user.id)).name
    limits = app[keys.CONFIG].core.limits(plan)
    used, _count = await usage(app[keys.POOL], user.id)
    limit = max(0, min(limits.max_file, limits.quota - used))
    if request.content_length is not None and request.content_length > limit + ENVELOPE_SLACK:
        raise too_large(plan, limits, used, limit)
    if not request.content_type.startswith("multipart/form-data"):
        raise bad_request("send the file as multipart/form-data with a 'file' field (curl -F file=@path)")
    reader = await request.multipart()
    part = await reader.next()
    while part is not None and part.name != "file":
        await part.release()
        part = await reader.next()
    if part is None:
        raise bad_request("the form has no 'file' field (curl -F file=@path)")
    name = validate_filename(browser_filename(part))
    content_type = clean_content_type(part.headers.get("Content-Type"))
    key = f"{user.id}/{uuid.uuid4()}"
    meter = Meter(read_part(part), limit)
    storage = app[keys.STORAGE]
    try:
        stored = await storage.put(key, aiter(meter), max_bytes=limit, content_type=content_type)
    except ObjectTooLarge:
        raise too_large(plan, limits, used, limit) from None
    except ServiceUnavailable as exc:
        raise unavailable(f"storage is unavailable, nothing was stored: {exc}") from None
    if stored.size != meter.size:
        await storage.delete(key)
        raise unavailable(f"storage kept {stored.size} bytes of {meter.size}; nothing was stored")
    try:
        artifact = await commit_row(app[keys.POOL], user, key, name, content_type, meter, limits)
    except BaseException:
        await storage.delete(key)
        raise
    if artifact is None:
        await storage.delete(key)
        used, _count = await usage(app[keys.POOL], user.id)
        raise too_large(plan, limits, used, max(0, limits.quota - used))
    app[keys.METRICS].count_bytes("uploaded", meter.size)
    return web.json_response(artifact, status=201)


async def commit_row(pool, user: User, key: str, name: str, content_type: str, meter: Meter,
                     limits: Limits) -> dict | None:
    """Insert the artifact row unless the quota filled up meanwhile (then None)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT id FROM users WHERE id = %s FOR UPDATE", (user.id,))
            await cur.execute("SELECT COALESCE(sum(size), 0) FROM artifacts WHERE owner_id = %s", (user.id,))
            (used,) = await cur.fetchone()
            if used + meter.size > limits.quota:
                return None
            await cur.execute(
                f"""INSERT INTO artifacts (id, owner_id, name, size, content_type, sha256, storage_key)
                    VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {ARTIFACT_COLUMNS}""",
                (str(uuid.uuid4()), user.id, name, meter.size, content_type, meter.sha256.hexdigest(), key))
            return artifact_json(await cur.fetchone())
