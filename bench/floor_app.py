"""The floor for authenticated reads: a bare aiohttp app answering every request with one aiopg ``SELECT 1``.

    python bench/floor_app.py DSN PORT MAXSIZE

Single process, the default asyncio loop, no access log, a pool of the same size as the portal's — the
least any aiohttp + aiopg service does per request, so the portal's rate divided by this one's is what
the portal's own work (routing, middleware, credential check, the listing and its JSON) costs.

``GET /list?owner=N`` is a second, informative floor: the same 50 rows the portal lists, fetched with
one plain query (no credential) and answered with ``json_response`` — what the payload alone costs.
"""

from __future__ import annotations

import sys

import aiopg
from aiohttp import web


async def select_one(request: web.Request) -> web.Response:
    async with request.app["pool"].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT 1")
        (value,) = await cur.fetchone()
    return web.json_response({"value": value})


async def list_rows(request: web.Request) -> web.Response:
    async with request.app["pool"].acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT id, name, size, content_type, sha256, created_at FROM artifacts WHERE owner_id = %s "
                          "ORDER BY created_at DESC, id DESC LIMIT 51", (int(request.query["owner"]),))
        rows = await cur.fetchall()
    return web.json_response({"artifacts": [
        {"id": str(r[0]), "name": r[1], "size": r[2], "content_type": r[3], "sha256": r[4],
         "created_at": r[5].isoformat()} for r in rows[:50]], "next_cursor": None})


def main(dsn: str, port: int, maxsize: int) -> None:
    async def pool(app: web.Application):
        app["pool"] = await aiopg.create_pool(dsn, minsize=1, maxsize=maxsize, timeout=10)
        yield
        app["pool"].close()
        await app["pool"].wait_closed()

    app = web.Application()
    app.cleanup_ctx.append(pool)
    app.router.add_get("/", select_one)
    app.router.add_get("/list", list_rows)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
