"""Pending direct uploads: the rows that reserve quota while a client sends parts straight to storage.

A row is written when a client starts a direct upload (its declared size then counts against the owner's
quota) and deleted when the upload is completed (in the transaction that commits the artifact), aborted,
or expires. Whoever works on an upload — a completing request, an aborting one, the expiry job, an
erasure — first **claims** it: ``busy_until`` is set one lease ahead with a conditional UPDATE (``FOR
UPDATE SKIP LOCKED`` for the jobs), so on any number of pods each upload is handled by one of them, and
one whose process died is taken over once the lease runs out. Storage is always told before the row
goes: a multipart upload is never orphaned, even for a user who was deleted (owner_id is no foreign key).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging

import attrs
from aiohttp import web

from . import keys
from .events import record
from .interfaces import ServiceUnavailable

log = logging.getLogger("portal.uploads")

# Long enough for the slowest completion (listing 10,000 parts, joining them, reading the head back).
LEASE_SECONDS = 900
BATCH = 50
COLUMNS = ("upload_id, storage_key, owner_id, name, content_type, size, part_size, sha256, created_at, "
           "expires_at, stored_at, file_request_id")


@attrs.frozen
class Pending:
    """One pending direct upload, as its row says."""

    upload_id: str
    key: str
    owner_id: int
    name: str
    content_type: str
    size: int
    part_size: int
    sha256: str | None
    created_at: dt.datetime
    expires_at: dt.datetime
    stored_at: dt.datetime | None
    file_request_id: str | None = None  # a guest's upload through this file request

    @classmethod
    def from_row(cls, row) -> Pending:
        return cls(*row[:-1], file_request_id=str(row[-1]) if row[-1] else None)

    @property
    def expired(self) -> bool:
        return self.expires_at <= dt.datetime.now(dt.timezone.utc)


async def reserved_bytes(pool, user_id: int) -> int:
    """How many bytes the user's pending direct uploads reserve."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT COALESCE(sum(size), 0) FROM direct_uploads WHERE owner_id = %s", (user_id,))
        (total,) = await cur.fetchone()
    return int(total)


async def find(pool, owner_id: int, upload_id: str, key: str, file_request_id: str | None = None) -> Pending | None:
    """The owner's pending upload with this id and key, or None (someone else's answers exactly like none).
    ``file_request_id``: a guest's upload through that file request (None: the owner's own uploads only)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(f"SELECT {COLUMNS} FROM direct_uploads WHERE upload_id = %s AND storage_key = %s "
                          "AND owner_id = %s AND file_request_id IS NOT DISTINCT FROM %s",
                          (upload_id, key, owner_id, file_request_id))
        row = await cur.fetchone()
    return Pending.from_row(row) if row else None


async def claim(pool, upload: Pending, *, unexpired: bool) -> bool:
    """Take the upload for one completion or abort: False when another request or job holds it (or, with
    ``unexpired``, when it has expired meanwhile)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "UPDATE direct_uploads SET busy_until = now() + make_interval(secs => %s) "
            "WHERE upload_id = %s AND (busy_until IS NULL OR busy_until < now())"
            + (" AND expires_at > now()" if unexpired else "") + " RETURNING upload_id",
            (LEASE_SECONDS, upload.upload_id))
        return await cur.fetchone() is not None


async def release(pool, upload_id: str) -> None:
    """Give a claimed upload back (the completion failed in a way the client may retry)."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("UPDATE direct_uploads SET busy_until = NULL WHERE upload_id = %s", (upload_id,))


async def mark_stored(pool, upload_id: str) -> None:
    """Storage joined the parts: from now on the object exists and finishing means committing (or deleting) it."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("UPDATE direct_uploads SET stored_at = now() WHERE upload_id = %s", (upload_id,))


async def discard(app: web.Application, upload: Pending, event: str, *, reason: str, actor_id: int | None) -> None:
    """Remove a claimed upload for good: abort it in storage (and delete any object a completion that did not
    finish left under its key), then delete its row with an ``event`` ("upload.aborted" or "upload.expired") naming ``reason``.

    Raises ServiceUnavailable when storage cannot be told; the row then stays (and the claim runs out), so
    a later attempt or housekeeping finishes the job: nothing is ever orphaned in storage.
    """
    storage = app[keys.DIRECT_UPLOADS]
    if storage is None:
        raise ServiceUnavailable("the selected storage does not offer direct uploads, so pending ones cannot be aborted")
    await storage.abort_multipart(upload.key, upload.upload_id)
    # The key was generated for this upload and no artifact has it (that would have deleted this row), so
    # whatever is stored under it is a completion that did not finish: it goes too.
    await storage.delete(upload.key)
    async with app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("DELETE FROM direct_uploads WHERE upload_id = %s RETURNING upload_id", (upload.upload_id,))
            if await cur.fetchone() is not None:
                await record(cur, event, actor_id=actor_id, owner_id=upload.owner_id, subject_id=upload.upload_id,
                             data={"name": upload.name, "size": upload.size, "reason": reason})


async def _claim_batch(pool, where: str, params: tuple) -> list[Pending]:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            f"""UPDATE direct_uploads d SET busy_until = now() + make_interval(secs => %s)
                FROM (SELECT upload_id FROM direct_uploads
                      WHERE ({where}) AND (busy_until IS NULL OR busy_until < now())
                      ORDER BY expires_at LIMIT %s FOR UPDATE SKIP LOCKED) due
                WHERE d.upload_id = due.upload_id
                RETURNING {', '.join('d.' + c.strip() for c in COLUMNS.split(','))}""",
            (LEASE_SECONDS, *params, BATCH))
        return [Pending.from_row(row) for row in await cur.fetchall()]


async def _discard_all(app: web.Application, uploads: list[Pending], event: str, reason: str,
                       actor_id: int | None = None) -> tuple[int, int]:
    done = failed = 0
    for upload in uploads:
        try:
            await discard(app, upload, event, reason=reason, actor_id=actor_id)
            done += 1
        except ServiceUnavailable as exc:
            # The claim runs out and the next round tries again; the reservation stays until then.
            failed += 1
            log.warning("could not abort direct upload %s of %s in storage (will retry): %s",
                        upload.upload_id, upload.key, exc)
    return done, failed


async def expire_uploads(app: web.Application) -> str | None:
    """Housekeeping: abort expired direct uploads, and those of users who no longer exist, in storage, and
    free their reservations. Safe on several pods at once (each upload is claimed by one of them)."""
    if app[keys.DIRECT_UPLOADS] is None:
        return None
    pool = app[keys.POOL]
    expired = gone = failed = 0
    while batch := await _claim_batch(pool, "expires_at < now()", ()):
        done, bad = await _discard_all(app, batch, "upload.expired", "expired")
        expired, failed = expired + done, failed + bad
        if bad:
            break
    while batch := await _claim_batch(pool, "NOT EXISTS (SELECT 1 FROM users u WHERE u.id = owner_id)", ()):
        done, bad = await _discard_all(app, batch, "upload.aborted", "owner deleted")
        gone, failed = gone + done, failed + bad
        if bad:
            break
    said = []
    if expired:
        said.append(f"aborted {expired} expired direct upload(s)")
    if gone:
        said.append(f"aborted {gone} direct upload(s) of deleted users")
    if failed:
        said.append(f"{failed} could not be aborted yet")
    return "; ".join(said) or None


async def abort_pending_for_user(app: web.Application, user_id: int) -> int:
    """Abort every pending direct upload of ``user_id`` in storage and drop its row; returns how many.

    Call it before erasing a user. An upload another request is completing right now is left to it; if
    that completion fails once the user is gone, housekeeping aborts the upload (its owner no longer exists).
    """
    total = 0
    while batch := await _claim_batch(app[keys.POOL], "owner_id = %s", (user_id,)):
        done, failed = await _discard_all(app, batch, "upload.aborted", "account erased")
        total += done
        if failed:
            raise ServiceUnavailable(f"{failed} direct upload(s) of user {user_id} could not be aborted in storage")
        await asyncio.sleep(0)
    return total
