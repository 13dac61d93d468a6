"""Site switches: ``uploads_paused``, ``signups_paused``, ``read_only`` and ``banner``.

They live in the database (``site_settings``, one row per switch) so that every process obeys the same
ones: each process keeps a copy (:class:`SiteSwitches`, on the app under ``keys.SITE``) that it reloads
every :data:`REFRESH_SECONDS` in the background, so a change made on one process takes effect on every
other within a few seconds, and reading a switch on the hot path costs nothing. The process that saves a
change applies it at once.

- ``uploads_paused``: every upload path answers 503 with the banner (``portal_core.web.upload.check_upload``).
- ``signups_paused``: sign-in refuses people who have no account yet (``portal_core.web.auth``).
- ``read_only``: every state-changing request is refused with 503 (:func:`read_only_guard`), except
  changing these settings and signing in and out, so an administrator can always switch it off again.
- ``banner``: a line of text on every page (``render_page``, and /api/me and /api/meta for the JS pages).
"""

from __future__ import annotations

import asyncio
import json
import logging
from html import escape
from collections.abc import AsyncIterator, Mapping
from typing import Any

import attrs
from aiohttp import web

from . import keys
from .events import record
from .tasks import stop_tasks
from .web.errors import ApiError, bad_request
from .web.html import render_page
from .web.middleware import is_page
from .web.inputs import check_text

log = logging.getLogger("portal.site")

# A change reaches every process within this long (plus one query): the issue asks for 5 seconds.
REFRESH_SECONDS = 2.0
MAX_BANNER = 300
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# What read_only still lets through: turning it off, and signing in and out (else no admin could get in to).
READ_ONLY_EXEMPT = (("PUT", "/api/admin/settings"), ("POST", "/auth/callback"), ("POST", "/auth/logout"))


@attrs.frozen
class SiteSettings:
    uploads_paused: bool = False
    signups_paused: bool = False
    read_only: bool = False
    banner: str = ""

    def to_json(self) -> dict[str, Any]:
        return attrs.asdict(self)


FIELDS: dict[str, type] = {"uploads_paused": bool, "signups_paused": bool, "read_only": bool, "banner": str}
SCHEMA = {"type": "object", "additionalProperties": False, "properties": {
    "uploads_paused": {"type": "boolean"}, "signups_paused": {"type": "boolean"}, "read_only": {"type": "boolean"},
    "banner": {"type": "string", "maxLength": MAX_BANNER}}}


def from_rows(rows) -> SiteSettings:
    """SiteSettings from (name, value) rows; names this build does not know, or values of the wrong type,
    are skipped (a newer build may have written them)."""
    values = {}
    for name, value in rows:
        kind = FIELDS.get(name)
        if kind is not None and isinstance(value, kind):
            values[name] = value
    return SiteSettings(**values)


async def load(pool) -> SiteSettings:
    async with pool.acquire() as conn, conn.cursor() as cur:
        await cur.execute("SELECT name, value FROM site_settings")
        return from_rows(await cur.fetchall())


def parse_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """The switches a PUT body sets, checked; 400 naming any unknown name or a value of the wrong kind."""
    unknown = sorted(set(body) - set(FIELDS))
    if unknown:
        raise bad_request(f"unknown setting(s) {', '.join(map(repr, unknown))}; known: {', '.join(FIELDS)}",
                          code="unknown_setting")
    changes: dict[str, Any] = {}
    for name, value in body.items():
        if FIELDS[name] is bool:
            if not isinstance(value, bool):
                raise bad_request(f"'{name}' must be true or false", code=f"bad_{name}")
        else:
            if not isinstance(value, str):
                raise bad_request(f"'{name}' must be a string (empty for none)", code=f"bad_{name}")
            value = check_text(value, f"'{name}'").strip()
            if len(value) > MAX_BANNER or any(ch in value for ch in "\r\n"):
                raise bad_request(f"'{name}' must be one line of at most {MAX_BANNER} characters", code=f"bad_{name}")
        changes[name] = value
    return changes


async def save(cur, changes: Mapping[str, Any], *, actor_id: int | None) -> tuple[SiteSettings, SiteSettings]:
    """Write ``changes`` and an ``admin.settings_changed`` event (when anything changed) in the caller's
    transaction; returns (before, after)."""
    # Concurrent saves queue here, so each one's "before" is what the previous one left.
    await cur.execute("LOCK TABLE site_settings IN SHARE ROW EXCLUSIVE MODE")
    await cur.execute("SELECT name, value FROM site_settings")
    before = from_rows(await cur.fetchall())
    after = attrs.evolve(before, **changes)
    changed = {name: {"old": getattr(before, name), "new": getattr(after, name)}
               for name in changes if getattr(before, name) != getattr(after, name)}
    for name in changed:
        await cur.execute(
            "INSERT INTO site_settings (name, value, updated_by) VALUES (%s, %s::jsonb, %s) "
            "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by",
            (name, json.dumps(getattr(after, name)), actor_id))
    if changed:
        await record(cur, "admin.settings_changed", actor_id=actor_id, data=changed)
    return before, after


class SiteSwitches:
    """This process's copy of the site settings (``current``), reloaded every REFRESH_SECONDS."""

    def __init__(self) -> None:
        self.current = SiteSettings()

    async def refresh(self, pool) -> None:
        self.current = await load(pool)


async def site_switches(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: load the switches before the port serves, then keep reloading them until shutdown."""
    switches = app[keys.SITE]
    pool = app[keys.POOL]
    await switches.refresh(pool)

    async def loop() -> None:
        failing = False
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await switches.refresh(pool)
                failing = False
            except Exception as exc:  # the database away: keep the last known switches, say so once
                if not failing:
                    log.warning("cannot reload the site switches, keeping the last ones: %s",
                                str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
                failing = True

    task = asyncio.ensure_future(loop())
    yield
    await stop_tasks([task])


def read_only_message(settings: SiteSettings) -> str:
    message = "the portal is read-only for maintenance right now; nothing was changed, try again later"
    return f"{message} ({settings.banner})" if settings.banner else message


@web.middleware
async def read_only_guard(request: web.Request, handler) -> web.StreamResponse:
    """With ``read_only`` on, refuse every state-changing request (503) except those in READ_ONLY_EXEMPT:
    JSON for the API, a page in the layout for a browser's form (a share link's password, a file request)."""
    if request.method not in SAFE_METHODS:
        settings = request.app[keys.SITE].current
        if settings.read_only and (request.method, request.path) not in READ_ONLY_EXEMPT:
            if is_page(request.path):
                return read_only_page(request, settings)
            raise ApiError(503, "read_only", read_only_message(settings))
    return await handler(request)


def read_only_page(request: web.Request, settings: SiteSettings) -> web.Response:
    message = read_only_message(settings)
    body = (f'<p class="notice notice-error" role="alert" data-testid="read-only">{escape(message[0].upper() + message[1:])}.'
            '</p><p class="actions"><a class="button" href="/" data-testid="error-home">Go to your artifacts</a></p>')
    return render_page(request, "The portal is read-only right now", body, status=503,
                       headers={"Retry-After": "60"})


def uploads_paused_error(settings: SiteSettings) -> ApiError:
    return ApiError(503, "uploads_paused", settings.banner or "uploads are paused for maintenance; try again later")
