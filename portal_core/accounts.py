"""What administrators do to accounts, from the admin console and the ``portal admin`` command alike:
find a user, freeze and unfreeze, override limits, grant admin, and erase.

Every change is written together with its ``admin.*`` event in the caller's transaction, so the audit
trail says exactly who did what to whom. ``actor_id`` is the admin's user id; None means an operator at
the command line (the event's data then says ``"via": "cli"``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import attrs
from aiohttp import web

from . import keys
from .events import record
from .interfaces import ServiceUnavailable
from .plans import FREE, PLAN_APPLIES

log = logging.getLogger("portal.accounts")

# Keys of event data that say nothing about the person, kept when a user is erased; every other key
# (file and token names, reasons, ...) is dropped, and so are the IP and user agent of their requests.
KEPT_WHEN_ERASED = ("size", "content_type", "auth_backend", "old", "new", "status", "provider", "scopes",
                    "expires_in", "via", "artifacts", "bytes")
ERASE_BATCH = 100
# Uploads that were already past authentication when the account was frozen may still commit while it is
# being erased; each round deletes what they added, and the last one holds the user's row lock.
ERASE_ROUNDS = 5


# Run first when a user is erased (after the freeze), for what lives in storage without an artifact row (a
# direct upload still in progress, say): each step gets (app, user id) and raises ServiceUnavailable when
# storage fails, which stops the erasure safely. Rows that only reference the user go with the user row
# (ON DELETE CASCADE) and need no step. A feature with such objects adds its step here.
BEFORE_ERASE: tuple[Callable[[web.Application, int], Awaitable[object]], ...] = ()


class NoSuchUser(LookupError):
    """No user matches (the message says what was looked for)."""


class AmbiguousUser(LookupError):
    """Several users share the email; the message lists their ids."""


class RefusedErasure(Exception):
    """The account cannot be erased as it is (the message says why and what to do)."""


async def find_user(cur, ref: str) -> tuple[int, str]:
    """(id, email) of the user named by ``ref``: a numeric id or an email (any case)."""
    ref = ref.strip()
    if ref.isdigit():
        await cur.execute("SELECT id, email FROM users WHERE id = %s", (int(ref),))
    else:
        await cur.execute("SELECT id, email FROM users WHERE lower(email) = lower(%s) ORDER BY id", (ref,))
    rows = await cur.fetchall()
    if not rows:
        raise NoSuchUser(f"no user {'with id' if ref.isdigit() else 'with the email'} {ref}")
    if len(rows) > 1:
        raise AmbiguousUser(f"{len(rows)} users have the email {ref} (ids {', '.join(str(r[0]) for r in rows)}); "
                            "name one by its id")
    return rows[0][0], rows[0][1]


async def _lock(cur, user_id: int, columns: str) -> tuple:
    await cur.execute(f"SELECT {columns} FROM users WHERE id = %s FOR UPDATE", (user_id,))
    row = await cur.fetchone()
    if row is None:
        raise NoSuchUser(f"no user with id {user_id}")
    return row


def _via(via: str | None) -> dict:
    return {"via": via} if via else {}


async def set_frozen(cur, user_id: int, frozen: bool, *, actor_id: int | None, via: str | None = None) -> bool:
    """Freeze (or unfreeze) the user; True when that changed anything. Nothing else is touched: their
    sessions and tokens stay, refused while frozen (the credential query reads frozen_at), and work again after."""
    (frozen_at,) = await _lock(cur, user_id, "frozen_at")
    if (frozen_at is not None) == frozen:
        return False
    await cur.execute("UPDATE users SET frozen_at = CASE WHEN %s THEN now() END, updated_at = now() WHERE id = %s",
                      (frozen, user_id))
    await record(cur, "admin.user_frozen" if frozen else "admin.user_unfrozen", actor_id=actor_id, owner_id=user_id,
                 subject_id=user_id, data=_via(via))
    return True


async def set_limits(cur, user_id: int, max_file: int | None, quota: int | None, *, actor_id: int | None,
                     via: str | None = None) -> bool:
    """Override the user's limits (None: the plan's); True when that changed anything."""
    old = await _lock(cur, user_id, "limit_max_file, limit_quota")
    if tuple(old) == (max_file, quota):
        return False
    await cur.execute("UPDATE users SET limit_max_file = %s, limit_quota = %s, updated_at = now() WHERE id = %s",
                      (max_file, quota, user_id))
    await record(cur, "admin.limits_changed", actor_id=actor_id, owner_id=user_id, subject_id=user_id,
                 data={"old": {"max_file": old[0], "quota": old[1]}, "new": {"max_file": max_file, "quota": quota},
                       **_via(via)})
    return True


async def set_admin_granted(cur, user_id: int, granted: bool, *, actor_id: int | None, via: str | None = None) -> bool:
    """Grant (or take back) admin independently of the identity provider; True when that changed anything."""
    (current,) = await _lock(cur, user_id, "admin_granted")
    if current == granted:
        return False
    await cur.execute("UPDATE users SET admin_granted = %s, updated_at = now() WHERE id = %s", (granted, user_id))
    await record(cur, "admin.admin_granted" if granted else "admin.admin_revoked", actor_id=actor_id,
                 owner_id=user_id, subject_id=user_id, data=_via(via))
    return True


@attrs.frozen
class Erased:
    artifacts: int
    bytes: int


async def erase(app: web.Application, user_id: int, *, actor_id: int | None) -> Erased:
    """Erase a user: their stored objects, artifacts, sessions, tokens and every row that cascades from
    the user (subscription, shares, webhooks), and their personal data in the events, which keep them only
    as a number. Records ``admin.user_deleted``.

    The account is frozen first, so nothing new arrives. Objects are removed before their rows, one by one,
    so a storage failure part-way (ServiceUnavailable, re-raised) leaves a frozen account with fewer
    artifacts, every row still matching an object; erasing again carries on. The user row goes last, under
    its row lock with no artifact left, which is the lock every upload's commit takes.
    """
    pool = app[keys.POOL]
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("SELECT plan, status FROM subscriptions WHERE user_id = %s", (user_id,))
            subscription = await cur.fetchone()
            if subscription and subscription[0] != FREE and subscription[1] in PLAN_APPLIES:
                raise RefusedErasure(f"this user has a {subscription[1]} {subscription[0]} subscription: cancel it "
                                     "in the billing provider first, so they are not charged after erasure")
            await set_frozen(cur, user_id, True, actor_id=actor_id)
    for step in BEFORE_ERASE:
        await step(app, user_id)
    removed = Erased(0, 0)
    for _round in range(ERASE_ROUNDS):
        removed = await _delete_artifacts(app, user_id, removed)
        async with pool.acquire() as conn, conn.cursor() as cur:
            async with cur.begin():
                await _lock(cur, user_id, "id")
                await cur.execute("SELECT EXISTS (SELECT 1 FROM artifacts WHERE owner_id = %s)", (user_id,))
                if (await cur.fetchone())[0]:
                    continue  # an upload committed meanwhile: remove it too, then try again
                await _scrub_events(cur, user_id)
                await cur.execute("DELETE FROM users WHERE id = %s", (user_id,))
                await record(cur, "admin.user_deleted", actor_id=actor_id, owner_id=user_id, subject_id=user_id,
                             data={"artifacts": removed.artifacts, "bytes": removed.bytes})
                return removed
    raise ServiceUnavailable(f"user {user_id} kept receiving uploads while being erased; they are frozen, try again")


async def _delete_artifacts(app: web.Application, user_id: int, so_far: Erased) -> Erased:
    pool, storage = app[keys.POOL], app[keys.STORAGE]
    count, total = so_far.artifacts, so_far.bytes
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute("SELECT id, storage_key, size FROM artifacts WHERE owner_id = %s ORDER BY id LIMIT %s",
                              (user_id, ERASE_BATCH))
            batch = await cur.fetchall()
        if not batch:
            return Erased(count, total)
        for artifact_id, key, size in batch:
            await storage.delete(key)  # ServiceUnavailable stops here, with this row still matching its object
            async with pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute("DELETE FROM artifacts WHERE id = %s", (artifact_id,))
            count, total = count + 1, total + size


async def _scrub_events(cur, user_id: int) -> None:
    """Keep the user's events as facts about a number: the IP and user agent of their own requests go, and
    so does every data key of the events about them except KEPT_WHEN_ERASED. What they did to others' data
    (as an admin, say) keeps its data: it is about those others."""
    await cur.execute(
        """
        UPDATE events SET
            ip = CASE WHEN actor_id = %(u)s OR actor_id IS NULL THEN NULL ELSE ip END,
            user_agent = CASE WHEN actor_id = %(u)s OR actor_id IS NULL THEN NULL ELSE user_agent END,
            data = CASE WHEN owner_id = %(u)s
                        THEN (SELECT COALESCE(jsonb_object_agg(key, value), '{}'::jsonb) FROM jsonb_each(data)
                              WHERE key = ANY(%(keep)s)) || '{"erased": true}'::jsonb
                        ELSE data END
        WHERE owner_id = %(u)s OR actor_id = %(u)s
        """, {"u": user_id, "keep": list(KEPT_WHEN_ERASED)})
