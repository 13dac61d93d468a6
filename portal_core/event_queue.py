"""The event queues, as operators and housekeeping act on them: which plugins consume events, requeueing a
plugin's parked deliveries, and deleting events past their retention. Delivery itself is
:mod:`portal_core.outbox`.
"""

from __future__ import annotations

CHANNEL = "portal_events"  # the trigger in schema.sql notifies it when an event's transaction commits


async def register_consumers(pool, plugins: list[str]) -> None:
    """Record (or refresh) the consumers this process delivers to; from now on every event queues for them."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            "INSERT INTO event_consumers (plugin) SELECT unnest(%s::text[]) "
            "ON CONFLICT (plugin) DO UPDATE SET seen_at = now()", (plugins,))


async def consumer_names(pool) -> list[str]:
    """The plugins events are queued for (registered by a running portal within the last week), by name."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT plugin FROM event_consumers ORDER BY plugin")
        return [row[0] for row in await cur.fetchall()]


async def forget_stale_consumers(pool, *, days: int = 7) -> int:
    """Drop consumers no process has registered for ``days`` (uninstalled plugins), with their queues."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute("DELETE FROM event_consumers WHERE seen_at < now() - make_interval(days => %s) "
                              "RETURNING plugin", (days,))
            gone = [row[0] for row in await cur.fetchall()]
            if gone:
                await cur.execute("DELETE FROM event_deliveries WHERE plugin = ANY(%s)", (gone,))
    return len(gone)


async def retry_parked(pool, plugin: str) -> int:
    """Put a plugin's parked deliveries back in its queue (attempts reset); returns how many."""
    async with pool.acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            await cur.execute(
                "UPDATE event_deliveries SET parked_at = NULL, attempts = 0, next_attempt_at = now() "
                "WHERE plugin = %s AND parked_at IS NOT NULL", (plugin,))
            count = cur.rowcount
            await cur.execute(f"NOTIFY {CHANNEL}")
    return count


async def purge_old_events(pool, *, days: int, batch: int = 10_000) -> int:
    """Delete events older than ``days`` (their queued deliveries go with them), in bounded batches."""
    total = 0
    while True:
        async with pool.acquire() as conn, conn.cursor() as cur:
            await cur.execute(
                "DELETE FROM events WHERE id IN (SELECT id FROM events "
                "WHERE occurred_at < now() - make_interval(days => %s) ORDER BY id LIMIT %s)", (days, batch))
            total += cur.rowcount
            if cur.rowcount < batch:
                return total
