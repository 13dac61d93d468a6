"""`portal events`: the event log as JSON lines, parked deliveries, and `portal events retry PLUGIN`."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys

from .events import EVENT_COLUMNS, Event

FOLLOW_POLL_SECONDS = 1.0
PAGE_ROWS = 1000
# Every committed event, in (txid, id) order, each with whether it is settled: its transaction id is below
# that of every transaction still running, so no event can still commit before it in this order. --follow
# resumes after the last settled one, so an event whose transaction commits after a later id's is printed
# too, never skipped (schema.sql, events.txid); unsettled ones already printed are not printed again.
_PAGE = f"""
    SELECT {EVENT_COLUMNS}, txid::text, txid < pg_snapshot_xmin(pg_current_snapshot()) FROM events
    WHERE (txid, id) > (%(txid)s::xid8, %(id)s)
      AND (%(type)s::text IS NULL OR type = %(type)s)
      AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s)
    ORDER BY txid, id LIMIT {PAGE_ROWS}"""
_PARKED = """
    SELECT d.plugin, d.event_id, e.type, d.attempts, d.last_error, d.parked_at
    FROM event_deliveries d JOIN events e ON e.id = d.event_id
    WHERE d.parked_at IS NOT NULL ORDER BY d.plugin, d.event_id"""


def add_events_commands(sub) -> None:
    events = sub.add_parser(
        "events", help="print events as JSON lines and list parked deliveries; `events retry PLUGIN` requeues them",
        description="Print the event log (the audit trail) as JSON lines, oldest first, then list deliveries to "
                    "plugins that were parked after repeated failures (on stderr). `portal events retry PLUGIN` "
                    "puts that plugin's parked deliveries back in its queue; a running portal delivers them.")
    events.add_argument("action", nargs="?", choices=["list", "retry"], default="list")
    events.add_argument("plugin", nargs="?", help="with retry: the plugin whose parked deliveries to retry")
    events.add_argument("--type", help="only events of this type, e.g. artifact.created")
    events.add_argument("--since", type=_timestamp, help="only events at or after this ISO 8601 time")
    events.add_argument("--follow", action="store_true", help="keep printing new events as they are recorded")
    events.set_defaults(func=cmd_events)


def _timestamp(raw: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not an ISO 8601 time such as 2026-12-01T09:00:00+00:00") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def cmd_events(args) -> int:
    from .cli import EX_UNAVAILABLE, config_or_exit
    from .db import DatabaseUnavailable, create_pool

    if args.action == "retry" and not args.plugin:
        print("portal events retry: name the plugin whose parked deliveries to retry (see `portal events`)",
              file=sys.stderr)
        return 2
    config = config_or_exit(args)
    if config.core.database_url is None:
        print("portal events: needs DATABASE_URL", file=sys.stderr)
        return 78

    async def run() -> int:
        pool = await create_pool(config.core.database_url, connect_timeout=config.core.database_connect_timeout)
        try:
            if args.action == "retry":
                return await _retry(pool, args.plugin)
            return await _list(pool, args)
        finally:
            pool.close()
            await pool.wait_closed()

    try:
        return asyncio.run(run())
    except DatabaseUnavailable as exc:
        print(f"portal: {exc}", file=sys.stderr)
        return EX_UNAVAILABLE
    except KeyboardInterrupt:
        return 0


async def _retry(pool, plugin: str) -> int:
    from .event_queue import consumer_names, retry_parked

    count = await retry_parked(pool, plugin)
    if count == 0:
        known = await consumer_names(pool)
        if plugin not in known:
            print(f"portal events retry: no plugin named {plugin!r} receives events "
                  f"(plugins that do: {', '.join(known) or 'none'})", file=sys.stderr)
        else:
            print(f"portal events retry: {plugin!r} has no parked deliveries", file=sys.stderr)
        return 1
    print(f"requeued {count} parked delivery(ies) for {plugin}; a running portal delivers them now")
    return 0


async def _list(pool, args) -> int:
    settled = ("0", 0)  # (txid, id) up to which every event is printed and none can still appear
    shown: set[int] = set()  # printed after it, not yet settled
    while True:
        page, gap = settled, False
        while True:
            async with pool.acquire() as conn, conn.cursor() as cur:
                await cur.execute(_PAGE, {"txid": page[0], "id": page[1], "type": args.type, "since": args.since})
                rows = await cur.fetchall()
            for row in rows:
                event_id, txid, is_settled = row[0], row[-2], row[-1]
                if event_id not in shown:
                    print(json.dumps(Event.from_row(row).to_json(), ensure_ascii=False), flush=True)
                if is_settled and not gap:
                    settled = (txid, event_id)
                    shown.discard(event_id)
                else:
                    gap = True
                    shown.add(event_id)
            if len(rows) < PAGE_ROWS:
                break
            page = (rows[-1][-2], rows[-1][0])
        if not args.follow:
            break
        await asyncio.sleep(FOLLOW_POLL_SECONDS)
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute(_PARKED)
        parked = await cur.fetchall()
    if parked:
        print(f"\n{len(parked)} parked delivery(ies) (retry with `portal events retry PLUGIN`):", file=sys.stderr)
        for plugin, event_id, event_type, attempts, error, parked_at in parked:
            print(f"  {plugin}: event {event_id} ({event_type}) after {attempts} attempts, "
                  f"parked {parked_at.isoformat()}: {error}", file=sys.stderr)
    return 0
