"""SHA-256 verification of direct uploads: read the stored object back, hash it, mark the artifact.

The bytes of a direct upload never pass through the portal, so its artifact starts ``unverified`` with the
SHA-256 the client declared. Each process runs one verifier loop (like the event outbox):

* it **claims** due rows of ``artifact_verifications`` with ``FOR UPDATE SKIP LOCKED`` and pushes their
  ``next_attempt_at`` one lease ahead, so with several processes each artifact is read by one of them, and
  a row whose process died (or restarted) is taken again once the lease runs out: nothing is lost;
* it streams the object from storage, hashes it (in a worker thread: a 5 GiB file must not stall the
  event loop) and, in one transaction, marks the artifact ``verified`` (the SHA-256 of the bytes is kept;
  a client that declared none gets it now) or ``quarantined`` (the bytes differ from what was declared:
  downloads are refused and the owner sees why), deletes the queue row and records the event;
* a storage outage leaves the row for a later attempt with backoff; nothing is marked.

It sleeps until :meth:`Verifier.wake` (a completion in this process) or ``POLL_SECONDS`` pass.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging

from aiohttp import web

from . import keys
from .events import record
from .interfaces import ObjectNotFound, ServiceUnavailable
from .tasks import stop_tasks

log = logging.getLogger("portal.verification")

POLL_SECONDS = 5.0
BATCH = 4
# Longer than reading back and hashing the largest file takes (5 GiB at ~50 MiB/s is under two minutes).
LEASE_SECONDS = 900
MAX_BACKOFF_SECONDS = 3600.0

_CLAIM = """
    WITH due AS (
        SELECT artifact_id FROM artifact_verifications WHERE next_attempt_at <= now()
        ORDER BY next_attempt_at LIMIT %(batch)s FOR UPDATE SKIP LOCKED)
    UPDATE artifact_verifications v
    SET next_attempt_at = now() + make_interval(secs => %(lease)s), attempts = v.attempts + 1
    FROM due JOIN artifacts a ON a.id = due.artifact_id
    WHERE v.artifact_id = due.artifact_id
    RETURNING a.id, a.owner_id, a.storage_key, a.sha256, a.size, a.name, v.attempts"""


async def hash_object(storage, key: str) -> tuple[str, int]:
    """The SHA-256 (hex) and size of the stored object, read as a stream."""
    digest = hashlib.sha256()
    size = 0
    async for chunk in storage.read(key):
        size += len(chunk)
        await asyncio.to_thread(digest.update, chunk)
    return digest.hexdigest(), size


class Verifier:
    """One process's verification loop. ``start()`` / ``stop()``; ``wake()`` after a completion."""

    def __init__(self, app: web.Application) -> None:
        self.app = app
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task] = []
        self.verified = 0
        self.quarantined = 0

    async def start(self) -> None:
        if self.app[keys.DIRECT_UPLOADS] is None:
            return  # no direct uploads, nothing ever needs verifying
        self._tasks.append(asyncio.ensure_future(self._run()))

    async def stop(self) -> None:
        await stop_tasks(self._tasks)
        self._tasks.clear()

    def wake(self) -> None:
        self._wake.set()

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            try:
                claimed = await self.verify_batch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database away: try again later, nothing is lost
                log.warning("verification paused: %s", str(exc).strip().splitlines()[0] if str(exc).strip() else exc)
                claimed = 0
            if claimed >= BATCH:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(POLL_SECONDS):
                    await self._wake.wait()

    async def verify_batch(self) -> int:
        """Claim up to BATCH due verifications and do them; returns how many were claimed."""
        pool = self.app[keys.POOL]
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(_CLAIM, {"batch": BATCH, "lease": LEASE_SECONDS})
            rows = await cur.fetchall()
        for row in rows:
            await self._verify(*row)
        return len(rows)

    async def _verify(self, artifact_id, owner_id: int, key: str, declared: str, size: int, name: str,
                      attempts: int) -> None:
        storage = self.app[keys.DIRECT_UPLOADS]
        try:
            actual, stored = await hash_object(storage, key)
        except ObjectNotFound:
            actual, stored = None, 0
        except (ServiceUnavailable, OSError, asyncio.TimeoutError) as exc:
            await self._retry(artifact_id, attempts, exc)
            return
        if actual is None:
            verdict, detail = "quarantined", "the stored object is missing"
        elif stored != size:
            verdict, detail = "quarantined", f"storage holds {stored} bytes, not the {size} uploaded"
        elif declared and actual != declared:
            verdict, detail = "quarantined", (f"the stored bytes' SHA-256 is {actual}, not the {declared} "
                                              "declared when it was uploaded: the file was damaged or is not the one "
                                              "meant; delete it and upload it again")
        else:
            verdict, detail = "verified", None
        await self._finish(artifact_id, owner_id, name, verdict, detail, actual or declared, declared)

    async def _finish(self, artifact_id, owner_id: int, name: str, verdict: str, detail: str | None,
                      actual: str, declared: str) -> None:
        async with self.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
            async with cur.begin():
                await cur.execute(
                    "UPDATE artifacts SET verification = %s, verification_detail = %s, sha256 = %s "
                    "WHERE id = %s AND verification = 'unverified' RETURNING id",
                    (verdict, detail, actual, artifact_id))
                changed = await cur.fetchone() is not None
                await cur.execute("DELETE FROM artifact_verifications WHERE artifact_id = %s", (artifact_id,))
                if changed and verdict == "verified":
                    await record(cur, "artifact.verified", owner_id=owner_id, subject_id=artifact_id,
                                 data={"name": name, "sha256": actual})
                elif changed:
                    await record(cur, "artifact.quarantined", owner_id=owner_id, subject_id=artifact_id,
                                 data={"name": name, "sha256": actual, "declared_sha256": declared or None,
                                       "reason": detail})
        if changed:
            if verdict == "verified":
                self.verified += 1
            else:
                self.quarantined += 1
                log.warning("artifact %s quarantined: %s", artifact_id, detail)

    async def _retry(self, artifact_id, attempts: int, exc: BaseException) -> None:
        delay = min(5.0 * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)
        error = f"{type(exc).__name__}: {exc}"[:2000]
        log.warning("verification of artifact %s failed (attempt %d, next in %.0fs): %s", artifact_id, attempts,
                    delay, error)
        async with self.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                "UPDATE artifact_verifications SET last_error = %s, next_attempt_at = now() + make_interval(secs => %s) "
                "WHERE artifact_id = %s", (error, delay, artifact_id))
