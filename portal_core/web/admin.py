"""The admin console: its pages (/admin/...), the overview and the site switches (/api/admin/...), and the
route table of the whole feature (users in admin_users.py, the audit trail in audit.py).

Everything here is for admins only: ``authenticate(request, scope=ADMIN)`` answers anyone else exactly as
an address that does not exist would (404), and takes a bearer token only with the ``admin`` scope.
"""

from __future__ import annotations

from aiohttp import web

from .. import keys, site
from ..openapi import operation
from ..plans import FREE, PLAN_APPLIES
from . import admin_users, audit
from .inputs import json_object
from .sessions import ADMIN, authenticate

# The console's pages: static files from assets/admin/, served only to admins.
PAGES = {"/admin": "admin/overview.html", "/admin/users": "admin/users.html",
         "/admin/users/{id}": "admin/user.html", "/admin/events": "admin/events.html",
         "/admin/settings": "admin/settings.html"}
OVERVIEW_DAYS = 30


async def page(request: web.Request) -> web.Response:
    """An admin page (the same file for every /admin/users/{id}); its script loads the data."""
    await authenticate(request, allow_token=False, scope=ADMIN)
    entry = request.app[keys.ASSETS].files.get(PAGES[request.match_info.route.resource.canonical])
    if entry is None:
        raise web.HTTPNotFound(text="this page is missing from the installed assets")
    return web.Response(body=entry[0], content_type="text/html", charset="utf-8", headers={"Cache-Control": "no-cache"})


@operation("Counts for the overview: users, active users, paying users by plan, storage, uploads per day "
           "(admins only)", tags=["admin"], auth="admin",
           response={"type": "object", "properties": {
               "users": {"type": "object", "properties": {k: {"type": "integer"} for k in
                                                          ("total", "active_30_days", "frozen", "admins")}},
               "paying": {"type": "array", "items": {"type": "object", "properties": {
                   "plan": {"type": "string"}, "users": {"type": "integer"}}}},
               "storage": {"type": "object", "properties": {"bytes": {"type": "integer"}, "files": {"type": "integer"}}},
               "uploads_per_day": {"type": "array", "items": {"type": "object", "properties": {
                   "date": {"type": "string", "format": "date"}, "uploads": {"type": "integer"},
                   "bytes": {"type": "integer"}}}}}})
async def overview(request: web.Request) -> web.Response:
    await authenticate(request, scope=ADMIN)
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        await cur.execute(
            """SELECT count(*), count(*) FILTER (WHERE frozen_at IS NOT NULL),
                      count(*) FILTER (WHERE is_admin OR admin_granted) FROM users""")
        total, frozen, admins = await cur.fetchone()
        # Active: did anything (signed in, uploaded, used a token...) in the last 30 days.
        await cur.execute(
            """SELECT count(DISTINCT e.actor_id) FROM events e JOIN users u ON u.id = e.actor_id
               WHERE e.occurred_at > now() - make_interval(days => %s)""", (OVERVIEW_DAYS,))
        (active,) = await cur.fetchone()
        await cur.execute("SELECT plan, count(*) FROM subscriptions WHERE plan <> %s AND status = ANY(%s) "
                          "GROUP BY plan ORDER BY plan", (FREE, sorted(PLAN_APPLIES)))
        paying = [{"plan": plan, "users": count} for plan, count in await cur.fetchall()]
        await cur.execute("SELECT COALESCE(sum(bytes_used), 0)::bigint, COALESCE(sum(files_used), 0)::bigint FROM users")
        used, files = await cur.fetchone()
        # Days in UTC, oldest first, every one of them (a day without uploads is a zero, not a gap).
        await cur.execute(
            """
            SELECT day::date, count(e.id), COALESCE(sum((e.data->>'size')::bigint), 0)
            FROM generate_series(date_trunc('day', now() AT TIME ZONE 'UTC') - make_interval(days => %(n)s - 1),
                                 date_trunc('day', now() AT TIME ZONE 'UTC'), interval '1 day') AS day
            LEFT JOIN events e ON e.type = 'artifact.created'
                 AND e.occurred_at >= day AT TIME ZONE 'UTC' AND e.occurred_at < (day + interval '1 day') AT TIME ZONE 'UTC'
            GROUP BY day ORDER BY day
            """, {"n": OVERVIEW_DAYS})
        days = [{"date": day.isoformat(), "uploads": count, "bytes": int(size)} for day, count, size in await cur.fetchall()]
    return web.json_response({
        "users": {"total": total, "active_30_days": active, "frozen": frozen, "admins": admins},
        "paying": paying, "storage": {"bytes": int(used), "files": files}, "uploads_per_day": days})


@operation("The site switches: uploads_paused, signups_paused, read_only, banner (admins only)", tags=["admin"],
           auth="admin", response=site.SCHEMA)
async def get_settings(request: web.Request) -> web.Response:
    await authenticate(request, scope=ADMIN)
    return web.json_response((await site.load(request.app[keys.POOL])).to_json())


@operation("Change site switches; every process obeys within a few seconds (admins only; allowed while read-only)",
           tags=["admin"], auth="admin", body=site.SCHEMA, response=site.SCHEMA)
async def put_settings(request: web.Request) -> web.Response:
    principal = await authenticate(request, scope=ADMIN)
    changes = site.parse_changes(await json_object(request, '{"uploads_paused": true, "banner": "Back at 10:00 UTC"}'))
    async with request.app[keys.POOL].acquire() as conn, conn.cursor() as cur:
        async with cur.begin():
            _before, after = await site.save(cur, changes, actor_id=principal.user.id)
    request.app[keys.SITE].current = after  # this process at once; the others at their next reload
    return web.json_response(after.to_json())


def routes() -> list[web.AbstractRouteDef]:
    return [
        *(web.get(path, page) for path in PAGES),
        web.get("/api/admin/overview", overview),
        web.get("/api/admin/users", admin_users.list_users),
        web.get("/api/admin/users/{id}", admin_users.show_user),
        web.patch("/api/admin/users/{id}", admin_users.update_user),
        web.delete("/api/admin/users/{id}", admin_users.erase_user),
        web.get("/api/admin/events", audit.list_events),
        web.get("/api/admin/events.csv", audit.events_csv),
        web.get("/api/admin/settings", get_settings),
        web.put("/api/admin/settings", put_settings),
        web.get("/api/me/events", audit.my_events),
    ]
